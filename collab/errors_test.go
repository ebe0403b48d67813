package collab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

// TestProtocolErrors provokes every error of the protocol table over a
// raw WebSocket on a document holding "hello" (rev 1), checks the error
// message and the close code that follows it, and checks that the server
// still serves other editors afterwards.
func TestProtocolErrors(t *testing.T) {
	hello := func(ctx context.Context, r *rawConn) error {
		return r.send(ctx, map[string]any{"type": "hello", "client": uuid.NewString(), "name": "x"})
	}
	// then sends hello, then each frame.
	then := func(frames ...string) func(context.Context, *rawConn) error {
		return func(ctx context.Context, r *rawConn) error {
			if err := hello(ctx, r); err != nil {
				return err
			}
			return sendAll(ctx, r, frames...)
		}
	}
	// only sends the frames, without a hello.
	only := func(frames ...string) func(context.Context, *rawConn) error {
		return func(ctx context.Context, r *rawConn) error { return sendAll(ctx, r, frames...) }
	}
	tests := []struct {
		name    string
		opts    Options
		send    func(context.Context, *rawConn) error
		code    string
		close   websocket.StatusCode
		seq     int64    // the seq the error names, if any
		also    []string // message types that may come before the error
		welcome bool     // a welcome may come too
	}{
		{name: "not JSON", send: only(`hello?`), code: CodeBadMessage, close: 4400},
		{name: "not JSON after hello", send: then(`{"type":"op",`), code: CodeBadMessage, close: 4400, welcome: true},
		{name: "array frame", send: only(`[{"type":"hello","client":"` + uuid.NewString() + `"}]`), code: CodeBadMessage, close: 4400},
		{name: "two objects in one frame", send: only(`{"type":"hello","client":"` + uuid.NewString() + `"}{}`), code: CodeBadMessage, close: 4400},
		{name: "unknown type", send: then(`{"type":"dance"}`), code: CodeBadMessage, close: 4400, welcome: true},
		{name: "no type", send: only(`{"client":"` + uuid.NewString() + `"}`), code: CodeBadMessage, close: 4400},
		{name: "hello without client", send: only(`{"type":"hello","name":"x"}`), code: CodeBadMessage, close: 4400},
		{name: "hello with a bad client id", send: only(`{"type":"hello","client":"not-a-uuid"}`), code: CodeBadMessage, close: 4400},
		{name: "hello with a negative rev", send: only(`{"type":"hello","client":"` + uuid.NewString() + `","rev":-1}`), code: CodeBadMessage, close: 4400},
		{name: "op before hello", send: only(`{"type":"op","rev":1,"seq":1,"op":[5,"!"]}`), code: CodeBadMessage, close: 4400},
		{name: "cursor before hello", send: only(`{"type":"cursor","rev":1,"ranges":[[0,0]]}`), code: CodeBadMessage, close: 4400},
		{name: "second hello", send: then(`{"type":"hello","client":"` + uuid.NewString() + `"}`), code: CodeBadMessage, close: 4400, welcome: true},
		{name: "op without seq", send: then(`{"type":"op","rev":1,"op":[5,"!"]}`), code: CodeBadMessage, close: 4400, welcome: true},
		{name: "op without op", send: then(`{"type":"op","rev":1,"seq":1}`), code: CodeBadMessage, close: 4400, welcome: true},
		{name: "cursor without ranges", send: then(`{"type":"cursor","rev":1}`), code: CodeBadMessage, close: 4400, welcome: true},
		{name: "cursor with a negative position", send: then(`{"type":"cursor","rev":1,"ranges":[[-1,0]]}`), code: CodeBadMessage, close: 4400, welcome: true},
		{name: "cursor rev in the future", send: then(`{"type":"cursor","rev":2,"ranges":[[0,0]]}`), code: CodeBadMessage, close: 4400, welcome: true},
		{name: "no hello in time", opts: Options{HelloTimeout: 100 * time.Millisecond}, send: only(), code: CodeBadMessage, close: 4400},
		{name: "binary frame", send: func(ctx context.Context, r *rawConn) error {
			return r.ws.Write(ctx, websocket.MessageBinary, []byte(`{"type":"hello"}`))
		}, code: CodeBadMessage, close: 4400},

		{name: "length mismatch", send: then(`{"type":"op","rev":1,"seq":1,"op":[3,"!"]}`), code: CodeBadOp, close: 4409, seq: 1, welcome: true},
		{name: "zero component", send: then(`{"type":"op","rev":1,"seq":1,"op":[0,5]}`), code: CodeBadOp, close: 4409, seq: 1, welcome: true},
		{name: "empty insert", send: then(`{"type":"op","rev":1,"seq":1,"op":[5,""]}`), code: CodeBadOp, close: 4409, seq: 1, welcome: true},
		{name: "float component", send: then(`{"type":"op","rev":1,"seq":1,"op":[5.0,"!"]}`), code: CodeBadOp, close: 4409, seq: 1, welcome: true},
		{name: "op not an array", send: then(`{"type":"op","rev":1,"seq":1,"op":"hello!"}`), code: CodeBadOp, close: 4409, seq: 1, welcome: true},
		{name: "rev in the future", send: then(`{"type":"op","rev":2,"seq":1,"op":[5,"!"]}`), code: CodeBadOp, close: 4409, seq: 1, welcome: true},
		{name: "seq skips", send: then(`{"type":"op","rev":1,"seq":2,"op":[5,"!"]}`), code: CodeBadOp, close: 4409, seq: 2, welcome: true},
		{name: "seq zero", send: then(`{"type":"op","rev":1,"seq":0,"op":[5,"!"]}`), code: CodeBadOp, close: 4409, welcome: true},
		{name: "seq goes back", send: then(
			`{"type":"op","rev":1,"seq":1,"op":[5,"!"]}`,
			`{"type":"op","rev":2,"seq":2,"op":[6,"!"]}`,
			`{"type":"op","rev":1,"seq":1,"op":[5,"?"]}`,
		), code: CodeBadOp, close: 4409, seq: 1, also: []string{typeAck}, welcome: true},

		{name: "message too large", opts: Options{MaxMessageBytes: 1024},
			send: then(`{"type":"op","rev":1,"seq":1,"op":[5,"` + strings.Repeat("é", 600) + `"]}`),
			code: CodeTooLarge, close: 4413, welcome: true},
		{name: "hello too large", opts: Options{MaxMessageBytes: 1024},
			send: only(`{"type":"hello","client":"` + uuid.NewString() + `","name":"` + strings.Repeat("x", 2000) + `"}`),
			code: CodeTooLarge, close: 4413},
		{name: "document too large", opts: Options{MaxDocChars: 10},
			send: then(`{"type":"op","rev":1,"seq":1,"op":[5,"😀😀😀😀😀😀"]}`),
			code: CodeTooLarge, close: 4413, seq: 1, welcome: true},

		{name: "rate limited", opts: Options{RateLimit: 1, RateBurst: 4},
			send: then(strings.Split(strings.Repeat(`{"type":"cursor","rev":1,"ranges":[[1,1]]}|`, 8), "|")[:8]...),
			code: CodeRateLimited, close: 4429, welcome: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, tc.opts)
			id, _ := ts.createDoc(t, "hello")
			ctx := guardCtx(t)
			r := ts.raw(t, id)
			if err := tc.send(ctx, r); err != nil {
				t.Fatalf("send: %v", err)
			}
			// An error found by the session (a malformed message, say)
			// may overtake the welcome, which the hub sends.
			also := tc.also
			if tc.welcome {
				also = append(also, typeWelcome)
			}
			e := r.expectError(t, ctx, tc.code, tc.close, also...)
			if e.Seq != tc.seq {
				t.Errorf("error names seq %d, want %d (%s)", e.Seq, tc.seq, e.raw)
			}
			if d := ts.docState(t, id); tc.code != CodeBadOp && tc.name != "seq goes back" && d.Text != "hello" {
				t.Errorf("text got %q, want it unchanged", d.Text)
			}
			checkServing(t, ts, id)
		})
	}
}

