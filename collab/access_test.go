package collab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/collabd/collabd/ot"
)

// A signed-in test server: a trusted proxy at 127.0.0.1 names the user in
// X-User and their groups in X-Groups.
func newSignInServer(t *testing.T, edit func(*Options)) (*testServer, *memAccess) {
	t.Helper()
	acc := newMemAccess()
	opts := Options{
		SignIn:         &SignInOptions{Store: acc, Header: "X-User", GroupsHeader: "X-Groups", RotateBurst: 1000},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		CreateRate:     1000, CreateBurst: 1000,
		RestoreRate: 1000, RestoreBurst: 1000,
		WriteRate: -1,
	}
	if edit != nil {
		edit(&opts)
	}
	return newTestServer(t, opts), acc
}

// user is who a request comes from: "" is nobody signed in.
type user struct{ name, groups string }

func (u user) header() http.Header {
	h := http.Header{}
	if u.name != "" {
		h.Set("X-User", u.name)
		h.Set("X-Groups", u.groups)
	}
	return h
}

// send makes one request as u and returns its status and, for a refusal,
// the error code. An SSE stream is left after its headers; a WebSocket is
// closed once open (101).
func (ts *testServer) send(t *testing.T, u user, method, path, ctype, body string) (int, string, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hdr := u.header()
	if strings.HasSuffix(path, "/ws") {
		ws, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL+path, "http"), &websocket.DialOptions{HTTPHeader: hdr})
		if err == nil {
			ws.CloseNow()
			return http.StatusSwitchingProtocols, "", nil
		}
		if resp == nil {
			t.Fatalf("%s: dial: %v", path, err)
		}
		return resp.StatusCode, errorCode(t, resp), nil
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(ctx, method, ts.URL+path, rd)
	req.Header = hdr
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return resp.StatusCode, errorCode(t, resp), nil
	}
	if strings.HasSuffix(path, "/events") {
		return resp.StatusCode, "", nil
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, "", b
}

// signedInDoc is a document that olga created, with the members of the
// table test and link mode link.
type signedInDoc struct{ id, viewID, run string }

var tableMembers = []Member{
	{User: "vic", Role: "view"},
	{Group: "readers", Role: "comment"},
	{Group: "eng", Role: "edit"},
	{User: "omar", Role: "owner"},
}

func (ts *testServer) makeDoc(t *testing.T, owner user, link string) signedInDoc {
	t.Helper()
	code, _, b := ts.send(t, owner, "POST", "/api/docs", "application/json", `{"text":"hello"}`)
	if code != http.StatusCreated {
		t.Fatalf("create as %s: got %d %s", owner.name, code, b)
	}
	var d signedInDoc
	var created struct{ ID, ViewID string }
	json.Unmarshal(b, &created)
	d.id, d.viewID = created.ID, created.ViewID
	rec, _ := json.Marshal(Access{Link: link, Members: tableMembers})
	if code, _, b := ts.send(t, owner, "PUT", "/api/docs/"+d.id+"/access", "application/json", string(rec)); code != 200 {
		t.Fatalf("put access: got %d %s", code, b)
	}
	code, _, b = ts.send(t, owner, "PUT", "/api/docs/"+d.id+"/text", "application/json", `{"text":"hello world"}`)
	if code != 200 {
		t.Fatalf("put text: got %d %s", code, b)
	}
	var w writeResp
	json.Unmarshal(b, &w)
	d.run = w.Run
	return d
}

