package search

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/collabd/collabd/collab"
)

// BenchmarkIndexBatch: one batch of 100 documents of 10 KB, as the
// indexer writes while 100 documents are being edited.
//
//	go test -run '^$' -bench BenchmarkIndexBatch ./search
func BenchmarkIndexBatch(b *testing.B) {
	x, err := Open(filepath.Join(b.TempDir(), "idx"))
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	r := rand.New(rand.NewPCG(1, 1))
	var entries []collab.IndexEntry
	for i := range 100 {
		var sb strings.Builder
		for sb.Len() < 10_000 {
			fmt.Fprintf(&sb, "w%d ", r.IntN(50_000))
		}
		entries = append(entries, collab.IndexEntry{ID: fmt.Sprint(i), Text: sb.String(), Title: "t", Owner: "o", Readers: []string{"u:o"}, Updated: time.Now()})
	}
	benchBatch(b, x, entries)
}

// BenchmarkIndexBatchText: the same with real text, 100 documents of
// 10 KB cut from the shared editing traces (prose and code), whose words
// repeat as words do.
//
//	go test -run '^$' -bench BenchmarkIndexBatchText ./search
func BenchmarkIndexBatchText(b *testing.B) {
	var text strings.Builder
	for _, name := range []string{"automerge-paper", "rustcode", "friendsforever"} {
		f, err := os.Open(filepath.Join("..", "..", "shared", "traces", name+".json.gz"))
		if errors.Is(err, os.ErrNotExist) {
			b.Skip("../../shared/traces is absent: the text comes from the shared editing traces")
		}
		if err != nil {
			b.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			b.Fatal(err)
		}
		var tr struct{ EndContent string }
		err = json.NewDecoder(zr).Decode(&tr)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		text.WriteString(tr.EndContent)
		text.WriteString("\n")
	}
	corpus := text.String()
	x, err := Open(filepath.Join(b.TempDir(), "idx"))
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	r := rand.New(rand.NewPCG(1, 1))
	var entries []collab.IndexEntry
	for i := range 100 {
		at := r.IntN(len(corpus) - 10_000)
		entries = append(entries, collab.IndexEntry{ID: fmt.Sprint(i), Text: corpus[at : at+10_000], Title: "t", Owner: "o", Readers: []string{"u:o"}, Updated: time.Now()})
	}
	benchBatch(b, x, entries)
}

// benchBatch indexes entries, 1 MB, b.N times.
func benchBatch(b *testing.B, x *Index, entries []collab.IndexEntry) {
	b.SetBytes(100 * 10_000)
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		if err := x.Index(b.Context(), entries, nil); err != nil {
			b.Fatal(err)
		}
	}
	// The process's CPU time, background writing and merging included:
	// on a shared machine wall time says more about the neighbours.
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/MB")
}

// cpuTime is the CPU time the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
