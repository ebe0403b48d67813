package collab

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/collabd/collabd/ot"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// testKeys are the signing keys of the auth tests, and the server options
// that trust them.
type testKeys struct {
	hmac  []byte
	rsa   *rsa.PrivateKey
	ec    *ecdsa.PrivateKey
	ed    ed25519.PrivateKey
	jwks  []byte
	other []byte // an HS256 secret the server does not know
}

func newTestKeys(t *testing.T) *testKeys {
	t.Helper()
	k := &testKeys{hmac: bytes.Repeat([]byte("s"), 32), other: bytes.Repeat([]byte("x"), 32)}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	pt, err := k.ec.PublicKey.Bytes() // 0x04 | x | y
	if err != nil {
		t.Fatal(err)
	}
	k.jwks, _ = json.Marshal(map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "r1", "alg": "RS256", "use": "sig",
			"n": b64(k.rsa.N.Bytes()), "e": b64(big.NewInt(int64(k.rsa.E)).Bytes())},
		{"kty": "EC", "kid": "e1", "crv": "P-256", "x": b64(pt[1:33]), "y": b64(pt[33:])},
		{"kty": "OKP", "kid": "d1", "crv": "Ed25519", "x": b64(k.ed.Public().(ed25519.PublicKey))},
	}})
	return k
}

func (k *testKeys) auth(t *testing.T, createToken string, leeway time.Duration) *Auth {
	t.Helper()
	a, err := NewAuth(AuthOptions{HMACSecret: k.hmac, JWKS: k.jwks, CreateToken: createToken, Leeway: leeway})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// claims builds a token's claims, valid for a minute.
func claims(doc, role string) jwt.MapClaims {
	c := jwt.MapClaims{"role": role, "exp": time.Now().Add(time.Minute).Unix()}
	if doc != "" {
		c["doc"] = doc
	}
	return c
}

// sign mints a token: alg is HS256, RS256, ES256, EdDSA or none.
func (k *testKeys) sign(t *testing.T, alg string, c jwt.MapClaims) string {
	t.Helper()
	var (
		m   jwt.SigningMethod
		key any
		kid string
	)
	switch alg {
	case "HS256":
		m, key = jwt.SigningMethodHS256, k.hmac
	case "HS256-other":
		m, key = jwt.SigningMethodHS256, k.other
	case "RS256":
		m, key, kid = jwt.SigningMethodRS256, k.rsa, "r1"
	case "ES256":
		m, key, kid = jwt.SigningMethodES256, k.ec, "e1"
	case "EdDSA":
		m, key, kid = jwt.SigningMethodEdDSA, k.ed, "d1"
	case "RS256-badkid":
		m, key, kid = jwt.SigningMethodRS256, k.rsa, "nope"
	case "none":
		m, key = jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType
	default:
		t.Fatalf("unknown alg %s", alg)
	}
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// endpoint is one route of the API as the token matrix exercises it.
type endpoint struct {
	name   string
	method string
	path   string // %[1]s: edit id, %[2]s: view id
	kind   string // "http", "sse" or "ws"
	okCode int
}

var endpoints = []endpoint{
	{"create", "POST", "/api/docs", "http", 201},
	{"get doc", "GET", "/api/docs/%[1]s", "http", 200},
	{"get text", "GET", "/api/docs/%[1]s/text", "http", 200},
	{"get ops", "GET", "/api/docs/%[1]s/ops", "http", 200},
	{"doc events", "GET", "/api/docs/%[1]s/events", "sse", 200},
	{"edit socket", "GET", "/api/docs/%[1]s/ws", "ws", 101},
	{"get view", "GET", "/api/view/%[2]s", "http", 200},
	{"view events", "GET", "/api/view/%[2]s/events", "sse", 200},
}

// call makes one request to ep with token (sent as Authorization: Bearer,
// or as ?token= when query is set) and returns the status and, for a
// refusal, the error code of the JSON body.
func (ts *testServer) call(t *testing.T, ep endpoint, id, viewID, token string, query bool) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	path := ep.path
	if strings.Contains(path, "%") {
		path = fmt.Sprintf(path, id, viewID)
	}
	u := ts.URL + path
	hdr := http.Header{}
	if token != "" && query {
		u += "?token=" + token
	} else if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	if ep.kind == "ws" {
		ws, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(u, "http"), &websocket.DialOptions{HTTPHeader: hdr})
		if err == nil {
			ws.CloseNow()
			return http.StatusSwitchingProtocols, ""
		}
		if resp == nil {
			t.Fatalf("%s: dial: %v", ep.name, err)
		}
		return resp.StatusCode, errorCode(t, resp)
	}
	var body io.Reader
	if ep.method == "POST" {
		body = strings.NewReader(`{"text":"x"}`)
	}
	req, _ := http.NewRequestWithContext(ctx, ep.method, u, body)
	req.Header = hdr
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", ep.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 400 {
		return resp.StatusCode, "" // an SSE stream is left after its headers
	}
	return resp.StatusCode, errorCode(t, resp)
}

func errorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	var e apiError
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &e); err != nil {
		t.Errorf("status %d: body %q is not a JSON error", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("status %d: got Content-Type %q, want application/json", resp.StatusCode, ct)
	}
	return e.Error.Code
}

// TestTokenMatrix sends tokens of every role, and broken ones, to every
// endpoint, and checks each is accepted or refused as it should be.
func TestTokenMatrix(t *testing.T) {
	keys := newTestKeys(t)
	ts := newTestServer(t, Options{Auth: keys.auth(t, "team-secret", 5*time.Second)})
	id, viewID := ts.createDocAuth(t, "hello", "team-secret")
	other, otherView := ts.createDocAuth(t, "other", "team-secret")
	_ = otherView

	const (
		ok        = "ok"
		refused   = "401" // unauthorized
		forbidden = "403"
	)
	expired := claims(id, RoleEdit)
	expired["exp"] = time.Now().Add(-time.Minute).Unix()
	withinLeeway := claims(id, RoleEdit)
	withinLeeway["exp"] = time.Now().Add(-2 * time.Second).Unix()
	notYet := claims(id, RoleEdit)
	notYet["nbf"] = time.Now().Add(time.Minute).Unix()
	noExp := claims(id, RoleEdit)
	delete(noExp, "exp")
	badRole := claims(id, "admin")
	upper := claims(strings.ToUpper(id), RoleEdit)

	// want lists the outcome per endpoint, in the order of endpoints:
	// create, get doc, text, ops, doc events, edit socket, view, view events.
	all := func(w string) []string { return []string{w, w, w, w, w, w, w, w} }
	editOK := []string{forbidden, ok, ok, ok, ok, ok, ok, ok}
	viewOK := []string{forbidden, forbidden, forbidden, forbidden, forbidden, forbidden, ok, ok}
	cases := []struct {
		name  string
		token string
		query bool
		want  []string
	}{
		{"no token", "", false, all(refused)},
		{"edit HS256", keys.sign(t, "HS256", claims(id, RoleEdit)), false, editOK},
		{"edit HS256 in query", keys.sign(t, "HS256", claims(id, RoleEdit)), true,
			[]string{refused, ok, ok, ok, ok, ok, ok, ok}}, // POST takes no ?token=
		{"edit RS256", keys.sign(t, "RS256", claims(id, RoleEdit)), false, editOK},
		{"edit ES256", keys.sign(t, "ES256", claims(id, RoleEdit)), false, editOK},
		{"edit EdDSA", keys.sign(t, "EdDSA", claims(id, RoleEdit)), false, editOK},
		{"edit upper-case id", keys.sign(t, "HS256", upper), false, editOK},
		{"edit any doc", keys.sign(t, "HS256", claims("*", RoleEdit)), false, editOK},
		{"edit other doc", keys.sign(t, "HS256", claims(other, RoleEdit)), false,
			[]string{forbidden, forbidden, forbidden, forbidden, forbidden, forbidden, forbidden, forbidden}},
		{"view by view id", keys.sign(t, "HS256", claims(viewID, RoleView)), false, viewOK},
		{"view by edit id", keys.sign(t, "ES256", claims(id, RoleView)), false, viewOK},
		{"view any doc", keys.sign(t, "HS256", claims("*", RoleView)), false, viewOK},
		{"view in query", keys.sign(t, "EdDSA", claims(viewID, RoleView)), true,
			[]string{refused, forbidden, forbidden, forbidden, forbidden, forbidden, ok, ok}},
		{"create JWT", keys.sign(t, "HS256", claims("", RoleCreate)), false,
			[]string{ok, forbidden, forbidden, forbidden, forbidden, forbidden, forbidden, forbidden}},
		{"create token", "team-secret", false,
			[]string{ok, refused, refused, refused, refused, refused, refused, refused}},
		{"expired", keys.sign(t, "HS256", expired), false, all(refused)},
		{"expired within leeway", keys.sign(t, "HS256", withinLeeway), false, editOK},
		{"not yet valid", keys.sign(t, "RS256", notYet), false, all(refused)},
		{"no exp", keys.sign(t, "HS256", noExp), false, all(refused)},
		{"wrong key", keys.sign(t, "HS256-other", claims("*", RoleEdit)), false, all(refused)},
		{"unknown kid", keys.sign(t, "RS256-badkid", claims("*", RoleEdit)), false, all(refused)},
		{"alg none", keys.sign(t, "none", claims("*", RoleEdit)), false, all(refused)},
		{"bad role", keys.sign(t, "HS256", badRole), false, all(refused)},
		{"edit without doc", keys.sign(t, "HS256", claims("", RoleEdit)), false, all(refused)},
		{"garbage", "not.a.token", false, all(refused)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for i, ep := range endpoints {
				status, code := ts.call(t, ep, id, viewID, tc.token, tc.query)
				var got string
				switch {
				case status == ep.okCode:
					got = ok
				case status == 401 && code == CodeUnauthorized:
					got = refused
				case status == 403 && code == CodeForbidden:
					got = forbidden
				default:
					got = fmt.Sprintf("%d %s", status, code)
				}
				if got != tc.want[i] {
					t.Errorf("%s %s: got %s, want %s", ep.method, ep.name, got, tc.want[i])
				}
			}
		})
	}

	// Open endpoints stay open.
	resp, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz without a token: got %d, want 200", resp.StatusCode)
	}
	req, _ := http.NewRequest("OPTIONS", ts.URL+"/api/view/"+viewID, nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Headers", "authorization")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: got %d allowing %q, want 204 allowing Authorization", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Headers"))
	}
}

