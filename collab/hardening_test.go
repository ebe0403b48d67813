package collab

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

// TestJoinQueuedBehindFailedCommit: a hello that waits in the hub's queue
// while a commit fails still hears why its session ends, rather than
// waiting for a welcome that never comes.
func TestJoinQueuedBehindFailedCommit(t *testing.T) {
	ctx := guardCtx(t)
	ts, gs, id, r1, release := heldCommit(t, ctx)
	r2 := ts.raw(t, id)
	if err := r2.send(ctx, map[string]any{"type": "hello", "client": uuid.NewString()}); err != nil {
		t.Fatal(err)
	}
	// Give the hello time to reach the hub's queue; should it arrive
	// later, it meets a fresh hub and the test passes trivially.
	time.Sleep(100 * time.Millisecond)
	gs.setFail(errors.New("disk on fire"))
	release()
	r1.expectError(t, ctx, CodeInternal, websocket.StatusInternalError)
	code, msgs, err := r2.closeStatus(ctx)
	if err != nil && ctx.Err() != nil {
		t.Fatalf("the queued joiner heard nothing: %v", err)
	}
	if code != websocket.StatusInternalError && !strings.Contains(rawList(msgs), typeWelcome) {
		t.Errorf("queued joiner: got close %d after %s, want a welcome or an internal error", code, rawList(msgs))
	}
}

// TestOpAfterRejectedOpIgnored: an op queued right behind one that ended
// the session with bad_op is not applied.
func TestOpAfterRejectedOpIgnored(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "hello")
	ctx := guardCtx(t)
	r := ts.raw(t, id)
	r.hello(t, ctx, uuid.NewString(), -1)
	if err := sendAll(ctx, r, `{"type":"op","rev":1,"seq":1,"op":[3,"!"]}`, `{"type":"op","rev":1,"seq":1,"op":[5,"!"]}`); err != nil {
		t.Fatal(err)
	}
	r.expectError(t, ctx, CodeBadOp, 4409)
	// A welcome passes through the hub after both ops.
	w := ts.raw(t, id).hello(t, ctx, uuid.NewString(), -1)
	if w.Rev != 1 {
		t.Errorf("after bad_op ended the session, the op behind it was applied: rev %d, want 1", w.Rev)
	}
	if d := ts.docState(t, id); d.Text != "hello" {
		t.Errorf("got text %q, want \"hello\"", d.Text)
	}
}

// TestCursorOutOfRange: positions past the text, however large, are
// clamped to it before they move through later ops, so peers never see
// a position outside the text.
func TestCursorOutOfRange(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "hello") // rev 1
	ctx := guardCtx(t)
	obs := ts.raw(t, id)
	obs.hello(t, ctx, uuid.NewString(), -1)
	w := ts.raw(t, id)
	w.hello(t, ctx, uuid.NewString(), -1)
	obs.expect(t, ctx, typePresence)
	w.sendOp(t, ctx, 1, 1, ot.Op{ot.Insert("x"), ot.Retain(5)}) // rev 2: "xhello"
	w.expect(t, ctx, typeAck)
	obs.expect(t, ctx, typeOp)
	for _, tc := range []struct {
		cursor string
		want   Range
	}{
		{`{"type":"cursor","rev":1,"ranges":[[9223372036854775807,1]]}`, Range{6, 2}},
		{`{"type":"cursor","rev":1,"ranges":[[3,99]]}`, Range{4, 6}},
		{`{"type":"cursor","rev":2,"ranges":[[99,0]]}`, Range{6, 0}},
	} {
		if err := w.send(ctx, tc.cursor); err != nil {
			t.Fatal(err)
		}
		m := obs.expect(t, ctx, typePresence)
		if len(m.Ranges) != 1 || m.Ranges[0] != tc.want {
			t.Errorf("cursor %s: peers got ranges %v, want [%v]", tc.cursor, m.Ranges, tc.want)
		}
	}
}

