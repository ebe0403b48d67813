package jetstream

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Comments: a document's comment records, opaque bytes by key, in the
// KV bucket bucketComments under "<doc id>.<key>". Delete purges the
// document's subjects of the bucket's stream in one request.

// validCommentKey is what a record key may be: one KV key token.
var validCommentKey = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Comments returns every comment record of document id, by key.
func (s *Store) Comments(ctx context.Context, id string) (map[string][]byte, error) {
	if _, err := s.meta(ctx, id); err != nil {
		return nil, fmt.Errorf("comments of doc %s: %w", id, err)
	}
	w, err := s.comments.Watch(ctx, id+".*", natsjs.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("comments of doc %s: %w", id, err)
	}
	defer w.Stop()
	out := make(map[string][]byte)
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("comments of doc %s: watcher closed", id)
			}
			if e == nil { // every current value has been delivered
				return out, nil
			}
			out[e.Key()[len(id)+1:]] = e.Value()
		case <-ctx.Done():
			return nil, fmt.Errorf("comments of doc %s: %w", id, ctx.Err())
		}
	}
}

// PutComments stores put, replacing records with the same keys, and
// removes the records of del. Each record is one KV write, durable when
// it returns; a failure part way leaves the earlier ones written.
func (s *Store) PutComments(ctx context.Context, id string, put map[string][]byte, del []string) error {
	if _, err := s.meta(ctx, id); err != nil {
		return fmt.Errorf("put comments of doc %s: %w", id, err)
	}
	for k, v := range put {
		if !validCommentKey.MatchString(k) {
			return fmt.Errorf("put comments of doc %s: bad key %q", id, k)
		}
		if _, err := s.comments.Put(ctx, id+"."+k, v); err != nil {
			return fmt.Errorf("put comments of doc %s: %w", id, err)
		}
	}
	for _, k := range del {
		if !validCommentKey.MatchString(k) {
			continue // never stored
		}
		if err := s.comments.Purge(ctx, id+"."+k); err != nil && !errors.Is(err, natsjs.ErrKeyNotFound) {
			return fmt.Errorf("delete comment of doc %s: %w", id, err)
		}
	}
	return nil
}

// deleteComments removes every comment record of document id.
func (s *Store) deleteComments(ctx context.Context, id string) error {
	st, err := s.js.Stream(ctx, "KV_"+bucketComments)
	if err != nil {
		return err
	}
	return st.Purge(ctx, natsjs.WithPurgeSubject("$KV."+bucketComments+"."+id+".>"))
}
