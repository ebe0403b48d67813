package storage

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/ot"
)

// BenchmarkAppend measures acknowledged (fsynced) appends per second with
// one goroutine per document, each appending single-op records in a loop,
// as document hubs do.
func BenchmarkAppend(b *testing.B) {
	for _, docs := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("docs=%d", docs), func(b *testing.B) {
			db, _ := openTest(b, Options{})
			ctx := context.Background()
			for d := range docs {
				makeDoc(b, db, fmt.Sprint("d", d), 0)
			}
			commits, committed := db.commits.Load(), db.committed.Load()
			var (
				next atomic.Int64
				wg   sync.WaitGroup
				errs = make(chan error, docs)
			)
			b.ResetTimer()
			start := time.Now()
			for d := range docs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id, n := fmt.Sprint("d", d), 0
					for rev := int64(1); next.Add(1) <= int64(b.N); rev++ {
						rec := Record{Rev: rev, Op: appendOp(n, "x"), Client: "c", Seq: rev}
						if err := db.Append(ctx, id, []Record{rec}); err != nil {
							errs <- err
							return
						}
						n++
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
			// How many appends shared each fsync.
			b.ReportMetric(float64(db.committed.Load()-committed)/float64(db.commits.Load()-commits), "ops/commit")
		})
	}
}

// BenchmarkAppendLatency measures a lone op's append, which is one commit
// with nothing to share its fsync.
func BenchmarkAppendLatency(b *testing.B) {
	db, _ := openTest(b, Options{})
	ctx := context.Background()
	makeDoc(b, db, "d", 0)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		rev := int64(i + 1)
		rec := Record{Rev: rev, Op: appendOp(i, "x"), Client: "c", Seq: rev}
		start := time.Now()
		if err := db.Append(ctx, "d", []Record{rec}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// tracePath is the automerge-paper editing trace, shared by the project's
// benchmarks but not part of it.
const tracePath = "../../shared/traces/automerge-paper.json.gz"

func traceEndContent(b *testing.B) string {
	f, err := os.Open(tracePath)
	if errors.Is(err, os.ErrNotExist) {
		b.Skipf("trace %s not found; it ships separately from the source", tracePath)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	var trace struct {
		EndContent string `json:"endContent"`
	}
	if err := json.NewDecoder(zr).Decode(&trace); err != nil {
		b.Fatal(err)
	}
	return trace.EndContent
}

// BenchmarkLoad measures Load of the automerge-paper end state (105 KB)
// from a snapshot plus a 1,000-op tail of typing and deleting, right after
// reopening the file: nothing of the document is cached in the process.
func BenchmarkLoad(b *testing.B) {
	text := traceEndContent(b)
	const tail = 1000
	path := filepath.Join(b.TempDir(), "load.db")
	// No periodic snapshots, so the tail stays as long as built.
	opts := Options{SnapshotEvery: -1}
	db, err := Open(path, opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := db.Create(ctx, Meta{ID: "paper", ViewID: "view-paper"}, &Record{Rev: 1, Op: ot.Op{{S: text}}}); err != nil {
		b.Fatal(err)
	}
	if err := db.SaveSnapshot(ctx, "paper", Snapshot{Rev: 1, Text: text}); err != nil {
		b.Fatal(err)
	}

	// Typing at a cursor that mostly moves a little, sometimes jumps, with
	// a deletion now and then, like the trace itself.
	rng := rand.New(rand.NewPCG(1, 2))
	n, pos := utf8.RuneCountInString(text), 0
	var recs []Record
	for rev := int64(2); rev <= tail+1; rev++ {
		if rng.IntN(20) == 0 {
			pos = rng.IntN(n)
		}
		var op ot.Op
		if pos > 0 {
			op = append(op, ot.Component{N: pos})
		}
		if rng.IntN(4) == 0 && pos < n {
			op = append(op, ot.Component{N: -1})
			n--
		} else {
			op = append(op, ot.Component{S: "e"})
			n++
			pos++
		}
		if rest := n - pos; rest > 0 {
			op = append(op, ot.Component{N: rest})
		}
		recs = append(recs, Record{Rev: rev, Op: op, Client: "c", Seq: rev})
	}
	for i := 0; i < len(recs); i += 100 {
		if err := db.Append(ctx, "paper", recs[i:min(i+100, len(recs))]); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}

	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		db, err := Open(path, opts)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		doc, err := db.Load(ctx, "paper")
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if doc.Rev != tail+1 || utf8.RuneCountInString(doc.Text) != n {
			b.Fatalf("Load: got rev %d with %d code points, want rev %d with %d", doc.Rev, utf8.RuneCountInString(doc.Text), tail+1, n)
		}
		db.Close()
		b.StartTimer()
	}
}
