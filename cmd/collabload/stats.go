package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/collabd/collabd/cmd/internal/proc"
)

// usage is a CPU and memory sample of collabload and of the server.
type usage struct {
	at        time.Time
	self      time.Duration // collabload's user+system CPU
	server    time.Duration // the server's user+system CPU, when its pid is known
	serverRSS int64         // bytes
	serverOK  bool
}

func sample(pid int) usage {
	u := usage{at: time.Now()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		u.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if pid > 0 {
		cpu, err1 := proc.CPU(pid)
		rss, err2 := proc.Status(pid, "VmRSS")
		u.server, u.serverRSS, u.serverOK = cpu, rss, err1 == nil && err2 == nil
	}
	return u
}

func printResources(w io.Writer, cfg config, before, after usage, rep *report) {
	wall := after.at.Sub(before.at)
	cores := runtime.NumCPU()
	self := after.self - before.self
	fmt.Fprintf(w, "collabload CPU: %v (%.2f cores of %d over %v)\n",
		self.Round(time.Millisecond), self.Seconds()/wall.Seconds(), cores, wall.Round(time.Millisecond))
	if self.Seconds()/wall.Seconds() > 0.8*float64(cores) {
		fmt.Fprintf(w, "WARNING: collabload used more than 80%% of every core: it is the bottleneck, latencies include its own queueing\n")
	}
	if cfg.pid > 0 && after.serverOK && before.serverOK {
		srv := after.server - before.server
		per := time.Duration(0)
		if rep.revs > 0 {
			per = srv / time.Duration(rep.revs)
		}
		fmt.Fprintf(w, "server CPU: %v (%.2f cores), %v per revision; RSS %.1f MB\n",
			srv.Round(time.Millisecond), srv.Seconds()/wall.Seconds(), per.Round(time.Microsecond), float64(after.serverRSS)/(1<<20))
		if t0, t1 := rep.typing[0], rep.typing[1]; t0.serverOK && t1.serverOK && rep.revs > 0 {
			typing := t1.server - t0.server
			fmt.Fprintf(w, "server CPU while typing (first keystroke to last ack): %v (%.2f cores), %v per revision\n",
				typing.Round(time.Millisecond), typing.Seconds()/t1.at.Sub(t0.at).Seconds(), (typing / time.Duration(rep.revs)).Round(time.Microsecond))
		}
		if rep.writes != nil && rep.writes.acked.Load() > 0 {
			fmt.Fprintf(w, "server CPU per acked HTTP write: %v\n", (srv / time.Duration(rep.writes.acked.Load())).Round(time.Microsecond))
		}
		// Neither alone may be saturated while both together are: then
		// each waits for the other's CPU and latency measures the box.
		if both := (self + srv).Seconds() / wall.Seconds(); both > 0.8*float64(cores) {
			fmt.Fprintf(w, "WARNING: collabload and the server together used %.2f of %d cores: the machine is the bottleneck\n", both, cores)
		}
	} else if cfg.pid > 0 {
		fmt.Fprintf(w, "server CPU: cannot read /proc/%d\n", cfg.pid)
	}
}

func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// histogram is one Prometheus histogram scraped from text exposition.
type histogram struct {
	buckets []bucket // sorted by le
	count   float64
}

type bucket struct{ le, n float64 }

// parseHistograms reads the _bucket and _count series of text-format
// metrics, and the value of every series without labels (gauges and
// counters) into plain.
func parseHistograms(r io.Reader, plain map[string]float64) map[string]*histogram {
	hs := map[string]*histogram{}
	get := func(name string) *histogram {
		if hs[name] == nil {
			hs[name] = &histogram{}
		}
		return hs[name]
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		val, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		series := line[:sp]
		if name, labels, ok := strings.Cut(series, "_bucket{"); ok {
			_, le, ok := strings.Cut(labels, `le="`)
			if !ok {
				continue
			}
			le, _, _ = strings.Cut(le, `"`)
			bound, err := strconv.ParseFloat(le, 64)
			if err != nil {
				continue
			}
			h := get(name)
			h.buckets = append(h.buckets, bucket{bound, val})
		} else if name, ok := strings.CutSuffix(series, "_count"); ok {
			get(name).count = val
		} else if plain != nil {
			plain[series] = val // labelled series under their whole name
		}
	}
	for _, h := range hs {
		sort.Slice(h.buckets, func(i, j int) bool { return h.buckets[i].le < h.buckets[j].le })
	}
	return hs
}

// quantile interpolates linearly inside the bucket holding q, as
// Prometheus's histogram_quantile does; above the last finite bound it
// returns that bound.
func (h *histogram) quantile(q float64) float64 {
	if len(h.buckets) == 0 || h.count == 0 {
		return math.NaN()
	}
	rank := q * h.count
	prevLe, prevN := 0.0, 0.0
	for _, b := range h.buckets {
		if b.n >= rank {
			if math.IsInf(b.le, 1) {
				return prevLe
			}
			if b.n == prevN {
				return b.le
			}
			return prevLe + (b.le-prevLe)*(rank-prevN)/(b.n-prevN)
		}
		prevLe, prevN = b.le, b.n
	}
	return prevLe
}

func printServerLatency(ctx context.Context, w io.Writer, admin string, revs int64) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, admin+"/metrics", nil)
	if err != nil {
		fmt.Fprintf(w, "server metrics: %v\n", err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(w, "server metrics: %v\n", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(w, "server metrics: GET /metrics: %s\n", resp.Status)
		return
	}
	plain := map[string]float64{}
	hs := parseHistograms(resp.Body, plain)
	fmt.Fprintln(w, "server side (from /metrics, whole server lifetime, quantiles interpolated in doubling buckets):")
	for _, m := range []struct{ name, what string }{
		{"collabd_ack_latency_seconds", "op received to ack written"},
		{"collabd_hub_queue_wait_seconds", "hub queue wait"},
		{"collabd_transform_seconds", "transform and apply"},
		{"collabd_commit_seconds", "append (queue + transaction)"},
		{"collabd_storage_commit_seconds", "storage transaction"},
		{"collabd_fanout_seconds", "fan-out of a batch"},
		{"collabd_send_queue_wait_seconds", "ack in the send queue"},
	} {
		h := hs[m.name]
		if h == nil || h.count == 0 {
			fmt.Fprintf(w, "  %-28s no samples\n", m.what)
			continue
		}
		ms := func(q float64) string { return strconv.FormatFloat(h.quantile(q)*1e3, 'f', 2, 64) + "ms" }
		fmt.Fprintf(w, "  %-28s n=%.0f p50 %s, p90 %s, p99 %s\n", m.what, h.count, ms(0.5), ms(0.9), ms(0.99))
	}
	// A commit waits for the transactions before it; when those are
	// short and the waits long, look at the server's CPU and its GC
	// (docs/performance.md, "Where the 1,000 × 2 tail comes from").
	if gc := hs["go_gc_duration_seconds"]; gc != nil && gc.count > 0 {
		fmt.Fprintf(w, "  garbage collections          %.0f in the server's lifetime\n", gc.count)
	}
	// collabd runs twice as many processors as CPUs unless GOMAXPROCS
	// says otherwise (docs/performance.md, "Processors blocked in
	// fdatasync"); a run's figures depend on it.
	// What the server's CPU is spent per: frames (a write system call
	// each) and bytes to editors (docs/cpu.md).
	if n, ok := plain["collabd_ws_frames_sent_total"]; ok && revs > 0 {
		b := plain[`collabd_sent_bytes_total{transport="ws"}`]
		fmt.Fprintf(w, "  WebSocket frames sent        %.0f (%.1f per revision), %.0f bytes (%.0f per revision, %.0f per frame)\n",
			n, n/float64(revs), b, b/float64(revs), b/max(n, 1))
	}
	if h := hs["collabd_storage_commit_seconds"]; h != nil && revs > 0 {
		fmt.Fprintf(w, "  storage transactions         %.0f (%.2f per revision)\n", h.count, h.count/float64(revs))
	}
	if n, ok := plain["go_sched_gomaxprocs_threads"]; ok {
		fmt.Fprintf(w, "  processors (GOMAXPROCS)      %.0f\n", n)
	}
}