// createDocAuth creates a document with the create token.
func (ts *testServer) createDocAuth(t *testing.T, text, token string) (id, viewID string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"text": text})
	req, _ := http.NewRequest("POST", ts.URL+"/api/docs", bytes.NewReader(body))
	req.Header.Set(CreateTokenHeader, token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create with %s: got status %d, want 201", CreateTokenHeader, resp.StatusCode)
	}
	var out struct{ ID, ViewID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.ID, out.ViewID
}

// TestCreateTokenOnly: with a create token and no JWT keys, only creation
// is guarded; the ids stay the capabilities they are without tokens.
func TestCreateTokenOnly(t *testing.T) {
	a, err := NewAuth(AuthOptions{CreateToken: "team-secret"})
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, Options{Auth: a})
	id, viewID := ts.createDocAuth(t, "hi", "team-secret")
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"none", "", 401}, {"wrong", "team-secrets", 401}, {"bearer", "team-secret", 201},
	} {
		if got, _ := ts.call(t, endpoints[0], id, viewID, tc.token, false); got != tc.want {
			t.Errorf("create, %s token: got %d, want %d", tc.name, got, tc.want)
		}
	}
	for _, ep := range endpoints[1:] {
		if got, code := ts.call(t, ep, id, viewID, "", false); got != ep.okCode {
			t.Errorf("%s without a token: got %d %s, want %d", ep.name, got, code, ep.okCode)
		}
	}
}

