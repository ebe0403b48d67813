package collab

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

// TestMemoryBudgetAcrossDocuments floods many documents, each well within
// its own HistoryBytes, with large inserts that add up to nearly four times
// a small MemoryBudget (issue 22: 64 such documents took the server to 4.7
// GB). The memory the documents hold stays under the budget, every edit
// is still served, and the ops trimmed from memory are read back from the
// store correctly: for a welcome's catch-up, for a stale op's transform
// and for a viewer's.
func TestMemoryBudgetAcrossDocuments(t *testing.T) {
	const (
		budget = 4 << 20
		docs   = 12
		rounds = 40
		size   = 32 << 10 // inserted per op: docs*rounds*size is 15 MiB
	)
	ts := newTestServer(t, Options{MemoryBudget: budget, CreateBurst: docs, IdleUnload: time.Hour})
	ctx := guardCtx(t)
	textAt := func(doc, rev int) string { // the text of a document at rev >= 1
		return fmt.Sprintf("%02d:%04d:", doc, rev) + strings.Repeat(string(rune('a'+rev%26)), size)
	}
	ids := make([]string, docs)
	clients := make([]*Client, docs)
	for i := range ids {
		ids[i], _ = ts.createDoc(t, "")
		clients[i] = ts.dial(t, ids[i], ClientOptions{})
	}
	errs := make(chan error, docs)
	for i, c := range clients {
		go func() {
			errs <- func() error {
				for rev := 1; rev <= rounds; rev++ {
					op := ot.Op{ot.Insert(textAt(i, rev))}
					if n := c.Len(); n > 0 {
						op = ot.Op{ot.Delete(n), op[0]}
					}
					if err := c.Edit(op); err != nil {
						return err
					}
					if err := c.WaitSynced(ctx); err != nil {
						return fmt.Errorf("doc %d rev %d: %w (client error: %v)", i, rev, err, c.Err())
					}
				}
				return nil
			}()
		}()
	}
	for range docs {
		if err := <-errs; err != nil {
			t.Fatalf("an edit was not served: %v", err)
		}
	}
	for i, id := range ids {
		if d := ts.docState(t, id); d.Rev != rounds || d.Text != textAt(i, rounds) {
			t.Fatalf("doc %d at rev %d with %d bytes, want rev %d and its last text", i, d.Rev, len(d.Text), rounds)
		}
	}
	if peak := ts.srv.mem.peak.Load(); peak > budget {
		t.Errorf("documents held %d bytes at most, want at most the budget, %d", peak, budget)
	}

	// A welcome from rev 1, a stale op made at rev 1 and a viewer from
	// rev 1 all need ops the documents no longer hold in memory.
	id := ids[0]
	r := ts.raw(t, id)
	w := r.hello(t, ctx, uuid.NewString(), 1)
	if w.hasField["text"] || len(w.Ops) != rounds-1 {
		t.Fatalf("welcome from rev 1 got %d ops (text: %v), want %d", len(w.Ops), w.hasField["text"], rounds-1)
	}
	text := textAt(0, 1)
	for _, op := range w.Ops {
		var err error
		if text, err = ot.Apply(text, op.Op); err != nil {
			t.Fatal(err)
		}
	}
	if text != textAt(0, rounds) {
		t.Fatalf("catch-up from rev 1 makes a text of %d bytes, not the last one", len(text))
	}
	stale := ot.Op{ot.Insert("Z"), ot.Retain(len(textAt(0, 1)))}
	for _, op := range w.Ops { // committed first: their inserts go left
		var err error
		if _, stale, err = ot.Transform(op.Op, stale); err != nil {
			t.Fatal(err)
		}
	}
	want, err := ot.Apply(textAt(0, rounds), stale)
	if err != nil {
		t.Fatal(err)
	}
	r.sendOp(t, ctx, 1, 1, ot.Op{ot.Insert("Z"), ot.Retain(len(textAt(0, 1)))})
	if ack := r.expect(t, ctx, typeAck); ack.Rev != rounds+1 {
		t.Fatalf("stale op acked as rev %d, want %d", ack.Rev, rounds+1)
	}
	if d := ts.docState(t, id); d.Text != want {
		t.Errorf("after a stale op the text is %.12q... (%d bytes), want %.12q... (%d bytes)", d.Text, len(d.Text), want, len(want))
	}
	sse := openSSE(t, http.DefaultClient, ts.URL+"/api/docs/"+id+"/events?since=1", nil)
	defer sse.close()
	v := &viewState{rev: 1, text: textAt(0, 1)}
	v.follow(t, sse, rounds+1)
	if v.text != want {
		t.Errorf("a viewer from rev 1 sees %d bytes, want the text of %d bytes", len(v.text), len(want))
	}
	checkServing(t, ts, id)

	// Once every document has stopped, all they charged is released.
	ts.srv.mu.Lock()
	hubs := make([]*hub, 0, len(ts.srv.hubs))
	for _, h := range ts.srv.hubs {
		hubs = append(hubs, h)
	}
	ts.srv.mu.Unlock()
	r.ws.CloseNow()
	sse.close()
	closeCtx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := ts.srv.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, h := range hubs {
		held += h.histBytes
	}
	if held > budget {
		t.Errorf("the documents' histories held %d bytes in the end, want at most the budget, %d", held, budget)
	}
	if used := ts.srv.mem.used.Load(); used != 0 {
		t.Errorf("after Close the budget has %d bytes charged, want 0", used)
	}
}

