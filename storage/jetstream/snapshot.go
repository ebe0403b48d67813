package jetstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Snapshots live in an object store rather than a KV bucket because a
// document may hold 2,000,000 code points (collab's MaxDocChars), up to
// 8 MB, and a KV value must fit one message (1 MB by default). The object's
// metadata repeats the revision, so SaveSnapshot can skip a stale write
// without reading the text.
const metaRev = "rev"

// readSnapshot returns the document's latest snapshot, or nil if it has
// none. A snapshot replaced while being read fails its digest check or
// loses its chunks; that is retried.
func (s *Store) readSnapshot(ctx context.Context, id string) (*wireSnapshot, error) {
	return s.readSnapshotObject(ctx, id, id)
}

// readSnapshotObject reads the snapshot object name of document id (its
// latest, or a milestone), or nil if there is none.
func (s *Store) readSnapshotObject(ctx context.Context, id, name string) (*wireSnapshot, error) {
	var lastErr error
	for try := range snapshotTries {
		b, err := s.getSnapshot(ctx, name, try == snapshotTries-1)
		if errors.Is(err, natsjs.ErrObjectNotFound) {
			return nil, nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("doc %s snapshot: %w", id, err)
			}
			lastErr = err
			continue
		}
		var w wireSnapshot
		if err := json.Unmarshal(b, &w); err != nil || w.V != 1 || w.Rev < 1 || w.Seq < 1 {
			return nil, fmt.Errorf("doc %s snapshot: undecodable (%v): %w", id, err, ErrCorrupt)
		}
		return &w, nil
	}
	return nil, fmt.Errorf("doc %s snapshot: %w", id, lastErr)
}

// An object's chunks are read through an ordered consumer, which on a
// loaded server or on replicas now and then delivers nothing until its
// heartbeat gives up. Each try but the last is given snapshotTryWait, so
// that a stalled read is asked again rather than spending the caller's
// whole deadline.
const (
	snapshotTries   = 3
	snapshotTryWait = 5 * time.Second
)

// getSnapshot reads the snapshot object once; last says whether it may
// take all of ctx.
func (s *Store) getSnapshot(ctx context.Context, id string, last bool) ([]byte, error) {
	if !last {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, snapshotTryWait)
		defer cancel()
	}
	return s.snaps.GetBytes(ctx, id)
}

// SaveSnapshot stores text as document id's text at revision rev, with the
// client table there, so that later loads replay only what follows. It
// checks the text's length against the op that made rev. A snapshot not
// newer than the stored one is skipped. Two nodes saving at once (an old
// and a new owner) may leave the older of their two: harmless, it only
// lengthens the next replay.
func (s *Store) SaveSnapshot(ctx context.Context, id string, rev int64, text string) error {
	if err := checkID(id); err != nil {
		return err
	}
	runes := utf8.RuneCountInString(text)
	if info, err := s.snaps.GetInfo(ctx, id); err == nil {
		if have, _ := strconv.ParseInt(info.Metadata[metaRev], 10, 64); have >= rev {
			return nil
		}
	} else if !errors.Is(err, natsjs.ErrObjectNotFound) {
		return fmt.Errorf("doc %s snapshot: %w", id, err)
	}

	w := wireSnapshot{V: 1, Rev: rev, Runes: runes, Text: text}
	// The common case: the owner snapshots the revision it just appended.
	s.mu.Lock()
	if st, ok := s.states[id]; ok && st.rev == rev && st.clients != nil && st.runes >= 0 {
		if st.runes != runes {
			s.mu.Unlock()
			return fmt.Errorf("doc %s snapshot rev %d: %d code points, op made %d: %w", id, rev, runes, st.runes, ErrConflict)
		}
		w.Seq = st.seq
		w.Clients = wireClients(st.clients)
	}
	s.mu.Unlock()
	if w.Seq == 0 {
		if err := s.snapshotState(ctx, id, &w); err != nil {
			return err
		}
	}

	data, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("doc %s snapshot: %w", id, err)
	}
	if err := s.putSnapshot(ctx, id, rev, data); err != nil {
		return fmt.Errorf("doc %s snapshot rev %d: %w", id, rev, err)
	}
	// The first snapshot in each milestone interval is also kept under
	// its own name, for LoadAt.
	if m := s.milestoneName(id, rev); m != "" {
		if _, err := s.snaps.GetInfo(ctx, m); errors.Is(err, natsjs.ErrObjectNotFound) {
			if err := s.putSnapshot(ctx, m, rev, data); err != nil {
				return fmt.Errorf("doc %s milestone rev %d: %w", id, rev, err)
			}
		}
	}
	return nil
}

// putSnapshot stores a snapshot's encoding as object name.
func (s *Store) putSnapshot(ctx context.Context, name string, rev int64, data []byte) error {
	_, err := s.snaps.Put(ctx, natsjs.ObjectMeta{
		Name:     name,
		Metadata: map[string]string{metaRev: strconv.FormatInt(rev, 10)},
		// Chunks must fit a message; the default (128 KB) does not on a
		// server with a smaller max_payload.
		Opts: &natsjs.ObjectMetaOptions{ChunkSize: uint32(min(128<<10, s.nc.MaxPayload()-1024))},
	}, bytes.NewReader(data))
	return err
}

