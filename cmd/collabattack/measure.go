package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/collabd/collabd/cmd/internal/proc"
)

// fileSize returns the size of the file at path and the bytes the disk
// holds for it: bbolt grows its file in steps of up to 16 MiB, which it
// then fills, so the second shows growth that the first does not yet.
func fileSize(path string) (size, allocated int64, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	allocated = -1
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		allocated = st.Blocks * 512
	}
	return fi.Size(), allocated, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// watch measures the server over an attack: its CPU and data file from
// start to finish, its RSS sampled every 100 ms for the peak. Its
// sampling goroutine is stopped and waited for by finish.
type watch struct {
	pid    int
	data   string
	settle time.Duration
	limit  int64  // RSS past which onLimit is called, once; 0: none
	onOver func() // called from the sampler

	start  time.Time
	cpu0   time.Duration
	cpuOK  bool
	size0  int64
	alloc0 int64
	sizeOK bool
	stop   chan struct{}
	done   chan struct{}

	mu       sync.Mutex
	peak     int64 // largest VmRSS sampled
	peakAnon int64 // largest RssAnon sampled
}

// startWatch takes the first samples. With no pid and no data file it
// measures nothing and finish prints nothing.
func startWatch(s *session) *watch {
	w := &watch{pid: s.pid, data: s.data, settle: s.settle, start: time.Now(),
		stop: make(chan struct{}), done: make(chan struct{})}
	if w.data != "" {
		size, alloc, err := fileSize(w.data)
		w.size0, w.alloc0, w.sizeOK = size, alloc, err == nil
	}
	if w.pid <= 0 {
		close(w.done)
		return w
	}
	cpu, err := proc.CPU(w.pid)
	w.cpu0, w.cpuOK = cpu, err == nil
	go w.sample()
	return w
}

// abortPast makes the sampler call f once the server's RSS passes limit.
// It must be called before the attack starts, and only once.
func (w *watch) abortPast(limit int64, f func()) {
	w.mu.Lock()
	w.limit, w.onOver = limit, f
	w.mu.Unlock()
}

func (w *watch) sample() {
	defer close(w.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if rss, err := proc.Status(w.pid, "VmRSS"); err == nil {
			anon, _ := proc.Status(w.pid, "RssAnon")
			w.mu.Lock()
			w.peak, w.peakAnon = max(w.peak, rss), max(w.peakAnon, anon)
			over := w.limit > 0 && rss > w.limit && w.onOver != nil
			f := w.onOver
			if over {
				w.onOver = nil
			}
			w.mu.Unlock()
			if over {
				f()
			}
		}
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
	}
}

// finish stops sampling and prints the server's figures: CPU over the
// attack, RSS (now, the peak sampled, and the kernel's high-water mark),
// and the data file's growth, read after settle so that the last commits
// are in it.
func (w *watch) finish(out io.Writer) {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	elapsed := time.Since(w.start)
	if w.pid > 0 {
		cpu, err := proc.CPU(w.pid)
		rss, err2 := proc.Status(w.pid, "VmRSS")
		hwm, err3 := proc.Status(w.pid, "VmHWM")
		anon, err4 := proc.Status(w.pid, "RssAnon")
		if err != nil || !w.cpuOK || err2 != nil || err3 != nil || err4 != nil {
			fmt.Fprintf(out, "server pid %d: cannot read /proc (%v)\n", w.pid, errors.Join(err, err2, err3, err4))
		} else {
			used := cpu - w.cpu0
			w.mu.Lock()
			peak, peakAnon := max(w.peak, rss), max(w.peakAnon, anon)
			w.mu.Unlock()
			fmt.Fprintf(out, "server CPU: %.2f s over %v (%.2f cores)\n",
				used.Seconds(), elapsed.Round(time.Millisecond), used.Seconds()/elapsed.Seconds())
			fmt.Fprintf(out, "server VmRSS: %s now, %s peak sampled; VmHWM %s\n", mib(rss), mib(peak), mib(hwm))
			// VmRSS counts the pages of the data file that bbolt maps
			// and has touched; RssAnon is the memory of the process's own.
			fmt.Fprintf(out, "server RssAnon: %s now, %s peak sampled\n", mib(anon), mib(peakAnon))
		}
	}
	if w.data != "" {
		time.Sleep(w.settle)
		size, alloc, err := fileSize(w.data)
		switch {
		case err != nil:
			fmt.Fprintf(out, "data file: %v\n", err)
		case !w.sizeOK:
			fmt.Fprintf(out, "data file: %d bytes, %d on disk\n", size, alloc)
		default:
			fmt.Fprintf(out, "data file: %d -> %d bytes (%+.1f MiB); on disk %d -> %d bytes (%+.1f MiB)\n",
				w.size0, size, float64(size-w.size0)/(1<<20), w.alloc0, alloc, float64(alloc-w.alloc0)/(1<<20))
		}
	}
}

// tally counts outcomes by name: HTTP statuses, close codes, errors. It
// is safe for concurrent use.
type tally struct {
	mu sync.Mutex
	n  map[string]int
}

func (t *tally) add(key string) {
	t.mu.Lock()
	if t.n == nil {
		t.n = make(map[string]int)
	}
	t.n[key]++
	t.mu.Unlock()
}

// total returns the sum of the counts.
func (t *tally) total() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, c := range t.n {
		n += c
	}
	return n
}

// print writes the counts under title, most frequent first.
func (t *tally) print(w io.Writer, title string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]string, 0, len(t.n))
	for k := range t.n {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if t.n[a] != t.n[b] {
			return t.n[b] - t.n[a]
		}
		return strings.Compare(a, b)
	})
	fmt.Fprintf(w, "%s:\n", title)
	if len(keys) == 0 {
		fmt.Fprintf(w, "  (none)\n")
	}
	for _, k := range keys {
		fmt.Fprintf(w, "  %-50s %d\n", k, t.n[k])
	}
}

// statusKey names an HTTP answer by its status and, for a collabd error
// body, its error code: "429 rate_limited".
func statusKey(code int, body []byte) string {
	var e struct {
		Error struct{ Code string }
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
		return fmt.Sprintf("%d %s", code, e.Error.Code)
	}
	return strconv.Itoa(code)
}

// errKey names a failure briefly, so that a tally groups like ones.
func errKey(err error) string {
	var ne net.Error
	var ce websocket.CloseError
	switch {
	case errors.As(err, &ce):
		return fmt.Sprintf("close %d %s", int(ce.Code), ce.Reason)
	case errors.Is(err, syscall.ECONNRESET):
		return "error: connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "error: broken pipe"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "error: connection refused"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "error: connection closed (EOF)"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "error: attack over before an answer"
	case errors.As(err, &ne) && ne.Timeout():
		return "error: timeout"
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return "error: " + s
}

// latencies summarises round trips: count, p50, p99 and max (nearest
// rank; with fewer than 100 the p99 is the max).
func latencies(lat []time.Duration) string {
	if len(lat) == 0 {
		return "none"
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	q := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	r := func(d time.Duration) time.Duration {
		if d < time.Millisecond {
			return d.Round(time.Microsecond)
		}
		return d.Round(100 * time.Microsecond)
	}
	return fmt.Sprintf("n=%d p50 %v p99 %v max %v", len(s), r(q(0.5)), r(q(0.99)), r(s[len(s)-1]))
}
