package search

import (
	"fmt"
	"math/rand/v2"
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