// Milestones: the history index of cluster mode. Besides its latest
// snapshot, a document keeps the first snapshot taken in each interval
// of milestoneEvery revisions, as object "<id>.m<k>" for the interval k,
// so that LoadAt of an old revision replays at most about one interval
// plus one snapshot interval of records, where it replayed from the
// document's start. The interval is fixed, not derived from a node's
// -snapshot-every, so that every node finds every node's milestones.
// Package storage keeps milestones the same way in its file.
const defaultMilestoneEvery = 4000

// milestoneEvery is the store's milestone interval in revisions (tests
// shorten it).
func (s *Store) milestoneEvery() int64 { return s.milestones }

// milestoneName names the milestone of document id for revision rev's
// interval, or "" when there are none.
func (s *Store) milestoneName(id string, rev int64) string {
	every := s.milestoneEvery()
	if every <= 0 || rev < every {
		return ""
	}
	return fmt.Sprintf("%s.m%d", id, rev/every)
}

// milestone returns the newest milestone of document id at or before
// rev, or nil: it looks in rev's interval and the two before it (a
// milestone is missing where no snapshot was taken in its interval).
func (s *Store) milestone(ctx context.Context, id string, rev int64) (*wireSnapshot, error) {
	every := s.milestoneEvery()
	if every <= 0 {
		return nil, nil
	}
	for k := rev / every; k >= max(rev/every-2, 1); k-- {
		w, err := s.readSnapshotObject(ctx, id, fmt.Sprintf("%s.m%d", id, k))
		if err != nil {
			return nil, err
		}
		if w != nil && w.Rev <= rev {
			return w, nil
		}
	}
	return nil, nil
}

// deleteMilestones deletes document id's milestones up to revision rev.
func (s *Store) deleteMilestones(ctx context.Context, id string, rev int64) error {
	every := s.milestoneEvery()
	if every <= 0 {
		return nil
	}
	var errs []error
	for k := int64(1); k <= rev/every; k++ {
		if err := s.snaps.Delete(ctx, fmt.Sprintf("%s.m%d", id, k)); err != nil && !errors.Is(err, natsjs.ErrObjectNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// snapshotState fills in w.Seq and w.Clients for w.Rev from the stored
// snapshot and the records after it, checking w.Runes against the op that
// made w.Rev.
func (s *Store) snapshotState(ctx context.Context, id string, w *wireSnapshot) error {
	e, err := s.last(ctx, id)
	if err != nil {
		return err
	}
	if e.rev < w.Rev {
		return fmt.Errorf("doc %s snapshot rev %d: stream ends at rev %d: %w", id, w.Rev, e.rev, ErrConflict)
	}
	base, err := s.readSnapshot(ctx, id)
	if err != nil {
		return err
	}
	clients := map[string]ClientState{}
	from, rev := uint64(1), int64(0)
	if base != nil && base.Rev < w.Rev {
		for c, v := range base.Clients {
			clients[c] = ClientState{Seq: v[0], Rev: v[1]}
		}
		from, rev = base.Seq, base.Rev
	}
	done := errors.New("done")
	err = s.scan(ctx, id, from, e.seq, func(seq uint64, recs []Record) error {
		for _, r := range recs {
			if r.Rev <= rev {
				continue
			}
			if r.Rev != rev+1 {
				return fmt.Errorf("doc %s: rev %d follows %d: %w", id, r.Rev, rev, ErrCorrupt)
			}
			noteClient(clients, r)
			rev = r.Rev
			if rev == w.Rev {
				if n := r.Op.TargetLen(); n != w.Runes {
					return fmt.Errorf("doc %s snapshot rev %d: %d code points, op made %d: %w", id, w.Rev, w.Runes, n, ErrConflict)
				}
				w.Seq = seq
				return done
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, done) {
		return err
	}
	if w.Seq == 0 {
		return fmt.Errorf("doc %s snapshot rev %d: not found in the stream: %w", id, w.Rev, ErrCorrupt)
	}
	w.Clients = wireClients(clients)
	return nil
}

func wireClients(m map[string]ClientState) map[string][2]int64 {
	out := make(map[string][2]int64, len(m))
	for c, v := range m {
		out[c] = [2]int64{v.Seq, v.Rev}
	}
	return out
}

// scheduleSnapshot asks the snapshotter to snapshot document id soon. It
// never blocks, and may be called with s.mu held.
func (s *Store) scheduleSnapshot(id string) {
	s.snapMu.Lock()
	s.snapPending[id] = struct{}{}
	s.snapMu.Unlock()
	select {
	case s.snapWake <- struct{}{}:
	default:
	}
}

// snapshotLoop rebuilds and stores the scheduled documents' snapshots off
// every caller's path: appends never wait for a snapshot.
func (s *Store) snapshotLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.snapWake:
		}
		s.snapMu.Lock()
		ids := make([]string, 0, len(s.snapPending))
		for id := range s.snapPending {
			ids = append(ids, id)
		}
		clear(s.snapPending)
		s.snapMu.Unlock()
		for _, id := range ids {
			if s.ctx.Err() != nil {
				return
			}
			s.snapshotNow(id)
		}
	}
}

func (s *Store) snapshotNow(id string) {
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	d, err := s.load(ctx, id, false)
	if err == nil {
		err = s.SaveSnapshot(ctx, id, d.Rev, d.Text)
	}
	if err == nil {
		err = s.indexActivity(ctx, id, d.Rev)
	}
	if err != nil && s.ctx.Err() == nil {
		s.log.Error("jetstream: background snapshot", "doc", id, "err", err)
	}
}
