package collab

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

// authorRE is the form of an author id: 16 bytes in unpadded base64url.
var authorRE = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

// TestSessionTakeover is the attack of protocol 1: a co-editor learned
// another editor's client id from the messages it received, said hello
// with it, and so superseded the victim, whose next op was then taken for
// a duplicate and lost. In protocol 2 nothing the server sends anybody,
// over WebSocket, SSE or HTTP, contains a client id; what names an editor
// is its author id, which cannot be said in a hello.
func TestSessionTakeover(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, viewID := ts.createDoc(t, "hello")
	ctx := guardCtx(t)

	ada := ts.dial(t, id, ClientOptions{Name: "Ada"})
	secret := ada.ID()
	if err := ada.Edit(ot.Op{ot.Retain(5), ot.Insert(" world")}); err != nil {
		t.Fatal(err)
	}
	if err := ada.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}

	// Mallory, a co-editor, records everything it is sent.
	var seen bytes.Buffer
	mal := ts.raw(t, id)
	w := mal.hello(t, ctx, uuid.NewString(), 1) // catch-up ops: Ada's op 2
	seen.WriteString(w.raw)
	if w.Protocol != ProtocolVersion || ProtocolVersion != 2 {
		t.Errorf("welcome protocol got %d, want 2", w.Protocol)
	}
	if !authorRE.MatchString(w.Author) {
		t.Errorf("welcome author got %q, want 22 base64url characters", w.Author)
	}
	if len(w.Ops) != 1 || w.Ops[0].Author != ada.Author() {
		t.Errorf("catch-up got %s, want Ada's op by author %s", w.raw, ada.Author())
	}
	if len(w.Peers) != 1 || w.Peers[0].Author != ada.Author() || !authorRE.MatchString(ada.Author()) || ada.Author() == w.Author {
		t.Errorf("welcome peers got %+v, want Ada by her author id %q", w.Peers, ada.Author())
	}
	// Ada types and moves her cursor; she leaves and comes back.
	if err := ada.Edit(ot.Op{ot.Insert("¡"), ot.Retain(11)}); err != nil {
		t.Fatal(err)
	}
	if err := ada.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ada.SetCursor([]ClientRange{{1, 3}}); err != nil {
		t.Fatal(err)
	}
	before := ada.Author()
	if err := ada.Reconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if ada.Author() != before {
		t.Errorf("Ada's author id changed on reconnect: %q, then %q", before, ada.Author())
	}
	if err := ada.SetCursor([]ClientRange{{2, 2}}); err != nil {
		t.Fatal(err)
	}
	// Bob comes and goes.
	bob := ts.dial(t, id, ClientOptions{Name: "Bob"})
	bobAuthor := bob.Author()
	if err := bob.Close(); err != nil {
		t.Fatal(err)
	}
	for kinds := map[string]bool{}; !kinds[typeOp] || !kinds["leave of Bob"] || !kinds["presence after reconnect"]; {
		m, err := mal.next(ctx)
		if err != nil {
			t.Fatalf("Mallory's messages: %v (got %v)", err, kinds)
		}
		seen.WriteString(m.raw)
		bobs := m.Author == bobAuthor
		switch {
		case bobs && m.Type == typeLeave:
			m.Type = "leave of Bob"
		case bobs && m.Type == typePresence:
		case m.Author != ada.Author(): // Ada's own leave may come too, depending on timing
			t.Errorf("%s: want Ada's author %q (or a presence and leave of Bob's %q)", m.raw, ada.Author(), bobAuthor)
		case m.Type == typePresence && slicesEqual(m.Ranges, []Range{{2, 2}}):
			m.Type = "presence after reconnect"
		}
		kinds[m.Type] = true
	}
	// And everything reachable over HTTP and SSE.
	for _, path := range []string{"/api/docs/" + id, "/api/docs/" + id + "/text", "/api/docs/" + id + "/ops", "/api/view/" + viewID} {
		_, _, body := doHTTP(t, http.MethodGet, ts.URL+path, "", nil)
		seen.Write(body)
	}
	sse := openSSE(t, ts.Client(), viewEventsURL(ts.URL, viewID)+"?since=0", nil)
	for range 3 { // ops 1 to 3
		seen.WriteString(sse.nextEvent(t).String())
	}
	var ops []OpRecord
	getJSONStatus(t, ts.URL+"/api/docs/"+id+"/ops", http.StatusOK, &ops)
	if len(ops) != 3 || ops[0].Author != "" || ops[1].Author != before || ops[2].Author != before {
		t.Errorf("/ops got %+v, want op 1 by the server (author \"\") and ops 2 and 3 by Ada", ops)
	}

	all := strings.ToLower(seen.String())
	for _, form := range []string{secret, strings.ReplaceAll(secret, "-", "")} {
		if strings.Contains(all, strings.ToLower(form)) {
			t.Fatalf("Mallory was sent Ada's client id %s", secret)
		}
	}
	if !strings.Contains(all, strings.ToLower(ada.Author())) {
		t.Fatalf("what Mallory saw never names Ada's author id; the check above proves nothing")
	}

	// What Mallory knows cannot be said in a hello...
	thief := ts.raw(t, id)
	if err := thief.send(ctx, map[string]any{"type": "hello", "client": ada.Author()}); err != nil {
		t.Fatal(err)
	}
	thief.expectError(t, ctx, CodeBadMessage, 4400)
	// ...and Ada's session goes on: her next op is applied, not lost.
	if err := ada.Edit(ot.Op{ot.Retain(12), ot.Insert("!")}); err != nil {
		t.Fatal(err)
	}
	if err := ada.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if d := ts.docState(t, id); d.Text != "¡hello world!" || d.Rev != 4 {
		t.Errorf("server got rev %d %q, want rev 4 %q", d.Rev, d.Text, "¡hello world!")
	}
}

func slicesEqual(a, b []Range) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestAuthorStableAcrossRestart: a Server given the same AuthorKey (as
// cmd/collabd keeps it in the data file) names a client by the same
// author id after a restart; another key gives another id, so the id is
// keyed, not a plain hash anybody could compute from a guess.
func TestAuthorStableAcrossRestart(t *testing.T) {
	store := newMemStore()
	key := bytes.Repeat([]byte{7}, 32)
	client := uuid.NewString()
	author := func(k []byte) string {
		srv := New(store, Options{AuthorKey: k})
		defer srv.Close(context.Background())
		hs := httptest.NewServer(srv)
		defer hs.Close()
		ts := &testServer{Server: hs, srv: srv, store: store}
		id, _ := ts.createDoc(t, "x")
		c := ts.dial(t, id, ClientOptions{ClientID: client})
		defer c.Close()
		return c.Author()
	}
	first, second, other := author(key), author(key), author(bytes.Repeat([]byte{8}, 32))
	if first != second || !authorRE.MatchString(first) {
		t.Errorf("same key: got author %q, then %q; want one id", first, second)
	}
	if other == first {
		t.Errorf("another key gave the same author %q", other)
	}
	// A Server without a key makes one of its own.
	if a, b := New(store, Options{}), New(store, Options{}); a.author(client) == b.author(client) || a.author("") != "" {
		t.Errorf("random keys: got %q and %q (and %q for the server); want two ids and \"\"", a.author(client), b.author(client), a.author(""))
	}
}