// TestAccessTable is the table of (role × endpoint × link mode): every
// endpoint of a document, asked by each kind of caller, under each link
// mode, answers exactly: 404 to whoever has no access at all (as for a
// document that does not exist), 403 to whoever has too little, and the
// endpoint's own success otherwise.
func TestAccessTable(t *testing.T) {
	ts, _ := newSignInServer(t, nil)
	olga := user{"olga", ""}
	users := []struct {
		user
		member role // what the members list (or ownership) gives
	}{
		{user{}, roleNone},
		{user{"eve", "sales"}, roleNone},
		{user{"vic", ""}, roleView},
		{user{"cora", "readers"}, roleComment},
		{user{"ed", "eng,sales"}, roleEdit},
		{user{"omar", ""}, roleOwner},
		{olga, roleOwner},
	}
	type endpoint struct {
		method, path string // %[1]s edit id, %[2]s view id, %[3]s run
		ctype, body  string
		need         role
		viaView      bool // the path names the view id
		ok           int
		fresh        bool // it deletes or moves the document: a fresh one each time
	}
	const js = "application/json"
	eps := []endpoint{
		{"GET", "/api/docs/%[1]s", "", "", roleView, false, 200, false},
		{"GET", "/api/docs/%[1]s/text", "", "", roleView, false, 200, false},
		{"GET", "/api/docs/%[1]s/ops", "", "", roleView, false, 200, false},
		{"GET", "/api/docs/%[1]s/revisions", "", "", roleView, false, 200, false},
		{"GET", "/api/docs/%[1]s/events", "", "", roleView, false, 200, false},
		{"GET", "/api/docs/%[1]s/ws", "", "", roleEdit, false, 101, false},
		{"POST", "/api/docs/%[1]s/ops", js, `{"rev":1,"op":["x",5]}`, roleEdit, false, 200, false},
		{"PUT", "/api/docs/%[1]s/text", js, `{"text":"hello world"}`, roleEdit, false, 200, false},
		{"POST", "/api/docs/%[1]s/stream?at=end", "text/plain; charset=utf-8", "!", roleEdit, false, 200, false},
		{"POST", "/api/docs/%[1]s/revert", js, `{"run":"%[3]s"}`, roleEdit, false, 200, false},
		{"POST", "/api/docs/%[1]s/restore", js, `{"rev":1}`, roleEdit, false, 200, false},
		{"GET", "/api/docs/%[1]s/access", "", "", roleOwner, false, 200, false},
		{"PUT", "/api/docs/%[1]s/access", js, "ACCESS", roleOwner, false, 200, false},
		{"POST", "/api/docs/%[1]s/access/rotate", "", "", roleOwner, false, 200, true},
		{"DELETE", "/api/docs/%[1]s", "", "", roleOwner, false, 204, true},
		{"GET", "/api/view/%[2]s", "", "", roleView, true, 200, false},
		{"GET", "/api/view/%[2]s/text", "", "", roleView, true, 200, false},
		{"GET", "/api/view/%[2]s/revisions", "", "", roleView, true, 200, false},
		{"GET", "/api/view/%[2]s/events", "", "", roleView, true, 200, false},
		// Who wrote what and comments. (The workspace's routes need its
		// store, which this server has not: cmd/collabd's TestWorkspace*.)
		{"GET", "/api/docs/%[1]s/authors", "", "", roleView, false, 200, false},
		{"GET", "/api/view/%[2]s/authors", "", "", roleView, true, 200, false},
		{"GET", "/api/docs/%[1]s/history/search?q=hello", "", "", roleView, false, 200, false},
		{"GET", "/api/view/%[2]s/history/search?q=hello", "", "", roleView, true, 200, false},
		{"GET", "/api/docs/%[1]s/comments", "", "", roleComment, false, 200, false},
		{"POST", "/api/docs/%[1]s/comments", js, `{"rev":1,"range":[0,1],"text":"a note"}`, roleComment, false, 201, false},
		{"GET", "/api/docs/%[1]s/comments/settings", "", "", roleOwner, false, 200, false},
		{"PUT", "/api/docs/%[1]s/comments/settings", js, `{"viewers":false}`, roleOwner, false, 200, false},
	}
	cases := 0
	for _, link := range []string{LinkNone, LinkView, LinkEdit} {
		shared := ts.makeDoc(t, olga, link)
		linkRole, _ := parseLink(link)
		for _, ep := range eps {
			for _, u := range users {
				d := shared
				if ep.fresh {
					d = ts.makeDoc(t, olga, link)
				}
				path := fmt.Sprintf(ep.path, d.id, d.viewID, d.run)
				body := ep.body
				if strings.Contains(body, "%") {
					body = fmt.Sprintf(body, d.id, d.viewID, d.run)
				}
				if body == "ACCESS" {
					b, _ := json.Marshal(Access{Link: link, Members: tableMembers})
					body = string(b)
				}
				via := roleEdit
				if ep.viaView {
					via = roleView
				}
				got := max(u.member, min(linkRole, via))
				want, wantCode := ep.ok, ""
				switch {
				case got == roleNone:
					want, wantCode = 404, CodeNotFound
				case got < ep.need:
					want, wantCode = 403, CodeForbidden
				}
				code, errCode, b := ts.send(t, u.user, ep.method, path, ep.ctype, body)
				cases++
				if code != want || errCode != wantCode {
					t.Errorf("link %s, %q (%v) %s %s: got %d %s %s, want %d %s",
						link, u.name, u.member, ep.method, ep.path, code, errCode, b, want, wantCode)
				}
			}
		}
	}
	// Creating: anyone signed in, nobody else.
	for _, u := range users {
		want := 201
		if u.name == "" {
			want = 401
		}
		code, _, _ := ts.send(t, u.user, "POST", "/api/docs", "application/json", `{"text":"x"}`)
		cases++
		if code != want {
			t.Errorf("create as %q: got %d, want %d", u.name, code, want)
		}
	}
	t.Logf("%d cases", cases)
	if cases < 150 {
		t.Errorf("only %d cases", cases)
	}
}

