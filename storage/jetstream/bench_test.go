package jetstream

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/collabd/collabd/ot"
)

// BenchmarkAppend measures acknowledged appends against a NATS server in
// this process: one goroutine per document, each appending single-op
// records in a loop as an owner's hub would, all through one connection
// (one node). It reports throughput and the latency of each Append, p50
// and p99. sync=always fsyncs every message before the PubAck (the
// durable single-server setting); sync=2m is NATS's default, for
// comparison only.
func BenchmarkAppend(b *testing.B) {
	b.Run("replicas=1", benchmarkAppendSingle)
	b.Run("replicas=3", benchmarkAppendReplicated)
}

func benchmarkAppendSingle(b *testing.B) {
	for _, c := range []struct {
		sync bool
		docs int
	}{{true, 1}, {true, 100}, {true, 1000}, {false, 1000}} {
		name := fmt.Sprintf("sync=always/docs=%d", c.docs)
		if !c.sync {
			name = fmt.Sprintf("sync=2m/docs=%d", c.docs)
		}
		b.Run(name, func(b *testing.B) {
			ns := &natsServer{t: b, dir: b.TempDir(), port: -1, tweak: func(o *server.Options) { o.SyncAlways = c.sync }}
			ns.start()
			b.Cleanup(ns.stop)
			appendFlatOut(b, ns.newStore(b, Options{}), c.docs)
		})
	}
}

// benchmarkAppendReplicated is the same against three servers in this
// process with three replicas, NATS's default sync: a PubAck then means a
// quorum of two has the message. All three servers share this machine's
// two cores, so this measures the protocol's cost, not a real cluster's.
func benchmarkAppendReplicated(b *testing.B) {
	for _, docs := range []int{1, 100} {
		b.Run(fmt.Sprintf("docs=%d", docs), func(b *testing.B) {
			servers := startCluster(b)
			nc, err := Connect(servers[0].ClientURL())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(nc.Close)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var s *Store
			for s, err = New(ctx, nc, Options{Replicas: 3}); err != nil; s, err = New(ctx, nc, Options{Replicas: 3}) {
				if ctx.Err() != nil {
					b.Fatal(err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			b.Cleanup(s.Close)
			appendFlatOut(b, s, docs)
		})
	}
}

// appendFlatOut creates docs documents, then appends b.N single-op
// records over them, one goroutine per document, and reports ops/s and
// each Append's p50 and p99.
func appendFlatOut(b *testing.B, s *Store, docs int) {
	ctx := context.Background()
	ids := make([]string, docs)
	for i := range ids {
		m := newMeta()
		if err := s.Create(ctx, m, nil); err != nil {
			b.Fatal(err)
		}
		ids[i] = m.ID
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		lat  = make([]time.Duration, 0, b.N)
		errs = make(chan error, docs)
	)
	b.ResetTimer()
	start := time.Now()
	for _, id := range ids {
		wg.Go(func() {
			mine := make([]time.Duration, 0, b.N/docs+1)
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
			for rev := int64(1); next.Add(1) <= int64(b.N); rev++ {
				rec := Record{Rev: rev, Op: ot.Op{}.Retain(int(rev - 1)).Insert("x"), Client: "c", Seq: rev, Time: time.Now()}
				t0 := time.Now()
				if err := s.Append(ctx, id, []Record{rec}); err != nil {
					errs <- err
					return
				}
				mine = append(mine, time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkAppendPaced measures Append latency under a steady offered load
// below saturation, which is what a server with many documents sees: 1,000
// documents, each appending one record every 500 ms (2,000 records/s in
// all), starting at random offsets. Run it with -benchtime Nx; N records
// take N/2000 seconds.
func BenchmarkAppendPaced(b *testing.B) {
	const docs, every = 1000, 500 * time.Millisecond
	ns := startNATS(b)
	s := ns.newStore(b, Options{})
	ctx := context.Background()
	ids := make([]string, docs)
	for i := range ids {
		m := newMeta()
		if err := s.Create(ctx, m, nil); err != nil {
			b.Fatal(err)
		}
		ids[i] = m.ID
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		lat  = make([]time.Duration, 0, b.N)
		errs = make(chan error, docs)
	)
	b.ResetTimer()
	start := time.Now()
	for i, id := range ids {
		wg.Go(func() {
			var mine []time.Duration
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
			tick := time.NewTicker(every)
			defer tick.Stop()
			time.Sleep(every * time.Duration(i) / docs) // spread the starts
			for rev := int64(1); next.Add(1) <= int64(b.N); rev++ {
				rec := Record{Rev: rev, Op: ot.Op{}.Retain(int(rev - 1)).Insert("x"), Client: "c", Seq: rev, Time: time.Now()}
				t0 := time.Now()
				if err := s.Append(ctx, id, []Record{rec}); err != nil {
					errs <- err
					return
				}
				mine = append(mine, time.Since(t0))
				<-tick.C
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkLoad measures what a new owner pays to take a document over:
// Load with a snapshot and a tail of 1,000 single-op records.
func BenchmarkLoad(b *testing.B) {
	ns := startNATS(b)
	s := ns.newStore(b, Options{SnapshotEvery: -1})
	ctx := context.Background()
	m := newMeta()
	if err := s.Create(ctx, m, nil); err != nil {
		b.Fatal(err)
	}
	var ty typist
	for range 1000 {
		if err := s.Append(ctx, m.ID, ty.group(1, "c", ty.rev+1)); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.SaveSnapshot(ctx, m.ID, ty.rev, ty.text); err != nil {
		b.Fatal(err)
	}
	for range 1000 {
		if err := s.Append(ctx, m.ID, ty.group(1, "c", ty.rev+1)); err != nil {
			b.Fatal(err)
		}
	}
	fresh := ns.newStore(b, Options{SnapshotEvery: -1})
	b.ResetTimer()
	for range b.N {
		d, err := fresh.Load(ctx, m.ID)
		if err != nil {
			b.Fatal(err)
		}
		if d.Tail != 1000 {
			b.Fatalf("tail %d", d.Tail)
		}
	}
}
