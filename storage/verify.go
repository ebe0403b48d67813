package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"time"
	"unicode/utf8"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/collabd/collabd/ot"
)

// maxProblems bounds the problems a Report keeps: a file damaged in one
// page can yield thousands, and the first ones say what the operator
// needs to know.
const maxProblems = 100

// Report is what Verify found. Problems each wrap ErrCorrupt and name the
// document (and revision, where there is one) they concern.
type Report struct {
	Docs      int   // documents checked
	Ops       int64 // op records read and replayed
	Snapshots int   // snapshot entries compared with their op log
	Views     int   // view index entries checked
	// Problems are the first maxProblems problems found, in the order of
	// the file; Dropped counts the ones left out.
	Problems []error
	Dropped  int
}

// OK reports whether no problem was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) add(err error) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, err)
	} else {
		r.Dropped++
	}
}

func (r *Report) addf(format string, args ...any) {
	r.add(fmt.Errorf(format+": %w", append(args, ErrCorrupt)...))
}

// VerifyFile checks the storage file at path without writing to it:
// bbolt's own consistency check (every page reachable exactly once, the
// freelist consistent, keys in order), and then collabd's: every
// document's meta, op log and client entries decode and agree, every op
// applies to the text before it, every stored snapshot equals the text its
// op log replays to at the snapshot's revision, and the view index and the
// documents point at each other. It reads the whole file.
//
// The file is opened read-only, which still waits for a writer's lock: a
// running server holds it, and VerifyFile fails with ErrLocked after
// lockTimeout (zero means 5s, as for Open). A missing file is an error
// wrapping fs.ErrNotExist, not an empty file created on the way. Problems
// in the data go into the Report; the error is for a check that could not
// run or finish (the lock, ctx, an I/O error), or, wrapping ErrCorrupt,
// for a file bbolt cannot open at all.
func VerifyFile(ctx context.Context, path string, lockTimeout time.Duration) (*Report, error) {
	if lockTimeout <= 0 {
		lockTimeout = defaultLockTimeout
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("verify %s: not a regular file", path)
	}
	bolt, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: lockTimeout})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("verify %s: waited %v: %w", path, lockTimeout, ErrLocked)
	case errors.Is(err, os.ErrPermission):
		return nil, fmt.Errorf("verify %s: %w", path, err)
	case err != nil:
		// bbolt refuses a file whose both meta pages are damaged, or that
		// is not a bbolt file at all.
		return nil, fmt.Errorf("verify %s: %v: %w", path, err, ErrCorrupt)
	}
	defer bolt.Close()
	var rep *Report
	err = bolt.View(func(tx *bbolt.Tx) error {
		var err error
		rep, err = verifyTx(ctx, tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", path, err)
	}
	return rep, nil
}

// Verify runs VerifyFile's checks on an open DB, in one read transaction,
// while it keeps serving. It reads the whole file.
func (db *DB) Verify(ctx context.Context) (*Report, error) {
	var rep *Report
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		rep, err = verifyTx(ctx, tx)
		return err
	})
	return rep, err
}

