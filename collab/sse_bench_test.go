package collab

// BenchmarkSSEFanout measures the SSE feed under issue 6's load: one editor
// typing 20 ops per second while 1,000 or 5,000 viewers watch, each over
// its own HTTP/1.1 connection on loopback.
//
// Method. The viewers run in a child process (this test binary re-run as
// TestSSEFanoutReaders), so that the benchmark process holds only the
// server, and runtime.MemStats there count the server's side alone: no
// subtraction of client costs is needed.
//
//   - Memory per idle viewer: HeapInuse+StackInuse of the benchmark
//     process after two GCs, before the viewers connect and once every
//     one has its snapshot and sits idle, divided by the number of
//     viewers. It includes everything a viewer costs the server: the
//     net/http connection (its goroutines, buffers and request), the
//     handler goroutine's stack, the viewer and its hub entry.
//   - Delivery latency: a wrapper around the store notes the time each
//     op's Append returned, which is its commit; the children note when
//     each viewer read the op's event. The parent sends the commit times
//     to the child, which computes commit-to-viewer latencies over every
//     (viewer, op) pair and reports percentiles. Both processes read the
//     same system clock. The child also reports edit-to-viewer latency,
//     from the time the editor put into the text of each op.
//
// Run it with (one iteration is the whole measurement):
//
//	go test -run '^$' -bench BenchmarkSSEFanout -benchtime 1x ./collab/

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
)

const (
	fanoutOps      = 200                   // ops per measurement: 10 s of typing
	fanoutInterval = 50 * time.Millisecond // 20 ops per second
	fanoutEnvURL   = "COLLAB_SSE_FANOUT_URL"
	fanoutEnvN     = "COLLAB_SSE_FANOUT_N"
)

func BenchmarkSSEFanout(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("viewers=%d", n), func(b *testing.B) { benchFanout(b, n) })
	}
}

// cpuTime returns the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// timedStore notes when each op's commit returned.
type timedStore struct {
	*memStore
	commits []atomic.Int64 // by revision, UnixNano
}

func (s *timedStore) Append(ctx context.Context, id string, recs []Record) error {
	err := s.memStore.Append(ctx, id, recs)
	if err == nil {
		now := time.Now().UnixNano()
		for _, r := range recs {
			if r.Rev < int64(len(s.commits)) {
				s.commits[r.Rev].Store(now)
			}
		}
	}
	return err
}

// serverMem returns the heap and stack memory the benchmark process uses
// after garbage collection (which also shrinks goroutine stacks).
func serverMem() (heap, stack int64) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse), int64(ms.StackInuse)
}

