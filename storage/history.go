package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"go.etcd.io/bbolt"
)

// ErrNoRevision is returned for a revision a document does not have: one
// below 0 or past its latest.
var ErrNoRevision = errors.New("storage: no such revision")

// ErrInvalid is returned for an argument no document could satisfy, such as
// a bucket period that is not a whole number of minutes dividing a day.
var ErrInvalid = errors.New("storage: invalid argument")

// Revision describes one op of a document's history without its content.
type Revision struct {
	Rev               int64
	Time              time.Time
	Client            string
	Inserted, Deleted int64 // code points
}

// TextAt returns the text of document id at revision rev: the newest
// snapshot at or before rev with the ops after it replayed, so at most
// SnapshotEvery ops (or SnapshotBytes bytes of them) once the document's
// milestones are built. A rev below 0 or past the head is ErrNoRevision.
func (db *DB) TextAt(ctx context.Context, id string, rev int64) (string, error) {
	d, err := db.DocAt(ctx, id, rev)
	if err != nil {
		return "", err
	}
	return d.Text, nil
}

// DocAt is TextAt returning the document's meta too, as of now (Meta.Rev
// is its latest revision, Doc.Rev is rev).
func (db *DB) DocAt(ctx context.Context, id string, rev int64) (*Doc, error) {
	var (
		text     string
		meta     Meta
		replayed int64
	)
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		m, keys, err := readMeta(tx, id)
		if err != nil {
			return err
		}
		meta = m
		if rev < 0 || rev > m.Rev {
			return fmt.Errorf("doc %s rev %d of %d: %w", id, rev, m.Rev, ErrNoRevision)
		}
		base, runes, err := snapshotBefore(tx, keys, m, keys.snap(rev+1), false)
		if err != nil {
			return err
		}
		doc, err := replay(ctx, tx, keys, id, base, runes, rev, nil)
		if err != nil {
			return err
		}
		text, replayed = doc.String(), rev-base.Rev
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Milestones missing behind the head: a file of format 1, or a
	// snapshotter that has not caught up since a restart.
	if db.snapshotEvery > 0 && replayed > 2*db.snapshotEvery {
		db.scheduleMilestones(id)
	}
	return &Doc{Meta: meta, Text: text, Rev: rev}, nil
}

// Revisions returns what each op of document id with Rev > after did,
// oldest first, at most limit of them (limit <= 0 or over 1000 means
// 1000), without decoding the text the ops carry.
func (db *DB) Revisions(ctx context.Context, id string, after int64, limit int) ([]Revision, error) {
	if limit <= 0 || limit > defaultOpsLimit {
		limit = defaultOpsLimit
	}
	after = max(after, 0)
	out := []Revision{}
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		m, keys, err := readMeta(tx, id)
		if err != nil || after >= m.Rev {
			return err
		}
		out = make([]Revision, 0, min(int64(limit), m.Rev-after))
		return scanRevisions(tx, keys, id, after+1, m.Rev, func(r Revision) bool {
			out = append(out, r)
			return len(out) < limit
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// scanRevisions is scanOps for Revisions: it decodes only each record's
// header and counts, not the text inserted.
func scanRevisions(tx *bbolt.Tx, keys docKeys, id string, from, to int64, fn func(Revision) bool) error {
	return scanOpValues(tx, keys, id, from, to, func(rev int64, v []byte) (bool, error) {
		r, err := decodeRevision(v)
		if err == nil && r.Rev != rev {
			err = fmt.Errorf("record claims rev %d", r.Rev)
		}
		if err != nil {
			return false, err
		}
		return fn(r), nil
	})
}

// decodeRevision decodes a record value (see appendRecord) into what it
// did, counting the code points it inserts where they lie.
func decodeRevision(v []byte) (Revision, error) {
	p, err := unseal(v)
	if err != nil {
		return Revision{}, err
	}
	r := reader{b: p}
	var rev Revision
	rev.Rev = int64(r.uvarint())
	rev.Time = fromUnixNano(r.varint())
	r.varint() // seq
	rev.Client = r.str()
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		return Revision{}, errBadValue
	}
	for range n {
		c := r.varint()
		switch {
		case c < 0:
			rev.Deleted -= c
		case c == 0:
			l := r.uvarint()
			if r.err != nil || l > uint64(len(r.b)) {
				return Revision{}, errBadValue
			}
			rev.Inserted += int64(utf8.RuneCount(r.b[:l]))
			r.b = r.b[l:]
		}
	}
	return rev, r.done()
}

// Delete removes document id: its meta, op log, clients, activity index
// and snapshots, and frees its view id. The pages they held return to
// bbolt's freelist for later writes to reuse (the file does not shrink).
// An unknown id is ErrNotFound.
func (db *DB) Delete(ctx context.Context, id string) error {
	if err := db.submit(ctx, &deleteWrite{id: id}); err != nil {
		return fmt.Errorf("delete doc %s: %w", id, err)
	}
	return nil
}

type deleteWrite struct {
	id   string
	meta Meta
	keys docKeys
}

func (w *deleteWrite) size() int { return 64 + len(w.id) }

func (w *deleteWrite) check(tx *bbolt.Tx) error {
	m, keys, err := readMeta(tx, w.id)
	if err != nil {
		return err
	}
	w.meta, w.keys = m, keys
	return nil
}

func (w *deleteWrite) apply(tx *bbolt.Tx) error {
	if err := deletePrefix(tx.Bucket(bucketDocs), w.keys); err != nil {
		return err
	}
	if err := deletePrefix(tx.Bucket(bucketSnaps), w.keys); err != nil {
		return err
	}
	if err := deleteAuthors(tx, w.keys); err != nil {
		return err
	}
	return tx.Bucket(bucketViews).Delete([]byte(w.meta.ViewID))
}

func (w *deleteWrite) committed(db *DB) {
	db.snapMu.Lock()
	delete(db.snapPending, w.id)
	db.snapMu.Unlock()
}

// deletePrefix deletes every key of b that starts with prefix. Keys are
// collected a batch at a time, since deleting under a bbolt cursor skips
// keys, and a batch bounds the memory a long history takes.
func deletePrefix(b *bbolt.Bucket, prefix []byte) error {
	const batch = 4096
	keys := make([][]byte, 0, batch)
	for {
		keys = keys[:0]
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(keys) < batch; k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		if len(keys) == 0 {
			return nil
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
	}
}
