package storage

import (
	"time"

	"go.etcd.io/bbolt"

	"github.com/collabd/collabd/ot"
)

// Milestones are where a document's history can be entered: the text at
// revision R is the newest milestone at or before R plus the ops after it.
// Their places follow from the op log alone: starting after the previous
// milestone (or revision 0), the next is at the first revision where the
// ops since reach SnapshotEvery in number or SnapshotBytes in stored
// bytes, whichever comes first. The byte limit is raised to the length of
// the previous milestone's text when that is longer, so that a large
// document edited with large ops does not store a full copy of itself for
// every few ops: a milestone then never costs more disk than the ops it
// saves replaying, and a replay never reads more bytes of ops than it
// reads of snapshot.
//
// Appends only wake the snapshotter (appendWrite.committed); it finds the
// places itself, from the newest milestone on, and so also fills in what
// a crash or a file of format 1 left without milestones.
const (
	// maxMilestoneBatch and maxMilestoneText bound the milestones built in
	// one read transaction, and so what the snapshotter holds in memory,
	// when it catches up on a long history.
	maxMilestoneBatch = 16
	maxMilestoneText  = 16 << 20
)

type milestone struct {
	snap    Snapshot
	created time.Time
}

// buildMilestones stores every milestone of document id that is due up to
// its latest revision and not stored yet.
func (db *DB) buildMilestones(id string) error {
	for {
		batch, more, err := db.dueMilestones(id)
		if err != nil {
			return err
		}
		// Stored outside the read transaction: a commit waiting on a
		// remap while this goroutine holds the file open for reading
		// would wait forever.
		for _, ms := range batch {
			if err := db.saveSnapshot(db.ctx, id, ms.snap, snapMilestone, ms.created); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
	}
}

// dueMilestones computes, in one read transaction, the next milestones of
// document id after its newest one; more reports that the batch was cut
// short.
func (db *DB) dueMilestones(id string) (batch []milestone, more bool, err error) {
	err = db.view(db.ctx, func(tx *bbolt.Tx) error {
		m, keys, err := readMeta(tx, id)
		if err != nil {
			return err
		}
		base, runes, err := snapshotBefore(tx, keys, m, keys.snap(-1), true)
		if err != nil {
			return err
		}
		if m.Rev-base.Rev < db.snapshotEvery && m.LogBytes < db.snapshotBytes {
			// Too few ops since, by count and, for a certainty, by
			// bytes: nothing to replay.
			return nil
		}
		var (
			ops, size int64
			limit     = max(db.snapshotBytes, int64(len(base.Text)))
			held      int
		)
		_, err = replay(db.ctx, tx, keys, id, base, runes, m.Rev, func(rec Record, n int, text *ot.Doc) bool {
			ops++
			size += int64(n)
			if ops < db.snapshotEvery && size < limit {
				return true
			}
			s := text.String()
			batch = append(batch, milestone{snap: Snapshot{Rev: rec.Rev, Text: s}, created: m.Created})
			held += len(s)
			ops, size, limit = 0, 0, max(db.snapshotBytes, int64(len(s)))
			more = len(batch) >= maxMilestoneBatch || held >= maxMilestoneText
			return !more
		})
		return err
	})
	// A batch cut short at the head has nothing more after it.
	return batch, more, err
}
