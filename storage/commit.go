package storage

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"
	"unicode/utf8"

	"go.etcd.io/bbolt"

	"github.com/collabd/collabd/ot"
)

const (
	// maxGroup and maxGroupBytes bound one commit, so that a flood of
	// large snapshots cannot make a single transaction unboundedly large.
	maxGroup      = 1024
	maxGroupBytes = 16 << 20
)

// A write is one caller's part of a group commit. The committer calls check
// and, only if it succeeds, apply, both inside the group's transaction and
// after every earlier write of the group, so a write sees the effects of
// those before it. check must not modify the transaction: its error fails
// this write alone. An error from apply aborts the whole group.
type write interface {
	check(tx *bbolt.Tx) error
	apply(tx *bbolt.Tx) error
	size() int
}

// committedHook is implemented by writes that act after their group is
// durable.
type committedHook interface {
	committed(db *DB)
}

type request struct {
	ctx  context.Context
	w    write
	done chan error // capacity 1, so the committer never blocks replying
}

// submit queues w for the committer and waits until it is durable or has
// failed. If ctx ends first, submit returns ctx.Err() and the write may
// still be committed.
func (db *DB) submit(ctx context.Context, w write) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if db.ctx.Err() != nil {
		return ErrClosed
	}
	r := &request{ctx: ctx, w: w, done: make(chan error, 1)}
	select {
	case db.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-db.ctx.Done():
		return ErrClosed
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-db.committerDone:
		// The committer may have replied just before exiting.
		select {
		case err := <-r.done:
			return err
		default:
			return ErrClosed
		}
	}
}

// commitLoop is the only goroutine that opens write transactions.
func (db *DB) commitLoop() {
	defer db.wg.Done()
	defer close(db.committerDone)
	group := make([]*request, 0, maxGroup)
	var next *request // taken from the queue but did not fit the last group
	for {
		first := next
		next = nil
		if first == nil {
			select {
			case first = <-db.reqs:
			case <-db.ctx.Done():
				return
			}
		} else if db.ctx.Err() != nil {
			return
		}
		group = append(group[:0], first)
		size := first.w.size()
	drain:
		for len(group) < maxGroup {
			select {
			case r := <-db.reqs:
				if size+r.w.size() > maxGroupBytes {
					next = r
					break drain
				}
				group = append(group, r)
				size += r.w.size()
			default:
				break drain
			}
		}
		db.commit(group)
		clear(group) // let the finished requests be collected
	}
}

// commit runs group in one transaction and replies to each request.
func (db *DB) commit(group []*request) {
	errs := make([]error, len(group))
	start := time.Now()
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		for i, r := range group {
			// Whoever sent it has stopped waiting; skip rather than write
			// something nobody was told about. Still "may be written" for
			// the caller, who cannot tell.
			if err := r.ctx.Err(); err != nil {
				errs[i] = err
				continue
			}
			if err := r.w.check(tx); err != nil {
				errs[i] = err
				continue
			}
			if err := r.w.apply(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if f := db.onCommit.Load(); f != nil {
		(*f)(time.Since(start))
	}
	db.commits.Add(1)
	db.committed.Add(int64(len(group)))
	if err != nil {
		db.log.Error("storage: commit failed", "requests", len(group), "err", err)
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("commit: %w", err)
			}
		}
	}
	for i, r := range group {
		if errs[i] == nil {
			if h, ok := r.w.(committedHook); ok {
				h.committed(db)
			}
		}
		r.done <- errs[i]
	}
}

// checkKey rejects ids bbolt could not store as keys, before they reach the
// committer where they would fail a whole group.
func checkKey(what, k string) error {
	if k == "" {
		return fmt.Errorf("empty %s", what)
	}
	if len(k) > bbolt.MaxKeySize {
		return fmt.Errorf("%s of %d bytes is too long", what, len(k))
	}
	return nil
}

// putRecords writes encoded records of a document, the client entries they
// imply and their activity, and advances m past them. The records' times
// must already be clamped (clampTimes).
func putRecords(docs *bbolt.Bucket, keys docKeys, m *Meta, recs []encodedRecord) error {
	if err := putOps(docs, keys, m.Rev, recs); err != nil {
		return err
	}
	for _, r := range recs {
		if r.rec.Client != "" {
			if err := docs.Put(keys.client(r.rec.Client), r.clientValue); err != nil {
				return err
			}
		}
	}
	if err := addActivity(docs, keys, m.Updated, recs); err != nil {
		return err
	}
	for _, r := range recs {
		m.Rev, m.Len, m.Updated = r.rec.Rev, r.chars, r.rec.Time
		m.LogBytes += int64(r.size)
	}
	return nil
}

