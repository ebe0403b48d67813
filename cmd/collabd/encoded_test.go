package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEncodedPathsThroughBinary is the audit's critical finding end to
// end, through the binary's own muxes (the outer one routes /api/ to the
// API, which routes again): with -create-token and -auth-key-file, no
// spelling of a create, read or delete gets through without a token.
func TestEncodedPathsThroughBinary(t *testing.T) {
	key := filepath.Join(t.TempDir(), "jwt.key")
	if err := os.WriteFile(key, []byte(strings.Repeat("k", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "-create-token", "team-secret", "-auth-key-file", key)
	req, _ := http.NewRequest("POST", s.URL+"/api/docs", strings.NewReader(`{"text":"x"}`))
	req.Header.Set("X-Create-Token", "team-secret")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ ID, ViewID string }
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || err != nil {
		t.Fatalf("create with the token: got %d (%v), want 201", resp.StatusCode, err)
	}
	id := doc.ID
	for _, c := range []struct{ method, path string }{
		{"POST", "/api/%64ocs"},
		{"POST", "/%61pi/docs"},
		{"POST", "/api/%64%6F%63%73"},
		{"GET", "/api/d%6Fcs/" + id + "/text"},
		{"GET", "/api/d%6fcs/" + id},
		{"DELETE", "/api/d%6Fcs/" + id},
		{"GET", "/api/d%6Fcs/" + id + "/ws"},
		{"GET", "/api/d%6Fcs/" + id + "/events"},
		{"GET", "/api/v%69ew/" + doc.ViewID + "/events"},
	} {
		req := httptest.NewRequest(c.method, s.URL+c.path, nil)
		req.RequestURI = ""
		if c.method == "POST" {
			req.Body = http.NoBody
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: got %d, want 401", c.method, c.path, resp.StatusCode)
		}
	}
}