// dialAs opens a raw editing session on path as u and says hello.
func (ts *testServer) dialAs(t *testing.T, u user, path string) *rawConn {
	t.Helper()
	ctx := guardCtx(t)
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL+path, "http"), &websocket.DialOptions{HTTPHeader: u.header()})
	if err != nil {
		t.Fatalf("dial %s as %q: %v", path, u.name, err)
	}
	r := &rawConn{ws: ws}
	t.Cleanup(func() { ws.CloseNow() })
	r.hello(t, ctx, newClientID(), -1)
	return r
}

func newClientID() string {
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", time.Now().UnixNano()%1e12)
}

// wantClosed waits for session r to be closed with code.
func wantClosed(t *testing.T, r *rawConn, code websocket.StatusCode) {
	t.Helper()
	got, _, err := r.closeStatus(guardCtx(t))
	if got != code {
		t.Errorf("session closed with %d (%v), want %d", got, err, code)
	}
}

// TestAccessLossClosesSessions: when the owner lowers a member's role to
// view, the member's editing session is closed with 4403 and their SSE
// stream (a read) stays; when the owner takes access away, streams end;
// the owner's own session stays throughout.
func TestAccessLossClosesSessions(t *testing.T) {
	ts, _ := newSignInServer(t, nil)
	olga, ed, vic := user{"olga", ""}, user{"ed", "eng"}, user{"vic", ""}
	d := ts.makeDoc(t, olga, LinkNone)
	edSession := ts.dialAs(t, ed, "/api/docs/"+d.id+"/ws")
	olgaSession := ts.dialAs(t, olga, "/api/docs/"+d.id+"/ws")
	vicStream := openSSE(t, http.DefaultClient, ts.URL+"/api/view/"+d.viewID+"/events", vic.header())
	edStream := openSSE(t, http.DefaultClient, ts.URL+"/api/docs/"+d.id+"/events", ed.header())
	vicStream.nextEvent(t)
	edStream.nextEvent(t)

	// eng goes down to view: ed may still read, not edit.
	rec, _ := json.Marshal(Access{Link: LinkNone, Members: []Member{{User: "vic", Role: "view"}, {Group: "eng", Role: "view"}}})
	if code, _, b := ts.send(t, olga, "PUT", "/api/docs/"+d.id+"/access", "application/json", string(rec)); code != 200 {
		t.Fatalf("put access: got %d %s", code, b)
	}
	wantClosed(t, edSession, 4403)
	// ed's stream (a read) and vic's and olga's sessions stay: an op of
	// olga's reaches both streams.
	olgaSession.sendOp(t, guardCtx(t), 2, 1, ot.Op{ot.Retain(11), ot.Insert("!")})
	olgaSession.expect(t, guardCtx(t), typeAck)
	for name, st := range map[string]*sseStream{"vic": vicStream, "ed": edStream} {
		if m := st.nextEvent(t); m.Kind != "op" {
			t.Errorf("%s's stream: got %v, want the op", name, m)
		}
	}
	if code, _, _ := ts.send(t, ed, "GET", "/api/docs/"+d.id+"/ws", "", ""); code != 403 {
		t.Errorf("ed reconnecting: got %d, want 403", code)
	}

	// Now vic goes entirely: their view stream ends.
	rec, _ = json.Marshal(Access{Link: LinkNone})
	if code, _, b := ts.send(t, olga, "PUT", "/api/docs/"+d.id+"/access", "application/json", string(rec)); code != 200 {
		t.Fatalf("put access: got %d %s", code, b)
	}
	for name, st := range map[string]*sseStream{"vic": vicStream, "ed": edStream} {
		if _, err := st.end(t); err != nil {
			t.Errorf("%s's stream: %v", name, err)
		}
	}
	if code, _, _ := ts.send(t, vic, "GET", "/api/view/"+d.viewID, "", ""); code != 404 {
		t.Errorf("vic after removal: got %d, want 404", code)
	}
}

