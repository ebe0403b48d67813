package collab

// Helpers for tests that speak the protocol by hand over a raw WebSocket,
// where the Go Client would hide what is on the wire, and for the HTTP API.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

// guard bounds every wait in these tests. It only turns a hang into a
// failure; no test depends on how fast anything is.
const guard = 20 * time.Second

// guardCtx returns a context that ends after guard or with the test.
func guardCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	t.Cleanup(cancel)
	return ctx
}

// newTestServerStore is newTestServer on a given Store; mem is the
// memStore underneath it, for the helpers that read it directly.
func newTestServerStore(t *testing.T, mem *memStore, store Store, opts Options) *testServer {
	t.Helper()
	srv := New(store, opts)
	ts := &testServer{Server: httptest.NewServer(srv), srv: srv, store: mem}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close server: %v", err)
		}
		ts.Close()
	})
	return ts
}

// record returns op rev of document id as the store holds it.
func (m *memStore) record(id string, rev int64) (Record, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.docs[id]
	if d == nil || rev < 1 || rev > int64(len(d.ops)) {
		return Record{}, false
	}
	return d.ops[rev-1], true
}

// gateStore is a memStore whose Append can be held, to catch the server
// between applying an op and committing (and so acknowledging) it.
type gateStore struct {
	*memStore
	mu      sync.Mutex
	gate    chan struct{} // while non-nil, Append waits for it to be closed
	entered chan struct{} // gets a value each time an Append starts waiting
}

func newGateStore() *gateStore { return &gateStore{memStore: newMemStore()} }

// hold makes later Appends wait until release is called; entered
// receives once for each Append that starts waiting.
func (g *gateStore) hold() (entered <-chan struct{}, release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	gate, ent := make(chan struct{}), make(chan struct{}, 16)
	g.gate, g.entered = gate, ent
	var once sync.Once
	return ent, func() {
		once.Do(func() {
			g.mu.Lock()
			g.gate = nil
			g.mu.Unlock()
			close(gate)
		})
	}
}

func (g *gateStore) Append(ctx context.Context, id string, recs []Record) error {
	g.mu.Lock()
	gate, ent := g.gate, g.entered
	g.mu.Unlock()
	if gate != nil {
		ent <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.memStore.Append(ctx, id, recs)
}

// wireMsg is any message from the server, as the tests read it.
type wireMsg struct {
	Type     string          `json:"type"`
	Protocol int             `json:"protocol"`
	Doc      string          `json:"doc"`
	ViewID   string          `json:"viewId"`
	Rev      int64           `json:"rev"`
	Seq      int64           `json:"seq"`
	LastSeq  int64           `json:"lastSeq"`
	Text     *string         `json:"text"`
	Ops      []OpRecord      `json:"ops"`
	Op       ot.Op           `json:"op"`
	Author   string          `json:"author"`
	Name     string          `json:"name"`
	Color    string          `json:"color"`
	Peers    []Peer          `json:"peers"`
	Ranges   []Range         `json:"ranges"`
	Code     string          `json:"code"`
	Message  string          `json:"message"`
	raw      string          // the message as it came
	hasField map[string]bool // which fields it had
}

// rawConn is a hand-driven editing session.
type rawConn struct {
	ws      *websocket.Conn
	pending []wireMsg
}

// dialRaw opens a WebSocket to url without saying anything.
func dialRaw(ctx context.Context, url string) (*rawConn, *http.Response, error) {
	ws, resp, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(64 << 20)
	return &rawConn{ws: ws}, resp, nil
}

// raw opens a raw session on document id, closed when the test ends.
func (ts *testServer) raw(t *testing.T, id string) *rawConn {
	t.Helper()
	r, _, err := dialRaw(guardCtx(t), ts.wsURL(id))
	if err != nil {
		t.Fatalf("dial %s: %v", id, err)
	}
	t.Cleanup(func() { r.ws.CloseNow() })
	return r
}

// send writes one frame: a string or []byte as it is, anything else as JSON.
func (r *rawConn) send(ctx context.Context, v any) error {
	var b []byte
	switch v := v.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		b = mustJSON(v)
	}
	return r.ws.Write(ctx, websocket.MessageText, b)
}

