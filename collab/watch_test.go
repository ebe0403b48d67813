package collab

import (
	"testing"
	"time"
)

// TestWriteWatch: a write past its deadline is cut; one that ended is
// not; a write with a deadline sooner than the armed timer's is cut at
// its own deadline, not the earlier write's.
func TestWriteWatch(t *testing.T) {
	ctx := guardCtx(t)
	newWatch := func() (*writeWatch, chan struct{}) {
		cut := make(chan struct{}, 1)
		w := &writeWatch{cut: func() {
			select {
			case cut <- struct{}{}:
			default:
			}
		}}
		t.Cleanup(w.stop)
		return w, cut
	}
	wait := func(cut chan struct{}, what string) {
		t.Helper()
		select {
		case <-cut:
		case <-ctx.Done():
			t.Fatalf("%s: never cut", what)
		}
	}

	w, cut := newWatch()
	w.begin(20 * time.Millisecond)
	wait(cut, "a write that never ends")

	w, cut = newWatch()
	for range 5 {
		w.begin(20 * time.Millisecond)
		w.end()
	}
	time.Sleep(60 * time.Millisecond)
	select {
	case <-cut:
		t.Fatal("cut with no write under way")
	default:
	}

	w, cut = newWatch()
	w.begin(time.Hour)
	w.end()
	w.begin(20 * time.Millisecond) // the guard's deadline is far shorter than an hour
	wait(cut, "a short write after a long one")
}