// TestLinkModeChangeClosesLinkSessions: a session opened through the
// link alone (nobody signed in) is closed when the link mode drops.
func TestLinkModeChangeClosesLinkSessions(t *testing.T) {
	ts, _ := newSignInServer(t, nil)
	olga := user{"olga", ""}
	d := ts.makeDoc(t, olga, LinkEdit)
	anon := ts.dialAs(t, user{}, "/api/docs/"+d.id+"/ws")
	stream := openSSE(t, http.DefaultClient, ts.URL+"/api/view/"+d.viewID+"/events", nil)
	stream.nextEvent(t)
	rec, _ := json.Marshal(Access{Link: LinkView})
	if code, _, b := ts.send(t, olga, "PUT", "/api/docs/"+d.id+"/access", "application/json", string(rec)); code != 200 {
		t.Fatalf("put access: got %d %s", code, b)
	}
	wantClosed(t, anon, 4403)
	// The view link still reads.
	if code, _, _ := ts.send(t, user{}, "GET", "/api/view/"+d.viewID, "", ""); code != 200 {
		t.Errorf("view link after the change: got %d, want 200", code)
	}
	rec, _ = json.Marshal(Access{Link: LinkNone})
	ts.send(t, olga, "PUT", "/api/docs/"+d.id+"/access", "application/json", string(rec))
	if _, err := stream.end(t); err != nil {
		t.Errorf("link viewer's stream: %v", err)
	}
}

// TestRotate: new ids, the old ones answer 404 and their sessions are
// closed (4403, streams end); the text, history and access stay.
func TestRotate(t *testing.T) {
	ts, acc := newSignInServer(t, nil)
	olga, ed := user{"olga", ""}, user{"ed", "eng"}
	d := ts.makeDoc(t, olga, LinkView)
	edSession := ts.dialAs(t, ed, "/api/docs/"+d.id+"/ws")
	anonStream := openSSE(t, http.DefaultClient, ts.URL+"/api/view/"+d.viewID+"/events", nil)
	anonStream.nextEvent(t)
	code, _, b := ts.send(t, user{"omar", ""}, "POST", "/api/docs/"+d.id+"/access/rotate", "", "")
	if code != 200 {
		t.Fatalf("rotate: got %d %s", code, b)
	}
	var ids struct{ ID, ViewID string }
	json.Unmarshal(b, &ids)
	if ids.ID == d.id || ids.ViewID == d.viewID || ids.ID == "" || ids.ViewID == "" {
		t.Fatalf("rotate: got %s", b)
	}
	wantClosed(t, edSession, 4403)
	if _, err := anonStream.end(t); err != nil {
		t.Errorf("stream on the old view id: %v", err)
	}
	for _, p := range []string{"/api/docs/" + d.id, "/api/docs/" + d.id + "/access", "/api/view/" + d.viewID} {
		if code, _, _ := ts.send(t, olga, "GET", p, "", ""); code != 404 {
			t.Errorf("old id %s: got %d, want 404", p, code)
		}
	}
	code, _, b = ts.send(t, ed, "GET", "/api/docs/"+ids.ID, "", "")
	var doc struct {
		ID, ViewID, Text string
		Rev              int64
	}
	json.Unmarshal(b, &doc)
	if code != 200 || doc.Text != "hello world" || doc.Rev != 2 || doc.ID != ids.ID || doc.ViewID != ids.ViewID {
		t.Errorf("new id as ed: got %d %s, want the text at rev 2 under the new ids", code, b)
	}
	if code, _, b := ts.send(t, user{}, "GET", "/api/view/"+ids.ViewID+"/revisions", "", ""); code != 200 || !strings.Contains(string(b), `"rev":2`) {
		t.Errorf("history under the new view id: got %d %s", code, b)
	}
	if code, _, _ := ts.send(t, user{}, "PUT", "/api/docs/"+ids.ID+"/text", "application/json", `{"text":"x"}`); code != 403 {
		t.Errorf("new edit id, nobody signed in, link view, a write: got %d, want 403", code)
	}
	if _, err := acc.Access(t.Context(), d.id); err == nil {
		t.Errorf("the old id keeps an access record")
	}
	if a, err := acc.Access(t.Context(), ids.ID); err != nil || a.Owner != "olga" || a.Link != LinkView {
		t.Errorf("the new id's record: %+v %v", a, err)
	}
	// An editor reconnects on the new id.
	r := ts.dialAs(t, ed, "/api/docs/"+ids.ID+"/ws")
	r.sendOp(t, guardCtx(t), 2, 1, ot.Op{ot.Insert("> "), ot.Retain(11)})
	r.expect(t, guardCtx(t), typeAck)
}

