package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/ot/ottest"
)

// The history benchmarks store the automerge-paper trace (259,778 edits by
// one author; CC BY 4.0, Joseph Gentle; prepared by Martin Kleppmann) as
// one document, one op per edit, appended 64 ops per commit. The trace's
// own timestamps all fall within one second, so the ops get times of a
// week of writing instead: an edit every 300 ms in sessions of 20,000
// edits, eight hours apart.
//
// Building a file takes a while, so each configuration is built once per
// test binary, in a directory TestMain removes.

var paperFiles struct {
	once sync.Once
	dir  string
	err  error

	mu    sync.Mutex
	built map[string]string // options -> path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if paperFiles.dir != "" {
		os.RemoveAll(paperFiles.dir)
	}
	os.Exit(code)
}

// paperTime is the time of op rev of the benchmark document.
func paperTime(rev int64) time.Time {
	base := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	i := rev - 1
	return base.Add(time.Duration(i)*300*time.Millisecond + time.Duration(i/20000)*8*time.Hour)
}

// paperOps turns the trace into ops, one per edit.
func paperOps(tb testing.TB) []ot.Op {
	tr := ottest.Open(tb, "../../shared/traces", "automerge-paper.json.gz")
	var ops []ot.Op
	n := 0
	for _, txn := range tr.Txns {
		for _, p := range txn.Patches {
			op := ot.Op{}.Retain(p.Pos).Insert(p.Ins).Delete(p.Del).Retain(n - p.Pos - p.Del)
			n = op.TargetLen()
			ops = append(ops, op)
		}
	}
	return ops
}

// paperDB returns the path of a storage file holding the paper as document
// "paper", written with opts, its milestones all built.
func paperDB(b *testing.B, opts Options) string {
	b.Helper()
	ops := paperOps(b)
	paperFiles.once.Do(func() {
		paperFiles.dir, paperFiles.err = os.MkdirTemp("", "collabd-history-bench-")
		paperFiles.built = map[string]string{}
	})
	if paperFiles.err != nil {
		b.Fatal(paperFiles.err)
	}
	name := fmt.Sprintf("every=%d,bytes=%d", opts.SnapshotEvery, opts.SnapshotBytes)
	paperFiles.mu.Lock()
	defer paperFiles.mu.Unlock()
	if path, ok := paperFiles.built[name]; ok {
		return path
	}
	path := filepath.Join(paperFiles.dir, name+".db")
	db, err := Open(path, opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := db.Create(ctx, Meta{ID: "paper", ViewID: "view-paper"}, nil); err != nil {
		b.Fatal(err)
	}
	const client = "5f1c7c2e-6b1d-4c57-9d4e-2a0b7f3c1e99"
	for i := 0; i < len(ops); i += 64 {
		recs := make([]Record, 0, 64)
		for j := i; j < min(i+64, len(ops)); j++ {
			rev := int64(j + 1)
			recs = append(recs, Record{Rev: rev, Op: ops[j], Client: client, Seq: rev, Time: paperTime(rev)})
		}
		if err := db.Append(ctx, "paper", recs); err != nil {
			b.Fatal(err)
		}
	}
	if opts.SnapshotEvery > 0 {
		waitSettled(b, db, "paper", int64(len(ops)))
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	paperFiles.built[name] = path
	return path
}

// waitSettled waits until the snapshotter has built document id's
// milestones up to its head.
func waitSettled(tb testing.TB, db *DB, id string, head int64) {
	tb.Helper()
	last, since := int64(-1), time.Now()
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var rev int64
		err := db.bolt.View(func(tx *bbolt.Tx) error {
			m, keys, err := readMeta(tx, id)
			if err != nil {
				return err
			}
			s, _, err := snapshotBefore(tx, keys, m, keys.snap(-1), true)
			rev = s.Rev
			return err
		})
		if err != nil {
			tb.Fatal(err)
		}
		db.snapMu.Lock()
		pending := len(db.snapPending)
		db.snapMu.Unlock()
		if rev != last {
			last, since = rev, time.Now()
		}
		if pending == 0 && head-rev < db.snapshotEvery && time.Since(since) > 200*time.Millisecond {
			return
		}
	}
	tb.Fatalf("milestones of %s not settled: last at %d of %d", id, last, head)
}

// fileStats reports the file's size (what a backup copies, without the
// space bbolt preallocates past its end) and what the snapshots take.
func fileStats(b *testing.B, db *DB) (size, snaps int64, count int) {
	b.Helper()
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		size = tx.Size()
		s := tx.Bucket(bucketSnaps).Stats()
		snaps = int64(s.BranchAlloc + s.LeafAlloc)
		count = s.KeyN
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return size, snaps, count
}

func percentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(pct(1), "max-µs")
}

