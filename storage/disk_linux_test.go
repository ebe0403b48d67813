package storage

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// BenchmarkDiskSync is the disk alone, under a write transaction's
// pattern: a few pages written and fdatasync'd, then the meta page
// written and fdatasync'd, as bbolt commits on Linux. Its p99 is the
// floor of collabd_storage_commit_seconds on this disk; run it on an
// idle machine to tell the disk's tail from the server's.
//
//	go test -run '^$' -bench DiskSync -benchtime 5000x ./storage
func BenchmarkDiskSync(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "sync.dat"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const page, span = 4096, 4096 // a 16 MiB file
	pages := make([]byte, 8*page)
	// Allocate every block first, as a data file that has grown would
	// have them, so that the loop measures overwrites.
	for off := int64(0); off < span*page; off += int64(len(pages)) {
		if _, err := f.WriteAt(pages, off); err != nil {
			b.Fatal(err)
		}
	}
	if err := syscall.Fdatasync(int(f.Fd())); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		off := int64(1+(i*37)%(span-8)) * page
		if _, err := f.WriteAt(pages, off); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
		if _, err := f.WriteAt(pages[:page], 0); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1e3 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
}
