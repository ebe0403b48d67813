package jetstream

import (
	"fmt"
	"testing"
	"time"
)

// TestOutbox: events added by any node are read, oldest first, by the one
// node that holds the delivery lease; removal drops a prefix; when the
// deliverer stops renewing, another node takes over the events left; the
// stream's limits drop the oldest events.
func TestOutbox(t *testing.T) {
	ns := startNATS(t)
	ctx := testCtx(t)
	a := ns.newStore(t, Options{NodeID: "a", LeaseTTL: 500 * time.Millisecond})
	b := ns.newStore(t, Options{NodeID: "b", LeaseTTL: 500 * time.Millisecond})
	oa, err := a.Outbox(ctx, 5, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	ob, err := b.Outbox(ctx, 5, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	if err := oa.Add(ctx, [][]byte{[]byte("e1"), []byte("e2")}); err != nil {
		t.Fatal(err)
	}
	if err := ob.Add(ctx, [][]byte{[]byte("e3")}); err != nil {
		t.Fatal(err)
	}
	bodies := func(evs []HookEvent) string {
		s := ""
		for _, ev := range evs {
			s += string(ev.Body) + " "
		}
		return s
	}
	evs, err := oa.Pending(ctx, 10)
	if err != nil || bodies(evs) != "e1 e2 e3 " {
		t.Fatalf("a's Pending = %q, %v; want e1 e2 e3", bodies(evs), err)
	}
	if evs, err := ob.Pending(ctx, 10); err != nil || len(evs) != 0 || ob.Delivers() {
		t.Fatalf("b's Pending while a delivers = %q, %v; want none", bodies(evs), err)
	}
	if err := oa.Remove(ctx, evs[0].Seq); err != nil {
		t.Fatal(err)
	}
	if n, _, err := oa.Size(ctx); err != nil || n != 2 {
		t.Fatalf("Size after removing one = %d, %v; want 2", n, err)
	}

	// a stops renewing (a crash): b takes over once the lease lapses.
	oa.mu.Lock()
	oa.lease.Close()
	oa.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err = ob.Pending(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if bodies(evs) != "e2 e3 " {
		t.Fatalf("b's Pending after a's lease lapsed = %q; want e2 e3", bodies(evs))
	}

	// Past 5 events the oldest go.
	for i := range 6 {
		if err := ob.Add(ctx, [][]byte{fmt.Appendf(nil, "f%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err = ob.Pending(ctx, 10)
	if err != nil || bodies(evs) != "f1 f2 f3 f4 f5 " {
		t.Fatalf("Pending past the bound = %q, %v; want f1 to f5", bodies(evs), err)
	}
}