// BenchmarkTextAtPaper reads the paper at random revisions. The file is
// reopened first, so nothing of it is cached in the process (the OS page
// cache still is, as on a server that has been reading it). It also
// reports the file's size beside the size of the same history written
// without milestones.
func BenchmarkTextAtPaper(b *testing.B) {
	head := int64(len(paperOps(b)))
	plain := paperDB(b, Options{SnapshotEvery: -1})
	db0, err := Open(plain, Options{SnapshotEvery: -1})
	if err != nil {
		b.Fatal(err)
	}
	size0, _, _ := fileStats(b, db0)
	db0.Close()
	for _, every := range []int{250, 1000, 4000} {
		b.Run(fmt.Sprintf("every=%d", every), func(b *testing.B) {
			opts := Options{SnapshotEvery: every}
			db, err := Open(paperDB(b, opts), opts)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			size, snaps, count := fileStats(b, db)
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(1, uint64(every)))
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				rev := 1 + rng.Int64N(head)
				start := time.Now()
				if _, err := db.TextAt(ctx, "paper", rev); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			percentiles(b, lat)
			b.ReportMetric(float64(size)/1e6, "file-MB")
			b.ReportMetric(float64(size0)/1e6, "plain-MB")
			b.ReportMetric(float64(size)/float64(size0), "x-plain")
			b.ReportMetric(float64(snaps)/1e6, "snaps-MB")
			b.ReportMetric(float64(count), "snapshots")
		})
	}
}

// BenchmarkRevisionsPaper reads pages of 1,000 revisions at random places
// of the paper's history.
func BenchmarkRevisionsPaper(b *testing.B) {
	head := int64(len(paperOps(b)))
	opts := Options{}
	db, err := Open(paperDB(b, opts), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(2, 3))
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		after := rng.Int64N(head)
		start := time.Now()
		if _, err := db.Revisions(ctx, "paper", after, 1000); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	percentiles(b, lat)
}

// BenchmarkActivityPaper draws the paper's week of writing: every bucket
// of its history by minute, hour and day, paging 1,000 buckets at a time,
// as a timeline would, and one scan of all 259,778 revisions for
// comparison.
func BenchmarkActivityPaper(b *testing.B) {
	opts := Options{}
	db, err := Open(paperDB(b, opts), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for _, unit := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour} {
		b.Run(unit.String(), func(b *testing.B) {
			var buckets, pages int
			for range b.N {
				buckets, pages = 0, 0
				for after := int64(0); ; {
					page, err := db.Activity(ctx, "paper", after, unit, 1000)
					if err != nil {
						b.Fatal(err)
					}
					if len(page) == 0 {
						break
					}
					buckets += len(page)
					pages++
					after = page[len(page)-1].LastRev
				}
			}
			b.ReportMetric(float64(buckets), "buckets")
			b.ReportMetric(float64(pages), "pages")
		})
	}
	b.Run("scan-all-revisions", func(b *testing.B) {
		for range b.N {
			n := 0
			for after := int64(0); ; {
				page, err := db.Revisions(ctx, "paper", after, 1000)
				if err != nil {
					b.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				n += len(page)
				after = page[len(page)-1].Rev
			}
		}
	})
}

// BenchmarkRevAtPaper finds the revision at random times of the week.
func BenchmarkRevAtPaper(b *testing.B) {
	head := int64(len(paperOps(b)))
	opts := Options{}
	db, err := Open(paperDB(b, opts), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	first, last := paperTime(1), paperTime(head)
	rng := rand.New(rand.NewPCG(4, 5))
	b.ResetTimer()
	for range b.N {
		t := first.Add(time.Duration(rng.Int64N(int64(last.Sub(first)))))
		if _, err := db.RevAt(ctx, "paper", t); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeletePaper deletes the paper (259,778 ops and 259
// milestones) from a copy of its file: the one transaction that holds the
// committer while it runs.
func BenchmarkDeletePaper(b *testing.B) {
	src := paperDB(b, Options{})
	data, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "delete.db")
	ctx := context.Background()
	var total time.Duration
	for range b.N {
		b.StopTimer()
		if err := os.WriteFile(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
		db, err := Open(path, Options{SnapshotEvery: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if err := db.Delete(ctx, "paper"); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/delete")
}
