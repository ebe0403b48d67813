package storage

import (
	"bytes"
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// Checkpoints of who wrote what (collab's authors.go) are opaque values,
// one per revision, in the authors bucket (created on first use), keyed
// like snapshots: the document's prefix and the 8-byte revision. They go
// with the document.

var bucketAuthors = []byte("authors")

// maxCheckpointBytes bounds one checkpoint value.
const maxCheckpointBytes = 64 << 20

// Checkpoint is an opaque value of a document at a revision.
type Checkpoint struct {
	Rev  int64
	Data []byte
}

// SaveAuthors stores checkpoints of document id, replacing any at the same
// revisions. A checkpoint past the document's revision is ErrConflict.
func (db *DB) SaveAuthors(ctx context.Context, id string, cps []Checkpoint) error {
	w := &authorsWrite{id: id, cps: cps}
	for _, cp := range cps {
		if len(cp.Data) > maxCheckpointBytes || cp.Rev < 0 {
			return fmt.Errorf("save authors doc %s rev %d: %d bytes: %w", id, cp.Rev, len(cp.Data), ErrConflict)
		}
		w.bytes += len(cp.Data) + 24
	}
	if err := db.submit(ctx, w); err != nil {
		return fmt.Errorf("save authors doc %s: %w", id, err)
	}
	return nil
}

type authorsWrite struct {
	id    string
	cps   []Checkpoint
	bytes int
	keys  docKeys
}

func (w *authorsWrite) size() int { return w.bytes }

func (w *authorsWrite) check(tx *bbolt.Tx) error {
	m, keys, err := readMeta(tx, w.id)
	if err != nil {
		return err
	}
	for _, cp := range w.cps {
		if cp.Rev > m.Rev {
			return fmt.Errorf("doc is at rev %d, checkpoint at %d: %w", m.Rev, cp.Rev, ErrConflict)
		}
	}
	w.keys = keys
	return nil
}

func (w *authorsWrite) apply(tx *bbolt.Tx) error {
	b, err := tx.CreateBucketIfNotExists(bucketAuthors)
	if err != nil {
		return err
	}
	for _, cp := range w.cps {
		// Sealed like every value (codec.go): a version byte and a CRC.
		v := seal(append([]byte{valueVersion}, cp.Data...), 0)
		if err := b.Put(w.keys.snap(cp.Rev), v); err != nil {
			return err
		}
	}
	return nil
}

// AuthorsBefore returns document id's checkpoint at the latest revision
// at or before rev, a nil Data if none.
func (db *DB) AuthorsBefore(ctx context.Context, id string, rev int64) (Checkpoint, error) {
	var out Checkpoint
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		if _, _, err := readMeta(tx, id); err != nil {
			return err
		}
		b := tx.Bucket(bucketAuthors)
		if b == nil {
			return nil
		}
		keys := keysOf(id)
		c := b.Cursor()
		// The last checkpoint at or before rev: the one before the first
		// after it, or the bucket's last if none is after it.
		var k, v []byte
		if k, _ = c.Seek(keys.snap(rev + 1)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		if k == nil || len(k) != len(keys)+8 || !bytes.HasPrefix(k, keys) {
			return nil
		}
		r, ok := keys.snapRev(k)
		if !ok {
			return nil
		}
		data, err := unseal(v)
		if err != nil {
			return fmt.Errorf("checkpoint at rev %d: %v: %w", r, err, ErrCorrupt)
		}
		out = Checkpoint{Rev: r, Data: bytes.Clone(data)}
		return nil
	})
	if err != nil {
		return Checkpoint{}, fmt.Errorf("authors doc %s rev %d: %w", id, rev, err)
	}
	return out, nil
}

// deleteAuthors deletes document id's checkpoints, in a delete's
// transaction.
func deleteAuthors(tx *bbolt.Tx, keys docKeys) error {
	b := tx.Bucket(bucketAuthors)
	if b == nil {
		return nil
	}
	return deletePrefix(b, keys)
}
