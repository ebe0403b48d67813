package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// as makes one request as user (X-User from the trusted proxy at
// 127.0.0.1; "" is nobody) and returns the status and body.
func as(t *testing.T, user, method, url, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("X-User", user)
		req.Header.Set("X-Groups", "staff")
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHeaderSignInDurable: collabd with -auth-header keeps documents
// private by default, keeps access records and rotated ids in the data
// file across a restart, and answers /api/me.
func TestHeaderSignInDurable(t *testing.T) {
	data := filepath.Join(t.TempDir(), "collab.db")
	args := []string{"-auth-header", "X-User", "-auth-groups-header", "X-Groups", "-trusted-proxies", "127.0.0.1"}
	s := startServerAt(t, data, args...)
	if code, body := as(t, "olga", "GET", s.URL+"/api/me", ""); code != 200 || body != `{"groups":["staff"],"session":false,"user":"olga"}` {
		t.Errorf("/api/me: got %d %s", code, body)
	}
	if code, _ := as(t, "", "GET", s.URL+"/api/me", ""); code != 401 {
		t.Errorf("/api/me without sign-in: got %d, want 401", code)
	}
	if code, _ := as(t, "", "POST", s.URL+"/api/docs", `{"text":"x"}`); code != 401 {
		t.Errorf("create without sign-in: got %d, want 401", code)
	}
	code, body := as(t, "olga", "POST", s.URL+"/api/docs", `{"text":"secret plans"}`)
	if code != 201 {
		t.Fatalf("create: got %d %s", code, body)
	}
	var doc struct{ ID, ViewID string }
	json.Unmarshal([]byte(body), &doc)
	if code, _ := as(t, "eve", "GET", s.URL+"/api/view/"+doc.ViewID, ""); code != 404 {
		t.Errorf("a private document to another user: got %d, want 404", code)
	}
	if code, body := as(t, "olga", "PUT", s.URL+"/api/docs/"+doc.ID+"/access", `{"link":"none","members":[{"user":"bob","role":"view"}]}`); code != 200 {
		t.Fatalf("put access: got %d %s", code, body)
	}
	code, body = as(t, "olga", "POST", s.URL+"/api/docs/"+doc.ID+"/access/rotate", "")
	if code != 200 {
		t.Fatalf("rotate: got %d %s", code, body)
	}
	var ids struct{ ID, ViewID string }
	json.Unmarshal([]byte(body), &ids)

	s.Stop(t)
	s = startServerAt(t, data, args...)
	if code, body := as(t, "bob", "GET", s.URL+"/api/view/"+ids.ViewID, ""); code != 200 || !strings.Contains(body, "secret plans") {
		t.Errorf("bob on the new view id after a restart: got %d %s", code, body)
	}
	for _, c := range []struct {
		user, path string
		want       int
	}{
		{"bob", "/api/docs/" + ids.ID, 200}, // a viewer reads by the edit id too
		{"eve", "/api/view/" + ids.ViewID, 404},
		{"olga", "/api/view/" + doc.ViewID, 404},
		{"olga", "/api/docs/" + doc.ID, 404},
		{"olga", "/api/docs/" + ids.ID + "/text", 200},
	} {
		if code, body := as(t, c.user, "GET", s.URL+c.path, ""); code != c.want {
			t.Errorf("%s GET %s after a restart: got %d %s, want %d", c.user, c.path, code, body, c.want)
		}
	}
	if code, _ := as(t, "bob", "PUT", s.URL+"/api/docs/"+ids.ID+"/text", `{"text":"x"}`); code != 403 {
		t.Errorf("bob, a viewer, writing after a restart: got %d, want 403", code)
	}
	if code, body := as(t, "olga", "GET", s.URL+"/api/docs/"+ids.ID+"/access", ""); code != 200 || !strings.Contains(body, `"owner":"olga"`) || !strings.Contains(body, `"user":"bob"`) {
		t.Errorf("access after a restart: got %d %s", code, body)
	}
}

// TestSignInFlags: the flags that cannot work are refused at start-up.
func TestSignInFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-auth-header", "X-User"},
		{"-auth-header", "X-User", "-trusted-proxies", "127.0.0.1", "-default-link", "public"},
		{"-oidc-issuer", "https://id.example.com"},
		{"-auth-header", "X-User", "-trusted-proxies", "127.0.0.1", "-session-ttl", "1s"},
	} {
		if _, err := parseConfig(args, func(string) (string, bool) { return "", false }, io.Discard); err == nil {
			t.Errorf("%q: accepted, want an error", args)
		}
	}
}
