package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBrowserEditing drives the embedded frontend in headless Chromium:
// two people type into one document at once while a third watches the
// view link, and every page ends with the server's text. `make test`
// installs Chromium and playwright-core; without them the test skips.
func TestBrowserEditing(t *testing.T) {
	dir := filepath.Join("..", "..", "frontend", "test", "browser")
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("no Chromium at %s (make test-deps installs Debian's chromium): skipping the browser test", chromium)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: skipping the browser test")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		t.Skipf("playwright-core is not installed in %s (make test-deps runs npm ci there): skipping the browser test", dir)
	}

	s := startServer(t)
	cmd := exec.Command(node, "edit.mjs", s.URL)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	if shot := os.Getenv("SCREENSHOT"); shot != "" {
		cmd.Env = append(cmd.Env, "SCREENSHOT="+shot)
	}
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node edit.mjs: %v\n%s\n%s", err, out, stderr)
	}
	var res struct {
		Texts   map[string]string
		Peers   []string
		Carets  []string
		DocID   string
		ViewURL string
		Errors  []string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("bad output %q: %v", out, err)
	}
	server := res.Texts["server"]
	for who, text := range res.Texts {
		if text != server {
			t.Errorf("%s has %q, server has %q", who, text, server)
		}
	}
	for _, want := range []string{"Well, ", "Hello", " world 😀!"} {
		if !strings.Contains(server, want) {
			t.Errorf("server text %q lacks %q typed in the browser", server, want)
		}
	}
	if strings.Contains(res.ViewURL, res.DocID) {
		t.Errorf("view link %s reveals the edit id %s", res.ViewURL, res.DocID)
	}
	if len(res.Peers) != 2 {
		t.Errorf("alice's page lists %q, want herself and one other editor", res.Peers)
	}
	if len(res.Carets) != 1 {
		t.Errorf("alice's page draws carets %q, want bob's one", res.Carets)
	}
	if len(res.Errors) > 0 {
		t.Errorf("page errors: %q", res.Errors)
	}
}