// next returns the next message, splitting batched frames. A read error
// (the close, say) is returned as it is.
func (r *rawConn) next(ctx context.Context) (wireMsg, error) {
	for len(r.pending) == 0 {
		_, data, err := r.ws.Read(ctx)
		if err != nil {
			return wireMsg{}, err
		}
		raws := []json.RawMessage{data}
		if len(data) > 0 && data[0] == '[' {
			raws = nil
			if err := json.Unmarshal(data, &raws); err != nil || len(raws) == 0 {
				return wireMsg{}, fmt.Errorf("bad frame %.200q: %v", data, err)
			}
		}
		for _, raw := range raws {
			var m wireMsg
			if err := json.Unmarshal(raw, &m); err != nil {
				return wireMsg{}, fmt.Errorf("bad message %.200q: %v", raw, err)
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(raw, &fields); err != nil {
				return wireMsg{}, fmt.Errorf("bad message %.200q: %v", raw, err)
			}
			m.hasField = make(map[string]bool, len(fields))
			for k := range fields {
				m.hasField[k] = true
			}
			m.raw = string(raw)
			r.pending = append(r.pending, m)
		}
	}
	m := r.pending[0]
	r.pending = r.pending[1:]
	return m, nil
}

// expect reads the next message of type typ, skipping presence and
// leave messages, and fails on anything else.
func (r *rawConn) expect(t *testing.T, ctx context.Context, typ string) wireMsg {
	t.Helper()
	for {
		m, err := r.next(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		switch m.Type {
		case typ:
			return m
		case typePresence, typeLeave:
			continue
		}
		t.Fatalf("waiting for %s: got %s", typ, m.raw)
	}
}

// hello says hello as client (rev < 0: no rev) and returns the welcome.
func (r *rawConn) hello(t *testing.T, ctx context.Context, client string, rev int64) wireMsg {
	t.Helper()
	h := map[string]any{"type": "hello", "client": client, "name": "raw"}
	if rev >= 0 {
		h["rev"] = rev
	}
	if err := r.send(ctx, h); err != nil {
		t.Fatalf("send hello: %v", err)
	}
	return r.expect(t, ctx, typeWelcome)
}

// sendOp sends {"type":"op"}.
func (r *rawConn) sendOp(t *testing.T, ctx context.Context, rev, seq int64, op ot.Op) {
	t.Helper()
	msg := fmt.Sprintf(`{"type":"op","rev":%d,"seq":%d,"op":%s}`, rev, seq, op)
	if err := r.send(ctx, msg); err != nil {
		t.Fatalf("send op: %v", err)
	}
}

// closeStatus reads until the connection ends and returns how: the close
// code, and every message that came before it.
func (r *rawConn) closeStatus(ctx context.Context) (websocket.StatusCode, []wireMsg, error) {
	var msgs []wireMsg
	for {
		m, err := r.next(ctx)
		if err == nil {
			msgs = append(msgs, m)
			continue
		}
		if code := websocket.CloseStatus(err); code != -1 {
			return code, msgs, nil
		}
		return -1, msgs, err
	}
}

// expectError reads until the connection closes, and checks that an error
// message with code came (after nothing but presence, leave and the
// types in also) and that the close code is closeCode. It returns the
// error message.
func (r *rawConn) expectError(t *testing.T, ctx context.Context, code string, closeCode websocket.StatusCode, also ...string) wireMsg {
	t.Helper()
	got, msgs, err := r.closeStatus(ctx)
	if err != nil {
		t.Fatalf("waiting for error %s and close %d: connection ended with %v after %s", code, closeCode, err, rawList(msgs))
	}
	var e *wireMsg
	for i, m := range msgs {
		switch {
		case e != nil:
			t.Errorf("got %s after the error %s, want the error last before the close", m.raw, e.raw)
		case m.Type == typeError:
			e = &msgs[i]
		case m.Type == typePresence || m.Type == typeLeave || slices.Contains(also, m.Type):
		default:
			t.Errorf("unexpected message %s (want only error %s before the close)", m.raw, code)
		}
	}
	if e == nil {
		t.Fatalf("got close %d after %s, want an error message with code %s first", got, rawList(msgs), code)
	}
	if e.Code != code {
		t.Errorf("got error code %q (%s), want %q", e.Code, e.Message, code)
	}
	if e.Message == "" {
		t.Errorf("error %s has no message", e.raw)
	}
	if got != closeCode {
		t.Errorf("got close code %d, want %d", got, closeCode)
	}
	return *e
}

func rawList(msgs []wireMsg) string {
	if len(msgs) == 0 {
		return "no messages"
	}
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(m.raw)
		b.WriteString(" ")
	}
	return b.String()
}

// doHTTP sends a request and returns the status, the headers and the body.
func doHTTP(t *testing.T, method, url, contentType string, body io.Reader) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(guardCtx(t), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, b
}

// getJSONStatus GETs url, checks the status and decodes the JSON body.
func getJSONStatus(t *testing.T, url string, status int, out any) []byte {
	t.Helper()
	got, hdr, body := doHTTP(t, http.MethodGet, url, "", nil)
	if got != status {
		t.Fatalf("GET %s: got status %d (%s), want %d", url, got, body, status)
	}
	if ct := hdr.Get("Content-Type"); out != nil && !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: got Content-Type %q, want application/json", url, ct)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: decoding %s: %v", url, body, err)
		}
	}
	return body
}