// TestTokenExpiresMidSession: an editing session closes with 4401 once its
// token expires, an SSE stream ends, and a reconnect with the same token
// is refused before the upgrade. The token's name is what peers see.
func TestTokenExpiresMidSession(t *testing.T) {
	keys := newTestKeys(t)
	ts := newTestServer(t, Options{Auth: keys.auth(t, "c", -1)})
	id, viewID := ts.createDocAuth(t, "hello", "c")
	ctx := guardCtx(t)

	// exp has one-second precision: expire at the start of a second at
	// least two seconds away, so that the session surely opens first.
	exp := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	short := claims(id, RoleEdit)
	short["exp"] = exp.Unix()
	short["name"] = "Ada (from token)"
	tok := keys.sign(t, "HS256", short)
	long := keys.sign(t, "HS256", claims(id, RoleEdit))

	r, _, err := websocket.Dial(ctx, ts.wsURL(id)+"?token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.CloseNow()
	raw := &rawConn{ws: r}
	raw.hello(t, ctx, uuid.NewString(), -1)

	// A peer with a long token sees the token's name, not the hello's.
	b, err := Dial(ctx, ts.wsURL(id)+"?token="+long, ClientOptions{Name: "B"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Wait(ctx, func(v ClientView) bool {
		p := v.Peers()
		return len(p) == 1 && p[0].Name == "Ada (from token)"
	}); err != nil {
		t.Fatalf("peer name: got %+v, want Ada (from token): %v", b.Peers(), err)
	}

	sse := openSSE(t, http.DefaultClient, ts.URL+"/api/view/"+viewID+"/events?token="+tok, nil)
	defer sse.close()
	if m := sse.nextEvent(t); m.Kind != "snapshot" {
		t.Fatalf("SSE: got %s first, want snapshot", m)
	}

	raw.expectError(t, ctx, CodeUnauthorized, 4401)
	if now := time.Now(); now.Before(exp) {
		t.Errorf("session closed at %v, before its token expired at %v", now, exp)
	}
	if _, err := sse.end(t); err != nil {
		t.Logf("SSE stream ended with %v", err)
	}
	// B, with a valid token, edits on.
	if err := b.Edit((ot.Op{ot.Retain(b.Len()), ot.Insert("!")})); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}

	_, resp, err := websocket.Dial(ctx, ts.wsURL(id)+"?token="+tok, nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("reconnect with the expired token: got %v, %v; want 401", resp, err)
	}
	if code := errorCode(t, resp); code != CodeUnauthorized {
		t.Errorf("reconnect: got code %q, want unauthorized", code)
	}
}

func TestParseJWKSRefuses(t *testing.T) {
	for name, jwks := range map[string]string{
		"not json":    `{`,
		"no keys":     `{"keys":[]}`,
		"private key": `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}`,
		"bad curve":   `{"keys":[{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}]}`,
		"off curve":   `{"keys":[{"kty":"EC","crv":"P-256","x":"` + strings.Repeat("A", 43) + `","y":"` + strings.Repeat("A", 43) + `"}]}`,
		"small RSA":   `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`,
		"alg clash":   `{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"RS256","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`,
		"unknown kty": `{"keys":[{"kty":"oct","k":"AAAA"}]}`,
	} {
		if _, err := NewAuth(AuthOptions{JWKS: []byte(jwks)}); err == nil {
			t.Errorf("%s: got no error, want one", name)
		}
	}
	if _, err := NewAuth(AuthOptions{HMACSecret: []byte("short")}); err == nil {
		t.Error("short HS256 secret: got no error, want one")
	}
}

func TestBearer(t *testing.T) {
	for _, tc := range []struct {
		method, url, auth, want string
	}{
		{"GET", "/x", "Bearer abc", "abc"},
		{"GET", "/x", "bearer  abc ", "abc"},
		{"GET", "/x?token=q", "Bearer abc", "abc"},
		{"GET", "/x?token=q", "", "q"},
		{"HEAD", "/x?token=q", "", "q"},
		{"GET", "/x?token=q", "Basic dXNlcjpwYXNz", "q"}, // a proxy's credentials
		{"POST", "/x?token=q", "", ""},
		{"GET", "/x", "Token abc", ""},
	} {
		r := httptest.NewRequest(tc.method, tc.url, nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		if got := bearer(r); got != tc.want {
			t.Errorf("%s %s with %q: got %q, want %q", tc.method, tc.url, tc.auth, got, tc.want)
		}
	}
}