// verifyTx runs every check in tx. A damaged page can make bbolt panic
// while a cursor walks it; the structural check has then already reported
// the damage, so the panic is recorded as one more problem rather than
// taking the caller down.
func verifyTx(ctx context.Context, tx *bbolt.Tx) (rep *Report, err error) {
	rep = &Report{}
	for err := range tx.Check() {
		rep.addf("bbolt: %v", err)
	}
	structural := !rep.OK()
	// A damaged page can also point a read outside the mapped file; turn
	// that fault into a panic this goroutine recovers from.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			rep.addf("reading the file failed (%v)", p)
			err = nil
		}
	}()
	if structural {
		// Walking damaged pages would mostly report the same damage again.
		return rep, nil
	}

	docs, snaps, views, sys := tx.Bucket(bucketDocs), tx.Bucket(bucketSnaps), tx.Bucket(bucketViews), tx.Bucket(bucketSys)
	if docs == nil || snaps == nil || views == nil || sys == nil {
		rep.addf("a top-level bucket is missing (is this a collabd data file?)")
		return rep, nil
	}
	v := sys.Get(keyFormat)
	if len(v) != 1 || v[0] < 1 || v[0] > formatVersion {
		rep.addf("file format %v, want [%d] (or [1] or [2], which Open upgrades)", v, formatVersion)
		return rep, nil
	}
	// Format 1 has no activity index to check.
	indexed := v[0] >= 2

	snapRevs, err := collectSnapshots(ctx, snaps, rep)
	if err != nil {
		return nil, err
	}
	viewOf := make(map[string]string) // edit id -> its meta's view id

	// The docs bucket holds each document's keys contiguously (keys.go), so
	// one cursor walk visits documents one after the other.
	c := docs.Cursor()
	k, v := c.First()
	for k != nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		id, ok := splitDocKey(k)
		if !ok {
			rep.addf("docs key %x: not a document key", k)
			k, v = c.Next()
			continue
		}
		var m Meta
		var hasMeta bool
		k, v, m, hasMeta = verifyDoc(ctx, tx, c, k, v, id, snapRevs[id], indexed, rep)
		delete(snapRevs, id)
		if hasMeta {
			viewOf[id] = m.ViewID
			rep.Docs++
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	for id, revs := range snapRevs {
		rep.addf("doc %s: %d snapshots of a document that does not exist", id, len(revs))
	}

	// The view index and the documents must point at each other.
	err = views.ForEach(func(k, v []byte) error {
		rep.Views++
		view, id := string(k), string(v)
		switch want, ok := viewOf[id]; {
		case !ok:
			rep.addf("view %s: points at doc %q, which does not exist", view, id)
		case want != view:
			rep.addf("view %s: points at doc %s, whose view id is %s", view, id, want)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for id, view := range viewOf {
		if got := string(views.Get([]byte(view))); got != id {
			rep.addf("doc %s: its view id %s is not indexed to it (index says %q)", id, view, got)
		}
	}
	return rep, nil
}

// snapEntry is one snapshot key of a document and its revision.
type snapEntry struct {
	rev int64
	key []byte
}

// collectSnapshots walks the whole snaps bucket and returns, for each
// document, its snapshot entries in order (a revision may have a latest
// snapshot and a milestone). It checks only the keys here; values are
// decoded with decodeSnapshot when the op log reaches their revision. Any
// number of snapshots per document is fine.
func collectSnapshots(ctx context.Context, snaps *bbolt.Bucket, rep *Report) (map[string][]snapEntry, error) {
	revs := make(map[string][]snapEntry)
	c := snaps.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		id, ok := splitDocKey(k)
		if !ok {
			rep.addf("snaps key %x: not a snapshot key", k)
			continue
		}
		rev, ok := keysOf(id).snapRev(k)
		if !ok {
			rep.addf("doc %s: snaps key %x: not a snapshot key", id, k)
			continue
		}
		revs[id] = append(revs[id], snapEntry{rev, bytes.Clone(k)})
	}
	return revs, nil
}

// splitDocKey returns the document id a docs or snaps key starts with.
func splitDocKey(k []byte) (string, bool) {
	n, w := binary.Uvarint(k)
	if w <= 0 || n == 0 || uint64(len(k)-w) <= n {
		return "", false
	}
	return string(k[w : w+int(n)]), true
}

// clientEntry is a client's last seq and the revision it became.
type clientEntry struct{ seq, rev int64 }

// verifyDoc checks the document whose first key and value c is on (k, v):
// its meta, its op log replayed from the empty text, its client entries,
// and each of its snapshots (at snapRevs) against the replayed text. It
// leaves c on the first key after the document and returns that key and
// its value.
//
// In a file of format 2 (indexed), it also checks the activity index
// against the op log: the entries Append would have written for it.
func verifyDoc(ctx context.Context, tx *bbolt.Tx, c *bbolt.Cursor, k, v []byte, id string, snapRevs []snapEntry, indexed bool, rep *Report) (nextK, nextV []byte, m Meta, hasMeta bool) {
	keys := keysOf(id)
	snaps := tx.Bucket(bucketSnaps)
	text := ot.NewDoc("")
	var (
		want     int64 = 1 // the next op's revision
		replayOK       = true
		entries        = make(map[string]clientEntry)
		lastOp         = make(map[string]clientEntry) // each client's last op in the log
		// The activity the op log implies, by minute, with the times
		// Append files ops by (never decreasing).
		activityWant = make(map[int64]*activity)
		clamp        time.Time
	)
	// compareSnapshots checks every snapshot at or below rev, once the
	// replayed text is at rev.
	compareSnapshots := func(rev int64) {
		for len(snapRevs) > 0 && snapRevs[0].rev <= rev {
			srev, skey := snapRevs[0].rev, snapRevs[0].key
			snapRevs = snapRevs[1:]
			rep.Snapshots++
			if !replayOK || srev < rev {
				// The op log is broken before this revision: there is
				// nothing trustworthy to compare with.
				rep.addf("doc %s snapshot rev %d: not compared, the op log before it is damaged", id, srev)
				continue
			}
			snap, runes, err := decodeSnapshot(snaps.Get(skey))
			switch {
			case err != nil:
				rep.addf("doc %s snapshot rev %d: %v", id, srev, err)
			case snap.Rev != srev:
				rep.addf("doc %s snapshot rev %d: value claims rev %d", id, srev, snap.Rev)
			case runes != utf8.RuneCountInString(snap.Text):
				rep.addf("doc %s snapshot rev %d: records %d code points, holds %d", id, srev, runes, utf8.RuneCountInString(snap.Text))
			case snap.Text != text.String():
				rep.addf("doc %s snapshot rev %d: text differs from what its op log replays to (%d code points stored, %d replayed)",
					id, srev, runes, text.Len())
			}
		}
	}
	compareSnapshots(0)

	// replay applies the record v, filed under revision rev, to the text,
	// and reports whether the op log is still sound.
	replay := func(rev int64, v []byte) bool {
		if rev != want {
			rep.addf("doc %s rev %d: missing op (next stored is rev %d)", id, want, rev)
			return false
		}
		rec, err := decodeRecord(v)
		if err == nil && rec.Rev != rev {
			err = fmt.Errorf("record claims rev %d", rec.Rev)
		}
		if err == nil {
			err = text.Apply(rec.Op)
		}
		if err != nil {
			rep.addf("doc %s rev %d: %v", id, rev, err)
			return false
		}
		if rec.Client != "" {
			lastOp[rec.Client] = clientEntry{rec.Seq, rev}
		}
		if rec.Time.After(clamp) {
			clamp = rec.Time
		}
		minute := minuteOf(clamp)
		a := activityWant[minute]
		if a == nil {
			a = &activity{}
			activityWant[minute] = a
		}
		ins, del := opStats(rec.Op)
		a.add(rev, ins, del, rec.Client)
		want++
		compareSnapshots(rev)
		return true
	}

	for ; k != nil && bytes.HasPrefix(k, keys) && len(k) > len(keys); k, v = c.Next() {
		switch kind, rest := k[len(keys)], k[len(keys)+1:]; {
		case kind == kindOp && len(rest) == 8:
			// A chunk's records (chunk.go) are of consecutive revisions.
			rev := int64(binary.BigEndian.Uint64(rest))
			rec, more := v, []byte(nil)
			if len(v) > 0 && v[0] == opChunk {
				rec, more = nextRecord(v[1:])
			}
			for ; ; rev++ {
				rep.Ops++
				if rep.Ops%4096 == 0 && ctx.Err() != nil {
					return nil, nil, m, false // the caller sees ctx.Err()
				}
				if replayOK {
					replayOK = replay(rev, rec)
				}
				if len(more) == 0 {
					break
				}
				rec, more = nextRecord(more)
			}
		case kind == kindMeta && len(rest) == 0:
			var err error
			if m, err = decodeMeta(id, v); err != nil {
				rep.addf("doc %s meta: %v", id, err)
			} else {
				hasMeta = true
			}
		case kind == kindClient && len(rest) > 0:
			seq, rev, err := decodeClient(v)
			if err != nil {
				rep.addf("doc %s client %s: %v", id, rest, err)
				continue
			}
			entries[string(rest)] = clientEntry{seq, rev}
		case kind == kindActivity && len(rest) == 8 && indexed:
			minute := int64(binary.BigEndian.Uint64(rest))
			got, err := decodeActivity(v)
			if err != nil {
				rep.addf("doc %s activity of minute %d: %v", id, minute, err)
				continue
			}
			if !replayOK {
				continue
			}
			w := activityWant[minute]
			delete(activityWant, minute)
			if w == nil || got.first != w.first || got.last != w.last || got.ins != w.ins || got.del != w.del ||
				!slices.Equal(got.clients, w.clients) {
				rep.addf("doc %s activity of minute %d: records revs %d..%d (+%d -%d), the op log has %+v", id, minute,
					got.first, got.last, got.ins, got.del, w)
			}
		default:
			rep.addf("doc %s: key %x of unknown kind", id, k)
		}
	}
	nextK, nextV = k, v

	if !hasMeta {
		rep.addf("doc %s: no meta (op log without a document)", id)
		for _, se := range snapRevs {
			rep.Snapshots++
			rep.addf("doc %s snapshot rev %d: of a document without meta", id, se.rev)
		}
		return nextK, nextV, m, false
	}
	if replayOK && want-1 != m.Rev {
		if want-1 < m.Rev {
			rep.addf("doc %s rev %d: missing op (meta says rev %d)", id, want, m.Rev)
		} else {
			rep.addf("doc %s: ops stored up to rev %d, meta says rev %d", id, want-1, m.Rev)
		}
		replayOK = false
	}
	if replayOK && m.Len >= 0 && int64(text.Len()) != m.Len {
		rep.addf("doc %s: meta records %d code points, the op log replays to %d", id, m.Len, text.Len())
	}
	compareSnapshots(m.Rev)
	for _, se := range snapRevs {
		rep.Snapshots++
		rep.addf("doc %s snapshot rev %d: ahead of the document (rev %d)", id, se.rev, m.Rev)
	}
	if indexed && replayOK {
		for minute, w := range activityWant {
			rep.addf("doc %s activity of minute %d: missing (the op log has revs %d..%d there)", id, minute, w.first, w.last)
		}
	}
	if replayOK {
		// Each client's entry is what deduplicates its resends, so it must
		// be its last op in the log exactly.
		for client, e := range entries {
			if op, ok := lastOp[client]; !ok || op != e {
				rep.addf("doc %s client %s: entry says seq %d at rev %d, its last op is seq %d at rev %d", id, client, e.seq, e.rev, op.seq, op.rev)
			}
		}
		for client, op := range lastOp {
			if _, ok := entries[client]; !ok {
				rep.addf("doc %s client %s: has ops (last seq %d at rev %d) but no entry", id, client, op.seq, op.rev)
			}
		}
	}
	return nextK, nextV, m, true
}
