package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"go.etcd.io/bbolt"

	"github.com/collabd/collabd/ot"
)

// A document has two kinds of snapshot (keys.go):
//
//   - milestones (snapMilestone), kept for good, one every SnapshotEvery
//     ops or SnapshotBytes bytes of ops, whichever comes first, so that the
//     text at any revision is one snapshot plus a short replay (TextAt);
//   - at most one latest snapshot (snapLatest), saved when a document is
//     unloaded so that the next Load replays nothing. It is always newer
//     than every milestone: a milestone at or after it replaces it.
//
// Load starts from whichever is newest.

// loadDoc rebuilds document id at its latest revision from its latest
// snapshot and the ops after it. tail is the number of ops replayed.
func loadDoc(ctx context.Context, tx *bbolt.Tx, id string) (doc *Doc, tail int64, err error) {
	m, keys, err := readMeta(tx, id)
	if err != nil {
		return nil, 0, err
	}
	base, runes, err := snapshotBefore(tx, keys, m, keys.snap(-1), false)
	if err != nil {
		return nil, 0, err
	}
	text, err := replay(ctx, tx, keys, id, base, runes, m.Rev, nil)
	if err != nil {
		return nil, 0, err
	}
	return &Doc{Meta: m, Text: text.String(), Rev: m.Rev}, m.Rev - base.Rev, nil
}

// replay returns the text of a document at revision to, rebuilt from base
// (of runes code points) and the ops after it. each, if not nil, is called
// after every op applied with the op's record, the size of its stored
// value and the text it made; when it returns false, replay stops there
// and returns the text as it stands. Any gap, undecodable record or op
// that does not fit the text fails with ErrCorrupt.
func replay(ctx context.Context, tx *bbolt.Tx, keys docKeys, id string, base Snapshot, runes int, to int64,
	each func(rec Record, size int, text *ot.Doc) bool) (*ot.Doc, error) {
	text := ot.NewDoc(base.Text)
	if text.Len() != runes {
		return nil, fmt.Errorf("doc %s snapshot rev %d: %d code points, recorded %d: %w",
			id, base.Rev, text.Len(), runes, ErrCorrupt)
	}
	// Start at the snapshot's own op, when there is one, to check that the
	// snapshot is as long as the text that op produced.
	from := base.Rev + 1
	if base.Rev > 0 {
		from = base.Rev
	}
	var applyErr error
	err := scanOpsSized(tx, keys, id, from, to, func(rec Record, size int) bool {
		if rec.Rev == base.Rev {
			if n := rec.Op.TargetLen(); n != runes {
				applyErr = fmt.Errorf("doc %s snapshot rev %d: %d code points, op made %d: %w",
					id, base.Rev, runes, n, ErrCorrupt)
				return false
			}
			return true
		}
		if rec.Rev%256 == 0 {
			if applyErr = ctx.Err(); applyErr != nil {
				return false
			}
		}
		if err := text.Apply(rec.Op); err != nil {
			applyErr = fmt.Errorf("doc %s rev %d: %v: %w", id, rec.Rev, err, ErrCorrupt)
			return false
		}
		return each == nil || each(rec, size, text)
	})
	if err == nil {
		err = applyErr
	}
	if err != nil {
		return nil, err
	}
	return text, nil
}

// snapshotBefore returns the document's last snapshot whose key sorts
// before seek (a milestone only, if milestone is set) and its length in
// code points, or the empty revision 0 if there is none.
func snapshotBefore(tx *bbolt.Tx, keys docKeys, m Meta, seek []byte, milestone bool) (Snapshot, int, error) {
	c := tx.Bucket(bucketSnaps).Cursor()
	var k, v []byte
	if k, _ = c.Seek(seek); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, keys); k, v = c.Prev() {
		rev, kind, ok := keys.snapInfo(k)
		if !ok {
			return Snapshot{}, 0, fmt.Errorf("doc %s: snapshot key %x: %w", m.ID, k, ErrCorrupt)
		}
		if milestone && kind != snapMilestone {
			continue
		}
		snap, runes, err := decodeSnapshot(v)
		if err == nil && snap.Rev != rev {
			err = fmt.Errorf("snapshot claims rev %d", snap.Rev)
		}
		if err == nil && rev > m.Rev {
			err = fmt.Errorf("snapshot ahead of doc rev %d", m.Rev)
		}
		if err != nil {
			return Snapshot{}, 0, fmt.Errorf("doc %s snapshot rev %d: %v: %w", m.ID, rev, err, ErrCorrupt)
		}
		return snap, runes, nil
	}
	return Snapshot{}, 0, nil
}

// lastSnapshotRev returns the revision of the document's newest snapshot
// of any kind.
func lastSnapshotRev(tx *bbolt.Tx, keys docKeys) (int64, bool) {
	c := tx.Bucket(bucketSnaps).Cursor()
	k, _ := c.Seek(keys.snap(-1))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	return keys.snapRev(k)
}

