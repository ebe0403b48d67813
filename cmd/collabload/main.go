// Command collabload puts a running collabd under editing load and reports
// what it measured: many documents, several editors typing into each at a
// steady rate over real WebSockets (client.Client, the same client the
// tests use), optionally SSE viewers watching them. At the end it checks
// that every editor, every viewer and the server hold the same text.
//
//	collabload -url http://127.0.0.1:8080 -docs 20 -editors 4 -rate 10 -duration 30s
//
// Latency is the round trip of an op: from the moment an editor applies a
// keystroke locally to the server's ack, which the server sends only after
// the op is committed to disk. Each editor waits for the ack of one
// keystroke before timing the next (it keeps typing meanwhile, and those
// keystrokes are buffered and composed as the protocol wants), so the
// figures are not skewed by queueing in the load generator itself.
//
// It also drives the HTTP writes (writes.go): -http-writes N clients
// POSTing /ops (with -editors 0), and -stream-rate T, one POST /stream per
// document writing T tokens per second while the editors type, timed from
// a token entering the request body to each viewer's op event.
//
//	collabload -docs 1 -editors 0 -http-writes 50 -duration 20s   # server: -write-rate -1
//	collabload -docs 1 -editors 20 -rate 5 -viewers 200 -stream-rate 50 -duration 60s
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/collab/client"
	"github.com/collabd/collabd/ot"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "collabload:", err)
		os.Exit(1)
	}
}

