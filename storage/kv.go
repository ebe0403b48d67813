package storage

// Small records kept beside the documents: collab's access records and
// sign-in sessions (collab/access.go), each in a bucket of its own,
// created by the first write (files written before need no migration).
// Writes go through the committer like any other, so that they share an
// fsync with whatever ops are committed with them.

import (
	"bytes"
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// KV buckets: the only names KVGet, KVPut and KVDelete take.
const (
	KVAccess   = "access"
	KVSessions = "sessions"
	// KVDocInfo holds the workspace's titles, tags and trash times.
	KVDocInfo = "docinfo"
)

// maxKVKey and maxKVValue bound one record: these hold ids and small
// JSON objects, not documents.
const (
	maxKVKey   = 256
	maxKVValue = 256 << 10
)

func kvBucket(name string) ([]byte, error) {
	if name != KVAccess && name != KVSessions && name != KVDocInfo {
		return nil, fmt.Errorf("kv bucket %q: %w", name, ErrInvalid)
	}
	return []byte("kv-" + name), nil
}

// KVGet returns a copy of the value of key in bucket, or ErrNotFound.
func (db *DB) KVGet(ctx context.Context, bucket, key string) ([]byte, error) {
	b, err := kvBucket(bucket)
	if err != nil {
		return nil, err
	}
	var v []byte
	err = db.view(ctx, func(tx *bbolt.Tx) error {
		if bk := tx.Bucket(b); bk != nil {
			v = bytes.Clone(bk.Get([]byte(key)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kv get %s: %w", bucket, err)
	}
	if v == nil {
		return nil, fmt.Errorf("kv get %s: %w", bucket, ErrNotFound)
	}
	return v, nil
}

// KVPut durably sets key in bucket to value; a nil value deletes it.
func (db *DB) KVPut(ctx context.Context, bucket, key string, value []byte) error {
	b, err := kvBucket(bucket)
	if err != nil {
		return err
	}
	if key == "" || len(key) > maxKVKey || len(value) > maxKVValue {
		return fmt.Errorf("kv put %s: key of %d bytes, value of %d: %w", bucket, len(key), len(value), ErrInvalid)
	}
	if err := db.submit(ctx, &kvWrite{bucket: b, key: []byte(key), value: bytes.Clone(value)}); err != nil {
		return fmt.Errorf("kv put %s: %w", bucket, err)
	}
	return nil
}

// KVDelete durably deletes key from bucket; a missing key is no error.
func (db *DB) KVDelete(ctx context.Context, bucket, key string) error {
	return db.KVPut(ctx, bucket, key, nil)
}

// KVDeleteIf deletes every record of bucket for which drop says so, and
// returns how many went. It holds one write transaction: for buckets of
// thousands of small records (sessions), not millions.
func (db *DB) KVDeleteIf(ctx context.Context, bucket string, drop func(key, value []byte) bool) (int, error) {
	b, err := kvBucket(bucket)
	if err != nil {
		return 0, err
	}
	w := &kvSweep{bucket: b, drop: drop}
	if err := db.submit(ctx, w); err != nil {
		return 0, fmt.Errorf("kv sweep %s: %w", bucket, err)
	}
	return w.n, nil
}

type kvWrite struct {
	bucket, key, value []byte
}

func (w *kvWrite) size() int                { return len(w.key) + len(w.value) + 16 }
func (w *kvWrite) check(tx *bbolt.Tx) error { return nil }
func (w *kvWrite) apply(tx *bbolt.Tx) error {
	if w.value == nil {
		if b := tx.Bucket(w.bucket); b != nil {
			return b.Delete(w.key)
		}
		return nil
	}
	b, err := tx.CreateBucketIfNotExists(w.bucket)
	if err != nil {
		return err
	}
	return b.Put(w.key, w.value)
}

type kvSweep struct {
	bucket []byte
	drop   func(key, value []byte) bool
	n      int
}

func (w *kvSweep) size() int                { return 64 }
func (w *kvSweep) check(tx *bbolt.Tx) error { return nil }
func (w *kvSweep) apply(tx *bbolt.Tx) error {
	w.n = 0
	b := tx.Bucket(w.bucket)
	if b == nil {
		return nil
	}
	var keys [][]byte
	err := b.ForEach(func(k, v []byte) error {
		if w.drop(k, v) {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	w.n = len(keys)
	return nil
}
