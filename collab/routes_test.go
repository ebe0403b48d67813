package collab

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// pathVariants returns path written in the ways a client can make a mux
// and a second parser disagree: a percent-encoded character (lower- and
// upper-case hex) or a whole segment encoded, doubled slashes, dot
// segments, %2F for a slash, a trailing slash, upper case. routed holds
// the variants the mux must route to the same handler as path (they
// decode to it), so that a guard refusing them proves it ran.
func pathVariants(path string) (routed, other []string) {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	join := func(s []string) string { return "/" + strings.Join(s, "/") }
	with := func(i int, seg string) string {
		s := append([]string(nil), segs...)
		s[i] = seg
		return join(s)
	}
	for i, seg := range segs {
		first := seg[0]
		routed = append(routed,
			with(i, fmt.Sprintf("%%%02x", first)+seg[1:]),
			with(i, fmt.Sprintf("%%%02X", first)+seg[1:]))
		var all strings.Builder
		for j := 0; j < len(seg); j++ {
			fmt.Fprintf(&all, "%%%02X", seg[j])
		}
		routed = append(routed, with(i, all.String()))
		other = append(other,
			with(i, strings.ToUpper(seg)),
			join(segs[:i])+"//"+strings.Join(segs[i:], "/"),
			join(segs[:i])+"/./"+strings.Join(segs[i:], "/"),
			join(segs[:i])+"/%2E/"+strings.Join(segs[i:], "/"),
			join(segs[:i])+"/x/../"+strings.Join(segs[i:], "/"),
			join(segs[:i])+"/x/%2E%2E/"+strings.Join(segs[i:], "/"),
		)
		if i > 0 {
			other = append(other,
				join(segs[:i])+"%2F"+strings.Join(segs[i:], "/"),
				join(segs[:i])+"%2f"+strings.Join(segs[i:], "/"))
		}
	}
	other = append(other, path+"/", path+"//", path+"/.", path+"%2F", path+"?x=%2F..%2F")
	return slices.Compact(routed), other
}