// clampTimes raises each record's time to at least the one before it,
// starting from after (the document's latest op), re-encoding those it
// changes. It runs in the committer, the only place that knows the
// document's latest time for sure.
func clampTimes(recs []encodedRecord, after time.Time) {
	for i := range recs {
		r := &recs[i]
		if r.rec.Time.Before(after) {
			r.rec.Time = after
			r.value = appendRecord(nil, &r.rec)
		}
		after = r.rec.Time
	}
}

// RecordBytes is what rec adds to its document's Meta.LogBytes when it is
// appended: the encoded record, its client id again (the dedupe entry)
// and 32 bytes for the keys and the rest. It is computed without
// encoding, so that a server can check a budget before every op.
func RecordBytes(rec Record) int64 {
	n := 1 + uvarintLen(uint64(rec.Rev)) + varintLen(unixNano(rec.Time)) + varintLen(rec.Seq) +
		uvarintLen(uint64(len(rec.Client))) + len(rec.Client) + uvarintLen(uint64(len(rec.Op))) + 4
	for _, c := range rec.Op {
		n += varintLen(int64(c.N))
		if c.N == 0 {
			n += uvarintLen(uint64(len(c.S))) + len(c.S)
		}
	}
	return int64(n + len(rec.Client) + 32)
}

// uvarintLen is len(binary.AppendUvarint(nil, v)).
func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// varintLen is len(binary.AppendVarint(nil, v)).
func varintLen(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return uvarintLen(u)
}

type encodedRecord struct {
	rec         Record
	base, chars int64 // the op's base and target lengths in code points
	ins, del    int64 // code points inserted and deleted
	value       []byte
	clientValue []byte
	size        int // what it adds to the file, for Meta.LogBytes
}

// opStats returns the code points op inserts and deletes.
func opStats(op ot.Op) (ins, del int64) {
	for _, c := range op {
		switch {
		case c.N < 0:
			del -= int64(c.N)
		case c.N == 0:
			ins += int64(utf8.RuneCountInString(c.S))
		}
	}
	return ins, del
}

// encodeRecords validates and encodes recs outside the committer, leaving
// it only the checks that need the transaction. A bad op is rejected here,
// before its request is queued, so it never reaches a group at all.
func encodeRecords(recs []Record) ([]encodedRecord, int, error) {
	out := make([]encodedRecord, len(recs))
	size := 0
	now := time.Now()
	for i := range recs {
		rec := recs[i]
		if err := rec.Op.Validate(); err != nil {
			return nil, 0, fmt.Errorf("record rev %d: %w: %w", rec.Rev, ErrBadRecord, err)
		}
		if rec.Client != "" {
			if err := checkKey("client id", rec.Client); err != nil {
				return nil, 0, err
			}
		}
		if rec.Time.IsZero() {
			rec.Time = now
		}
		e := &out[i]
		e.rec = rec
		e.base, e.chars = int64(rec.Op.BaseLen()), int64(rec.Op.TargetLen())
		e.ins, e.del = opStats(rec.Op)
		e.value = appendRecord(nil, &rec)
		if rec.Client != "" {
			e.clientValue = appendClient(nil, rec.Seq, rec.Rev)
		}
		e.size = len(e.value) + len(rec.Client) + 32
		size += e.size
	}
	return out, size, nil
}

// Create stores a new document. meta.Rev is ignored: the document starts at
// revision 0, or at 1 when first is given, whose Rev must be 1 and whose op
// must be valid and apply to the empty text (else ErrBadRecord). meta.Len
// and meta.LogBytes are ignored too. A zero meta.Created is set to now.
// Create fails with ErrExists if the edit id or the view id is already
// taken, and indexes the view id.
func (db *DB) Create(ctx context.Context, meta Meta, first *Record) error {
	if err := checkKey("doc id", meta.ID); err != nil {
		return fmt.Errorf("create doc: %w", err)
	}
	if err := checkKey("view id", meta.ViewID); err != nil {
		return fmt.Errorf("create doc %s: %w", meta.ID, err)
	}
	w := &createWrite{id: meta.ID, viewID: meta.ViewID, keys: keysOf(meta.ID)}
	meta.Rev, meta.Len, meta.LogBytes, meta.Updated = 0, 0, 0, time.Time{}
	if meta.Created.IsZero() {
		meta.Created = time.Now()
	}
	if first != nil {
		if first.Rev != 1 {
			return fmt.Errorf("create doc %s: first record has rev %d, want 1: %w", meta.ID, first.Rev, ErrConflict)
		}
		recs, _, err := encodeRecords([]Record{*first})
		if err != nil {
			return fmt.Errorf("create doc %s: %w", meta.ID, err)
		}
		if recs[0].base != 0 {
			return fmt.Errorf("create doc %s: first op covers %d code points of the empty text: %w", meta.ID, recs[0].base, ErrBadRecord)
		}
		w.first = recs
	}
	w.meta = meta
	if err := db.submit(ctx, w); err != nil {
		return fmt.Errorf("create doc %s: %w", meta.ID, err)
	}
	return nil
}