// TestSignedInCSRF: a state-changing request signed in by an ambient
// credential from another origin, or that the browser says is cross-site,
// is refused; from the page's own origin it passes.
func TestSignedInCSRF(t *testing.T) {
	ts, _ := newSignInServer(t, nil)
	olga := user{"olga", ""}
	d := ts.makeDoc(t, olga, LinkNone)
	put := func(hdr ...string) int {
		req, _ := http.NewRequest("PUT", ts.URL+"/api/docs/"+d.id+"/text", strings.NewReader(`{"text":"x"}`))
		req.Header = olga.header()
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	host := strings.TrimPrefix(ts.URL, "http://")
	for _, c := range []struct {
		hdr  []string
		want int
	}{
		{[]string{"Origin", "https://evil.example"}, 403},
		{[]string{"Origin", "null"}, 403},
		{[]string{"Sec-Fetch-Site", "cross-site"}, 403},
		{[]string{"Sec-Fetch-Site", "same-site"}, 403},
		{[]string{"Origin", "http://" + host}, 200},
		{[]string{"Sec-Fetch-Site", "same-origin"}, 200},
		{nil, 200},
	} {
		if got := put(c.hdr...); got != c.want {
			t.Errorf("PUT text with %q: got %d, want %d", c.hdr, got, c.want)
		}
	}
	// Signing out is state-changing too.
	req, _ := http.NewRequest("POST", ts.URL+"/api/signout", nil)
	req.Header.Set("Origin", "https://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("cross-origin sign-out: got %d, want 403", resp.StatusCode)
	}
}

// TestAuthHeaderTrustedOnly: the user header counts only from a trusted
// proxy; from anyone else it is ignored.
func TestAuthHeaderTrustedOnly(t *testing.T) {
	ts, _ := newSignInServer(t, func(o *Options) {
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	code, _, _ := ts.send(t, user{"olga", "admins"}, "GET", "/api/me", "", "")
	if code != 401 {
		t.Errorf("/api/me with the header from an untrusted peer: got %d, want 401", code)
	}
	if code, _, _ := ts.send(t, user{"olga", ""}, "POST", "/api/docs", "application/json", "{}"); code != 401 {
		t.Errorf("create with the header from an untrusted peer: got %d, want 401", code)
	}

	ts2, _ := newSignInServer(t, nil)
	code, _, b := ts2.send(t, user{"olga", " admins , eng,," + strings.Repeat("x", 300)}, "GET", "/api/me", "", "")
	var me struct {
		User   string
		Groups []string
	}
	json.Unmarshal(b, &me)
	if code != 200 || me.User != "olga" || strings.Join(me.Groups, "|") != "admins|eng" {
		t.Errorf("/api/me from the trusted proxy: got %d %s", code, b)
	}
	if code, _, _ := ts2.send(t, user{}, "GET", "/api/me", "", ""); code != 401 {
		t.Errorf("/api/me without the header: got %d, want 401", code)
	}
}

// TestSignInOffChangesNothing: without SignIn the new endpoints are 404
// and documents behave as before.
func TestSignInOffChangesNothing(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, viewID := ts.createDoc(t, "hi")
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/me"}, {"GET", "/api/docs/" + id + "/access"}, {"POST", "/api/docs/" + id + "/access/rotate"},
	} {
		if code, _, _ := ts.send(t, user{"olga", ""}, c.method, c.path, "", ""); code != 404 {
			t.Errorf("%s %s with sign-in off: got %d, want 404", c.method, c.path, code)
		}
	}
	if code, _, _ := ts.send(t, user{}, "GET", "/api/view/"+viewID, "", ""); code != 200 {
		t.Errorf("view with sign-in off: got %d, want 200", code)
	}
}

// TestSignInWithTokens: with access tokens on too, a token works as it
// always has, a signed-in user goes by the access record, and a request
// with neither is 401.
func TestSignInWithTokens(t *testing.T) {
	keys := newTestKeys(t)
	ts, _ := newSignInServer(t, func(o *Options) { o.Auth = keys.auth(t, "", 0) })
	olga := user{"olga", ""}
	d := ts.makeDoc(t, olga, LinkNone)
	tok := keys.sign(t, "HS256", claims(d.id, RoleEdit))
	req, _ := http.NewRequest("GET", ts.URL+"/api/docs/"+d.id+"/text", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("edit token on a private document: got %d, want 200", resp.StatusCode)
	}
	for _, c := range []struct {
		u    user
		want int
	}{{olga, 200}, {user{"eve", ""}, 404}, {user{}, 401}} {
		if code, _, _ := ts.send(t, c.u, "GET", "/api/docs/"+d.id+"/text", "", ""); code != c.want {
			t.Errorf("as %q without a token: got %d, want %d", c.u.name, code, c.want)
		}
	}
}

// TestAccessRecordLimits: a record past the limits, or malformed, is
// refused with 400 and changes nothing.
func TestAccessRecordLimits(t *testing.T) {
	ts, acc := newSignInServer(t, func(o *Options) { o.SignIn.MaxMembers = 4 })
	olga := user{"olga", ""}
	d := ts.makeDoc(t, olga, LinkNone)
	many, _ := json.Marshal(Access{Link: LinkNone, Members: []Member{{User: "a", Role: "view"}, {User: "b", Role: "view"}, {User: "c", Role: "view"}, {User: "d", Role: "view"}, {User: "e", Role: "view"}}})
	for _, body := range []string{
		string(many),
		`{"link":"all"}`,
		`{"link":"none","members":[{"user":"a","group":"b","role":"view"}]}`,
		`{"link":"none","members":[{"role":"view"}]}`,
		`{"link":"none","members":[{"user":"a","role":"admin"}]}`,
		`{"link":"none","members":[{"user":"a,b","role":"view"}]}`,
		`{"link":"none","owner":"mallory"}`,
		`{"link":"none","members":[{"user":"` + strings.Repeat("a", 300) + `","role":"view"}]}`,
		`not json`,
	} {
		if code, _, b := ts.send(t, olga, "PUT", "/api/docs/"+d.id+"/access", "application/json", body); code != 400 {
			t.Errorf("PUT access %.60s: got %d %s, want 400", body, code, b)
		}
	}
	if code, _, _ := ts.send(t, olga, "PUT", "/api/docs/"+d.id+"/access", "application/json", strings.Repeat(" ", maxAccessBody+1)+"{}"); code != 413 {
		t.Errorf("PUT access over %d bytes: got %d, want 413", maxAccessBody, code)
	}
	if a, _ := acc.Access(t.Context(), d.id); len(a.Members) != len(tableMembers) || a.Owner != "olga" {
		t.Errorf("record after refused changes: %+v", a)
	}
}

// rawStatusAs is rawStatus with extra header lines ("Name: value\r\n").
func rawStatusAs(t *testing.T, addr, method, target string, upgrade bool, extra string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s", method, target, addr, extra)
	if upgrade {
		req += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	}
	if method == http.MethodPost || method == http.MethodPut {
		body := `{"text":"x","link":"edit","members":[]}`
		req += fmt.Sprintf("Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	} else {
		req += "\r\n"
	}
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestEncodedPathsSignedIn runs the audit's encoding tricks (see
// TestEncodedPathsNeedTokens) against every document route with sign-in
// on: a signed-in stranger to a private document gets 404 from every
// spelling that routes (the guard ran), a view member 403 on the edit
// routes, and no other spelling succeeds; nothing changes.
func TestEncodedPathsSignedIn(t *testing.T) {
	ts, acc := newSignInServer(t, nil)
	d := ts.makeDoc(t, user{"olga", ""}, LinkNone)
	addr := strings.TrimPrefix(ts.URL, "http://")
	state := func() string {
		_, _, b := ts.send(t, user{"olga", ""}, "GET", "/api/docs/"+d.id, "", "")
		return string(b)
	}
	before := state()
	tried := 0
	for _, rt := range ts.srv.routeTable() {
		if rt.need == needNone || rt.need == needCreate {
			continue
		}
		method, pattern, _ := strings.Cut(rt.pattern, " ")
		path := strings.NewReplacer("{id}", d.id, "{viewId}", d.viewID).Replace(pattern)
		upgrade := strings.HasSuffix(pattern, "/ws")
		routed, other := pathVariants(path)
		for _, who := range []struct {
			hdr  string
			want int
		}{
			{"X-User: eve\r\n", 404},
			{"", 404},
			{"X-User: vic\r\n", map[bool]int{true: 403, false: 200}[rt.need.role() > roleView]},
		} {
			for _, p := range append([]string{path}, routed...) {
				if who.want == 200 {
					break // vic may read the view routes: not a refusal to prove
				}
				tried++
				if got := rawStatusAs(t, addr, method, p, upgrade, who.hdr); got != who.want {
					t.Errorf("%s %s as %q: got %d, want %d", method, p, who.hdr, got, who.want)
				}
			}
			if who.want == 200 {
				continue
			}
			for _, p := range other {
				tried++
				if got := rawStatusAs(t, addr, method, p, upgrade, who.hdr); got < 300 {
					t.Errorf("%s %s as %q: got %d, want a refusal", method, p, who.hdr, got)
				}
			}
		}
	}
	if after := state(); after != before {
		t.Errorf("document changed: %s, was %s", after, before)
	}
	if a, _ := acc.Access(t.Context(), d.id); a.Link != LinkNone || len(a.Members) != len(tableMembers) {
		t.Errorf("access record changed: %+v", a)
	}
	t.Logf("%d requests", tried)
}

// TestSessionCookie: a session in the store signs its cookie's holder in
// until it expires; an expired one is dropped when presented; a cookie
// whose id the store does not hold is nobody. Over https the cookie is
// the __Host- one.
func TestSessionCookie(t *testing.T) {
	ts, acc := newSignInServer(t, nil)
	live, expired := "live-session-id", "expired-session-id"
	acc.SetSession(t.Context(), sessionKey(live), Session{User: "sam", Groups: []string{"eng"}, Expires: time.Now().Add(time.Hour)})
	acc.SetSession(t.Context(), sessionKey(expired), Session{User: "old", Expires: time.Now().Add(-time.Second)})
	me := func(cookie, value string) int {
		req, _ := http.NewRequest("GET", ts.URL+"/api/me", nil)
		req.AddCookie(&http.Cookie{Name: cookie, Value: value})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		cookie, value string
		want          int
	}{
		{sessionCookiePlain, live, 200},
		{sessionCookieTLS, live, 401}, // over plain http only the plain name counts
		{sessionCookiePlain, expired, 401},
		{sessionCookiePlain, "made-up", 401},
		{sessionCookiePlain, sessionKey(live), 401}, // the store's key is not the id
	} {
		if got := me(c.cookie, c.value); got != c.want {
			t.Errorf("/api/me with %s=%s: got %d, want %d", c.cookie, c.value, got, c.want)
		}
	}
	if _, err := acc.Session(t.Context(), sessionKey(expired)); err == nil {
		t.Errorf("the expired session is still stored")
	}
	if _, err := acc.Session(t.Context(), live); err == nil {
		t.Errorf("a session is stored under its id, not its hash")
	}
}

// TestSignInLimits: rotations are rate-limited per client address, and a
// user's groups from the proxy are capped at MaxGroups.
func TestSignInLimits(t *testing.T) {
	ts, _ := newSignInServer(t, func(o *Options) { o.SignIn.RotateBurst = 2; o.SignIn.RotateRate = 0.001; o.SignIn.MaxGroups = 3 })
	olga := user{"olga", ""}
	d := ts.makeDoc(t, olga, LinkNone)
	id := d.id
	for i, want := range []int{200, 200, 429} {
		code, _, b := ts.send(t, olga, "POST", "/api/docs/"+id+"/access/rotate", "", "")
		if code != want {
			t.Fatalf("rotation %d: got %d %s, want %d", i+1, code, b, want)
		}
		var ids struct{ ID string }
		json.Unmarshal(b, &ids)
		if code == 200 {
			id = ids.ID
		}
	}
	_, _, b := ts.send(t, user{"olga", "a,b,c,d,e"}, "GET", "/api/me", "", "")
	var me struct{ Groups []string }
	json.Unmarshal(b, &me)
	if strings.Join(me.Groups, ",") != "a,b,c" {
		t.Errorf("groups past MaxGroups 3: got %q", me.Groups)
	}
}

// TestAccessLossEndsHTTPStream: a streamed write (POST .../stream) whose
// writer loses edit access ends with a last line saying forbidden; what
// it committed stays.
func TestAccessLossEndsHTTPStream(t *testing.T) {
	ts, _ := newSignInServer(t, nil)
	olga, ed := user{"olga", ""}, user{"ed", "eng"}
	d := ts.makeDoc(t, olga, LinkNone)
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequestWithContext(guardCtx(t), "POST", ts.URL+"/api/docs/"+d.id+"/stream?at=end&name=agent", pr)
	req.Header = ed.header()
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	answer := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			close(answer)
			return
		}
		answer <- resp
	}()
	pw.Write([]byte(" and more"))
	resp, ok := <-answer
	if !ok || resp.StatusCode != 200 {
		t.Fatalf("stream: %v", resp)
	}
	defer resp.Body.Close()
	lines := json.NewDecoder(resp.Body)
	var first streamLine
	if err := lines.Decode(&first); err != nil || first.Inserted != 9 {
		t.Fatalf("first line: %+v %v", first, err)
	}
	rec, _ := json.Marshal(Access{Link: LinkNone, Members: []Member{{Group: "eng", Role: "view"}}})
	if code, _, b := ts.send(t, olga, "PUT", "/api/docs/"+d.id+"/access", "application/json", string(rec)); code != 200 {
		t.Fatalf("put access: got %d %s", code, b)
	}
	var last streamLine
	if err := lines.Decode(&last); err != nil || !last.Done || last.Error == nil || last.Error.Code != CodeForbidden {
		t.Errorf("last line after losing access: %+v %v, want done with forbidden", last, err)
	}
	if _, _, b := ts.send(t, olga, "GET", "/api/docs/"+d.id+"/text", "", ""); string(b) != "hello world and more" {
		t.Errorf("text after the stream: %q", b)
	}
}

// TestSessionEndClosesSessions: an editing session opened with a sign-in
// session's cookie is closed (4401) when that session is signed out, or
// when it expires; one opened by another session stays.
func TestSessionEndClosesSessions(t *testing.T) {
	ts, acc := newSignInServer(t, nil)
	d := ts.makeDoc(t, user{"olga", ""}, LinkNone)
	ctx := t.Context()
	acc.SetSession(ctx, sessionKey("sam-1"), Session{User: "olga", Expires: time.Now().Add(time.Hour)})
	acc.SetSession(ctx, sessionKey("sam-2"), Session{User: "olga", Expires: time.Now().Add(time.Hour)})
	acc.SetSession(ctx, sessionKey("short"), Session{User: "olga", Expires: time.Now().Add(300 * time.Millisecond)})
	dial := func(sid string) *rawConn {
		t.Helper()
		hdr := http.Header{"Cookie": {sessionCookiePlain + "=" + sid}}
		ws, _, err := websocket.Dial(guardCtx(t), "ws"+strings.TrimPrefix(ts.URL, "http")+"/api/docs/"+d.id+"/ws", &websocket.DialOptions{HTTPHeader: hdr})
		if err != nil {
			t.Fatalf("dial with session %s: %v", sid, err)
		}
		t.Cleanup(func() { ws.CloseNow() })
		r := &rawConn{ws: ws}
		r.hello(t, guardCtx(t), newClientID(), -1)
		return r
	}
	one, two, short := dial("sam-1"), dial("sam-2"), dial("short")
	wantClosed(t, short, 4401)

	req, _ := http.NewRequest("POST", ts.URL+"/api/signout", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookiePlain, Value: "sam-1"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("sign out: %v %v", resp, err)
	}
	resp.Body.Close()
	wantClosed(t, one, 4401)
	// The other session's editor still edits.
	two.sendOp(t, guardCtx(t), 2, 1, ot.Op{ot.Retain(11), ot.Insert("!")})
	two.expect(t, guardCtx(t), typeAck)
}

// TestSignedInWebSocketOrigin: a page of another origin cannot open an
// editing session with a signed-in browser's credentials.
func TestSignedInWebSocketOrigin(t *testing.T) {
	ts, _ := newSignInServer(t, nil)
	olga := user{"olga", ""}
	d := ts.makeDoc(t, olga, LinkNone)
	hdr := olga.header()
	hdr.Set("Origin", "https://evil.example")
	_, resp, err := websocket.Dial(guardCtx(t), "ws"+strings.TrimPrefix(ts.URL, "http")+"/api/docs/"+d.id+"/ws", &websocket.DialOptions{HTTPHeader: hdr})
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("a cross-origin editing session as olga: got %v %v, want 403", resp, err)
	}
}
