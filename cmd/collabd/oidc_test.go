package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// oidcProvider is the real OpenID provider of testdata/oidcprovider
// (zitadel/oidc's op package), built and started by the test.
type oidcProvider struct {
	issuer string
}

// startOIDCProvider builds testdata/oidcprovider (a module of its own)
// and starts it with redirect, skipping the test when it cannot be built
// (no Go module cache and no network, say).
func startOIDCProvider(t *testing.T, redirect string) *oidcProvider {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "oidcprovider")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("testdata", "oidcprovider")
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("cannot build the OpenID provider of testdata/oidcprovider (its module, github.com/zitadel/oidc/v3, must be downloadable or in the module cache): %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "REDIRECT_URI="+redirect)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	issuer, ok := strings.CutPrefix(strings.TrimSpace(line), "issuer ")
	if err != nil || !ok {
		t.Fatalf("the provider said %q (%v), want \"issuer URL\"", line, err)
	}
	return &oidcProvider{issuer: issuer}
}

// freeAddr returns a loopback address with a port free a moment ago: the
// provider must know collabd's callback before collabd starts, and
// collabd must know the provider's issuer.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestOIDCSignIn signs in through a real OpenID provider, as a browser
// would (following redirects, posting the provider's login form), and
// checks what the session then may do, and that signing out ends it.
func TestOIDCSignIn(t *testing.T) {
	addr := freeAddr(t)
	callback := "http://" + addr + "/api/signin/callback"
	p := startOIDCProvider(t, callback)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("collabd-secret\n"), 0o600)
	s := startServer(t, "-addr", addr, "-oidc-issuer", p.issuer, "-oidc-client-id", "collabd",
		"-oidc-client-secret-file", secret, "-oidc-redirect-url", callback)

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	signIn := func(user, password string) *http.Response {
		t.Helper()
		return oidcLogin(t, browser, s.URL, p.issuer, user, password)
	}
	authorize := func() url.Values {
		// What collabd sent the browser to: read from a fresh start.
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Get(s.URL + "/api/signin")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		u, _ := url.Parse(resp.Header.Get("Location"))
		return u.Query()
	}
	q := authorize()
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 32 {
			t.Errorf("the authorization request's %s is %q, want a random value", k, q.Get(k))
		}
	}
	if q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" {
		t.Errorf("the authorization request: got %v, want the code flow with S256 PKCE", q)
	}

	// A wrong password stays at the provider.
	resp := signIn("test-user@127.0.0.1", "wrong")
	resp.Body.Close()
	if !strings.HasPrefix(resp.Request.URL.String(), p.issuer) {
		t.Errorf("a wrong password ended at %s", resp.Request.URL)
	}
	if code, _ := browserGet(t, browser, s.URL+"/api/me"); code != 401 {
		t.Errorf("/api/me after a failed sign-in: got %d, want 401", code)
	}

	resp = signIn("test-user@127.0.0.1", "verysecure")
	resp.Body.Close()
	if got := resp.Request.URL.String(); got != s.URL+"/some/page" {
		t.Errorf("after sign-in the browser is at %s, want %s/some/page", got, s.URL)
	}
	code, body := browserGet(t, browser, s.URL+"/api/me")
	var me struct {
		User    string
		Groups  []string
		Session bool
	}
	json.Unmarshal([]byte(body), &me)
	if code != 200 || me.User != "test-user@127.0.0.1" || strings.Join(me.Groups, ",") != "eng,staff" || !me.Session {
		t.Fatalf("/api/me after sign-in: got %d %s", code, body)
	}
	for _, c := range jar.Cookies(&url.URL{Scheme: "http", Host: addr, Path: "/"}) {
		if c.Name == "collabd-session" && len(c.Value) < 40 {
			t.Errorf("session cookie %q: want a long random id", c.Value)
		}
	}

	// The session creates a private document, which a stranger cannot see.
	req, _ := http.NewRequest("POST", s.URL+"/api/docs", strings.NewReader(`{"text":"mine"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", s.URL)
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ ID, ViewID string }
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create with the session: got %d", resp.StatusCode)
	}
	if code, body := browserGet(t, browser, s.URL+"/api/docs/"+doc.ID+"/access"); code != 200 || !strings.Contains(body, `"owner":"test-user@127.0.0.1"`) {
		t.Errorf("access of the new document: got %d %s", code, body)
	}
	if code, _ := browserGet(t, http.DefaultClient, s.URL+"/api/view/"+doc.ViewID); code != 404 {
		t.Errorf("the private document without the session: got %d, want 404", code)
	}
	// A cross-site write with the session cookie is refused.
	req, _ = http.NewRequest("PUT", s.URL+"/api/docs/"+doc.ID+"/text", strings.NewReader(`{"text":"pwned"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://evil.example")
	if resp, err := browser.Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("cross-origin write with the session: got %v %v, want 403", resp.StatusCode, err)
	}

	// Sign out: the session ends on the server, not only in the browser.
	var stolen []*http.Cookie
	stolen = append(stolen, jar.Cookies(&url.URL{Scheme: "http", Host: addr, Path: "/"})...)
	req, _ = http.NewRequest("POST", s.URL+"/api/signout", nil)
	req.Header.Set("Origin", s.URL)
	resp, err = browser.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("sign out: got %v %v", resp.StatusCode, err)
	}
	if code, _ := browserGet(t, browser, s.URL+"/api/me"); code != 401 {
		t.Errorf("/api/me after sign-out: got %d, want 401", code)
	}
	req, _ = http.NewRequest("GET", s.URL+"/api/me", nil)
	for _, c := range stolen {
		req.AddCookie(c)
	}
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("/api/me with the old cookie replayed: got %v %v, want 401", resp.StatusCode, err)
	}

	// A callback with a state the browser did not start is refused.
	if code, _ := browserGet(t, browser, s.URL+"/api/signin/callback?code=x&state=forged"); code != 400 {
		t.Errorf("callback without a sign-in in progress: got %d, want 400", code)
	}
}

