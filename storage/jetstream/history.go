package jetstream

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// The history half of collab.Store: old revisions, what each op did,
// activity by period, deleting a document; plus the stream's usage and a
// cluster-wide secret. Package storage answers the same questions from
// milestone snapshots and a per-minute activity index; here from the op
// stream, milestone snapshots (snapshot.go) and an activity index in
// chunks (activity.go). What each costs is said at each method.
//
// Record times are the owner's clock when it committed the op. Package
// storage raises each record's time to at least the one before it when it
// stores it; Append here does not (an owner does not know the previous
// owner's last time without reading it), so after a failover to a node
// whose clock is behind, times may step back. RevAt and Activity apply the
// same raise as they read, and RevAt's binary search assumes times do not
// step back by more than one message; where they do, it answers a
// revision near the step rather than the exact one.

// ErrNoRevision is returned by LoadAt for a revision a document does not
// have: below 0 or past its latest.
var ErrNoRevision = errors.New("jetstream: no such revision")

// ErrInvalid is returned for an argument no document could satisfy: a
// period for Activity that is not a whole number of minutes dividing a
// day, or a SharedKey name or size out of range.
var ErrInvalid = errors.New("jetstream: invalid argument")

// historyLimit caps a page of Revisions or Activity, as package storage
// does.
const historyLimit = 1000

// maxActivityClients bounds the clients one Bucket names, as package
// storage does; further ones still count in its totals.
const maxActivityClients = 16

// errStop ends a scan early; never returned to a caller.
var errStop = errors.New("stop")

// Revision describes one committed op without its content, as
// collab.Revision.
type Revision struct {
	Rev               int64
	Time              time.Time
	Client            string
	Inserted, Deleted int64 // code points
}

// Bucket summarises the revisions FirstRev..LastRev, all committed in the
// period starting at Start, as collab.Bucket.
type Bucket struct {
	Start             time.Time // the period's start, UTC
	FirstRev, LastRev int64
	Count             int64
	Inserted, Deleted int64 // code points
	Clients           []string
}

// LoadAt returns document id at revision rev: its meta, the text, and the
// client table there; Seq is the stream sequence of the message holding
// rev (0 for rev 0) and Tail the records replayed. A rev below 0 or past
// the latest is ErrNoRevision. It does not touch the position Append is
// fenced on.
//
// Cost: a rev at or after the latest snapshot replays rev - snapshot
// records; an older one replays from the milestone before it (see
// milestoneEvery: about 4 snapshot intervals at most), or from the start
// of a document too short to have one, read with batched direct gets.
func (s *Store) LoadAt(ctx context.Context, id string, rev int64) (*StoredDoc, error) {
	meta, err := s.meta(ctx, id)
	if err != nil {
		return nil, err
	}
	if rev < 0 {
		return nil, fmt.Errorf("doc %s rev %d: %w", id, rev, ErrNoRevision)
	}
	// The snapshot before the end, as in load.
	snap, err := s.readSnapshot(ctx, id)
	if err != nil {
		return nil, err
	}
	e, err := s.last(ctx, id)
	if err != nil {
		return nil, err
	}
	if rev > e.rev {
		return nil, fmt.Errorf("doc %s rev %d of %d: %w", id, rev, e.rev, ErrNoRevision)
	}
	if snap != nil && snap.Rev > rev {
		// After rev: from the milestone before rev, or the start.
		if snap, err = s.milestone(ctx, id, rev); err != nil {
			return nil, err
		}
	}
	d, text, err := s.replay(ctx, id, meta, snap, e, rev)
	if err != nil {
		return nil, err
	}
	d.Text = text.String()
	return d, nil
}