// SaveSnapshot stores the text of document id at snap.Rev, e.g. when a
// document is unloaded, as its latest snapshot, replacing an older one. It
// does nothing if a snapshot at snap.Rev or later exists (a milestone
// included), and fails with ErrConflict if snap.Rev is ahead of the
// document or the text's length differs from what op snap.Rev produced.
func (db *DB) SaveSnapshot(ctx context.Context, id string, snap Snapshot) error {
	if snap.Rev < 0 {
		return fmt.Errorf("save snapshot doc %s rev %d: negative rev: %w", id, snap.Rev, ErrConflict)
	}
	if snap.Rev == 0 {
		// Revision 0 is the empty document; it needs no snapshot.
		if snap.Text != "" {
			return fmt.Errorf("save snapshot doc %s rev 0: text not empty: %w", id, ErrConflict)
		}
		return nil
	}
	if err := db.saveSnapshot(ctx, id, snap, snapLatest, time.Time{}); err != nil {
		return fmt.Errorf("save snapshot doc %s rev %d: %w", id, snap.Rev, err)
	}
	return nil
}

// saveSnapshot compresses snap in the caller's goroutine and stores it
// through the committer. A non-zero created must match the document's, so
// that a milestone computed for a document deleted meanwhile cannot land
// on a new one of the same id.
func (db *DB) saveSnapshot(ctx context.Context, id string, snap Snapshot, kind byte, created time.Time) error {
	runes := utf8.RuneCountInString(snap.Text)
	w := &snapshotWrite{id: id, rev: snap.Rev, runes: runes, kind: kind, created: created,
		value: db.comp.encode(&snap, runes)}
	return db.submit(ctx, w)
}

type snapshotWrite struct {
	id      string
	rev     int64
	runes   int
	kind    byte
	created time.Time
	value   []byte

	skip bool
	keys docKeys
}

func (w *snapshotWrite) size() int { return len(w.value) }

func (w *snapshotWrite) check(tx *bbolt.Tx) error {
	w.skip = false
	m, keys, err := readMeta(tx, w.id)
	if err != nil {
		return err
	}
	if !w.created.IsZero() && !w.created.Equal(m.Created) {
		return fmt.Errorf("doc %s was replaced: %w", w.id, ErrNotFound)
	}
	if w.rev > m.Rev {
		return fmt.Errorf("doc is at rev %d: %w", m.Rev, ErrConflict)
	}
	switch w.kind {
	case snapLatest:
		if last, ok := lastSnapshotRev(tx, keys); ok && last >= w.rev {
			w.skip = true
			return nil
		}
	case snapMilestone:
		if tx.Bucket(bucketSnaps).Get(keys.snapKind(w.rev, snapMilestone)) != nil {
			w.skip = true
			return nil
		}
	}
	// The op that made the revision knows the text's length: a cheap check
	// that catches a snapshot taken of the wrong text.
	var want int
	if err := scanOps(tx, keys, w.id, w.rev, w.rev, func(rec Record) bool {
		want = rec.Op.TargetLen()
		return false
	}); err != nil {
		return err
	}
	if want != w.runes {
		return fmt.Errorf("text has %d code points, op %d made %d: %w", w.runes, w.rev, want, ErrConflict)
	}
	w.keys = keys
	return nil
}

func (w *snapshotWrite) apply(tx *bbolt.Tx) error {
	if w.skip {
		return nil
	}
	b := tx.Bucket(bucketSnaps)
	k := w.keys.snapKind(w.rev, w.kind)
	if err := b.Put(k, w.value); err != nil {
		return err
	}
	return pruneLatest(b, w.keys, k)
}

// pruneLatest deletes the document's latest snapshots whose keys sort
// before k: the snapshot just stored at k replaces them for Load. Since
// they are newer than every milestone, the walk back stops at the first
// milestone.
func pruneLatest(b *bbolt.Bucket, keys docKeys, k []byte) error {
	// Keys are collected first: deleting under a bbolt cursor skips keys.
	var older [][]byte
	c := b.Cursor()
	c.Seek(k)
	for k, _ := c.Prev(); k != nil; k, _ = c.Prev() {
		_, kind, ok := keys.snapInfo(k)
		if !ok || kind == snapMilestone {
			break
		}
		older = append(older, bytes.Clone(k))
	}
	for _, k := range older {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// scheduleMilestones asks the snapshotter to bring document id's
// milestones up to its latest revision. It never blocks, which is what
// keeps snapshots off the append path.
func (db *DB) scheduleMilestones(id string) {
	if db.snapshotEvery <= 0 {
		return
	}
	db.snapMu.Lock()
	db.snapPending[id] = struct{}{}
	db.snapMu.Unlock()
	select {
	case db.snapWake <- struct{}{}:
	default:
	}
}

func (db *DB) nextMilestones() (string, bool) {
	db.snapMu.Lock()
	defer db.snapMu.Unlock()
	for id := range db.snapPending {
		delete(db.snapPending, id)
		return id, true
	}
	return "", false
}

// snapshotLoop builds the milestones scheduled by appends and loads, one
// document at a time, until Close.
func (db *DB) snapshotLoop() {
	defer db.wg.Done()
	for {
		select {
		case <-db.snapWake:
		case <-db.ctx.Done():
			return
		}
		for db.ctx.Err() == nil {
			id, ok := db.nextMilestones()
			if !ok {
				break
			}
			err := db.buildMilestones(id)
			switch {
			case err == nil, db.ctx.Err() != nil, errors.Is(err, ErrClosed), errors.Is(err, ErrNotFound):
				// Closing, or the document was deleted meanwhile.
			default:
				db.log.Error("storage: milestone failed", "doc", id, "err", err)
			}
		}
	}
}
