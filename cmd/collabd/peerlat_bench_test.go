package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/collabd/collabd/collab/client"
	"github.com/collabd/collabd/ot"
)

// TestPeerLatency measures keystroke to peer: how long after a probe
// editor makes an op another editor of the document has it, while N more
// editors type at R keystrokes a second each; once with the server's
// defaults and once with -broadcast-budget -1 (every commit sent at once),
// alternately. It asserts nothing about time; run it by hand:
//
//	COLLABD_PEERLAT=100x2 go test -count=1 -v -run TestPeerLatency ./cmd/collabd
func TestPeerLatency(t *testing.T) {
	spec := os.Getenv("COLLABD_PEERLAT")
	if spec == "" {
		t.Skip("set COLLABD_PEERLAT=EDITORSxRATE to measure")
	}
	var editors int
	var rate float64
	if _, err := fmt.Sscanf(spec, "%dx%g", &editors, &rate); err != nil {
		t.Fatalf("COLLABD_PEERLAT=%q: %v", spec, err)
	}
	secs := 15
	if n, err := strconv.Atoi(os.Getenv("COLLABD_PEERLAT_SECONDS")); err == nil && n > 0 {
		secs = n
	}
	bin := clusterBin(t, false)
	for round := range 2 {
		for _, extra := range [][]string{nil, {"-broadcast-budget", "-1"}} {
			p50, p99, n := peerLatency(t, bin, extra, editors, rate, time.Duration(secs)*time.Second)
			t.Logf("round %d, %d editors × %g/s, flags %v: keystroke to peer p50 %v, p99 %v (%d samples)",
				round, editors, rate, extra, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), n)
		}
	}
}

func peerLatency(t *testing.T, bin string, extra []string, editors int, rate float64, d time.Duration) (p50, p99 time.Duration, n int) {
	dir := t.TempDir()
	node := &clusterNode{tb: t, bin: bin, name: "peerlat", dir: dir,
		args: append(append([]string{"-data", filepath.Join(dir, "collab.db"), "-log-level", "warn"}, nodeFlags...), extra...)}
	node.start()
	defer node.stop()
	id, _ := createClusterDoc(t, node, "")
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()
	dial := func(name string) *client.Client {
		c, err := client.Dial(ctx, node.wsURL(id), client.Options{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	probe, watcher := dial("probe"), dial("watcher")
	defer probe.Close()
	defer watcher.Close()
	author := probe.Author()
	var mu sync.Mutex
	var arrived []time.Time
	watcher.OnChange(func(ch client.Change) {
		if ch.Author == author {
			mu.Lock()
			arrived = append(arrived, time.Now())
			mu.Unlock()
		}
	})
	typeCtx, stop := context.WithTimeout(ctx, d)
	defer stop()
	var wg sync.WaitGroup
	for i := range editors {
		c := dial(fmt.Sprintf("e%d", i))
		defer c.Close()
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
			defer tick.Stop()
			time.Sleep(time.Duration(rng.Int64N(int64(time.Second / time.Duration(max(rate, 1))))))
			for {
				select {
				case <-typeCtx.Done():
					return
				case <-tick.C:
				}
				c.EditLenFunc(func(n int) ot.Op { p := rng.IntN(n + 1); return ot.Op{}.Retain(p).Insert("x").Retain(n - p) })
			}
		})
	}
	// The probe types one keystroke at a time, each once the last is
	// acknowledged, at the editors' rate.
	var sent []time.Time
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for typeCtx.Err() == nil {
		select {
		case <-typeCtx.Done():
		case <-tick.C:
			sent = append(sent, time.Now())
			if err := probe.EditLenFunc(func(n int) ot.Op { return ot.Op{}.Insert("p").Retain(n) }); err != nil {
				t.Fatal(err)
			}
			if err := probe.WaitSynced(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	if err := watcher.Wait(ctx, func(v client.View) bool { return v.Rev() >= probe.Rev() }); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var lat []time.Duration
	for i := range min(len(sent), len(arrived)) {
		lat = append(lat, arrived[i].Sub(sent[i]))
	}
	if len(lat) == 0 {
		t.Fatal("no samples")
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100], len(lat)
}