// TestMemoryBudgetFull: when what cannot be trimmed (two documents'
// text, both open) holds the whole budget, an op that inserts text is
// refused with too_large while deletions still go through, and a document
// not in memory is not loaded (503); once one of the two is left alone,
// the budget unloads it at once, long before IdleUnload, and the other
// document loads.
func TestMemoryBudgetFull(t *testing.T) {
	const size = 900_000 // a document's text takes about 1.1 MB
	ts := newTestServer(t, Options{MemoryBudget: 2 << 20, IdleUnload: time.Hour})
	ctx := guardCtx(t)
	big := strings.Repeat("x", size)
	a, _ := ts.createDoc(t, big)
	b, _ := ts.createDoc(t, big)
	c, _ := ts.createDoc(t, "c")
	// The refusal ends ra's session: a2 keeps a open.
	ra, a2, rb := ts.raw(t, a), ts.raw(t, a), ts.raw(t, b)
	ra.hello(t, ctx, uuid.NewString(), -1)
	a2.hello(t, ctx, uuid.NewString(), -1)
	rb.hello(t, ctx, uuid.NewString(), -1)

	ra.sendOp(t, ctx, 1, 1, ot.Op{ot.Delete(1), ot.Retain(size - 1)})
	if ack := ra.expect(t, ctx, typeAck); ack.Rev != 2 {
		t.Fatalf("deletion acked as rev %d, want 2", ack.Rev)
	}
	ra.sendOp(t, ctx, 2, 2, ot.Op{ot.Insert("more"), ot.Retain(size - 1)})
	if e := ra.expectError(t, ctx, CodeTooLarge, 4413); e.Seq != 2 || !strings.Contains(e.Message, "memory") {
		t.Errorf("insert refused with seq %d and %q, want seq 2 and memory named", e.Seq, e.Message)
	}
	status, hdr, body := doHTTP(t, http.MethodGet, ts.URL+"/api/docs/"+c, "", nil)
	wantAPIError(t, "load past the budget", status, hdr, body, http.StatusServiceUnavailable, CodeRateLimited)
	if hdr.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}

	rb.ws.CloseNow()
	deadline := time.Now().Add(guard)
	for {
		status, _, _ = doHTTP(t, http.MethodGet, ts.URL+"/api/docs/"+c, "", nil)
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("document c still answers %d with b left alone", status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.srv.mu.Lock()
	_, loaded := ts.srv.hubs[b]
	ts.srv.mu.Unlock()
	if loaded {
		t.Error("document b is still loaded: the budget should have unloaded it")
	}
	if d := ts.docState(t, a); d.Rev != 2 || len(d.Text) != size-1 {
		t.Errorf("document a at rev %d with %d bytes, want rev 2 and %d", d.Rev, len(d.Text), size-1)
	}
}