// rawStatus sends one request exactly as written (no client cleans or
// re-encodes target) and returns the status of the answer. A GET can ask
// for a WebSocket upgrade.
func rawStatus(t *testing.T, addr, method, target string, upgrade bool) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, addr)
	if upgrade {
		req += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	}
	if method == http.MethodPost || method == http.MethodPut {
		body := `{"text":"x"}`
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

// TestEncodedPathsNeedTokens is the audit's critical finding: with tokens
// on, no spelling of a guarded route's path reaches its handler without
// a token. Each route of the table is tried with every encoding trick;
// the ones that decode to the route must be refused 401 (the check ran),
// the others must not succeed either.
func TestEncodedPathsNeedTokens(t *testing.T) {
	keys := newTestKeys(t)
	ts := newTestServer(t, Options{Auth: keys.auth(t, "team-secret", 0)})
	id, viewID := ts.createDocAuth(t, "hello", "team-secret")
	addr := strings.TrimPrefix(ts.URL, "http://")
	docs := func() int {
		ts.store.mu.Lock()
		defer ts.store.mu.Unlock()
		return len(ts.store.docs)
	}
	before := docs()

	tried := 0
	for _, rt := range ts.srv.routeTable() {
		if rt.need == needNone {
			continue
		}
		method, pattern, _ := strings.Cut(rt.pattern, " ")
		path := strings.NewReplacer("{id}", id, "{viewId}", viewID).Replace(pattern)
		upgrade := strings.HasSuffix(pattern, "/ws")
		routed, other := pathVariants(path)
		for _, p := range append([]string{path}, routed...) {
			tried++
			if got := rawStatus(t, addr, method, p, upgrade); got != http.StatusUnauthorized {
				t.Errorf("%s %s without a token: got %d, want 401", method, p, got)
			}
		}
		for _, p := range other {
			tried++
			got := rawStatus(t, addr, method, p, upgrade)
			if got < 300 {
				t.Errorf("%s %s without a token: got %d, want a refusal", method, p, got)
			}
		}
	}
	if got := docs(); got != before {
		t.Errorf("documents: got %d after the requests, want %d", got, before)
	}
	if _, err := ts.store.Load(t.Context(), id); err != nil {
		t.Errorf("the document is gone after the requests: %v", err)
	}
	t.Logf("%d requests", tried)
}

// TestRoutesDeclareNeeds: every route that names a document in its path
// needs access to it, so that a route added later cannot forget.
func TestRoutesDeclareNeeds(t *testing.T) {
	s := New(newMemStore(), Options{})
	seen := map[string]bool{}
	for _, rt := range s.routeTable() {
		if seen[rt.pattern] {
			t.Errorf("route %q is listed twice", rt.pattern)
		}
		seen[rt.pattern] = true
		method, _, _ := strings.Cut(rt.pattern, " ")
		var want need
		switch {
		case method == http.MethodOptions || rt.pattern == "/api/" || rt.pattern == "GET /healthz":
			want = needNone
		case !strings.Contains(rt.pattern, "{") && (strings.HasPrefix(rt.pattern, "GET /api/me") ||
			strings.Contains(rt.pattern, " /api/signin") || strings.HasPrefix(rt.pattern, "POST /api/signout")):
			want = needNone // sign-in (signin.go): about the caller, no document
		case rt.pattern == "GET /api/docs" || rt.pattern == "POST /api/tags/rename":
			want = needNone // workspace (workspaceapi.go): signed-in callers, each document checked
		case strings.Contains(rt.pattern, "{id}/access") || rt.pattern == "DELETE /api/docs/{id}" ||
			strings.HasSuffix(rt.pattern, "{id}/trash") || strings.Contains(rt.pattern, "{id}/comments/settings"):
			want = needOwner
		case strings.Contains(rt.pattern, "{id}/comments"):
			want = needComment
		case strings.Contains(rt.pattern, "{id}") && method == http.MethodGet && !strings.HasSuffix(rt.pattern, "/ws"):
			want = needRead // a read: a signed-in viewer may make it by the edit id
		case strings.Contains(rt.pattern, "{id}"):
			want = needEdit
		case strings.Contains(rt.pattern, "{viewId}"):
			want = needView
		case rt.pattern == "POST /api/docs":
			want = needCreate
		default:
			t.Errorf("route %q: no rule says what it needs; extend this test", rt.pattern)
			continue
		}
		if rt.need != want {
			t.Errorf("route %q needs %v, want %v", rt.pattern, rt.need, want)
		}
	}
}

// accessFixture is a server with tokens on, two documents and the
// tokens of every role, for the routing fuzz target.
type accessFixture struct {
	srv        *Server
	mux        http.Handler
	id, viewID string
	otherID    string
	tokens     []fixtureToken
	reached    *reachedRoute
	needOf     map[string]need
}

type fixtureToken struct {
	name  string
	value string
	// may reports whether the token grants need n on the document the
	// route's path value names (canonical, "" when not a UUID).
	may func(n need, pathID string) bool
}

type reachedRoute struct {
	pattern string
	r       *http.Request
}

func newAccessFixture(tb testing.TB) *accessFixture {
	keys := &testKeys{hmac: []byte(strings.Repeat("s", 32))}
	a, err := NewAuth(AuthOptions{HMACSecret: keys.hmac, CreateToken: "team-secret", Leeway: -1})
	if err != nil {
		tb.Fatal(err)
	}
	store := newMemStore()
	f := &accessFixture{
		id: "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", viewID: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
		otherID: "1f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
		reached: &reachedRoute{}, needOf: map[string]need{},
	}
	store.Create(tb.Context(), DocMeta{ID: f.id, ViewID: f.viewID}, nil)
	store.Create(tb.Context(), DocMeta{ID: f.otherID, ViewID: "2f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}, nil)
	f.srv = New(store, Options{Auth: a})
	for _, rt := range f.srv.routeTable() {
		f.needOf[rt.pattern] = rt.need
	}
	f.mux = f.srv.buildMux(func(rt route) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.reached.pattern, f.reached.r = rt.pattern, r
		})
	})
	sign := func(c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(keys.hmac)
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
	tok := func(doc, role string) string {
		c := jwt.MapClaims{"role": role, "exp": time.Now().Add(time.Hour).Unix()}
		if doc != "" {
			c["doc"] = doc
		}
		return sign(c)
	}
	expired := jwt.MapClaims{"role": RoleEdit, "doc": "*", "exp": time.Now().Add(-time.Hour).Unix()}
	none := func(need, string) bool { return false }
	f.tokens = []fixtureToken{
		{"no token", "", none},
		{"garbage", "not.a.token", none},
		{"expired edit *", sign(expired), none},
		{"create token", "team-secret", func(n need, _ string) bool { return n == needCreate }},
		{"create JWT", tok("", RoleCreate), func(n need, _ string) bool { return n == needCreate }},
		// A token's own doc claim in a view path gets through to the
		// handler, which finds no view of that id (404): it names no
		// other document.
		{"edit id", tok(f.id, RoleEdit), func(n need, p string) bool {
			return ((n == needEdit || n == needComment) && p == f.id) || (n == needView && (p == f.viewID || p == f.id))
		}},
		{"edit other", tok(f.otherID, RoleEdit), func(n need, p string) bool {
			return (n == needEdit || n == needComment) && p == f.otherID
		}},
		{"edit *", tok("*", RoleEdit), func(n need, _ string) bool { return n == needEdit || n == needView || n == needComment }},
		// The comment role: comments and view endpoints, never the text's
		// edit endpoints.
		{"comment id", tok(f.id, RoleComment), func(n need, p string) bool {
			return (n == needComment && p == f.id) || (n == needView && (p == f.viewID || p == f.id))
		}},
		{"comment *", tok("*", RoleComment), func(n need, _ string) bool { return n == needComment || n == needView }},
		{"view by view id", tok(f.viewID, RoleView), func(n need, p string) bool {
			return n == needView && p == f.viewID
		}},
		{"view by edit id", tok(f.id, RoleView), func(n need, p string) bool {
			return n == needView && (p == f.viewID || p == f.id)
		}},
		{"view *", tok("*", RoleView), func(n need, _ string) bool { return n == needView }},
	}
	return f
}

// check serves one request (method, target, token selector, where the
// token goes) and fails when a handler was reached that the token's role
// may not reach. It returns false when the input is no HTTP request.
func (f *accessFixture) check(t *testing.T, method, target string, tokIdx uint8, inQuery bool) bool {
	tok := f.tokens[int(tokIdx)%len(f.tokens)]
	raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: x\r\n", method, target)
	if tok.value != "" && !inQuery {
		raw += "Authorization: Bearer " + tok.value + "\r\n"
	}
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw + "\r\n")))
	if err != nil {
		return false
	}
	if tok.value != "" && inQuery {
		q := req.URL.Query()
		q.Set("token", tok.value)
		req.URL.RawQuery = q.Encode()
	}
	*f.reached = reachedRoute{}
	f.mux.ServeHTTP(httptest.NewRecorder(), req)
	if f.reached.r == nil {
		return true
	}
	n, ok := f.needOf[f.reached.pattern]
	if !ok {
		t.Fatalf("reached %q, which is not in the route table", f.reached.pattern)
	}
	// Without sign-in an edit token grants every need of the {id} path,
	// and a comment token reads as well as comments.
	switch n {
	case needOwner:
		n = needEdit
	case needRead:
		n = needComment
	}
	var pathID string
	switch n {
	case needEdit, needComment:
		pathID, _ = canonicalUUID(f.reached.r.PathValue("id"))
	case needView:
		pathID, _ = canonicalUUID(f.reached.r.PathValue("viewId"))
	}
	if n != needNone && !tok.may(n, pathID) {
		t.Fatalf("%s %q with %s (in query: %v) reached %q (needs %v, path id %q)",
			method, target, tok.name, inQuery, f.reached.pattern, n, pathID)
	}
	return true
}

