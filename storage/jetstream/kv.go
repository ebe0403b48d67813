package jetstream

// Small records kept beside the documents in cluster mode: collab's
// access records and sign-in sessions (collab/access.go), the
// workspace's titles, tags and trash times (collab/workspace.go), each in a
// key-value bucket of its own, so that every node reads what any node
// wrote. A watch on a bucket tells every node of a change made on another
// (collabd closes the sessions that lost access).

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// KV bucket names that OpenKV takes.
const (
	KVAccess   = "access"
	KVSessions = "sessions"
	// KVDocInfo holds the workspace's titles, tags and trash times.
	KVDocInfo = "docinfo"
)

// maxKVValue bounds one record: ids and small JSON objects.
const maxKVValue = 256 << 10

// validKVKey is what a key may be: document ids, hashes.
var validKVKey = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

// KV is one bucket of small records. It is safe for concurrent use.
type KV struct {
	kv natsjs.KeyValue
}

// OpenKV creates or updates bucket name (KVAccess, KVSessions or
// KVDocInfo) with
// the store's replicas; ttl, when positive, is how long a record lives
// after its last write (sessions).
func (s *Store) OpenKV(ctx context.Context, name string, replicas int, ttl time.Duration) (*KV, error) {
	if name != KVAccess && name != KVSessions && name != KVDocInfo {
		return nil, fmt.Errorf("jetstream: kv bucket %q: %w", name, ErrInvalid)
	}
	b, err := s.js.CreateOrUpdateKeyValue(ctx, natsjs.KeyValueConfig{
		Bucket: "collab_" + name, Description: "collabd " + name, History: 1, TTL: ttl,
		Storage: natsjs.FileStorage, Replicas: max(replicas, 1), MaxValueSize: maxKVValue,
	})
	if err != nil {
		return nil, fmt.Errorf("jetstream: bucket collab_%s: %w", name, err)
	}
	return &KV{kv: b}, nil
}

// Get returns the value of key, or ErrNotFound.
func (k *KV) Get(ctx context.Context, key string) ([]byte, error) {
	if !validKVKey.MatchString(key) {
		return nil, fmt.Errorf("jetstream: kv key: %w", ErrInvalid)
	}
	e, err := k.kv.Get(ctx, key)
	if errors.Is(err, natsjs.ErrKeyNotFound) || errors.Is(err, natsjs.ErrKeyDeleted) {
		return nil, fmt.Errorf("jetstream: %s: %w", k.kv.Bucket(), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("jetstream: get from %s: %w", k.kv.Bucket(), err)
	}
	return e.Value(), nil
}

// Put sets key to value, acknowledged by the bucket's replicas.
func (k *KV) Put(ctx context.Context, key string, value []byte) error {
	if !validKVKey.MatchString(key) || len(value) > maxKVValue {
		return fmt.Errorf("jetstream: kv put of %d bytes: %w", len(value), ErrInvalid)
	}
	if _, err := k.kv.Put(ctx, key, value); err != nil {
		return fmt.Errorf("jetstream: put to %s: %w", k.kv.Bucket(), err)
	}
	return nil
}

// Delete deletes key; a missing key is no error.
func (k *KV) Delete(ctx context.Context, key string) error {
	if !validKVKey.MatchString(key) {
		return fmt.Errorf("jetstream: kv key: %w", ErrInvalid)
	}
	if err := k.kv.Delete(ctx, key); err != nil && !errors.Is(err, natsjs.ErrKeyNotFound) {
		return fmt.Errorf("jetstream: delete from %s: %w", k.kv.Bucket(), err)
	}
	return nil
}

// Watch calls fn with the key of every record put in the bucket from now
// on, by any node, until ctx ends (deletes are not reported). fn runs on one goroutine, which
// Watch's caller owns through ctx: it returns once that goroutine has
// been started; done is closed when it has stopped.
func (k *KV) Watch(ctx context.Context, fn func(key string)) (done <-chan struct{}, err error) {
	return k.watch(ctx, natsjs.KeyValuePut, fn)
}

// WatchDeleted is Watch for the records deleted (or purged) from now on.
func (k *KV) WatchDeleted(ctx context.Context, fn func(key string)) (done <-chan struct{}, err error) {
	return k.watch(ctx, natsjs.KeyValueDelete, fn)
}

// watch calls fn with the key of every entry of kind op (a purge counts
// as a delete) from now on.
func (k *KV) watch(ctx context.Context, op natsjs.KeyValueOp, fn func(key string)) (done <-chan struct{}, err error) {
	w, err := k.kv.WatchAll(ctx, natsjs.UpdatesOnly())
	if err != nil {
		return nil, fmt.Errorf("jetstream: watch %s: %w", k.kv.Bucket(), err)
	}
	d := make(chan struct{})
	go func() {
		defer close(d)
		defer w.Stop()
		for {
			select {
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue
				}
				kind := e.Operation()
				if kind == natsjs.KeyValuePurge {
					kind = natsjs.KeyValueDelete
				}
				if kind == op {
					fn(e.Key())
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return d, nil
}