type config struct {
	url      string
	docs     int
	editors  int
	viewers  int
	rate     float64
	duration time.Duration
	settle   time.Duration
	light    bool
	pid      int
	adminURL string
	// HTTP writes (writes.go)
	httpWrites int
	streamRate float64
	// comments is how many threads each document has (comments.go).
	comments int
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg config
	fs := flag.NewFlagSet("collabload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.url, "url", "http://127.0.0.1:8080", "base `URL` of the collabd server (loopback or your own test host only)")
	fs.IntVar(&cfg.docs, "docs", 10, "documents to create and edit")
	fs.IntVar(&cfg.editors, "editors", 4, "editors per document, each on its own WebSocket (0 with -http-writes)")
	fs.IntVar(&cfg.viewers, "viewers", 0, "SSE viewers per document")
	fs.Float64Var(&cfg.rate, "rate", 5, "keystrokes per second per editor")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long to type")
	fs.DurationVar(&cfg.settle, "settle", 10*time.Second, "how long to wait, after typing, for everyone to converge")
	fs.BoolVar(&cfg.light, "light", false, "editors track only the document length (no OT apply of remote ops, insert-only typing)")
	fs.IntVar(&cfg.pid, "server-pid", 0, "`pid` of the collabd under load (same machine) for its CPU per op and RSS")
	fs.StringVar(&cfg.adminURL, "admin-url", "", "collabd admin `URL` (its -admin-addr) whose /metrics give the server-side latencies")
	fs.IntVar(&cfg.httpWrites, "http-writes", 0, "HTTP writers, each on a keep-alive connection of its own, POSTing /ops into the documents (round-robin) one after the other, each on the revision of its own last answer; needs -editors 0 (the server needs -write-rate -1)")
	fs.IntVar(&cfg.comments, "comments", 0, "open comment threads put on each document before typing starts, on a text of 4,000 code points (the server needs -comment-rate and -comment-burst to allow them)")
	fs.Float64Var(&cfg.streamRate, "stream-rate", 0, "`tokens` per second that one POST /stream per document writes while the editors type; with -viewers, the time from a token entering the request body to each viewer's op event")
	cpuprofile := fs.String("cpuprofile", "", "write collabload's own CPU profile to `file`")
	header := fs.String("header", "", "`\"Name: value\"` sent with every request and WebSocket upgrade: a sign-in header, for a server run with -auth-header Name -trusted-proxies 127.0.0.1/32 (the workspace and its search index are on only with sign-in)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *header != "" {
		name, value, ok := strings.Cut(*header, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return fmt.Errorf("-header %q: want \"Name: value\"", *header)
		}
		restore := withHeader(strings.TrimSpace(name), strings.TrimSpace(value))
		defer restore()
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	case cfg.docs < 1 || cfg.editors < 0 || cfg.viewers < 0 || cfg.httpWrites < 0 || cfg.streamRate < 0:
		return errors.New("-docs must be at least 1; -editors, -viewers, -http-writes and -stream-rate at least 0")
	case cfg.httpWrites > 0 && (cfg.editors > 0 || cfg.streamRate > 0 || cfg.light):
		return errors.New("-http-writes needs documents of their own: -editors 0, no -stream-rate, no -light")
	case cfg.editors == 0 && cfg.httpWrites == 0:
		return errors.New("-editors must be at least 1 (0 only with -http-writes)")
	case cfg.streamRate > 0 && cfg.light:
		return errors.New("-stream-rate needs full editors and viewers: not with -light")
	case cfg.rate <= 0 || cfg.duration <= 0:
		return errors.New("-rate and -duration must be positive")
	}
	cfg.url = strings.TrimRight(cfg.url, "/")

	if *cpuprofile != "" {
		stopProf, err := startCPUProfile(*cpuprofile)
		if err != nil {
			return err
		}
		defer stopProf()
	}
	before := sample(cfg.pid)
	var rep *report
	var err error
	if cfg.light {
		rep, err = loadLight(ctx, cfg)
	} else {
		rep, err = load(ctx, cfg)
	}
	if rep != nil {
		rep.print(stdout, cfg)
		printResources(stdout, cfg, before, sample(cfg.pid), rep)
		if cfg.adminURL != "" {
			printServerLatency(ctx, stdout, strings.TrimRight(cfg.adminURL, "/"), rep.revs)
		}
	}
	return err
}

// report is what a run measured.
type report struct {
	elapsed   time.Duration
	keys      atomic.Int64 // keystrokes typed
	revs      int64        // server revisions made during the run
	latencies []time.Duration
	events    atomic.Int64 // SSE op events received
	diverged  []string
	writes    *writeStats  // -http-writes
	stream    *streamStats // -stream-rate
	tokenLat  []time.Duration
	// typing samples the server from the first keystroke to the last ack
	// (not its editors' connecting, nor the final checks).
	typing [2]usage
}

func (r *report) print(w io.Writer, cfg config) {
	if cfg.editors > 0 {
		fmt.Fprintf(w, "%d docs × %d editors at %.1f keystrokes/s each, %d viewers per doc, for %v\n",
			cfg.docs, cfg.editors, cfg.rate, cfg.viewers, cfg.duration)
	} else {
		fmt.Fprintf(w, "%d docs × %d HTTP writers, %d viewers per doc, for %v\n",
			cfg.docs, cfg.httpWrites, cfg.viewers, cfg.duration)
	}
	if cfg.streamRate > 0 {
		fmt.Fprintf(w, "one POST /stream per doc writing %.1f tokens/s\n", cfg.streamRate)
	}
	secs := r.elapsed.Seconds()
	if cfg.editors > 0 {
		fmt.Fprintf(w, "keystrokes: %d (%.0f/s); server revisions: %d (%.0f/s; buffered keystrokes compose)\n",
			r.keys.Load(), float64(r.keys.Load())/secs, r.revs, float64(r.revs)/secs)
	} else {
		fmt.Fprintf(w, "server revisions: %d (%.0f/s)\n", r.revs, float64(r.revs)/secs)
	}
	if r.writes != nil {
		printWrites(w, r.writes, secs)
	}
	if r.stream != nil {
		printStream(w, r.stream, r.tokenLat, secs)
	}
	if n := len(r.latencies); n > 0 {
		slices.Sort(r.latencies)
		pct := func(p float64) time.Duration { return r.latencies[int(p*float64(n-1))] }
		fmt.Fprintf(w, "keystroke to ack (%d samples): p50 %v, p90 %v, p99 %v, max %v\n",
			n, pct(0.5).Round(time.Microsecond), pct(0.9).Round(time.Microsecond),
			pct(0.99).Round(time.Microsecond), r.latencies[n-1].Round(time.Microsecond))
	}
	if cfg.viewers > 0 {
		fmt.Fprintf(w, "SSE op events delivered: %d\n", r.events.Load())
	}
	if len(r.diverged) == 0 {
		fmt.Fprintln(w, "converged: every editor, viewer and the server hold the same text")
	} else {
		fmt.Fprintf(w, "DIVERGED (%d):\n  %s\n", len(r.diverged), strings.Join(r.diverged, "\n  "))
	}
}

func load(ctx context.Context, cfg config) (*report, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rep := &report{}
	docs := make([]string, cfg.docs)
	startRev := make([]int64, cfg.docs)
	for i := range docs {
		id, err := createDoc(ctx, cfg)
		if err != nil {
			return nil, err
		}
		docs[i] = id
	}
	startLen := make([]int, cfg.docs)
	if cfg.editors == 0 {
		for d, id := range docs {
			text, rev, err := getDoc(ctx, cfg.url, id)
			if err != nil {
				return nil, err
			}
			startRev[d], startLen[d] = rev, utf8.RuneCountInString(text)
		}
	}

	type editor struct {
		doc int
		c   *client.Client
	}
	var editors []editor
	defer func() {
		for _, e := range editors {
			e.c.Close()
		}
	}()
	wsBase := "ws" + strings.TrimPrefix(cfg.url, "http")
	for d, id := range docs {
		if cfg.editors == 0 {
			break
		}
		for e := range cfg.editors {
			c, err := client.Dial(ctx, wsBase+"/api/docs/"+id+"/ws", client.Options{
				Name:       fmt.Sprintf("load-%d-%d", d, e),
				HTTPHeader: http.Header{"Origin": {cfg.url}},
			})
			if err != nil {
				return nil, fmt.Errorf("editor %d of doc %d: %w", e, d, err)
			}
			editors = append(editors, editor{d, c})
		}
		startRev[d] = editors[len(editors)-1].c.Rev()
	}

	// Viewers read until the run is over; each keeps the text it rebuilt.
	viewCtx, stopViewers := context.WithCancel(ctx)
	viewers := make([]*viewer, 0, cfg.docs*cfg.viewers)
	var tokens *tokenLog
	if cfg.streamRate > 0 {
		tokens = &tokenLog{}
		rep.stream = &streamStats{}
	}
	var viewWG sync.WaitGroup
	defer func() {
		stopViewers()
		viewWG.Wait()
	}()
	for d, id := range docs {
		for range cfg.viewers {
			v := &viewer{doc: d, rev: make(chan int64, 1), tokens: tokens}
			viewers = append(viewers, v)
			viewWG.Add(1)
			go func() {
				defer viewWG.Done()
				err := v.watch(viewCtx, cfg.url+"/api/docs/"+id+"/events", &rep.events)
				v.mu.Lock()
				v.err = err
				v.mu.Unlock()
			}()
		}
	}

	// Type: every editor on its own goroutine, with a random phase so that
	// keystrokes do not arrive in lockstep.
	typeCtx, stopTyping := context.WithTimeout(ctx, cfg.duration)
	defer stopTyping()
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	rep.typing[0] = sample(cfg.pid)
	start := time.Now()
	for i, e := range editors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat, err := typeInto(typeCtx, e.c, cfg.rate, uint64(i), &rep.keys)
			mu.Lock()
			defer mu.Unlock()
			rep.latencies = append(rep.latencies, lat...)
			if err != nil {
				errs = append(errs, fmt.Errorf("editor %s on doc %d: %w", e.c.Author(), e.doc, err))
			}
		}()
	}
	if cfg.httpWrites > 0 {
		rep.writes = &writeStats{clients: cfg.httpWrites}
		for i := range cfg.httpWrites {
			d := i % cfg.docs
			wg.Add(1)
			go func() {
				defer wg.Done()
				httpWrite(typeCtx, cfg.url, docs[d], startRev[d], startLen[d], uint64(i), rep.writes)
			}()
		}
	}
	if rep.stream != nil {
		for d, id := range docs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				streamInto(typeCtx, cfg.url, id, fmt.Sprintf("load-stream-%d", d), cfg.streamRate, cfg.viewers, tokens, rep.stream)
			}()
		}
	}
	wg.Wait()
	rep.elapsed = time.Since(start)
	if rep.stream != nil {
		errs = append(errs, rep.stream.errs...)
	}
	if rep.writes != nil && rep.writes.acked.Load() == 0 {
		errs = append(errs, errors.New("no HTTP write was acked"))
	}
	if err := errors.Join(errs...); err != nil {
		return rep, err
	}

	// Settle: every editor synced, then compare against the server.
	settleCtx, stopSettle := context.WithTimeout(ctx, cfg.settle)
	defer stopSettle()
	for _, e := range editors {
		if err := e.c.WaitSynced(settleCtx); err != nil {
			return rep, fmt.Errorf("editor %s did not get its acks: %w", e.c.Author(), err)
		}
	}
	rep.typing[1] = sample(cfg.pid)
	for d, id := range docs {
		text, rev, err := getDoc(settleCtx, cfg.url, id)
		if err != nil {
			return rep, err
		}
		rep.revs += rev - startRev[d]
		if cfg.editors == 0 {
			// Writers alone: one code point per revision.
			if got, want := utf8.RuneCountInString(text), startLen[d]+int(rev-startRev[d]); got != want {
				rep.diverged = append(rep.diverged, fmt.Sprintf("doc %s: %d code points at rev %d, want %d", id, got, rev, want))
			}
		}
		for _, e := range editors {
			if e.doc != d {
				continue
			}
			if err := e.c.WaitRev(settleCtx, rev); err != nil {
				return rep, fmt.Errorf("editor %s did not reach rev %d: %w", e.c.Author(), rev, err)
			}
			if _, got, _ := e.c.Synced(); got != text {
				rep.diverged = append(rep.diverged, fmt.Sprintf("doc %s: editor %s has %d bytes, server %d", id, e.c.Author(), len(got), len(text)))
			}
		}
		for _, v := range viewers {
			if v.doc != d {
				continue
			}
			if got, err := v.waitRev(settleCtx, rev); err != nil {
				rep.diverged = append(rep.diverged, fmt.Sprintf("doc %s: viewer: %v", id, err))
			} else if got != text {
				rep.diverged = append(rep.diverged, fmt.Sprintf("doc %s: viewer has %d bytes, server %d", id, len(got), len(text)))
			}
		}
	}
	if rep.writes != nil && rep.revs != rep.writes.acked.Load() {
		rep.diverged = append(rep.diverged, fmt.Sprintf("%d HTTP writes acked but %d revisions made", rep.writes.acked.Load(), rep.revs))
	}
	for _, v := range viewers {
		v.mu.Lock()
		rep.tokenLat = append(rep.tokenLat, v.tokenLat...)
		v.mu.Unlock()
	}
	if len(rep.diverged) > 0 {
		return rep, errors.New("texts diverged")
	}
	return rep, nil
}

