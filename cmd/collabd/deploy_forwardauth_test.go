package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// authService stands in for oauth2-proxy's endpoints behind nginx's
// auth_request (--reverse-proxy --set-xauthrequest): /oauth2/auth answers
// 202 with X-Auth-Request-User and -Groups for a browser whose cookie it
// knows, 401 otherwise. What is under test is the recipe: nginx passing
// the answer on, and collabd believing only that.
func authService(t *testing.T) (addr string) {
	t.Helper()
	users := map[string][2]string{"alice-cookie": {"alice", "eng"}, "bob-cookie": {"bob", "sales"}, "carol-cookie": {"carol", "eng,ops"}}
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth2/auth", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("_oauth2_proxy")
		u, ok := users[func() string {
			if err != nil {
				return ""
			}
			return c.Value
		}()]
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-Auth-Request-User", u[0])
		w.Header().Set("X-Auth-Request-Groups", u[1])
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("/oauth2/start", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "the provider's sign-in page")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestNginxForwardAuth runs docs/deploy/nginx-forward-auth.conf in front
// of collabd with -auth-header: who is signed in is what the auth service
// says, never what the client's own headers say; pages without a session
// go to sign-in; the API answers 401; the health check needs nothing; and
// access works through the proxy, WebSocket sessions included.
func TestNginxForwardAuth(t *testing.T) {
	t.Parallel()
	nginx := findNginx(t)
	auth := authService(t)
	s := startServer(t, "-trusted-proxies", "127.0.0.1/32", "-auth-header", "X-Forwarded-User", "-auth-groups-header", "X-Forwarded-Groups")
	base, _, pool := startNginxSite(t, nginx, "nginx-forward-auth.conf", s, func(site string) string {
		return replaceOnce(t, site, "server 127.0.0.1:4180;", "server "+auth+";")
	})
	c := newProxyClients(t, pool)
	do := func(method, path, cookie, body string, hdr ...string) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: "_oauth2_proxy", Value: cookie})
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.h2.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusFound {
			return resp.StatusCode, resp.Header.Get("Location")
		}
		return resp.StatusCode, string(b)
	}

	if code, _ := do("GET", "/healthz", "", ""); code != 200 {
		t.Errorf("/healthz without a session: got %d, want 200", code)
	}
	if code, loc := do("GET", "/some/page", "", ""); code != 302 || !strings.HasSuffix(loc, "/oauth2/start?rd=/some/page") {
		t.Errorf("a page without a session: got %d %q, want a redirect to sign-in", code, loc)
	}
	if code, _ := do("GET", "/api/me", "", "", "X-Forwarded-User", "alice"); code != 401 {
		t.Errorf("/api/me with a forged X-Forwarded-User and no session: got %d, want 401", code)
	}
	code, body := do("GET", "/api/me", "bob-cookie", "", "X-Forwarded-User", "alice", "X-Forwarded-Groups", "eng")
	if code != 200 || body != `{"groups":["sales"],"session":false,"user":"bob"}` {
		t.Errorf("/api/me as bob claiming to be alice: got %d %s, want bob", code, body)
	}

	code, body = do("POST", "/api/docs", "alice-cookie", `{"text":"roadmap"}`)
	if code != 201 {
		t.Fatalf("create as alice: got %d %s", code, body)
	}
	var doc struct{ ID, ViewID string }
	json.Unmarshal([]byte(body), &doc)
	if code, body := do("PUT", "/api/docs/"+doc.ID+"/access", "alice-cookie", `{"link":"none","members":[{"group":"eng","role":"edit"}]}`); code != 200 {
		t.Fatalf("share with eng: got %d %s", code, body)
	}
	for _, c := range []struct {
		cookie string
		want   int
	}{{"bob-cookie", 404}, {"carol-cookie", 200}, {"alice-cookie", 200}} {
		if code, body := do("GET", "/api/docs/"+doc.ID+"/text", c.cookie, ""); code != c.want {
			t.Errorf("%s reads the text: got %d %s, want %d", c.cookie, code, body, c.want)
		}
	}

	// carol edits over a WebSocket through nginx, until eng loses access.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hdr := http.Header{}
	hdr.Set("Cookie", "_oauth2_proxy=carol-cookie")
	ws, _, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(base, "https")+"/api/docs/"+doc.ID+"/ws",
		&websocket.DialOptions{HTTPClient: c.h1, HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("carol's editing session through nginx: %v", err)
	}
	defer ws.CloseNow()
	ws.Write(ctx, websocket.MessageText, []byte(`{"type":"hello","client":"6f1c9a52-3b7e-4d0a-9c1f-2e8b5d4a7c90","name":"carol"}`))
	if _, m, err := ws.Read(ctx); err != nil || !strings.Contains(string(m), `"welcome"`) {
		t.Fatalf("carol's welcome: %s %v", m, err)
	}
	if code, body := do("PUT", "/api/docs/"+doc.ID+"/access", "alice-cookie", `{"link":"none","members":[]}`); code != 200 {
		t.Fatalf("unshare: got %d %s", code, body)
	}
	for {
		_, m, err := ws.Read(ctx)
		if err != nil {
			if got := websocket.CloseStatus(err); got != 4403 {
				t.Errorf("carol's session after eng lost access: closed with %d (%v), want 4403", got, err)
			}
			break
		}
		if !strings.Contains(string(m), "presence") && !strings.Contains(string(m), "forbidden") {
			t.Errorf("carol got %s before the close", m)
		}
	}
	if code, _ := do("GET", "/api/docs/"+doc.ID+"/text", "carol-cookie", ""); code != 404 {
		t.Errorf("carol after the unshare: got %d, want 404", code)
	}
}