// oidcLogin signs browser in at collabd base through the provider's login
// form and returns the last answer, after every redirect.
func oidcLogin(t *testing.T, browser *http.Client, base, issuer, user, password string) *http.Response {
	t.Helper()
	resp, err := browser.Get(base + "/api/signin?next=/some/page")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="id" value="([^"]+)"`).FindSubmatch(page)
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("sign-in start: got %d at %s, want the provider's login form: %.300s", resp.StatusCode, resp.Request.URL, page)
	}
	if !strings.HasPrefix(resp.Request.URL.String(), issuer) {
		t.Fatalf("the login form is at %s, not the provider's", resp.Request.URL)
	}
	form := url.Values{"id": {string(m[1])}, "username": {user}, "password": {password}}
	resp, err = browser.PostForm(issuer+"login/username", form)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestOIDCAllowedDomains: with -oidc-allowed-domains, a user whose
// verified email is elsewhere is refused, one inside is admitted.
func TestOIDCAllowedDomains(t *testing.T) {
	addr := freeAddr(t)
	callback := "http://" + addr + "/api/signin/callback"
	p := startOIDCProvider(t, callback)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("collabd-secret"), 0o600)
	for _, c := range []struct {
		domains string
		want    int
	}{{"example.org", 403}, {"example.org,ZITADEL.ch", 200}} {
		s := startServer(t, "-addr", addr, "-oidc-issuer", p.issuer, "-oidc-client-id", "collabd",
			"-oidc-client-secret-file", secret, "-oidc-redirect-url", callback, "-oidc-allowed-domains", c.domains)
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
		resp := oidcLogin(t, browser, s.URL, p.issuer, "test-user2", "verysecure")
		resp.Body.Close()
		got := resp.StatusCode
		if resp.Request.URL.String() == s.URL+"/some/page" {
			got = 200 // back where the sign-in started (no such page: 404)
		}
		if got != c.want {
			t.Errorf("-oidc-allowed-domains %s: sign-in ended with %d at %s, want %d", c.domains, resp.StatusCode, resp.Request.URL, c.want)
		}
		wantMe := 401
		if c.want == 200 {
			wantMe = 200
		}
		if code, body := browserGet(t, browser, s.URL+"/api/me"); code != wantMe {
			t.Errorf("-oidc-allowed-domains %s: /api/me got %d %s, want %d", c.domains, code, body, wantMe)
		}
		s.Stop(t)
	}
}

func browserGet(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBrowserTeams: sign-in in Chromium against the real OpenID provider
// of testdata/oidcprovider, then sharing, the "no access" page, losing
// access live, rotating links and signing out (suite.mjs's teams).
func TestBrowserTeams(t *testing.T) {
	dir := filepath.Join("..", "..", "frontend", "test", "browser")
	node, chromium := browserDeps(t, dir)
	addr := freeAddr(t)
	callback := "http://" + addr + "/api/signin/callback"
	p := startOIDCProvider(t, callback)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("collabd-secret"), 0o600)
	s := startServer(t, append([]string{"-addr", addr, "-oidc-issuer", p.issuer, "-oidc-client-id", "collabd",
		"-oidc-client-secret-file", secret, "-oidc-redirect-url", callback}, loopbackArgs()...)...)
	cmd := exec.Command(node, "suite.mjs", s.URL, "teams")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium, "OIDC_USER1=test-user@127.0.0.1", "OIDC_USER2=test-user2")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node suite.mjs teams: %v\n%s", err, stderr.String())
	}
	var res struct {
		Scenario string
		Errors   []string
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(out))), &res); err != nil || res.Scenario != "teams" {
		t.Fatalf("unexpected output from suite.mjs: %q (%v)\n%s", out, err, stderr.String())
	}
	for _, e := range res.Errors {
		t.Error(e)
	}
}
