package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/ot"
)

// HTTP writes (docs/protocol.md, "HTTP writes"), the two modes of issue 24's
// benchmarks:
//
//   - -http-writes N: N clients, each on a keep-alive connection of its
//     own, POST /api/docs/{id}/ops one after the other, each op made on the
//     revision of that client's own last answer (so the server transforms
//     it over whatever the others committed since). The server answers
//     only once the op is durable. The writers are alone in their
//     documents (-editors 0) and insert one code point per write, so the
//     length of a document at revision R is known without reading it, and
//     at the end every acked write must be in the document.
//   - -stream-rate T: one POST /api/docs/{id}/stream per document, writing T
//     tokens per second into its body while the editors type and the
//     viewers watch. Each token carries its number ("#17 "); the time it
//     entered the request body is kept, and each SSE viewer matches the
//     tokens in the op events it receives back to that time.

// writeStats is what the HTTP writers measured.
type writeStats struct {
	clients int
	acked   atomic.Int64
	refused atomic.Int64 // answered with an error
	mu      sync.Mutex
	lat     []time.Duration // request sent to answer read, per acked write
	errs    []error
}

// httpWrite runs one HTTP writer into document id until ctx ends: rev0 is
// the document's revision and len0 its length when the writers started,
// and only the writers write into it.
func httpWrite(ctx context.Context, base, id string, rev0 int64, len0 int, seed uint64, ws *writeStats) {
	// One connection per writer, kept alive between its writes.
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}}
	defer hc.CloseIdleConnections()
	wc := &collab.WriteClient{BaseURL: base, HTTP: hc}
	rng := rand.New(rand.NewPCG(seed, 11))
	name := fmt.Sprintf("http-%d", seed)
	ch := string(rune('a' + seed%26))
	rev := rev0
	var lat []time.Duration
	defer func() {
		ws.mu.Lock()
		ws.lat = append(ws.lat, lat...)
		ws.mu.Unlock()
	}()
	for ctx.Err() == nil {
		// Every revision of the document inserts one code point.
		n := len0 + int(rev-rev0)
		pos := rng.IntN(n + 1)
		op := ot.Op{}.Retain(pos).Insert(ch).Retain(n - pos)
		// The end of the run must not cut a write short: a write whose
		// answer was lost would be in the document but not counted.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		start := time.Now()
		res, err := wc.Ops(wctx, id, rev, op, collab.WriteOptions{Name: name})
		d := time.Since(start)
		cancel()
		if err != nil {
			ws.refused.Add(1)
			ws.mu.Lock()
			if len(ws.errs) < 5 {
				ws.errs = append(ws.errs, err)
			}
			ws.mu.Unlock()
			var we *collab.WriteError
			if !errors.As(err, &we) {
				// Not an answer: the write may or may not be in.
				return
			}
			continue
		}
		ws.acked.Add(1)
		lat = append(lat, d)
		rev = res.Rev
	}
}

// tokenLog is when each token of the streams entered its request body.
type tokenLog struct {
	mu   sync.Mutex
	sent []time.Time // by token number
}

func (t *tokenLog) next() (int, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	t.sent = append(t.sent, now)
	return len(t.sent) - 1, now
}

func (t *tokenLog) at(n int) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n < 0 || n >= len(t.sent) {
		return time.Time{}, false
	}
	return t.sent[n], true
}

// scanTokens calls f with the number of each token ("#N ") in data, an op
// event's JSON: editors type no '#' and no digits after one.
func scanTokens(data []byte, f func(n int)) {
	for {
		i := bytes.IndexByte(data, '#')
		if i < 0 {
			return
		}
		data = data[i+1:]
		j := 0
		for j < len(data) && data[j] >= '0' && data[j] <= '9' {
			j++
		}
		if j > 0 && j < len(data) && data[j] == ' ' {
			if n, err := strconv.Atoi(string(data[:j])); err == nil {
				f(n)
			}
		}
		data = data[j:]
	}
}

// streamStats is what the streams measured.
type streamStats struct {
	tokens  atomic.Int64 // written into request bodies
	commits atomic.Int64 // progress lines: commits the server made
	pairs   atomic.Int64 // (token, viewer) pairs expected: tokens × the doc's viewers
	mu      sync.Mutex
	errs    []error
}

// streamInto writes rate tokens per second into a POST /stream on
// document id until ctx ends, then ends the body and waits for the
// stream's last line.
func streamInto(ctx context.Context, base, id, name string, rate float64, viewers int, log *tokenLog, ss *streamStats) {
	pr, pw := io.Pipe()
	wc := &collab.WriteClient{BaseURL: base, HTTP: &http.Client{Transport: &http.Transport{}}}
	// Not ctx: the stream ends by its body ending, then answers.
	sctx, cancelStream := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelStream()
	done := make(chan error, 1)
	go func() {
		last, err := wc.Stream(sctx, id, -1, -1, name, pr, func(p collab.StreamProgress) {
			if !p.Done {
				ss.commits.Add(1)
			}
		})
		if err == nil && last.Run == "" {
			err = errors.New("the last line names no run")
		}
		pr.CloseWithError(errors.New("the stream's request ended"))
		done <- err
	}()
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	var werr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		n, _ := log.next()
		if _, err := pw.Write([]byte("#" + strconv.Itoa(n) + " ")); err != nil {
			werr = err
			break
		}
		ss.tokens.Add(1)
		ss.pairs.Add(int64(viewers))
	}
	pw.Close()
	wait := time.NewTimer(30 * time.Second)
	defer wait.Stop()
	var err error
	select {
	case err = <-done:
	case <-wait.C:
		cancelStream()
		err = errors.Join(errors.New("no last line 30 s after the body ended"), <-done)
	}
	if err != nil || werr != nil {
		ss.mu.Lock()
		ss.errs = append(ss.errs, fmt.Errorf("stream into doc %s: %w", id, errors.Join(err, werr)))
		ss.mu.Unlock()
	}
}

func printWrites(w io.Writer, ws *writeStats, secs float64) {
	acked := ws.acked.Load()
	fmt.Fprintf(w, "HTTP writes: %d keep-alive clients POSTing /ops; acked %d (%.0f/s), refused %d\n",
		ws.clients, acked, float64(acked)/secs, ws.refused.Load())
	printLatencies(w, "write to its answer (durable)", ws.lat)
	for _, err := range ws.errs {
		fmt.Fprintf(w, "  refused: %v\n", err)
	}
}

func printStream(w io.Writer, ss *streamStats, lat []time.Duration, secs float64) {
	tokens := ss.tokens.Load()
	fmt.Fprintf(w, "streams: %d tokens (%.1f/s) in %d commits; %d of %d (token, viewer) pairs seen\n",
		tokens, float64(tokens)/secs, ss.commits.Load(), len(lat), ss.pairs.Load())
	printLatencies(w, "token in body to viewer's event", lat)
}

func printLatencies(w io.Writer, what string, lat []time.Duration) {
	n := len(lat)
	if n == 0 {
		fmt.Fprintf(w, "%s: no samples\n", what)
		return
	}
	s := append([]time.Duration(nil), lat...)
	slices.Sort(s)
	pct := func(p float64) time.Duration { return s[int(p*float64(n-1))].Round(time.Microsecond) }
	fmt.Fprintf(w, "%s (%d samples): p50 %v, p90 %v, p99 %v, max %v\n",
		what, n, pct(0.5), pct(0.9), pct(0.99), s[n-1].Round(time.Microsecond))
}