func benchFanout(b *testing.B, n int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < uint64(n)+256 {
		b.Skipf("needs %d open files per process, the limit is %d (err %v): raise it with ulimit -n", n+256, lim.Cur, err)
	}
	store := &timedStore{memStore: newMemStore(), commits: make([]atomic.Int64, fanoutOps+2)}
	srv := New(store, Options{MaxConns: 1 << 20, MaxConnsPerAddr: 1 << 20}) // every viewer is on loopback
	hs := httptest.NewServer(srv)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		srv.Close(ctx)
		hs.Close()
	}()
	id, viewID := createDocWith(b, http.DefaultClient, hs.URL, "")

	heap0, stack0 := serverMem()
	goroutinesBefore := runtime.NumGoroutine()
	child := exec.Command(os.Args[0], "-test.run=^TestSSEFanoutReaders$")
	child.Env = append(os.Environ(), fanoutEnvURL+"="+viewEventsURL(hs.URL, viewID), fanoutEnvN+"="+strconv.Itoa(n))
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		child.Process.Kill()
		child.Wait()
	}()
	lines := bufio.NewScanner(stdout)
	expect := func(prefix string) string {
		for lines.Scan() {
			if rest, ok := strings.CutPrefix(lines.Text(), prefix); ok {
				return rest
			}
		}
		b.Fatalf("reader process ended (%v) before saying %q", lines.Err(), prefix)
		return ""
	}
	expect("ready")
	heap1, stack1 := serverMem()
	heapPerViewer := float64(heap1-heap0) / float64(n)
	stackPerViewer := float64(stack1-stack0) / float64(n)
	perViewer := heapPerViewer + stackPerViewer
	goroutines := float64(runtime.NumGoroutine()-goroutinesBefore) / float64(n)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/api/docs/"+id+"/ws", ClientOptions{Name: "typist"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	cpu0 := cpuTime()
	b.ResetTimer()
	tick := time.NewTicker(fanoutInterval)
	for range fanoutOps {
		<-tick.C
		stamp := strconv.FormatInt(time.Now().UnixNano(), 10) + " "
		if err := c.Edit(ot.Op(nil).Retain(c.Len()).Insert(stamp)); err != nil {
			b.Fatal(err)
		}
	}
	tick.Stop()
	if err := c.WaitSynced(ctx); err != nil {
		b.Fatal(err)
	}
	rev := c.Rev()
	b.StopTimer()
	// Server CPU per event delivered, typing included (it is small).
	cpuPerEvent := float64(cpuTime()-cpu0) / 1e3 / float64(int64(n)*(rev-1))

	var msg bytes.Buffer
	for r := int64(2); r <= rev && r < int64(len(store.commits)); r++ {
		fmt.Fprintf(&msg, "commit %d %d\n", r, store.commits[r].Load())
	}
	fmt.Fprintf(&msg, "done %d\n", rev)
	if _, err := stdin.Write(msg.Bytes()); err != nil {
		b.Fatal(err)
	}
	var p50, p99, max, e50, e99 float64
	var samples, dropped int
	result := expect("result ")
	if _, err := fmt.Sscanf(result, "samples=%d dropped=%d commit-p50=%g commit-p99=%g commit-max=%g edit-p50=%g edit-p99=%g",
		&samples, &dropped, &p50, &p99, &max, &e50, &e99); err != nil {
		b.Fatalf("reader result %q: %v", result, err)
	}
	b.ReportMetric(p50, "p50-µs")
	b.ReportMetric(p99, "p99-µs")
	b.ReportMetric(max, "max-µs")
	b.ReportMetric(e99, "edit-p99-µs")
	b.ReportMetric(perViewer, "server-B/viewer")
	b.ReportMetric(goroutines, "goroutines/viewer")
	b.ReportMetric(cpuPerEvent, "server-cpu-µs/event")
	b.ReportMetric(float64(dropped), "dropped")
	b.Logf("%d viewers, %d revisions, %d samples: commit-to-viewer p50 %.0f µs, p99 %.0f µs, max %.0f µs; "+
		"edit-to-viewer p50 %.0f µs, p99 %.0f µs; server memory per idle viewer %.0f B (heap %.0f B, stacks %.0f B of %.1f goroutines); "+
		"server CPU %.1f µs per event delivered; %d viewers dropped",
		n, rev, samples, p50, p99, max, e50, e99, perViewer, heapPerViewer, stackPerViewer, goroutines, cpuPerEvent, dropped)
}

// TestSSEFanoutReaders is the viewers' process of BenchmarkSSEFanout; run
// on its own it is skipped. It connects the viewers, says "ready" once
// each has its snapshot, records when each op reaches each viewer, reads
// commit times on stdin until "done R", and prints the latencies once
// every viewer has op R.
func TestSSEFanoutReaders(t *testing.T) {
	url := os.Getenv(fanoutEnvURL)
	if url == "" {
		t.Skip("the viewers' process of BenchmarkSSEFanout")
	}
	n, err := strconv.Atoi(os.Getenv(fanoutEnvN))
	if err != nil {
		t.Fatal(err)
	}
	if err := runFanoutReaders(url, n, os.Stdin, os.Stdout); err != nil {
		t.Fatal(err)
	}
}

// fanoutViewer is one viewer in the readers' process.
type fanoutViewer struct {
	arrived []int64 // by revision, UnixNano; 0 if not yet
	edited  []int64 // by revision, the editor's time from the op's text
	rev     atomic.Int64
	failed  atomic.Bool // its stream ended with an error
}

