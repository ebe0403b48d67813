package storage

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestObserveCommits: the observer hears of every write transaction once,
// with its duration, concurrent writers' shared ones included; nil stops
// it.
func TestObserveCommits(t *testing.T) {
	db, _ := openTest(t, Options{})
	var observed atomic.Int64
	db.ObserveCommits(func(took time.Duration) {
		if took <= 0 {
			t.Errorf("observed a transaction of %v", took)
		}
		observed.Add(1)
	})
	ctx := context.Background()
	before, _ := db.CommitStats()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for d := range errs {
		wg.Go(func() {
			id := fmt.Sprint("d", d)
			if errs[d] = db.Create(ctx, Meta{ID: id, ViewID: "v" + id}, nil); errs[d] == nil {
				errs[d] = db.Append(ctx, id, tokenRecords(1, 10, "c"))
			}
		})
	}
	wg.Wait()
	for d, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", d, err)
		}
	}
	after, requests := db.CommitStats()
	if o := observed.Load(); o != after-before || o == 0 {
		t.Errorf("observer called %d times for %d transactions (%d writes)", o, after-before, requests)
	}
	db.ObserveCommits(nil)
	if err := db.Append(ctx, "d0", tokenRecords(11, 11, "c")); err != nil {
		t.Fatal(err)
	}
	if o := observed.Load(); o != after-before {
		t.Errorf("observer called after it was removed: %d calls, want %d", o, after-before)
	}
}