// wantAPIError checks an API error answer: the status and a body
// {"error":{"code","message"}} with nothing else in it.
func wantAPIError(t *testing.T, what string, status int, hdr http.Header, body []byte, wantStatus int, code string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s: got status %d (%s), want %d", what, status, body, wantStatus)
		return
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: got Content-Type %q, want application/json", what, ct)
	}
	var e map[string]map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&e); err != nil {
		t.Errorf("%s: body %s is not {\"error\":{...}}: %v", what, body, err)
		return
	}
	inner, ok := e["error"]
	if len(e) != 1 || !ok {
		t.Errorf("%s: got body %s, want exactly {\"error\":{\"code\",\"message\"}}", what, body)
		return
	}
	if c, _ := inner["code"].(string); c != code {
		t.Errorf("%s: got error code %v, want %q", what, inner["code"], code)
	}
	if m, _ := inner["message"].(string); m == "" {
		t.Errorf("%s: error has no message: %s", what, body)
	}
}

// docState is GET /api/docs/{id}.
type docState struct {
	ID     string `json:"id"`
	ViewID string `json:"viewId"`
	Rev    int64  `json:"rev"`
	Text   string `json:"text"`
}

func (ts *testServer) docState(t *testing.T, id string) docState {
	t.Helper()
	var d docState
	getJSONStatus(t, ts.URL+"/api/docs/"+id, http.StatusOK, &d)
	return d
}

// waitDocRev polls GET /api/docs/{id} until the revision is at least rev.
func (ts *testServer) waitDocRev(t *testing.T, id string, rev int64) docState {
	t.Helper()
	deadline := time.Now().Add(guard)
	for {
		d := ts.docState(t, id)
		if d.Rev >= rev {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("document %s stayed at rev %d, want %d", id, d.Rev, rev)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// allOps pages through GET /api/docs/{id}/ops with the given page size.
func (ts *testServer) allOps(t *testing.T, id string, limit int) []OpRecord {
	t.Helper()
	var all []OpRecord
	for {
		var page []OpRecord
		getJSONStatus(t, fmt.Sprintf("%s/api/docs/%s/ops?from=%d&limit=%d", ts.URL, id, len(all), limit), http.StatusOK, &page)
		if len(page) == 0 {
			return all
		}
		if len(page) > limit {
			t.Fatalf("ops page of %d, want at most limit %d", len(page), limit)
		}
		all = append(all, page...)
	}
}

// checkServing proves that the server still serves editors normally: a
// fresh client on document id (and one on a new document) edits and is
// acknowledged, and the text shows it.
func checkServing(t *testing.T, ts *testServer, id string) {
	t.Helper()
	ctx := guardCtx(t)
	other, _ := ts.createDoc(t, "other")
	for _, doc := range []string{id, other} {
		c := ts.dial(t, doc, ClientOptions{Name: "checker"})
		mark := "✓" + uuid.NewString()[:4]
		if err := c.EditFunc(func(text string) ot.Op {
			return ot.Op{}.Retain(len([]rune(text))).Insert(mark)
		}); err != nil {
			t.Fatalf("server no longer serves: edit: %v", err)
		}
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatalf("server no longer serves: wait for ack: %v", err)
		}
		if d := ts.docState(t, doc); !strings.HasSuffix(d.Text, mark) {
			t.Fatalf("server no longer serves: text %q lacks %q", d.Text, mark)
		}
		c.Close()
	}
}

// errIs reports whether err is a ServerError with code.
func errIs(err error, code string) bool {
	var se *ServerError
	return errors.As(err, &se) && se.Code == code
}