type createWrite struct {
	id, viewID string
	keys       docKeys
	meta       Meta
	first      []encodedRecord
}

func (w *createWrite) size() int {
	n := 64 + 2*len(w.id) + 2*len(w.viewID)
	for _, r := range w.first {
		n += len(r.value) + len(r.clientValue)
	}
	return n
}

func (w *createWrite) check(tx *bbolt.Tx) error {
	if tx.Bucket(bucketDocs).Get(w.keys.meta()) != nil {
		return fmt.Errorf("edit id: %w", ErrExists)
	}
	if tx.Bucket(bucketViews).Get([]byte(w.viewID)) != nil {
		return fmt.Errorf("view id: %w", ErrExists)
	}
	return nil
}

func (w *createWrite) apply(tx *bbolt.Tx) error {
	docs := tx.Bucket(bucketDocs)
	m := w.meta
	if err := putRecords(docs, w.keys, &m, w.first); err != nil {
		return err
	}
	if err := docs.Put(w.keys.meta(), appendMeta(nil, &m)); err != nil {
		return err
	}
	return tx.Bucket(bucketViews).Put([]byte(w.viewID), []byte(w.id))
}

// Append adds recs to the log of document id and returns once they are
// durable. recs[0].Rev must be the document's revision plus one and the rest
// must follow without gaps; otherwise Append fails with ErrConflict and
// writes nothing. Every op must be valid (ot.Op.Validate) and cover the
// text the one before it made (its base length equal to the document's
// Len); otherwise Append fails with ErrBadRecord, also writing nothing.
// The document's revision, its Len and LogBytes, and each record's client
// dedupe entry are updated in the same transaction. A zero Time is set to now.
//
// If ctx ends while Append waits, it returns ctx.Err(), and the records may
// or may not have been written: the caller must re-read the revision before
// retrying.
func (db *DB) Append(ctx context.Context, id string, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Rev != recs[0].Rev+int64(i) {
			return fmt.Errorf("append doc %s: rev %d follows rev %d: %w", id, recs[i].Rev, recs[i-1].Rev, ErrConflict)
		}
	}
	enc, size, err := encodeRecords(recs)
	if err != nil {
		return fmt.Errorf("append doc %s: %w", id, err)
	}
	w := &appendWrite{id: id, recs: enc, first: recs[0].Rev, bytes: size}
	if err := db.submit(ctx, w); err != nil {
		return fmt.Errorf("append doc %s rev %d: %w", id, recs[0].Rev, err)
	}
	return nil
}

type appendWrite struct {
	id    string
	recs  []encodedRecord
	first int64
	bytes int

	meta Meta // read by check for apply, then advanced by it
	keys docKeys
	// before is the meta as check read it, for committed.
	before Meta
}

func (w *appendWrite) size() int { return w.bytes }

func (w *appendWrite) check(tx *bbolt.Tx) error {
	m, keys, err := readMeta(tx, w.id)
	if err != nil {
		return err
	}
	if w.first != m.Rev+1 {
		return fmt.Errorf("doc is at rev %d: %w", m.Rev, ErrConflict)
	}
	// Each op must cover the text the one before it made; stored
	// otherwise, it would make every later Load fail.
	if m.Len >= 0 {
		n := m.Len
		for _, r := range w.recs {
			if r.base != n {
				return fmt.Errorf("op %d covers %d code points, the text has %d: %w", r.rec.Rev, r.base, n, ErrBadRecord)
			}
			n = r.chars
		}
	}
	clampTimes(w.recs, m.Updated)
	w.meta, w.before, w.keys = m, m, keys
	return nil
}

func (w *appendWrite) apply(tx *bbolt.Tx) error {
	docs := tx.Bucket(bucketDocs)
	if err := putRecords(docs, w.keys, &w.meta, w.recs); err != nil {
		return err
	}
	return docs.Put(w.keys.meta(), appendMeta(nil, &w.meta))
}

// committed asks for milestones when the append crossed a multiple of
// SnapshotEvery ops or SnapshotBytes bytes of ops. The snapshotter then
// finds the milestones' exact places itself (milestone.go); this only has
// to wake it often enough, and cheaply.
func (w *appendWrite) committed(db *DB) {
	n, b := db.snapshotEvery, db.snapshotBytes
	if n > 0 && ((w.before.Rev/n != w.meta.Rev/n) || w.before.LogBytes/b != w.meta.LogBytes/b) {
		db.scheduleMilestones(w.id)
	}
}

// Ping proves the DB can still write: it commits a tiny durable write
// through the committer, as a health check.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.submit(ctx, pingWrite{}); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

type pingWrite struct{}

func (pingWrite) size() int                { return 16 }
func (pingWrite) check(tx *bbolt.Tx) error { return nil }
func (pingWrite) apply(tx *bbolt.Tx) error {
	return tx.Bucket(bucketSys).Put(keyPing, binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano())))
}
