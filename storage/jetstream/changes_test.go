package jetstream

import (
	"testing"
	"time"
)

// TestChanges: a feed delivers, in order, what any node commits after
// the position it starts from, with the revision for ops; a feed started
// later from a recorded position gets only what came after it, and
// survives a NATS restart.
func TestChanges(t *testing.T) {
	ns := startNATS(t)
	a, b := ns.newStore(t, Options{}), ns.newStore(t, Options{})
	ctx := testCtx(t)
	info, err := a.OpenKV(ctx, KVDocInfo, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.OpenKV(ctx, KVDocInfo, 1, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.FeedEnd(ctx, "nope"); err == nil {
		t.Error("FeedEnd of an unknown feed: no error")
	}
	start, err := b.FeedEnd(ctx, FeedOps)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan Change, 100)
	wctx, stop := watchCtx(t)
	done, err := b.Changes(wctx, FeedOps, start, func(c Change) { got <- c })
	if err != nil {
		t.Fatal(err)
	}
	m := createDoc(t, a)
	var ty typist
	if err := a.Append(ctx, m.ID, ty.group(3, "c1", 1)); err != nil {
		t.Fatal(err)
	}
	if err := a.Append(ctx, m.ID, ty.group(2, "c1", 4)); err != nil {
		t.Fatal(err)
	}
	next := func(ch chan Change) Change {
		t.Helper()
		select {
		case c := <-ch:
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("the feed delivered nothing")
			return Change{}
		}
	}
	c1, c2 := next(got), next(got)
	if c1.Doc != m.ID || c1.Rev != 3 || c2.Doc != m.ID || c2.Rev != 5 || c2.Seq <= c1.Seq {
		t.Errorf("ops feed: got %+v, %+v; want revs 3 then 5 of %s", c1, c2, m.ID)
	}
	stop()
	<-done

	// A feed from c1's position: c2 only, then what is new, also after a
	// restart of NATS.
	got2 := make(chan Change, 100)
	wctx, stop = watchCtx(t)
	done, err = b.Changes(wctx, FeedOps, c1.Seq, func(c Change) { got2 <- c })
	if err != nil {
		t.Fatal(err)
	}
	if c := next(got2); c.Seq != c2.Seq {
		t.Errorf("feed from %d: got %+v, want seq %d", c1.Seq, c, c2.Seq)
	}
	ns.restart()
	waitConnected(t, a)
	ctx = testCtx(t)
	if err := a.Append(ctx, m.ID, ty.group(1, "c1", 6)); err != nil {
		t.Fatalf("append after the restart: %v", err)
	}
	if c := next(got2); c.Doc != m.ID || c.Rev != 6 {
		t.Errorf("after a NATS restart: got %+v, want rev 6", c)
	}
	stop()
	<-done

	// The workspace bucket's feed names the document, for puts and
	// deletes alike.
	got3 := make(chan Change, 100)
	wctx, stop = watchCtx(t)
	done, err = b.Changes(wctx, FeedDocInfo, 0, func(c Change) { got3 <- c })
	if err != nil {
		t.Fatal(err)
	}
	if err := info.Put(ctx, m.ID, []byte(`{"title":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if err := info.Delete(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if p, d := next(got3), next(got3); p.Doc != m.ID || d.Doc != m.ID || d.Seq <= p.Seq {
		t.Errorf("docinfo feed: got %+v, %+v", p, d)
	}
	end, err := b.FeedEnd(ctx, FeedDocInfo)
	if err != nil || end < 2 {
		t.Errorf("FeedEnd(docinfo) = %d, %v; want at least 2", end, err)
	}
	stop()
	<-done
}