func runFanoutReaders(url string, n int, in io.Reader, out io.Writer) error {
	hostPath := strings.TrimPrefix(url, "http://")
	host, path, _ := strings.Cut(hostPath, "/")
	viewers := make([]*fanoutViewer, n)
	ready := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64) // connects in flight
	for i := range viewers {
		v := &fanoutViewer{arrived: make([]int64, fanoutOps+2), edited: make([]int64, fanoutOps+2)}
		viewers[i] = v
		v.rev.Store(-1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			conn, err := net.Dial("tcp", host)
			if err == nil {
				_, err = fmt.Fprintf(conn, "GET /%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", path, host)
			}
			<-sem
			if err != nil {
				ready <- err
				return
			}
			defer conn.Close()
			if err := v.read(conn, ready); err != nil {
				v.failed.Store(true)
			}
		}()
	}
	for range n {
		if err := <-ready; err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "ready")

	commits := make(map[int64]int64)
	final := int64(-1)
	sc := bufio.NewScanner(in)
	for final < 0 && sc.Scan() {
		var rev, at int64
		if _, err := fmt.Sscanf(sc.Text(), "commit %d %d", &rev, &at); err == nil {
			commits[rev] = at
		} else if _, err := fmt.Sscanf(sc.Text(), "done %d", &final); err != nil {
			return fmt.Errorf("bad line %q", sc.Text())
		}
	}
	if final < 0 {
		return errors.New("no done line")
	}
	deadline := time.Now().Add(time.Minute)
	var latencies, editLatencies []float64
	dropped := 0
	for _, v := range viewers {
		for v.rev.Load() < final && !v.failed.Load() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if v.rev.Load() < final {
			dropped++
			continue
		}
		for rev := int64(2); rev <= final && rev < int64(len(v.arrived)); rev++ {
			if c, ok := commits[rev]; ok && v.arrived[rev] != 0 {
				latencies = append(latencies, float64(v.arrived[rev]-c)/1e3)
			}
			if e := v.edited[rev]; e != 0 {
				editLatencies = append(editLatencies, float64(v.arrived[rev]-e)/1e3)
			}
		}
	}
	if len(latencies) == 0 {
		return errors.New("no latency samples")
	}
	slices.Sort(latencies)
	slices.Sort(editLatencies)
	pct := func(s []float64, p float64) float64 { return s[min(len(s)-1, int(p*float64(len(s))))] }
	fmt.Fprintf(out, "result samples=%d dropped=%d commit-p50=%g commit-p99=%g commit-max=%g edit-p50=%g edit-p99=%g\n",
		len(latencies), dropped, pct(latencies, 0.5), pct(latencies, 0.99), latencies[len(latencies)-1],
		pct(editLatencies, 0.5), pct(editLatencies, 0.99))
	// Stay connected until the benchmark is done with the server.
	io.Copy(io.Discard, in)
	return nil
}

// read reads one viewer's stream: it reports on ready once the snapshot
// is in, then notes each op's arrival. The data of an op the editor made
// is {"rev":N,"op":[R,"<UnixNano> "]} (no retain on an empty text).
func (v *fanoutViewer) read(conn net.Conn, ready chan<- error) error {
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 1024), nil)
	if err != nil {
		ready <- err
		return err
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("status %d", resp.StatusCode)
		ready <- err
		return err
	}
	br := bufio.NewReaderSize(resp.Body, 1024)
	var isOp bool
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if v.rev.Load() < 0 {
				ready <- err
			}
			return err
		}
		now := time.Now().UnixNano()
		switch {
		case bytes.HasPrefix(line, []byte("event: ")):
			isOp = string(line) == "event: op\n"
		case bytes.HasPrefix(line, []byte("data: ")):
			rev, stamp, err := parseFanoutData(line, isOp)
			if err != nil {
				return err
			}
			if rev < int64(len(v.arrived)) {
				v.arrived[rev] = now
				v.edited[rev] = stamp
			}
			if !isOp {
				ready <- nil
			}
			v.rev.Store(rev)
		}
	}
}

func parseFanoutData(line []byte, isOp bool) (rev, stamp int64, err error) {
	s := string(line)
	revText, _, _ := strings.Cut(strings.TrimPrefix(s, `data: {"rev":`), ",")
	if rev, err = strconv.ParseInt(revText, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("bad data %q", s)
	}
	if !isOp {
		return rev, 0, nil
	}
	_, ops, _ := strings.Cut(s, `"op":[`)
	_, text, ok := strings.Cut(ops, `"`)
	if !ok {
		return rev, 0, nil // an op without an insert: not the typist's
	}
	text, _, _ = strings.Cut(text, " ")
	stamp, _ = strconv.ParseInt(text, 10, 64)
	return rev, stamp, nil
}