// FuzzRouteAccess sends random paths, methods and tokens through the
// API's mux and its guards, with stub handlers, against a table of what
// each role may reach: no request may reach a handler its token does not
// allow, however its path is spelled.
func FuzzRouteAccess(f *testing.F) {
	fx := newAccessFixture(f)
	methods := []string{"GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", "HEAD", "get", "CONNECT"}
	for _, p := range []string{
		"/api/docs", "/api/%64ocs", "/api/d%6Fcs/" + fx.id + "/text", "/api//docs/" + fx.id,
		"/api/docs/" + fx.id + "/ws", "/api/docs/" + strings.ToUpper(fx.id) + "/events",
		"/api/view/" + fx.viewID + "/text", "/api/view/" + fx.id, "/api/docs/" + fx.viewID + "/ops",
		"/api/docs/" + fx.otherID + "/restore", "/api/./docs/" + fx.id, "/api/docs%2F" + fx.id,
		"/api/view/%30a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/events", "/healthz", "/api/", "*",
		"/api/docs/" + fx.id + "/comments", "/api/docs/" + fx.id + "/comments/x/replies", "/api/docs/" + fx.id + "/comments/settings",
		"/api/docs/" + fx.otherID + "/comments/x", "/api/view/" + fx.viewID + "/comments",
	} {
		for tok := range len(fx.tokens) {
			f.Add(uint8(tok), p, uint8(tok), tok%2 == 0)
		}
	}
	f.Fuzz(func(t *testing.T, m uint8, target string, tok uint8, inQuery bool) {
		fx.check(t, methods[int(m)%len(methods)], target, tok, inQuery)
	})
}
