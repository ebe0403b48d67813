package storage

import (
	"context"
	"crypto/rand"
	"fmt"

	"go.etcd.io/bbolt"
)

// authorKeySize is the length of the key AuthorKey keeps.
const authorKeySize = 32

// keyAuthor holds, in the sys bucket, the key that collab derives public
// author ids from.
var keyAuthor = []byte("author-key")

// AuthorKey returns the file's author key: 32 random bytes, created on
// first use and kept in the file, so that the author ids derived from it
// stay the same across restarts (and in a backup restored elsewhere). It
// is a secret: whoever holds it can test guesses of client ids against
// author ids.
func (db *DB) AuthorKey(ctx context.Context) ([]byte, error) {
	var key []byte
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketSys).Get(keyAuthor); len(v) == authorKeySize {
			key = append([]byte(nil), v...)
		}
		return nil
	})
	if err != nil || key != nil {
		return key, wrapAuthorKey(err)
	}
	// None yet: create one through the committer, which keeps one that a
	// concurrent caller stored first.
	w := &authorKeyWrite{}
	if _, err := rand.Read(w.fresh[:]); err != nil {
		return nil, wrapAuthorKey(err)
	}
	if err := db.submit(ctx, w); err != nil {
		return nil, wrapAuthorKey(err)
	}
	return w.key, nil
}

func wrapAuthorKey(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("author key: %w", err)
}

// authorKeyWrite stores fresh as the author key unless one exists; key is
// the one in the file afterwards. The committer sets it before replying,
// so submit's caller may read it once submit returns nil.
type authorKeyWrite struct {
	fresh [authorKeySize]byte
	key   []byte
}

func (*authorKeyWrite) size() int                { return authorKeySize }
func (*authorKeyWrite) check(tx *bbolt.Tx) error { return nil }
func (w *authorKeyWrite) apply(tx *bbolt.Tx) error {
	sys := tx.Bucket(bucketSys)
	if v := sys.Get(keyAuthor); len(v) == authorKeySize {
		w.key = append([]byte(nil), v...)
		return nil
	}
	w.key = append([]byte(nil), w.fresh[:]...)
	return sys.Put(keyAuthor, w.key)
}

// SeedAuthorKey stores key as the author key unless the file has one
// already, and returns the one it has afterwards: a backup of a cluster
// keeps the cluster's key, so that author ids stay what they were.
func (db *DB) SeedAuthorKey(ctx context.Context, key []byte) ([]byte, error) {
	if len(key) != authorKeySize {
		return nil, wrapAuthorKey(fmt.Errorf("%d bytes, want %d", len(key), authorKeySize))
	}
	w := &authorKeyWrite{}
	copy(w.fresh[:], key)
	if err := db.submit(ctx, w); err != nil {
		return nil, wrapAuthorKey(err)
	}
	return w.key, nil
}