// TestHistoryBoundedByBytes: a few huge ops do not stay pinned in a
// hub's memory, and the history it keeps stays contiguous.
func TestHistoryBoundedByBytes(t *testing.T) {
	const budget = 64 << 10
	srv := New(newMemStore(), Options{HistoryBytes: budget, HistoryLimit: 100})
	defer srv.Close(context.Background())
	h := newHub(srv, "doc")
	big := strings.Repeat("x", 40<<10)
	for rev := int64(1); rev <= 1000; rev++ {
		text := "y"
		if rev%10 == 0 {
			text = big
		}
		op := ot.Op{ot.Insert(text)}
		h.remember(Record{Rev: rev, Op: op}, opBytes(op))
		if h.histBytes > 2*budget+len(big) || len(h.history) > 200 {
			t.Fatalf("after rev %d: history holds %d ops, %d bytes; want at most 200 ops and %d bytes",
				rev, len(h.history), h.histBytes, 2*budget+len(big))
		}
		if first := h.history[0].Rev; first != h.histBase+1 || h.histBase+int64(len(h.history)) != rev {
			t.Fatalf("after rev %d: history starts at rev %d with base %d and holds %d ops", rev, first, h.histBase, len(h.history))
		}
	}
	// The newest op stays even when it alone is over the budget.
	huge := ot.Op{ot.Insert(strings.Repeat("z", 3*budget))}
	h.remember(Record{Rev: 1001, Op: huge}, opBytes(huge))
	h.remember(Record{Rev: 1002, Op: huge}, opBytes(huge))
	if n := len(h.history); n != 1 || h.history[0].Rev != 1002 {
		t.Errorf("got %d ops in history, want only rev 1002", n)
	}
}

// TestCatchUpFromStoreWhenHistoryIsShort: a client further behind than
// the hub's memory catches up from the store.
func TestCatchUpFromStoreWhenHistoryIsShort(t *testing.T) {
	ts := newTestServer(t, Options{HistoryBytes: 1, HistoryLimit: 1})
	id, _ := ts.createDoc(t, "")
	ctx := guardCtx(t)
	c := ts.dial(t, id, ClientOptions{})
	for i := range 10 {
		if err := c.Edit(ot.Op{}.Retain(2 * i).Insert("ab")); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	w := ts.raw(t, id).hello(t, ctx, uuid.NewString(), 1)
	if len(w.Ops) != int(w.Rev-1) || w.Text != nil {
		t.Errorf("catch-up from rev 1 at rev %d got %d ops (text %v), want %d ops", w.Rev, len(w.Ops), w.Text != nil, w.Rev-1)
	}
}

// TestCursorRangeShape: a range is exactly two integers.
func TestCursorRangeShape(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "hello")
	ctx := guardCtx(t)
	for _, ranges := range []string{`[[1,2,3]]`, `[[1]]`, `[[]]`, `[[1,2],null]`, `[1,2]`, `[[1.5,2]]`, `[["1",2]]`} {
		r := ts.raw(t, id)
		r.hello(t, ctx, uuid.NewString(), -1)
		if err := r.send(ctx, `{"type":"cursor","rev":1,"ranges":`+ranges+`}`); err != nil {
			t.Fatal(err)
		}
		r.expectError(t, ctx, CodeBadMessage, 4400)
	}
	checkServing(t, ts, id)
}

// TestOpsAreNormalized: an op is canonicalized before it is transformed,
// applied and stored, so a delete written before an insert transforms
// exactly as the canonical order does.
func TestOpsAreNormalized(t *testing.T) {
	ctx := guardCtx(t)
	var texts []string
	for _, op := range []string{`[-2,"XY",6]`, `["XY",-2,6]`} {
		ts := newTestServer(t, Options{})
		id, _ := ts.createDoc(t, "abcdefgh") // rev 1
		b := ts.raw(t, id)
		b.hello(t, ctx, uuid.NewString(), -1)
		b.sendOp(t, ctx, 1, 1, ot.Op{ot.Retain(1), ot.Insert("b"), ot.Retain(7)})
		b.expect(t, ctx, typeAck)
		a := ts.raw(t, id)
		a.hello(t, ctx, uuid.NewString(), -1)
		if err := a.send(ctx, `{"type":"op","rev":1,"seq":1,"op":`+op+`}`); err != nil {
			t.Fatal(err)
		}
		a.expect(t, ctx, typeAck)
		ops := ts.allOps(t, id, 10)
		if got := ops[len(ops)-1].Op; !slices.Equal(got, got.Normalize()) {
			t.Errorf("op %s: stored %v, not canonical", op, got)
		}
		texts = append(texts, ts.docState(t, id).Text)
	}
	if texts[0] != texts[1] {
		t.Errorf("[-2,\"XY\",6] gave %q, [\"XY\",-2,6] gave %q: want the same", texts[0], texts[1])
	}
}

