package jetstream

// Stall figures on three embedded NATS servers with three replicas
// (docs/scaling.md, "Reads need no consumer"). They assert nothing about
// time; run them by hand:
//
//	COLLABD_R3_READS=300 go test -count=1 -v -run 'TestR3Stalls' ./storage/jetstream
//
// To compare with code before direct gets, copy this file into that
// tree's storage/jetstream (it needs only startCluster, createDoc and
// typist).

import (
	"context"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// r3Doc starts a three-server cluster, writes a document of 150
// revisions in 50 messages and returns a reader's store and its id.
func r3Doc(t *testing.T, ctx context.Context) (*Store, string, int64) {
	t.Helper()
	servers := startCluster(t)
	var urls []string
	for _, srv := range servers {
		urls = append(urls, srv.ClientURL())
	}
	newStore := func(node string) *Store {
		nc, err := Connect(strings.Join(urls, ","))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		var s *Store
		for {
			if s, err = New(ctx, nc, Options{Replicas: 3, NodeID: node, SnapshotEvery: -1}); err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Cleanup(s.Close)
		return s
	}
	w := newStore("w")
	m := createDoc(t, w)
	var ty typist
	for range 50 {
		recs := ty.group(3, "c", ty.rev+1)
		for w.Append(ctx, m.ID, recs) != nil {
			// Refused or unknown on R3: see whether it landed.
			if d, _ := w.Load(ctx, m.ID); d != nil && d.Rev == ty.rev {
				break
			}
		}
	}
	return newStore("r"), m.ID, ty.rev
}

// r3Figures logs the distribution of latencies.
func r3Figures(t *testing.T, what string, start time.Time, lat []time.Duration) {
	total := time.Since(start)
	stalls := 0
	for _, d := range lat {
		if d > 2*time.Second {
			stalls++
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("%s: %d in %v; p50 %v, p99 %v, max %v; %d over 2 s", what, len(lat), total.Round(time.Millisecond),
		lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond), lat[len(lat)-1].Round(time.Millisecond), stalls)
}

func TestR3Stalls(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("COLLABD_R3_READS"))
	if n <= 0 {
		t.Skip("set COLLABD_R3_READS to measure")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	r, id, last := r3Doc(t, ctx)

	// Pages of ops, as a catch-up or /ops reads them.
	var lat []time.Duration
	start := time.Now()
	for i := range n {
		t0 := time.Now()
		page, err := r.Ops(ctx, id, int64(i%100), 1000, 0)
		lat = append(lat, time.Since(t0))
		if err != nil || int64(len(page)) != last-int64(i%100) {
			t.Fatalf("read %d: %d records, %v", i, len(page), err)
		}
	}
	r3Figures(t, "Ops reads", start, lat)
	st, err := r.js.Stream(ctx, streamOps)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("consumers left on the stream: %d", info.State.Consumers)

	// Follows, as a node starts following a document: time to the first
	// record.
	lat = lat[:0]
	start = time.Now()
	for i := range n {
		t0 := time.Now()
		f, err := r.Follow(ctx, id, int64(i%100), 4)
		if err != nil {
			t.Fatal(err)
		}
		rec, ok := <-f.C()
		lat = append(lat, time.Since(t0))
		f.Close()
		if !ok || rec.Rev != int64(i%100)+1 {
			t.Fatalf("follow %d: rev %d (%v)", i, rec.Rev, f.Err())
		}
	}
	r3Figures(t, "Follows, first record", start, lat)
}
