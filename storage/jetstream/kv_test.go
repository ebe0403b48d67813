package jetstream

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestKV: what one node puts another reads, and sees in its watch;
// deletes stick across a NATS restart.
func TestKV(t *testing.T) {
	ns := startNATS(t)
	a, b := ns.newStore(t, Options{}), ns.newStore(t, Options{})
	ctx := testCtx(t)
	ka, err := a.OpenKV(ctx, KVAccess, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := b.OpenKV(ctx, KVAccess, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.OpenKV(ctx, "docs", 1, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("open another bucket: got %v, want ErrInvalid", err)
	}
	seen := make(chan string, 10)
	wctx, stop := watchCtx(t)
	done, err := kb.Watch(wctx, func(k string) { seen <- k })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kb.Get(ctx, "doc-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get before put: got %v, want ErrNotFound", err)
	}
	if err := ka.Put(ctx, "doc-1", []byte(`{"link":"none"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case k := <-seen:
		if k != "doc-1" {
			t.Errorf("watch: got %q, want doc-1", k)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the other node's watch saw nothing")
	}
	if v, err := kb.Get(ctx, "doc-1"); err != nil || string(v) != `{"link":"none"}` {
		t.Errorf("other node's get: %q, %v", v, err)
	}
	if err := ka.Put(ctx, "doc.1", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("a key with a dot: got %v, want ErrInvalid", err)
	}
	gone := make(chan string, 10)
	gctx, stopGone := watchCtx(t)
	goneDone, err := kb.WatchDeleted(gctx, func(k string) { gone <- k })
	if err != nil {
		t.Fatal(err)
	}
	if err := ka.Delete(ctx, "doc-1"); err != nil {
		t.Fatal(err)
	}
	select {
	case k := <-gone:
		if k != "doc-1" {
			t.Errorf("deletes watched: got %q, want doc-1", k)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the other node's watch of deletes saw nothing")
	}
	select {
	case k := <-seen:
		t.Errorf("the watch of puts saw the delete of %q", k)
	default:
	}
	stop()
	<-done
	stopGone()
	<-goneDone
	ns.restart()
	ctx = testCtx(t)
	// The connection comes back a moment after the server.
	_, err = kb.Get(ctx, "doc-1")
	for deadline := time.Now().Add(10 * time.Second); err != nil && !errors.Is(err, ErrNotFound) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		_, err = kb.Get(ctx, "doc-1")
	}
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("get after delete and restart: got %v, want ErrNotFound", err)
	}
}

func watchCtx(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx, cancel
}
