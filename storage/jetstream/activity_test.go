package jetstream

import (
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/collabd/collabd/storage"
)

// TestActivityIndex: with the activity index written (as the snapshotter
// writes it), Activity answers the same buckets as package storage's
// per-minute index on the same ops, for every unit, start and page size,
// from the node that wrote the index and from another; and it reads the
// records after the index only, where without it it reads every one.
func TestActivityIndex(t *testing.T) {
	ns := startNATS(t)
	ctx := testCtx(t)
	s := ns.newStore(t, Options{SnapshotEvery: -1})
	s.actChunk = 40
	other := ns.newStore(t, Options{SnapshotEvery: -1})
	other.actChunk = 40
	db, err := storage.Open(filepath.Join(t.TempDir(), "single.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	// 300 ops: bursts within a minute, pauses of minutes and hours, a
	// day's end, and the clock stepping back 90 s (a failover to a node
	// whose clock is behind) in the middle of a chunk.
	const n = 300
	at := time.Date(2026, 3, 1, 22, 58, 30, 0, time.UTC)
	times := make([]time.Time, n+1)
	for rev := int64(1); rev <= n; rev++ {
		switch {
		case rev == 97:
			at = at.Add(-90 * time.Second)
		case rev%50 == 0:
			at = at.Add(2*time.Hour + 7*time.Minute)
		case rev%7 == 0:
			at = at.Add(3 * time.Minute)
		default:
			at = at.Add(4 * time.Second)
		}
		times[rev] = at
	}
	h := newHistory(11)
	if err := db.Create(ctx, storage.Meta{ID: h.meta.ID, ViewID: h.meta.ViewID, Created: h.meta.Created}, nil); err != nil {
		t.Fatal(err)
	}
	h.build(t, s, n, func(rev int64) time.Time { return times[rev] }, nil)
	for _, r := range h.recs {
		// One at a time: package storage's index does not depend on how
		// ops were grouped.
		if err := db.Append(ctx, h.meta.ID, []storage.Record{{Rev: r.Rev, Op: r.Op, Client: r.Client, Seq: r.Seq, Time: r.Time}}); err != nil {
			t.Fatal(err)
		}
	}

	// Without the index: every record after `after` is read.
	before := s.scanned.Load()
	if _, err := s.Activity(ctx, h.meta.ID, 0, 24*time.Hour, 0); err != nil {
		t.Fatal(err)
	}
	if got := s.scanned.Load() - before; got != n {
		t.Errorf("Activity without the index read %d records, want %d", got, n)
	}

	s.snapshotNow(h.meta.ID) // the snapshotter's work: snapshot, then index
	for k := int64(1); k <= n/40; k++ {
		if s.readChunk(ctx, h.meta.ID, k) == nil {
			t.Fatalf("chunk %d not written", k)
		}
	}
	if s.readChunk(ctx, h.meta.ID, n/40+1) != nil {
		t.Fatalf("chunk %d written before it is complete", n/40+1)
	}

	type bucket struct {
		Start             time.Time
		First, Last, N    int64
		Inserted, Deleted int64
		Clients           []string
	}
	for _, unit := range []time.Duration{time.Minute, 5 * time.Minute, time.Hour, 24 * time.Hour} {
		for _, after := range []int64{0, 1, 39, 40, 41, 77, 96, 97, 150, 279, 280, 281, 299} {
			for _, limit := range []int{0, 1, 3, 7} {
				name := fmt.Sprintf("%v after %d limit %d", unit, after, limit)
				wb, err := db.Activity(ctx, h.meta.ID, after, unit, limit)
				if err != nil {
					t.Fatalf("%s: storage: %v", name, err)
				}
				want := []bucket{}
				for _, b := range wb {
					want = append(want, bucket{b.Start, b.FirstRev, b.LastRev, b.Count, b.Inserted, b.Deleted, b.Clients})
				}
				for node, st := range map[string]*Store{"writer": s, "other": other} {
					scanned := st.scanned.Load()
					gb, err := st.Activity(ctx, h.meta.ID, after, unit, limit)
					if err != nil {
						t.Fatalf("%s on %s: %v", name, node, err)
					}
					got := []bucket{}
					for _, b := range gb {
						got = append(got, bucket{b.Start, b.FirstRev, b.LastRev, b.Count, b.Inserted, b.Deleted, b.Clients})
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("%s on %s: got %+v, want (package storage) %+v", name, node, got, want)
					}
					// At most the records after the last chunk (20),
					// and those of the minute a page starts in.
					if read := st.scanned.Load() - scanned; read > 2*40 {
						t.Errorf("%s on %s: read %d records, want at most %d", name, node, read, 2*40)
					}
				}
			}
		}
	}

	if err := s.Delete(ctx, h.meta.ID); err != nil {
		t.Fatal(err)
	}
	if s.readChunk(ctx, h.meta.ID, 1) != nil {
		t.Error("chunk 1 still there after Delete")
	}
}
