package main

// Benchmarks of cluster mode through the binary (issue 12): three collabd
// processes on one NATS server in the test process against one plain
// collabd. They are not part of the suite; run them with, for example,
//
//	go test -run '^$' -bench Cluster -benchtime 2000x ./cmd/collabd/
//	go test -run '^$' -bench ClusterOps -benchtime 100000x ./cmd/collabd/
//	go test -run '^$' -bench ClusterFailover -benchtime 5x ./cmd/collabd/
//
// Figures are custom metrics (b.ReportMetric); docs/scaling.md, "Measured
// through the binary", has the ones measured on this machine.

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/collabd/collabd/cmd/internal/proc"
	"github.com/collabd/collabd/collab/client"
	"github.com/collabd/collabd/ot"
)

// quantileMs returns the q quantile of ds in milliseconds.
func quantileMs(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)-1, int(q*float64(len(s))))
	return float64(s[i]) / float64(time.Millisecond)
}

// appendOne types one code point at the end of c's text.
func appendOne(c *client.Client, r rune) error {
	return c.EditFunc(func(text string) ot.Op {
		return ot.Op{}.Retain(len([]rune(text))).Insert(string(r))
	})
}

// benchOwnedDoc creates a document on n and makes n its owner in
// practice (an op acknowledged through n), returning the document and
// the node the owners bucket names.
func benchOwnedDoc(b *testing.B, ctx context.Context, c *testCluster, n *clusterNode) (id string, owner *clusterNode) {
	b.Helper()
	id, _ = createClusterDoc(b, n, "x")
	ed, err := client.Dial(ctx, n.wsURL(id), client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ed.Close()
	if err := appendOne(ed, 'y'); err != nil {
		b.Fatal(err)
	}
	if err := ed.WaitSynced(ctx); err != nil {
		b.Fatal(err)
	}
	name, err := c.nats.owner(ctx, id)
	if err != nil {
		b.Fatal(err)
	}
	if owner = c.byName(name); owner == nil {
		b.Fatalf("owners bucket names %q for a document with an acknowledged op", name)
	}
	return id, owner
}

// BenchmarkClusterAckLatency: one editor types one code point at a time
// and waits for its ack, on a single-node collabd, on the owner node of
// a three-node cluster, and on another node of it (whose ops are
// forwarded to the owner). Reports p50-ms and p99-ms of the ack latency.
func BenchmarkClusterAckLatency(b *testing.B) {
	bin := clusterBin(b, false)
	single := startSingle(b, bin)
	c := startCluster(b, clusterOpts{nodes: 3, quiet: true})
	ctx := context.Background()

	run := func(b *testing.B, n *clusterNode, id string) {
		ed, err := client.Dial(ctx, n.wsURL(id), client.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer ed.Close()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			t0 := time.Now()
			if err := appendOne(ed, rune('a'+i%26)); err != nil {
				b.Fatal(err)
			}
			if err := ed.WaitSynced(ctx); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		b.ReportMetric(quantileMs(lat, 0.5), "p50-ms")
		b.ReportMetric(quantileMs(lat, 0.99), "p99-ms")
	}
	b.Run("single", func(b *testing.B) {
		id, _ := createClusterDoc(b, single, "x")
		run(b, single, id)
	})
	b.Run("owner", func(b *testing.B) {
		id, owner := benchOwnedDoc(b, ctx, c, c.nodes[0])
		run(b, owner, id)
	})
	b.Run("forwarded", func(b *testing.B) {
		id, owner := benchOwnedDoc(b, ctx, c, c.nodes[0])
		other := c.nodes[1]
		if other == owner {
			other = c.nodes[2]
		}
		run(b, other, id)
	})
}

// opsBench is a set of documents with two editors each, dialed once and
// used by every run of one benchmark.
type opsBench struct {
	editors []*client.Client
	nodes   []*clusterNode
}

// newOpsBench creates docs documents over nodes (document i on node
// i%len), with one editor on its node and one on the next. The editors
// close at owner's cleanup: a sub-benchmark's own cleanups run after each
// of its runs, and the editors serve them all.
func newOpsBench(b *testing.B, owner testing.TB, ctx context.Context, nodes []*clusterNode, docs int) *opsBench {
	b.Helper()
	ob := &opsBench{editors: make([]*client.Client, 2*docs), nodes: nodes}
	var wg sync.WaitGroup
	errs := make(chan error, 2*docs)
	sem := make(chan struct{}, 32)
	for i := range docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			id, _, err := postDoc(nodes[i%len(nodes)], "x")
			if err != nil {
				errs <- err
				return
			}
			for k := range 2 {
				at := nodes[(i+k)%len(nodes)]
				ed, err := client.Dial(ctx, at.wsURL(id), client.Options{})
				if err != nil {
					errs <- err
					return
				}
				ob.editors[2*i+k] = ed
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	owner.Cleanup(func() {
		for _, ed := range ob.editors {
			if ed != nil {
				ed.Close()
			}
		}
	})
	return ob
}

// run has every editor type until b.N ops are acknowledged in all, each
// waiting for its ack before the next op (flat out), or, when every > 0,
// starting one op every `every` (paced; an editor that falls behind
// types the next at once). Reports ops/s and the ack latency quantiles.
func (ob *opsBench) run(b *testing.B, ctx context.Context, every time.Duration) {
	var left, reconnects atomic.Int64
	left.Store(int64(b.N))
	lats := make([][]time.Duration, len(ob.editors))
	errs := make(chan error, len(ob.editors))
	var wg sync.WaitGroup
	// The nodes' CPU (not NATS's, which runs in this process with the
	// editors).
	nodesCPU := func() time.Duration {
		var sum time.Duration
		for _, n := range ob.nodes {
			if d, err := proc.CPU(n.cmd.Process.Pid); err == nil {
				sum += d
			}
		}
		return sum
	}
	stopProfiles := profileNodes(b, ob.nodes)
	b.ResetTimer()
	cpu0, self0 := nodesCPU(), selfCPU()
	t0 := time.Now()
	for e, ed := range ob.editors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Paced editors start spread over one period.
			next := t0.Add(time.Duration(rand.Int64N(int64(max(every, 1)))))
			for left.Add(-1) >= 0 {
				if every > 0 {
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					}
					next = next.Add(every)
				}
				s := time.Now()
				if err := appendOne(ed, 'a'); err != nil {
					errs <- err
					return
				}
				// A node may close a document's editors (shutting_down)
				// when an append of it fails; they reconnect, as a
				// browser would, and the reconnects are counted.
				err := ed.WaitSynced(ctx)
				for err != nil && !fatalClientErr(err) && ctx.Err() == nil {
					reconnects.Add(1)
					if err = ed.Reconnect(ctx); err == nil {
						err = ed.WaitSynced(ctx)
					}
				}
				if err != nil {
					errs <- err
					return
				}
				lats[e] = append(lats[e], time.Since(s))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	cpu, self := nodesCPU()-cpu0, selfCPU()-self0
	b.StopTimer()
	stopProfiles()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	all := slices.Concat(lats...)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(quantileMs(all, 0.5), "p50-ms")
	b.ReportMetric(quantileMs(all, 0.99), "p99-ms")
	b.ReportMetric(float64(reconnects.Load()), "reconnects")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "nodes-cpu-µs/op")
	// Everything: the nodes plus this process, which holds the editors
	// (the same in every case) and, in the cluster cases, the NATS
	// servers.
	b.ReportMetric(float64((cpu+self).Microseconds())/float64(b.N), "total-cpu-µs/op")
}

// selfCPU returns the CPU time this process (the editors, and the NATS
// servers of a cluster) has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// profileNodes, when COLLABD_BENCH_NODE_PROFILE names a directory,
// records a CPU profile of each node over the next
// COLLABD_BENCH_PROFILE_SECONDS (default 5) into it, as <node>.cpu, and
// one of this process until the returned function is called, as
// self.cpu; the nodes must have been started with benchProfileFlags. The
// returned function waits for the profiles. (Not with -cpuprofile.)
func profileNodes(b *testing.B, nodes []*clusterNode) (wait func()) {
	dir := os.Getenv("COLLABD_BENCH_NODE_PROFILE")
	if dir == "" || b.N == 1 {
		return func() {}
	}
	secs := cmp.Or(os.Getenv("COLLABD_BENCH_PROFILE_SECONDS"), "5")
	var wg sync.WaitGroup
	// This process too (the editors and the NATS servers), over the run.
	if f, err := os.Create(filepath.Join(dir, "self.cpu")); err == nil {
		if err := pprof.StartCPUProfile(f); err == nil {
			defer func() {
				prev := wait
				wait = func() { pprof.StopCPUProfile(); f.Close(); prev() }
			}()
		}
	}
	for _, n := range nodes {
		addr := n.adminAddr()
		if addr == "" {
			b.Logf("%s: no admin listener in its log; not profiled", n.name)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get("http://" + addr + "/debug/pprof/profile?seconds=" + secs)
			if err != nil {
				b.Logf("profile %s: %v", n.name, err)
				return
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			if err := os.WriteFile(filepath.Join(dir, n.name+".cpu"), data, 0o644); err != nil {
				b.Logf("profile %s: %v", n.name, err)
			}
		}()
	}
	return wg.Wait
}

// benchProfileFlags are the flags that let profileNodes profile a node,
// when it is asked to.
func benchProfileFlags() []string {
	if os.Getenv("COLLABD_BENCH_NODE_PROFILE") == "" {
		return nil
	}
	return []string{"-admin-addr", "127.0.0.1:0", "-pprof"}
}

// adminAddr returns the admin listener's address the current process
// logged, or "".
func (n *clusterNode) adminAddr() string {
	if len(n.logs) == 0 {
		return ""
	}
	data, _ := os.ReadFile(n.logs[len(n.logs)-1])
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, "msg=\"admin listening\"") {
			continue
		}
		if _, rest, ok := strings.Cut(line, " addr="); ok {
			return strings.Fields(rest)[0]
		}
	}
	return ""
}

// BenchmarkClusterOps: 1,000 documents with two editors each, typing
// flat out (each waits for its ack, then types again) or at 2 keystrokes
// a second each (4,000 ops/s offered), on one collabd and spread over
// three nodes (each document's two editors on two different nodes). One
// op of b.N is one acknowledged op of any editor.
func BenchmarkClusterOps(b *testing.B) {
	bin := clusterBin(b, false)
	ctx := context.Background()
	const docs = 1000
	var single, cluster *opsBench
	var singleNode *clusterNode
	var c *testCluster
	// Set up on first use, for the parent: the sub-benchmarks' own
	// cleanups run after each of their runs.
	parent := b
	setupSingle := func(b *testing.B) {
		if single == nil {
			singleNode = startSingle(parent, bin, benchProfileFlags()...)
			single = newOpsBench(b, parent, ctx, []*clusterNode{singleNode}, docs)
		}
	}
	setupCluster := func(b *testing.B) {
		if cluster == nil {
			c = startCluster(parent, clusterOpts{nodes: 3, quiet: true, extra: benchProfileFlags()})
			cluster = newOpsBench(b, parent, ctx, c.nodes, docs)
		}
	}
	var clusterR3 *opsBench
	setupR3 := func(b *testing.B) {
		if clusterR3 == nil {
			r3 := startCluster(parent, clusterOpts{nodes: 3, quiet: true, r3: true, extra: benchProfileFlags()})
			clusterR3 = newOpsBench(b, parent, ctx, r3.nodes, docs)
		}
	}
	for _, pace := range []struct {
		name  string
		every time.Duration
	}{{"flat", 0}, {"2persec", 500 * time.Millisecond}} {
		b.Run(fmt.Sprintf("single/%s", pace.name), func(b *testing.B) {
			setupSingle(b)
			single.run(b, ctx, pace.every)
		})
		b.Run(fmt.Sprintf("3nodes/%s", pace.name), func(b *testing.B) {
			setupCluster(b)
			cluster.run(b, ctx, pace.every)
		})
		// Three NATS servers with three replicas, as an operator runs it.
		b.Run(fmt.Sprintf("3nodesR3/%s", pace.name), func(b *testing.B) {
			setupR3(b)
			clusterR3.run(b, ctx, pace.every)
		})
	}
}

// BenchmarkClusterFailover: per iteration, a new document is owned by
// node 0 with an editor there and one on node 1; node 0 is killed
// (SIGKILL). The first editor reconnects at once to node 1 or 2 and
// types; the second types on node 1 without reconnecting. Reports, from
// the kill to the first ack of an op made after it, the mean and worst
// for each: reconnect-ms (the failover time, target ≤ 3 s with
// the default -lease-ttl 2s) and forwarded-ms. Node 0 is started again
// for the next iteration.
func BenchmarkClusterFailover(b *testing.B) {
	c := startCluster(b, clusterOpts{nodes: 3, quiet: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(b.N+1)*time.Minute)
	defer cancel()
	var reconnect, forwarded []time.Duration
	for i := range b.N {
		b.StopTimer()
		if !c.nodes[0].running() {
			c.nodes[0].start()
		}
		id, owner := benchOwnedDoc(b, ctx, c, c.nodes[0])
		var others []*clusterNode
		for _, n := range c.nodes {
			if n != owner {
				others = append(others, n)
			}
		}
		e1, err := client.Dial(ctx, owner.wsURL(id), client.Options{})
		if err != nil {
			b.Fatal(err)
		}
		e2, err := client.Dial(ctx, others[0].wsURL(id), client.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range []*client.Client{e1, e2} {
			if err := appendOne(e, 'a'); err != nil {
				b.Fatal(err)
			}
			if err := e.WaitSynced(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		killed := time.Now()
		owner.kill()
		var wg sync.WaitGroup
		var d1, d2 time.Duration
		var err1, err2 error
		wg.Add(2)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				err1 = e1.ReconnectTo(ctx, others[k%len(others)].wsURL(id))
				if err1 == nil || ctx.Err() != nil {
					break
				}
			}
			if err1 == nil {
				if err1 = appendOne(e1, 'b'); err1 == nil {
					err1 = e1.WaitSynced(ctx)
				}
			}
			d1 = time.Since(killed)
		}()
		go func() {
			defer wg.Done()
			if err2 = appendOne(e2, 'c'); err2 != nil {
				return
			}
			// Should its node close it (it may, while no node owns the
			// document), it reconnects there.
			for {
				if err2 = e2.WaitSynced(ctx); err2 == nil || fatalClientErr(err2) || ctx.Err() != nil {
					break
				}
				e2.Reconnect(ctx)
			}
			d2 = time.Since(killed)
		}()
		wg.Wait()
		b.StopTimer()
		e1.Close()
		e2.Close()
		if err1 != nil || err2 != nil {
			b.Fatalf("iteration %d: reconnecting editor: %v; forwarding editor: %v", i, err1, err2)
		}
		reconnect = append(reconnect, d1)
		forwarded = append(forwarded, d2)
	}
	mean := func(ds []time.Duration) float64 {
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		return float64(sum) / float64(len(ds)) / float64(time.Millisecond)
	}
	b.ReportMetric(mean(reconnect), "reconnect-ms")
	b.ReportMetric(quantileMs(reconnect, 1), "reconnect-max-ms")
	b.ReportMetric(mean(forwarded), "forwarded-ms")
	b.ReportMetric(quantileMs(forwarded, 1), "forwarded-max-ms")
}
