package main

// Tests of issue 22's edge findings, end to end through run: pools of
// their own for /healthz and the pages, no directory listings.

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openDocStream opens a document's SSE stream and waits for its first
// line, so that the stream's handler runs and holds its place under the
// caps until ctx ends. It returns the status of a refused stream.
func openDocStream(t *testing.T, ctx context.Context, url string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return resp.StatusCode
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	context.AfterFunc(ctx, func() { resp.Body.Close() })
	return http.StatusOK
}

func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSessionsDoNotStarveHealthOrPages: with -max-conns filled by
// long-lived streams, /healthz and the static pages answered 503 too, so
// a load balancer would have taken the node out. They have caps of their
// own now.
func TestSessionsDoNotStarveHealthOrPages(t *testing.T) {
	s := startServer(t, "-max-conns", "3", "-max-conns-per-addr", "3")
	id := createDoc(t, s.URL, "hello")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 3 {
		if got := openDocStream(t, ctx, s.URL+"/api/docs/"+id+"/events"); got != http.StatusOK {
			t.Fatalf("stream %d: status %d, want 200", i, got)
		}
	}
	if got := openDocStream(t, ctx, s.URL+"/api/docs/"+id+"/events"); got != http.StatusServiceUnavailable {
		t.Fatalf("a fourth stream past -max-conns 3: status %d, want 503", got)
	}
	for _, path := range []string{"/healthz", "/", "/edit.html", "/dist/edit.js", "/app.css"} {
		if got, body := getStatus(t, s.URL+path); got != http.StatusOK {
			t.Errorf("GET %s with -max-conns full: status %d (%.100s), want 200", path, got, body)
		}
	}
}

// TestNoDirectoryListings: /dist/ listed the bundle's files.
func TestNoDirectoryListings(t *testing.T) {
	s := startServer(t)
	for _, path := range []string{"/dist/", "/dist"} {
		got, body := getStatus(t, s.URL+path)
		if got != http.StatusNotFound || strings.Contains(body, "edit.js") {
			t.Errorf("GET %s: status %d, body %.200q; want 404 and no listing", path, got, body)
		}
	}
	if got, body := getStatus(t, s.URL+"/"); got != http.StatusOK || !strings.Contains(body, "collabd") {
		t.Errorf("GET /: status %d, want 200 with the home page", got)
	}
}

// TestHealthzFullDiskNoFreeCheck: with -min-free-bytes -1 (the free-space
// check off), /healthz answered 200 on a full disk while creates failed:
// its ping fitted in a free page of the data file. The failed writes
// count now.
func TestHealthzFullDiskNoFreeCheck(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (needs root and mount(8)): %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	s := startServerAt(t, filepath.Join(mnt, "collab.db"), "-min-free-bytes", "-1")
	create := func(text string) int {
		resp, err := http.Post(s.URL+"/api/docs", "application/json", bytes.NewReader(mustMarshal(map[string]string{"text": text})))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got, _ := getStatus(t, s.URL+"/healthz"); got != http.StatusOK {
		t.Fatalf("healthz on an empty tmpfs: %d, want 200", got)
	}
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 64<<10)
	for {
		if _, err := f.Write(block); err != nil {
			break
		}
	}
	f.Close()
	big := strings.Repeat("x", 1<<20)
	if got := create(big); got == http.StatusCreated {
		t.Fatalf("a 1 MB create on a full disk: %d, want a failure", got)
	}
	if got, body := getStatus(t, s.URL+"/healthz"); got != http.StatusServiceUnavailable {
		t.Errorf("healthz on a full disk, free-space check off, after a failed create: %d (%s), want 503", got, body)
	}
	os.Remove(filler)
	if got := create(big); got != http.StatusCreated {
		t.Fatalf("a create once space is back: %d, want 201", got)
	}
	if got, body := getStatus(t, s.URL+"/healthz"); got != http.StatusOK {
		t.Errorf("healthz once a write succeeded again: %d (%s), want 200", got, body)
	}
}
