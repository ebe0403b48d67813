package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/collabd/collabd/ot"
)

// loadDoc rebuilds document id at its latest revision from its latest
// snapshot and the ops after it. tail is the number of ops replayed.
func loadDoc(ctx context.Context, tx *bbolt.Tx, id string) (doc *Doc, tail int64, err error) {
	m, keys, err := readMeta(tx, id)
	if err != nil {
		return nil, 0, err
	}
	base, runes, err := latestSnapshot(tx, keys, m)
	if err != nil {
		return nil, 0, err
	}
	text := ot.NewDoc(base.Text)
	if text.Len() != runes {
		return nil, 0, fmt.Errorf("doc %s snapshot rev %d: %d code points, recorded %d: %w",
			id, base.Rev, text.Len(), runes, ErrCorrupt)
	}

	// Start at the snapshot's own op, when there is one, to check that the
	// snapshot is as long as the text that op produced.
	from := base.Rev + 1
	if base.Rev > 0 {
		from = base.Rev
	}
	var applyErr error
	err = scanOps(tx, keys, id, from, m.Rev, func(rec Record) bool {
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
		tail++
		return true
	})
	if err == nil {
		err = applyErr
	}
	if err != nil {
		return nil, 0, err
	}
	return &Doc{Meta: m, Text: text.String(), Rev: m.Rev}, tail, nil
}

// lastSnapshot positions a cursor on the latest snapshot of a document and
// returns its key and value, or nil if it has none.
func lastSnapshot(tx *bbolt.Tx, keys docKeys) (k, v []byte) {
	c := tx.Bucket(bucketSnaps).Cursor()
	// Seek past the largest possible revision of this document.
	if k, _ = c.Seek(keys.snap(-1)); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, keys) {
		return nil, nil
	}
	return k, v
}

func lastSnapshotRev(tx *bbolt.Tx, keys docKeys) (int64, bool) {
	k, _ := lastSnapshot(tx, keys)
	return keys.snapRev(k)
}

// latestSnapshot returns the latest snapshot of a document and its length
// in code points, or the empty revision 0 if it has none.
func latestSnapshot(tx *bbolt.Tx, keys docKeys, m Meta) (Snapshot, int, error) {
	k, v := lastSnapshot(tx, keys)
	if k == nil {
		return Snapshot{}, 0, nil
	}
	rev, ok := keys.snapRev(k)
	if !ok {
		return Snapshot{}, 0, fmt.Errorf("doc %s: snapshot key %x: %w", m.ID, k, ErrCorrupt)
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

// scheduleSnapshot asks the snapshotter to store snap for document id, or,
// if snap is nil, to rebuild the document's latest text and store that. It
// never blocks, which is what keeps snapshots off the append path.
func (db *DB) scheduleSnapshot(id string, snap *Snapshot) {
	db.snapMu.Lock()
	// A pending rebuild already yields the newest text; keep it.
	if old, ok := db.snapPending[id]; !ok || old != nil {
		db.snapPending[id] = snap
	}
	db.snapMu.Unlock()
	select {
	case db.snapWake <- struct{}{}:
	default:
	}
}

func (db *DB) nextSnapshot() (string, *Snapshot, bool) {
	db.snapMu.Lock()
	defer db.snapMu.Unlock()
	for id, snap := range db.snapPending {
		delete(db.snapPending, id)
		return id, snap, true
	}
	return "", nil, false
}

// snapshotLoop stores the snapshots scheduled by appends and loads, one at
// a time, until Close.
func (db *DB) snapshotLoop() {
	defer db.wg.Done()
	for {
		select {
		case <-db.snapWake:
		case <-db.ctx.Done():
			return
		}
		for db.ctx.Err() == nil {
			id, snap, ok := db.nextSnapshot()
			if !ok {
				break
			}
			if err := db.takeSnapshot(id, snap); err != nil && db.ctx.Err() == nil {
				db.log.Error("storage: snapshot failed", "doc", id, "err", err)
			}
		}
	}
}

func (db *DB) takeSnapshot(id string, snap *Snapshot) error {
	if snap == nil {
		var doc *Doc
		err := db.view(db.ctx, func(tx *bbolt.Tx) error {
			var err error
			doc, _, err = loadDoc(db.ctx, tx, id)
			return err
		})
		if err != nil {
			return err
		}
		snap = &Snapshot{Rev: doc.Rev, Text: doc.Text}
	}
	err := db.SaveSnapshot(db.ctx, id, *snap)
	if errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
