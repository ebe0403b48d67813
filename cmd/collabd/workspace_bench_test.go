package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/collab/client"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
)

// BenchmarkWorkspace measures the search index on 10,000 documents of
// 100 MB of text, made from the shared editing traces and a word list
// drawn from them and synthesized (docs/workspace.md, "Figures"):
//
//	COLLABD_WORKSPACE_BENCH=1 go test -run '^$' -bench BenchmarkWorkspace -benchtime 1x -timeout 30m ./cmd/collabd
//
// It reports the index build time (collabd reindex), the index's size
// against the data file's, search latency as a user types (p50, p99,
// over HTTP with the access checks), and how long a committed edit takes
// to become findable while editors on WebSocket make 4,000 acknowledged
// ops/s (findable, below). COLLABD_WORKSPACE_DOCS and
// COLLABD_WORKSPACE_DOC_BYTES change the size;
// COLLABD_WORKSPACE_SKIP_TYPING=1 measures only the findable delay;
// COLLABD_WORKSPACE_LOG=FILE keeps the server's debug log (the index
// flushes: documents, bytes, time taken).
func BenchmarkWorkspace(b *testing.B) {
	if os.Getenv("COLLABD_WORKSPACE_BENCH") == "" {
		b.Skip("set COLLABD_WORKSPACE_BENCH=1: it writes 100 MB and takes minutes")
	}
	corpus := traceText(b)
	docs, docBytes := envInt("COLLABD_WORKSPACE_DOCS", 10_000), envInt("COLLABD_WORKSPACE_DOC_BYTES", 10_000)
	dir := b.TempDir()
	data := filepath.Join(dir, "collab.db")
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	vocab := words(rng, corpus, 30_000)

	// The documents, written straight to the data file, 8 at a time so
	// that their commits share fsyncs.
	db, err := storage.Open(data, storage.Options{LockTimeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	acc := accessStore{boltKV{db}}
	start := time.Now()
	ids := make([]string, docs)
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := w; i < docs; i += 8 {
				text := genDoc(r, corpus, vocab, docBytes)
				total.Add(int64(len(text)))
				id := uuid.NewString()
				ids[i] = id
				now := time.Now()
				if err := acc.SetAccess(ctx, id, collab.Access{Owner: "bench", Link: collab.LinkNone}); err != nil {
					errs <- err
					return
				}
				if err := db.Create(ctx, storage.Meta{ID: id, ViewID: uuid.NewString(), Created: now},
					&storage.Record{Rev: 1, Op: ot.Op{ot.Insert(text)}, Client: "bench", Seq: 1, Time: now}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	db.Close()
	b.Logf("%d documents, %.1f MB of text written in %v", docs, float64(total.Load())/1e6, time.Since(start).Round(time.Second))

	// The index, built as collabd reindex builds it.
	start = time.Now()
	if err := run(ctx, []string{"reindex", "-data", data}, io.Discard, io.Discard); err != nil {
		b.Fatal(err)
	}
	build := time.Since(start)
	idxBytes, dataBytes := dirSize(data+".search"), dirSize(data)
	b.ReportMetric(build.Seconds(), "build-s")
	b.ReportMetric(float64(idxBytes)/1e6, "index-MB")
	b.ReportMetric(float64(dataBytes)/1e6, "data-MB")
	b.Logf("index built in %v: %.1f MB beside a %.1f MB data file", build.Round(time.Millisecond), float64(idxBytes)/1e6, float64(dataBytes)/1e6)

	// The server on that data file.
	srvCtx, stop := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	var logTo io.Writer = io.Discard
	level := "warn"
	if p := os.Getenv("COLLABD_WORKSPACE_LOG"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		logTo, level = f, "debug"
	}
	go func() {
		err := run(srvCtx, append([]string{"-addr", "127.0.0.1:0", "-data", data, "-log-level", level,
			"-max-conns-per-addr", "100000", "-max-conns", "100000", "-max-tcp-conns-per-addr", "100000",
			"-max-tcp-conns", "100000", "-write-rate", "-1"}, workspaceArgs[:6]...), pw, logTo)
		pw.CloseWithError(errors.New("run returned"))
		done <- err
	}()
	br := bufio.NewReader(pr)
	line, err := br.ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	go io.Copy(io.Discard, br)
	defer func() { stop(); <-done }()
	_, base, _ := strings.Cut(strings.TrimSpace(line), " on ")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}}
	get := func(q string) (int, time.Duration) {
		req, _ := http.NewRequest("GET", base+"/api/docs?limit=20&q="+urlQuery(q), nil)
		req.Header.Set("X-User", "bench")
		t := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var hits []json.RawMessage
		json.NewDecoder(resp.Body).Decode(&hits)
		resp.Body.Close()
		return len(hits), time.Since(t)
	}

	// A user types: every prefix of two words, as the page asks; first
	// right after the server opened the new index (while bleve merges
	// its segments), then once that has settled.
	typing := func(label string) {
		var lat []time.Duration
		found := 0
		for range 60 {
			w1, w2 := vocab[rng.IntN(len(vocab))], vocab[rng.IntN(len(vocab))]
			typed := w1 + " " + w2
			for n := 2; n <= len(typed); n++ {
				hits, took := get(typed[:n])
				lat = append(lat, took)
				if n == len(typed) && hits > 0 {
					found++
				}
			}
		}
		p50, p99 := pct(lat, 50), pct(lat, 99)
		b.ReportMetric(float64(p50.Microseconds())/1000, label+"-p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, label+"-p99-ms")
		b.Logf("search as a user types (%s): %d queries, p50 %v, p99 %v, max %v (%d of 60 two-word queries found something)",
			label, len(lat), p50, p99, slices.Max(lat), found)
	}
	if os.Getenv("COLLABD_WORKSPACE_SKIP_TYPING") == "" {
		typing("typing-fresh")
		time.Sleep(30 * time.Second)
		typing("typing")
	}

	findable(b, base, ids, get)
}

// findable has editors on WebSocket type into many documents at a
// paced total rate, each op acknowledged (committed) before the editor's
// next, while probes type a new word into one of those busy documents
// and time from its acknowledgement (the commit) to the first search
// that finds it. It reports the acknowledged ops/s and the findable
// delay's p50, p99 and max. COLLABD_WORKSPACE_RATE (4000 ops/s),
// COLLABD_WORKSPACE_EDITED (200 documents), COLLABD_WORKSPACE_EDITORS (4
// per document) and COLLABD_WORKSPACE_SECS (60) change it. Each editor
// waits for its op's ack before the next, so the rate reached is at
// most editors / ack latency: under load, with acks at 100 to 200 ms,
// 4,000 ops/s needs 400 to 800 editors.
func findable(b *testing.B, base string, ids []string, get func(q string) (int, time.Duration)) {
	rate, edited, secs := envInt("COLLABD_WORKSPACE_RATE", 4000), envInt("COLLABD_WORKSPACE_EDITED", 200), envInt("COLLABD_WORKSPACE_SECS", 60)
	edited, perDoc := min(edited, len(ids)), envInt("COLLABD_WORKSPACE_EDITORS", 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hdr := http.Header{"X-User": {"bench"}}
	wsBase := "ws" + strings.TrimPrefix(base, "http")
	eds := make([]*client.Client, edited*perDoc)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	var dialErr atomic.Value
	for i := range eds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ed, err := client.Dial(ctx, wsBase+"/api/docs/"+ids[i/perDoc]+"/ws", client.Options{HTTPHeader: hdr})
			if err != nil {
				dialErr.Store(err)
				return
			}
			eds[i] = ed
		}()
	}
	wg.Wait()
	defer func() {
		for _, ed := range eds {
			if ed != nil {
				ed.Close()
			}
		}
	}()
	if err, _ := dialErr.Load().(error); err != nil {
		b.Fatal(err)
	}
	insert := func(ed *client.Client, text string) error {
		if err := ed.EditLenFunc(func(n int) ot.Op { return ot.Op{}.Retain(n).Insert(text) }); err != nil {
			return err
		}
		return ed.WaitSynced(ctx)
	}

	// Each editor starts an op every period, spread over one period; an
	// editor whose ack is late types its next at once.
	period := time.Second * time.Duration(len(eds)) / time.Duration(rate)
	var acked atomic.Int64
	var edErr atomic.Value
	t0 := time.Now()
	for _, ed := range eds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := t0.Add(time.Duration(rand.Int64N(int64(period))))
			for ctx.Err() == nil {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				next = next.Add(period)
				if time.Until(next) < -period {
					next = time.Now() // far behind: do not burst to catch up
				}
				if err := insert(ed, "tick "); err != nil {
					if ctx.Err() == nil {
						edErr.Store(err)
					}
					return
				}
				acked.Add(1)
			}
		}()
	}
	time.Sleep(3 * time.Second) // the editors at their pace, the indexer busy
	if err, _ := edErr.Load().(error); err != nil {
		b.Fatal(err)
	}

	// Probers: each types a new word into a busy document, then searches
	// for it every 20 ms until it is found.
	var mu sync.Mutex
	var seen []time.Duration
	var probeErr atomic.Value
	a0, s0 := acked.Load(), time.Now()
	end := s0.Add(time.Duration(secs) * time.Second)
	var pwg sync.WaitGroup
	for p := range 3 {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for k := 0; time.Now().Before(end); k++ {
				token := fmt.Sprintf("zqprobe%dn%dx", p, k)
				ed := eds[rand.IntN(len(eds))]
				if err := insert(ed, " "+token+" "); err != nil {
					probeErr.Store(err)
					return
				}
				t := time.Now()
				for {
					if n, _ := get(token + " "); n > 0 {
						mu.Lock()
						seen = append(seen, time.Since(t))
						mu.Unlock()
						break
					}
					if time.Since(t) > 30*time.Second {
						probeErr.Store(fmt.Errorf("probe %s not found in 30 s", token))
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	pwg.Wait()
	achieved := float64(acked.Load()-a0) / time.Since(s0).Seconds()
	cancel()
	wg.Wait()
	if err, _ := probeErr.Load().(error); err != nil {
		b.Fatal(err)
	}
	if err, _ := edErr.Load().(error); err != nil {
		b.Logf("an editor stopped: %v", err)
	}
	p50, p99, worst := pct(seen, 50), pct(seen, 99), slices.Max(seen)
	b.ReportMetric(achieved, "edit-ops/s")
	b.ReportMetric(float64(p50.Milliseconds()), "findable-p50-ms")
	b.ReportMetric(float64(p99.Milliseconds()), "findable-p99-ms")
	b.ReportMetric(float64(worst.Milliseconds()), "findable-max-ms")
	b.Logf("%d editors on %d documents, %.0f ops/s acknowledged (%d offered): %d probes, a committed word findable after p50 %v, p99 %v, max %v",
		len(eds), edited, achieved, rate, len(seen), p50, p99, worst)
}

// traceText is the final text of every shared trace, one after another.
func traceText(tb testing.TB) string {
	var sb strings.Builder
	for _, name := range []string{"automerge-paper", "rustcode", "friendsforever"} {
		f, err := os.Open(filepath.Join("..", "..", "..", "shared", "traces", name+".json.gz"))
		if errors.Is(err, os.ErrNotExist) {
			tb.Skip("../shared/traces is absent: the benchmark's text comes from the shared editing traces")
		}
		if err != nil {
			tb.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			tb.Fatal(err)
		}
		var tr struct{ EndContent string }
		if err := json.NewDecoder(zr).Decode(&tr); err != nil {
			tb.Fatal(err)
		}
		f.Close()
		sb.WriteString(tr.EndContent)
		sb.WriteString("\n")
	}
	return sb.String()
}

// words returns a vocabulary of n words: the traces' own, then made-up
// ones of two to four syllables, so that the documents do not all share
// a few thousand words.
func words(r *rand.Rand, corpus string, n int) []string {
	seen := map[string]bool{}
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(corpus), func(c rune) bool { return c < 'a' || c > 'z' }) {
		if len(w) >= 4 && !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	syl := []string{"ka", "lo", "mi", "ne", "ru", "ta", "vi", "so", "pe", "gu", "dra", "fen", "mor", "sil", "tor", "wen", "bel", "cha", "qui", "zan"}
	for len(out) < n {
		var w string
		for range 2 + r.IntN(3) {
			w += syl[r.IntN(len(syl))]
		}
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// genDoc makes about size bytes: a Markdown title, pieces of the traces,
// and lines of vocabulary words.
func genDoc(r *rand.Rand, corpus string, vocab []string, size int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# %s %s\n", vocab[r.IntN(len(vocab))], vocab[r.IntN(len(vocab))])
	for sb.Len() < size {
		if r.IntN(2) == 0 {
			at := r.IntN(len(corpus) - 1200)
			sb.WriteString(corpus[at : at+200+r.IntN(1000)])
		} else {
			for range 40 {
				sb.WriteString(vocab[r.IntN(len(vocab))])
				sb.WriteByte(' ')
			}
		}
		sb.WriteByte('\n')
	}
	return strings.ToValidUTF8(sb.String(), "")
}

func dirSize(p string) int64 {
	var n int64
	filepath.Walk(p, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func envInt(name string, def int) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv(name), &n); err != nil || n <= 0 {
		return def
	}
	return n
}

func urlQuery(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "%", "%25"), " ", "+")
}