// records calls fn with each record of document id with Rev > after, in
// order, until fn returns errStop (which records does not return) or
// another error (which it returns as is). ErrNotFound for an unknown
// document. It seeks the first message by binary search (see seek) and
// reads on through one consumer.
func (s *Store) records(ctx context.Context, id string, after int64, fn func(seq uint64, r Record) error) error {
	if _, err := s.meta(ctx, id); err != nil {
		return err
	}
	e, err := s.last(ctx, id)
	if err != nil {
		return err
	}
	after = max(after, 0)
	if e.seq == 0 || after >= e.rev {
		return nil
	}
	from, err := s.seek(ctx, id, after, e)
	if err != nil {
		return err
	}
	want := after + 1
	err = s.scan(ctx, id, from, e.seq, func(seq uint64, recs []Record) error {
		for _, r := range recs {
			if r.Rev < want {
				continue
			}
			if r.Rev != want {
				return fmt.Errorf("doc %s: rev %d where %d belongs: %w", id, r.Rev, want, ErrCorrupt)
			}
			want++
			if err := fn(seq, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	return nil
}

// describe returns what r did.
func describe(r Record) Revision {
	rev := Revision{Rev: r.Rev, Time: r.Time, Client: r.Client}
	for _, c := range r.Op {
		switch {
		case c.N < 0:
			rev.Deleted -= int64(c.N)
		case c.N == 0:
			rev.Inserted += int64(utf8.RuneCountInString(c.S))
		}
	}
	return rev
}

// Revisions describes the ops of document id with Rev > after, oldest
// first, at most limit of them (limit <= 0 or over 1000 means 1000).
// Times are as the owner stamped them. Cost: a binary search for the first
// (about log2 of the stream's length reads, none when it lies in the last
// message) and one consumer reading the page's messages.
func (s *Store) Revisions(ctx context.Context, id string, after int64, limit int) ([]Revision, error) {
	if limit <= 0 || limit > historyLimit {
		limit = historyLimit
	}
	out := []Revision{} // not nil: callers encode it as a JSON array
	err := s.records(ctx, id, after, func(_ uint64, r Record) error {
		out = append(out, describe(r))
		if len(out) == limit {
			return errStop
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// minuteOf returns t's minute since the Unix epoch; times before it (a
// record stored without a time) count as minute 0, as in package storage.
func minuteOf(t time.Time) int64 {
	sec := t.Unix()
	if sec < 0 {
		return 0
	}
	return sec / 60
}

// msgAt returns the document's first message at or after stream sequence
// seq (which must not be past its last) and its records.
func (s *Store) msgAt(ctx context.Context, id string, seq uint64) (uint64, []Record, error) {
	m, err := s.nextMsg(ctx, seq, opsSubject(id))
	if err != nil {
		return 0, nil, fmt.Errorf("doc %s: message at seq %d: %w", id, seq, err)
	}
	recs, err := decodeGroup(m.Header, m.Data)
	if err != nil {
		return 0, nil, fmt.Errorf("doc %s seq %d: %v: %w", id, m.Sequence, err, ErrCorrupt)
	}
	return m.Sequence, recs, nil
}

// RevAt returns the latest revision of document id committed at or before
// t: 0 if t is before its first op (or it has none), its latest if t is at
// or after its last op.
//
// Cost: one read of the last message, then a binary search over the
// stream's sequences with "the document's next message at or after n",
// comparing t with each message's first record time: about log2(stream
// length) reads, each decoding one message. Messages of a subject are in
// commit order, so their times are too, up to the clock caveat in the file
// comment.
func (s *Store) RevAt(ctx context.Context, id string, t time.Time) (int64, error) {
	if _, err := s.meta(ctx, id); err != nil {
		return 0, err
	}
	e, err := s.last(ctx, id)
	if err != nil || e.seq == 0 {
		return 0, err
	}
	_, recs, err := s.msgAt(ctx, id, e.seq)
	if err != nil {
		return 0, err
	}
	if !latest(recs).After(t) {
		return e.rev, nil
	}
	// Find the last message whose first record is at or before t: every
	// message before it is too, every one after it is not.
	var best []Record
	if !recs[0].Time.After(t) {
		best = recs
	} else {
		lo, hi := uint64(1), e.seq-1
		for lo <= hi {
			mid := lo + (hi-lo)/2
			seq, mrecs, err := s.msgAt(ctx, id, mid)
			if err != nil {
				return 0, err
			}
			if seq >= e.seq || mrecs[0].Time.After(t) {
				// Nothing of the subject in [mid, seq) is at or before t.
				if mid == 1 {
					break
				}
				hi = mid - 1
				continue
			}
			best = mrecs
			lo = seq + 1
		}
	}
	if best == nil {
		return 0, nil
	}
	// Within the message, walk its records with times raised to at least
	// the one before, as package storage stores them.
	rev := best[0].Rev - 1
	clamp := best[0].Time
	for _, r := range best {
		if r.Time.After(clamp) {
			clamp = r.Time
		}
		if clamp.After(t) {
			break
		}
		rev = r.Rev
	}
	return rev, nil
}

// latest returns the latest time among recs.
func latest(recs []Record) time.Time {
	var t time.Time
	for _, r := range recs {
		if r.Time.After(t) {
			t = r.Time
		}
	}
	return t
}

// Delete removes document id: its meta, its op subject (purged from the
// stream), its snapshot and its view id, and forgets what this node holds
// of it. An unknown id is ErrNotFound.
//
// The meta goes first: it is the commit point, as in Create, so the
// document stops existing at once for every node, and a failure after it
// leaves only data nobody can reach (reported, and logged). The caller
// must have stopped the document's writers first, as with package
// storage: an owner that appends after the purge leaves a message on the
// subject of a document that no longer exists.
func (s *Store) Delete(ctx context.Context, id string) error {
	meta, err := s.meta(ctx, id)
	if err != nil {
		return fmt.Errorf("delete doc %s: %w", id, err)
	}
	last, err := s.last(ctx, id)
	if err != nil {
		return fmt.Errorf("delete doc %s: %w", id, err)
	}
	s.Forget(id)
	s.snapMu.Lock()
	delete(s.snapPending, id)
	s.snapMu.Unlock()
	if err := s.docs.Delete(ctx, id); err != nil {
		return fmt.Errorf("delete doc %s: meta: %w", id, err)
	}
	var errs []error
	if err := s.ops.Purge(ctx, natsjs.WithPurgeSubject(opsSubject(id))); err != nil {
		errs = append(errs, fmt.Errorf("delete doc %s: purge ops: %w", id, err))
	}
	if err := s.snaps.Delete(ctx, id); err != nil && !errors.Is(err, natsjs.ErrObjectNotFound) {
		errs = append(errs, fmt.Errorf("delete doc %s: snapshot: %w", id, err))
	}
	if err := s.deleteMilestones(ctx, id, last.rev); err != nil {
		errs = append(errs, fmt.Errorf("delete doc %s: milestones: %w", id, err))
	}
	if err := s.views.Delete(ctx, meta.ViewID); err != nil {
		errs = append(errs, fmt.Errorf("delete doc %s: view %s: %w", id, meta.ViewID, err))
	}
	if err := s.deleteActivity(ctx, id, last.rev); err != nil {
		errs = append(errs, fmt.Errorf("delete doc %s: activity index: %w", id, err))
	}
	if err := s.deleteComments(ctx, id); err != nil {
		errs = append(errs, fmt.Errorf("delete doc %s: comments: %w", id, err))
	}
	if err := s.deleteAuthors(ctx, id); err != nil {
		errs = append(errs, fmt.Errorf("delete doc %s: authors: %w", id, err))
	}
	if err := errors.Join(errs...); err != nil {
		s.log.Error("jetstream: delete left data behind", "doc", id, "err", err)
		return err
	}
	return nil
}

// Usage returns the bytes the op stream and the buckets take, from their
// stream infos: six small API requests, one per stream, so a caller that
// asks every second costs the cluster little. The space left is the NATS
// servers' business (their JetStream max_file_store), not known here.
func (s *Store) Usage(ctx context.Context) (int64, error) {
	info, err := s.ops.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("jetstream: usage: %w", err)
	}
	total := int64(info.State.Bytes)
	for _, kv := range []natsjs.KeyValue{s.docs, s.views, s.owners, s.comments, s.authors, s.activity} {
		st, err := kv.Status(ctx)
		if err != nil {
			return 0, fmt.Errorf("jetstream: usage of %s: %w", kv.Bucket(), err)
		}
		total += int64(st.Bytes())
	}
	st, err := s.snaps.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("jetstream: usage of %s: %w", bucketSnaps, err)
	}
	return total + int64(st.Size()), nil
}

// maxSharedKey bounds SharedKey's size: a key, not a document.
const maxSharedKey = 4096

// SharedKey returns the cluster's secret called name: size random bytes,
// created by the first node that asks and read by every other, so that
// all nodes derive the same values from it (collab's author ids). It is
// kept in the documents bucket under "key.<name>", which no document id
// can be (ids have no dots). Whoever can read that bucket can read the
// key. A stored key of another size is ErrCorrupt.
func (s *Store) SharedKey(ctx context.Context, name string, size int) ([]byte, error) {
	if size < 1 || size > maxSharedKey {
		return nil, fmt.Errorf("jetstream: shared key %q of %d bytes: %w", name, size, ErrInvalid)
	}
	key, err := s.readKey(ctx, name, size)
	if err == nil || !errors.Is(err, natsjs.ErrKeyNotFound) {
		return key, wrapKeyErr(name, err)
	}
	fresh := make([]byte, size)
	if _, err := rand.Read(fresh); err != nil {
		return nil, wrapKeyErr(name, err)
	}
	return s.SeedSharedKey(ctx, name, fresh)
}

// SeedSharedKey stores key as the shared key called name unless one
// exists, and returns the one stored afterwards: key, or the existing one
// (of any size). collabd migrate seeds the author key with the single-node
// file's, so that author ids stay what they were.
func (s *Store) SeedSharedKey(ctx context.Context, name string, key []byte) ([]byte, error) {
	if !validID.MatchString(name) || len(key) < 1 || len(key) > maxSharedKey {
		return nil, fmt.Errorf("jetstream: shared key %q of %d bytes: %w", name, len(key), ErrInvalid)
	}
	// Create, so that of two nodes starting at once exactly one key wins
	// and both return it.
	if _, err := s.docs.Create(ctx, "key."+name, key); err == nil {
		return key, nil
	} else if !errors.Is(err, natsjs.ErrKeyExists) {
		return nil, wrapKeyErr(name, err)
	}
	stored, err := s.readKey(ctx, name, 0)
	return stored, wrapKeyErr(name, err)
}

// readKey reads the shared key called name, which must have size bytes
// unless size is 0.
func (s *Store) readKey(ctx context.Context, name string, size int) ([]byte, error) {
	if !validID.MatchString(name) {
		return nil, fmt.Errorf("jetstream: shared key %q: %w", name, ErrInvalid)
	}
	e, err := s.docs.Get(ctx, "key."+name)
	if err != nil {
		return nil, err
	}
	if size > 0 && len(e.Value()) != size {
		return nil, fmt.Errorf("jetstream: shared key %s: %d bytes stored, want %d: %w", name, len(e.Value()), size, ErrCorrupt)
	}
	return e.Value(), nil
}

func wrapKeyErr(name string, err error) error {
	if err == nil || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrInvalid) {
		return err
	}
	return fmt.Errorf("jetstream: shared key %s: %w", name, err)
}
