package storage

import (
	"bytes"
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// Comments: a document's comment records, opaque bytes by key, in their
// own bucket under the document's key prefix (keys.go), so that deleting
// the document deletes them with one prefix walk.

// bucketComments holds the records, keyed by document prefix and key.
var bucketComments = []byte("comments")

// maxCommentKey bounds a record's key.
const maxCommentKey = 64

// Comments returns every comment record of document id, by key.
func (db *DB) Comments(ctx context.Context, id string) (map[string][]byte, error) {
	out := make(map[string][]byte)
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		_, keys, err := readMeta(tx, id)
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketComments)
		if b == nil {
			return nil // a file opened read-only before the bucket existed
		}
		c := b.Cursor()
		for k, v := c.Seek(keys); k != nil && bytes.HasPrefix(k, keys); k, v = c.Next() {
			out[string(k[len(keys):])] = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("comments of doc %s: %w", id, err)
	}
	return out, nil
}

// PutComments stores put, replacing records with the same keys, and
// removes the records of del, durably, in one write. The document must
// exist.
func (db *DB) PutComments(ctx context.Context, id string, put map[string][]byte, del []string) error {
	for k := range put {
		if k == "" || len(k) > maxCommentKey {
			return fmt.Errorf("comment key %q: empty or over %d bytes", k, maxCommentKey)
		}
	}
	if err := db.submit(ctx, &commentWrite{id: id, put: put, del: del}); err != nil {
		return fmt.Errorf("put comments of doc %s: %w", id, err)
	}
	return nil
}

type commentWrite struct {
	id   string
	put  map[string][]byte
	del  []string
	keys docKeys
}

func (w *commentWrite) size() int {
	n := 64 + len(w.id)
	for k, v := range w.put {
		n += len(k) + len(v)
	}
	for _, k := range w.del {
		n += len(k)
	}
	return n
}

func (w *commentWrite) check(tx *bbolt.Tx) error {
	_, keys, err := readMeta(tx, w.id)
	w.keys = keys
	return err
}

func (w *commentWrite) apply(tx *bbolt.Tx) error {
	b := tx.Bucket(bucketComments)
	for k, v := range w.put {
		if err := b.Put(append(w.keys.key(len(k)), k...), v); err != nil {
			return err
		}
	}
	for _, k := range w.del {
		if err := b.Delete(append(w.keys.key(len(k)), k...)); err != nil {
			return err
		}
	}
	return nil
}