// typeInto types into c at rate keystrokes per second until ctx ends: mostly
// characters at a cursor that wanders, now and then a backspace. It times
// one keystroke at a time from local edit to ack.
func typeInto(ctx context.Context, c *client.Client, rate float64, seed uint64, keys *atomic.Int64) ([]time.Duration, error) {
	rng := rand.New(rand.NewPCG(seed, 7))
	interval := time.Duration(float64(time.Second) / rate)
	select {
	case <-time.After(time.Duration(rng.Int64N(int64(interval)))):
	case <-ctx.Done():
		return nil, nil
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()

	var lat []time.Duration
	timing := false // a timed keystroke awaits its ack
	var sent time.Time
	acked := make(chan error, 1)
	// The waiter is ended and awaited on return, so it cannot outlive us.
	waitCtx, stopWait := context.WithCancel(ctx)
	defer func() {
		stopWait()
		if timing {
			<-acked
		}
	}()
	pos := 0
	for {
		select {
		case <-ctx.Done():
			return lat, nil
		case err := <-acked:
			timing = false
			if err != nil && ctx.Err() != nil {
				return lat, nil // typing time ran out while this ack was awaited
			}
			if err != nil {
				return lat, err
			}
			lat = append(lat, time.Since(sent))
			continue
		case <-tick.C:
		}
		// Only a keystroke typed when everything is acknowledged goes out
		// at once as its own op; that is the one to time.
		assigned, ackedSeq := c.Seqs()
		start := time.Now()
		err := c.EditLenFunc(func(n int) ot.Op {
			if rng.IntN(10) == 0 {
				pos = rng.IntN(n + 1)
			}
			pos = min(pos, n)
			if pos > 0 && rng.IntN(6) == 0 {
				pos--
				return ot.Op{}.Retain(pos).Delete(1).Retain(n - pos - 1)
			}
			ch := string(rune('a' + rng.IntN(26)))
			if rng.IntN(8) == 0 {
				ch = []string{" ", "\n", "é", "😀"}[rng.IntN(4)]
			}
			pos++
			return ot.Op{}.Retain(pos - 1).Insert(ch).Retain(n - pos + 1)
		})
		if err != nil {
			return lat, err
		}
		keys.Add(1)
		if !timing && assigned == ackedSeq {
			timing, sent = true, start
			seq, _ := c.Seqs()
			go func() { acked <- c.WaitAcked(waitCtx, seq) }()
		}
	}
}

// viewer follows one document's SSE feed and rebuilds its text.
type viewer struct {
	doc int
	rev chan int64 // signals progress to waitRev

	mu   sync.Mutex
	err  error // why watch ended
	text *ot.Doc
	at   int64
	// With -stream-rate: when the streams' tokens entered their request
	// bodies, and how long each took to reach this viewer.
	tokens   *tokenLog
	tokenLat []time.Duration
}

func (v *viewer) watch(ctx context.Context, url string, events *atomic.Int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var event string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			got := time.Now()
			data := []byte(line[len("data: "):])
			if err := v.apply(event, data); err != nil {
				return err
			}
			if event == "op" && v.tokens != nil {
				v.matchTokens(data, got)
			}
			if event == "op" {
				events.Add(1)
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("stream ended: %v", sc.Err())
}

func (v *viewer) apply(event string, data []byte) error {
	var m struct {
		Rev  int64  `json:"rev"`
		Text string `json:"text"`
		Op   ot.Op  `json:"op"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("%s event: %w", event, err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	switch event {
	case "snapshot":
		v.text = ot.NewDoc(m.Text)
	case "op":
		if v.text == nil || m.Rev != v.at+1 {
			return fmt.Errorf("op %d after rev %d", m.Rev, v.at)
		}
		if err := v.text.Apply(m.Op); err != nil {
			return fmt.Errorf("op %d: %w", m.Rev, err)
		}
	default:
		return nil
	}
	v.at = m.Rev
	select {
	case v.rev <- m.Rev:
	default:
	}
	return nil
}

// matchTokens records, for each stream token in an op event received at
// got, the time since it entered its request body.
func (v *viewer) matchTokens(data []byte, got time.Time) {
	scanTokens(data, func(n int) {
		if sent, ok := v.tokens.at(n); ok {
			v.mu.Lock()
			v.tokenLat = append(v.tokenLat, got.Sub(sent))
			v.mu.Unlock()
		}
	})
}

// waitRev waits until the viewer has reached rev and returns its text.
func (v *viewer) waitRev(ctx context.Context, rev int64) (string, error) {
	for {
		v.mu.Lock()
		done := v.at >= rev && v.text != nil
		var text string
		if done {
			text = v.text.String()
		}
		at, err := v.at, v.err
		v.mu.Unlock()
		if done {
			return text, nil
		}
		if err != nil {
			return "", err
		}
		select {
		case <-v.rev:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return "", fmt.Errorf("at rev %d, want %d: %w", at, rev, ctx.Err())
		}
	}
}

// createDoc creates a document: empty, or with -comments, a text and
// that many threads on it.
func createDoc(ctx context.Context, cfg config) (string, error) {
	body := `{}`
	if cfg.comments > 0 {
		body = fmt.Sprintf(`{"text":%q}`, commentedText)
	}
	id, err := postDoc(ctx, cfg.url, body)
	if err != nil || cfg.comments == 0 {
		return id, err
	}
	return id, addComments(ctx, cfg.url, id, cfg.comments)
}

func postDoc(ctx context.Context, base, body string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/docs", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var doc struct{ ID string }
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("POST /api/docs: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return "", fmt.Errorf("POST /api/docs: %w", err)
	}
	return doc.ID, nil
}

func getDoc(ctx context.Context, base, id string) (string, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/docs/"+id, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	var doc struct {
		Rev  int64
		Text string
	}
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("GET /api/docs/%s: %s", id, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return "", 0, fmt.Errorf("GET /api/docs/%s: %w", id, err)
	}
	return doc.Text, doc.Rev, nil
}

// withHeader makes every request of http.DefaultClient (which the
// WebSocket dials use too) carry header name: value, and returns what
// undoes it.
func withHeader(name, value string) (restore func()) {
	prev := http.DefaultClient.Transport
	base := prev
	if base == nil {
		base = http.DefaultTransport
	}
	http.DefaultClient.Transport = headerTransport{base: base, name: name, value: value}
	return func() { http.DefaultClient.Transport = prev }
}

type headerTransport struct {
	base        http.RoundTripper
	name, value string
}

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(t.name, t.value)
	return t.base.RoundTrip(r)
}