func sendAll(ctx context.Context, r *rawConn, frames ...string) error {
	for _, f := range frames {
		if err := r.send(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

// TestTooLargeDocAllowsShrinking checks that a document over the limit
// (made before the limit was lowered, say) may still shrink.
func TestTooLargeDocAllowsShrinking(t *testing.T) {
	ts := newTestServer(t, Options{MaxDocChars: 3})
	id := uuid.NewString()
	if err := ts.store.Create(context.Background(), DocMeta{ID: id, ViewID: uuid.NewString()},
		&Record{Rev: 1, Op: ot.Op{ot.Insert("hello")}}); err != nil {
		t.Fatal(err)
	}
	ctx := guardCtx(t)
	c := ts.dial(t, id, ClientOptions{})
	if err := c.Edit(ot.Op{ot.Retain(4), ot.Delete(1)}); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitSynced(ctx); err != nil {
		t.Fatalf("shrinking a document over the limit: %v", err)
	}
}

// TestUnknownDocument: a WebSocket to a document that does not exist gets
// a plain 404 with the JSON error body before any upgrade.
func TestUnknownDocument(t *testing.T) {
	ts := newTestServer(t, Options{})
	ctx := guardCtx(t)
	for _, id := range []string{uuid.NewString(), "not-a-uuid", strings.ToUpper(uuid.NewString())[:35]} {
		_, resp, err := dialRaw(ctx, ts.wsURL(id))
		if err == nil {
			t.Fatalf("WebSocket to unknown document %q: got a session, want 404", id)
		}
		if resp == nil {
			t.Fatalf("WebSocket to unknown document %q: %v, want an HTTP 404", id, err)
		}
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		jerr := json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || jerr != nil || body.Error.Code != CodeNotFound || body.Error.Message == "" {
			t.Errorf("WebSocket to unknown document %q: got %d %+v (%v), want 404 not_found", id, resp.StatusCode, body, jerr)
		}
	}
	id, _ := ts.createDoc(t, "x")
	checkServing(t, ts, id)
}

// TestViewIDCannotEdit: the view id opens no editing session and reads
// nothing through the edit endpoints, and nothing reachable with it
// shows the edit id.
func TestViewIDCannotEdit(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, viewID := ts.createDoc(t, "secret plans")
	ctx := guardCtx(t)
	if _, resp, err := dialRaw(ctx, ts.wsURL(viewID)); err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("WebSocket with the view id: got %v (%v), want HTTP 404", resp, err)
	}
	for _, path := range []string{"/api/docs/" + viewID, "/api/docs/" + viewID + "/text", "/api/docs/" + viewID + "/ops", "/api/view/" + id} {
		code, hdr, body := doHTTP(t, http.MethodGet, ts.URL+path, "", nil)
		wantAPIError(t, "GET "+path, code, hdr, body, http.StatusNotFound, CodeNotFound)
	}

	// An editor is active, so that the view shows a live document.
	c := ts.dial(t, id, ClientOptions{Name: "editor"})
	if err := c.Edit(ot.Op{ot.Retain(12), ot.Insert("!")}); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if c.ViewID() != viewID {
		t.Errorf("welcome viewId got %q, want %q", c.ViewID(), viewID)
	}
	for _, hdr := range []http.Header{nil, {"Origin": {"https://elsewhere.example"}}} {
		for _, method := range []string{http.MethodGet, http.MethodOptions} {
			req, _ := http.NewRequestWithContext(ctx, method, ts.URL+"/api/view/"+viewID, nil)
			for k, v := range hdr {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if _, err := fmt.Fprint(&b, resp.Header); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1<<16)
			n, _ := resp.Body.Read(buf)
			resp.Body.Close()
			all := b.String() + string(buf[:n])
			if strings.Contains(strings.ToLower(all), strings.ToLower(id)) {
				t.Errorf("%s /api/view/{viewId} reveals the edit id: %s", method, all)
			}
			if method == http.MethodGet {
				var v map[string]any
				if err := json.Unmarshal(buf[:n], &v); err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("GET view: got %d %s (%v)", resp.StatusCode, buf[:n], err)
				}
				if len(v) != 3 || v["viewId"] != viewID || v["text"] != "secret plans!" || v["rev"] != float64(2) {
					t.Errorf("GET view got %v, want exactly {viewId, rev 2, text}", v)
				}
			}
		}
	}
}

// TestShutdownTellsEditors: Server.Close sends shutting_down and closes
// with 1001, to editors and to a connection that has not said hello yet;
// new requests get 503.
func TestShutdownTellsEditors(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "bye")
	ctx := guardCtx(t)
	r := ts.raw(t, id)
	r.hello(t, ctx, uuid.NewString(), -1)
	quiet := ts.raw(t, id) // never says hello
	c := ts.dial(t, id, ClientOptions{})
	r.expect(t, ctx, typePresence) // c joined: the hub has everyone
	if err := c.Edit(ot.Op{ot.Retain(3), ot.Insert("!")}); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitSynced(ctx); err != nil { // rev 2, not yet snapshotted
		t.Fatal(err)
	}
	r.expect(t, ctx, typeOp)

	closed := make(chan error, 1)
	go func() { closed <- ts.srv.Close(ctx) }()
	r.expectError(t, ctx, CodeShuttingDown, websocket.StatusGoingAway)
	if code, msgs, err := quiet.closeStatus(ctx); err != nil || code != websocket.StatusGoingAway {
		t.Errorf("connection without hello: got close %d after %s (%v), want 1001", code, rawList(msgs), err)
	}
	if err := c.Wait(ctx, func(ClientView) bool { return false }); !errIs(err, CodeShuttingDown) {
		t.Errorf("Go client: got %v, want a shutting_down error", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	code, hdr, body := doHTTP(t, http.MethodGet, ts.URL+"/api/docs/"+id, "", nil)
	wantAPIError(t, "GET after Close", code, hdr, body, http.StatusServiceUnavailable, CodeShuttingDown)
	if _, resp, err := dialRaw(ctx, ts.wsURL(id)); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("WebSocket after Close: got %v (%v), want HTTP 503", resp, err)
	}
	code, hdr, body = doHTTP(t, http.MethodGet, ts.URL+"/healthz", "", nil)
	wantAPIError(t, "healthz after Close", code, hdr, body, http.StatusServiceUnavailable, CodeShuttingDown)
	ts.store.mu.Lock()
	snap, ok := ts.store.docs[id].snaps[2]
	ts.store.mu.Unlock()
	if !ok || snap != "bye!" {
		t.Errorf("after Close: snapshot at rev 2 is %q (stored: %v), want \"bye!\"", snap, ok)
	}
}

// loadFailStore fails every Load with an error that is not ErrNotFound.
type loadFailStore struct{ *memStore }

func (loadFailStore) Load(context.Context, string) (*StoredDoc, error) {
	return nil, errors.New("disk unreadable")
}

// TestLoadFailure: a document that fails to load answers 500 with no
// detail, and its hub does not stay behind.
func TestLoadFailure(t *testing.T) {
	mem := newMemStore()
	ts := newTestServerStore(t, mem, loadFailStore{mem}, Options{})
	id, viewID := ts.createDoc(t, "x")
	for _, path := range []string{"/api/docs/" + id, "/api/docs/" + id + "/text", "/api/view/" + viewID, "/api/docs/" + id + "/ws"} {
		code, hdr, body := doHTTP(t, http.MethodGet, ts.URL+path, "", nil)
		wantAPIError(t, "GET "+path, code, hdr, body, http.StatusInternalServerError, CodeInternal)
		if strings.Contains(string(body), "disk") {
			t.Errorf("GET %s: the body %s reveals the internal error", path, body)
		}
	}
	ts.srv.mu.Lock()
	n := len(ts.srv.hubs)
	ts.srv.mu.Unlock()
	if n != 0 {
		t.Errorf("%d hubs stay registered after failed loads, want 0", n)
	}
}

// TestTooManyEditors: the editor past MaxEditors is turned away, and a
// reconnect of one already there is not.
func TestTooManyEditors(t *testing.T) {
	ts := newTestServer(t, Options{MaxEditors: 2})
	id, _ := ts.createDoc(t, "x")
	ctx := guardCtx(t)
	a := ts.dial(t, id, ClientOptions{})
	ts.dial(t, id, ClientOptions{})
	r := ts.raw(t, id)
	if err := r.send(ctx, map[string]any{"type": "hello", "client": uuid.NewString()}); err != nil {
		t.Fatal(err)
	}
	r.expectError(t, ctx, CodeRateLimited, 4429)
	if err := a.Reconnect(ctx); err != nil {
		t.Fatalf("reconnect of an editor already there: %v", err)
	}
}

// TestStoreFailure: when the store fails to append, the document's hub
// stops and its editors get an error and a close; other documents go on,
// and once the store recovers the document loads again and the editor's
// unacknowledged op goes through on reconnect.
func TestStoreFailure(t *testing.T) {
	ts := newTestServer(t, Options{})
	broken, _ := ts.createDoc(t, "broken")
	fine, _ := ts.createDoc(t, "fine")
	ctx := guardCtx(t)
	a := ts.dial(t, broken, ClientOptions{Name: "A"})
	watcher := ts.raw(t, broken)
	watcher.hello(t, ctx, uuid.NewString(), -1)
	b := ts.dial(t, fine, ClientOptions{Name: "B"})

	ts.store.setFail(errors.New("disk on fire"))
	if err := a.Edit(ot.Op{ot.Retain(6), ot.Insert("!")}); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitSynced(ctx); !errIs(err, CodeInternal) {
		t.Fatalf("editor of the failed document: got %v, want an internal error", err)
	}
	if strings.Contains(a.Err().Error(), "disk on fire") {
		t.Errorf("the client was told the internal detail: %v", a.Err())
	}
	e := watcher.expectError(t, ctx, CodeInternal, websocket.StatusInternalError)
	if e.Message != "internal error" {
		t.Errorf("error message got %q, want %q", e.Message, "internal error")
	}

	// The other document still serves reads and its editor is connected.
	if d := ts.docState(t, fine); d.Text != "fine" {
		t.Errorf("other document got %q, want %q", d.Text, "fine")
	}
	if err := b.Err(); err != nil {
		t.Errorf("editor of the other document got %v", err)
	}
	ts.store.setFail(nil)
	if err := b.Edit(ot.Op{ot.Retain(4), ot.Insert("!")}); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitSynced(ctx); err != nil {
		t.Fatalf("editor of the other document: %v", err)
	}

	// The failed document loads again from the store, without the op
	// that was never committed; the client resends it.
	if d := ts.docState(t, broken); d.Rev != 1 || d.Text != "broken" {
		t.Errorf("reloaded document got rev %d %q, want rev 1 %q", d.Rev, d.Text, "broken")
	}
	if err := a.Reconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if d := ts.docState(t, broken); d.Rev != 2 || d.Text != "broken!" || a.Text() != d.Text {
		t.Errorf("after recovery got rev %d %q (client %q), want rev 2 %q", d.Rev, d.Text, a.Text(), "broken!")
	}
	checkServing(t, ts, broken)
}

// TestShutdownAcknowledgesCommitInFlight: an op being committed when the
// server closes is committed and acknowledged before the shutting_down
// error.
func TestShutdownAcknowledgesCommitInFlight(t *testing.T) {
	ctx := guardCtx(t)
	ts, gs, id, r, release := heldCommit(t, ctx)

	closed := make(chan error, 1)
	go func() { closed <- ts.srv.Close(ctx) }()
	// Close has begun once new requests are refused.
	for {
		if code, _, _ := doHTTP(t, http.MethodGet, ts.URL+"/healthz", "", nil); code == http.StatusServiceUnavailable {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("Close never began")
		}
		time.Sleep(time.Millisecond)
	}
	release()
	if ack := r.expect(t, ctx, typeAck); ack.Rev != 2 || ack.Seq != 1 {
		t.Errorf("ack got rev %d seq %d, want rev 2 seq 1", ack.Rev, ack.Seq)
	}
	r.expectError(t, ctx, CodeShuttingDown, websocket.StatusGoingAway)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d, err := gs.Load(ctx, id); err != nil || d.Rev != 2 || d.Text != "abcd" {
		t.Errorf("store got %+v (%v), want rev 2 %q", d, err, "abcd")
	}
}

// heldCommit starts a server on a gateStore with the document "abc" and
// one raw editor whose op [3,"d"] (seq 1, to be rev 2) has been applied
// and is held in its commit until release.
func heldCommit(t *testing.T, ctx context.Context) (ts *testServer, gs *gateStore, id string, r *rawConn, release func()) {
	t.Helper()
	gs = newGateStore()
	ts = newTestServerStore(t, gs.memStore, gs, Options{})
	id, _ = ts.createDoc(t, "abc")
	r = ts.raw(t, id)
	r.hello(t, ctx, uuid.NewString(), -1)
	entered, release := gs.hold()
	t.Cleanup(release)
	r.sendOp(t, ctx, 1, 1, ot.Op{ot.Retain(3), ot.Insert("d")})
	<-entered
	return ts, gs, id, r, release
}
