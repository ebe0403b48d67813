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
// to become findable while 4,000 ops/s of HTTP writes go on.
// COLLABD_WORKSPACE_DOCS and COLLABD_WORKSPACE_DOC_BYTES change the size.
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
	go func() {
		err := run(srvCtx, append([]string{"-addr", "127.0.0.1:0", "-data", data, "-log-level", "warn",
			"-max-conns-per-addr", "100000", "-max-conns", "100000", "-max-tcp-conns-per-addr", "100000",
			"-max-tcp-conns", "100000", "-write-rate", "-1"}, workspaceArgs[:6]...), pw, io.Discard)
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
	typing("typing-fresh")
	time.Sleep(30 * time.Second)
	typing("typing")

	// Editing at 4,000 ops/s on 100 documents while probes time how long
	// a new word takes to be found.
	const writers, rate = 100, 4000
	editCtx, endEdits := context.WithCancel(ctx)
	var ops atomic.Int64
	var ewg sync.WaitGroup
	for w := range writers {
		ewg.Add(1)
		go func() {
			defer ewg.Done()
			tick := time.NewTicker(time.Second * writers / rate)
			defer tick.Stop()
			id := ids[w]
			rev, n, err := head(client, base, id)
			if err != nil {
				return
			}
			for {
				select {
				case <-editCtx.Done():
					return
				case <-tick.C:
				}
				if r, err := appendOp(client, base, id, rev, n, "tick "); err == nil {
					rev, n = r, n+5
					ops.Add(1)
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)
	opsStart, tStart := ops.Load(), time.Now()
	var seen []time.Duration
	for i := range 20 {
		token := fmt.Sprintf("zqprobe%dx", i)
		if err := postOp(client, base, ids[writers+i], " "+token+" "); err != nil {
			b.Fatal(err)
		}
		t := time.Now()
		for {
			if n, _ := get(token + " "); n > 0 {
				seen = append(seen, time.Since(t))
				break
			}
			if time.Since(t) > 30*time.Second {
				b.Fatalf("probe %d not found in 30 s", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	achieved := float64(ops.Load()-opsStart) / time.Since(tStart).Seconds()
	endEdits()
	ewg.Wait()
	b.ReportMetric(achieved, "edit-ops/s")
	b.ReportMetric(float64(pct(seen, 50).Milliseconds()), "findable-p50-ms")
	b.ReportMetric(float64(slices.Max(seen).Milliseconds()), "findable-max-ms")
	b.Logf("while editing at %.0f ops/s: a committed word findable after p50 %v, max %v", achieved, pct(seen, 50), slices.Max(seen))
}

// postOp appends text to document id.
func postOp(c *http.Client, base, id, text string) error {
	rev, n, err := head(c, base, id)
	if err != nil {
		return err
	}
	_, err = appendOp(c, base, id, rev, n, text)
	return err
}

// head returns document id's revision and length.
func head(c *http.Client, base, id string) (rev int64, n int, err error) {
	req, _ := http.NewRequest("GET", base+"/api/docs/"+id, nil)
	req.Header.Set("X-User", "bench")
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var d struct {
		Rev  int64
		Text string
	}
	err = json.NewDecoder(resp.Body).Decode(&d)
	return d.Rev, len([]rune(d.Text)), err
}

// appendOp appends ASCII text to document id, of length n at rev, with
// POST /ops, and returns the new revision.
func appendOp(c *http.Client, base, id string, rev int64, n int, text string) (int64, error) {
	body, _ := json.Marshal(map[string]any{"rev": rev, "op": []any{n, text}, "strict": true})
	req, _ := http.NewRequest("POST", base+"/api/docs/"+id+"/ops", strings.NewReader(string(body)))
	req.Header.Set("X-User", "bench")
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct{ Rev int64 }
	json.NewDecoder(resp.Body).Decode(&r)
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("POST ops: %d", resp.StatusCode)
	}
	return r.Rev, nil
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