// TestUpgradeErrorsAreJSON: requests the WebSocket handshake refuses get
// the API's JSON error body too, and the origin check holds.
func TestUpgradeErrorsAreJSON(t *testing.T) {
	ts := newTestServer(t, Options{AllowedOrigins: []string{"allowed.example"}})
	id, _ := ts.createDoc(t, "x")
	url := ts.URL + "/api/docs/" + id + "/ws"
	upgrade := http.Header{
		"Connection": {"Upgrade"}, "Upgrade": {"websocket"},
		"Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="},
	}
	with := func(k, v string) http.Header {
		h := upgrade.Clone()
		h.Set(k, v)
		return h
	}
	for _, tc := range []struct {
		what   string
		header http.Header
		status int
		code   string
	}{
		{"plain GET", nil, http.StatusUpgradeRequired, CodeBadMessage},
		{"foreign origin", with("Origin", "https://evil.example"), http.StatusForbidden, CodeForbidden},
		{"wrong version", with("Sec-Websocket-Version", "12"), http.StatusBadRequest, CodeBadMessage},
	} {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header = tc.header
		if req.Header == nil {
			req.Header = http.Header{}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantAPIError(t, tc.what, resp.StatusCode, resp.Header, body, tc.status, tc.code)
	}

	// The server's own origin and the allowed one open sessions.
	ctx := guardCtx(t)
	for _, origin := range []string{ts.URL, "https://allowed.example"} {
		ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}})
		if err != nil {
			t.Errorf("origin %s: %v", origin, err)
			continue
		}
		ws.CloseNow()
	}
}

// TestCatchUpBoundedByBytes: reaching back past MaxCatchUpBytes of ops in
// the store gives a stale op bad_op instead of reading it all into the
// hub, while a reconnecting editor and a viewer get the ops, which their
// connections read from the store a page at a time.
func TestCatchUpBoundedByBytes(t *testing.T) {
	ts := newTestServer(t, Options{HistoryLimit: 1, HistoryBytes: 1, MaxCatchUpBytes: 64 << 10})
	id, viewID := ts.createDoc(t, "") // rev 0
	ctx := guardCtx(t)
	c := ts.dial(t, id, ClientOptions{})
	chunk := strings.Repeat("x", 20<<10)
	for i := range 6 { // revs 1..6, 120 KiB in all
		if err := c.Edit(ot.Op{}.Retain(i * len(chunk)).Insert(chunk)); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if w := ts.raw(t, id).hello(t, ctx, uuid.NewString(), 0); w.Text != nil || len(w.Ops) != 6 {
		t.Errorf("welcome from rev 0: got %d ops and text %v, want 6 ops", len(w.Ops), w.Text != nil)
	}
	if w := ts.raw(t, id).hello(t, ctx, uuid.NewString(), 5); len(w.Ops) != 1 || w.Text != nil {
		t.Errorf("welcome from rev 5: got %d ops, want 1", len(w.Ops))
	}
	r := ts.raw(t, id)
	r.hello(t, ctx, uuid.NewString(), -1)
	r.sendOp(t, ctx, 0, 1, ot.Op{ot.Insert("a")})
	r.expectError(t, ctx, CodeBadOp, 4409)
	s := openSSE(t, http.DefaultClient, viewEventsURL(ts.URL, viewID)+"?since=0", nil)
	for rev := int64(1); rev <= 6; rev++ {
		if m := s.nextEvent(t); m.Kind != "op" || m.ID != rev {
			t.Fatalf("viewer resuming from rev 0: got %v, want op %d", m.Kind, rev)
		}
	}
	checkServing(t, ts, id)
}
