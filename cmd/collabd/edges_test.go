package main

// Tests of issue 22's edge findings, end to end through run: pools of
// their own for /healthz and the pages, no directory listings.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
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

// postWithHost creates a document at base, naming host in Host.
func postWithHost(t *testing.T, c *http.Client, base, host string) (int, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/docs", strings.NewReader(`{"text":"rebound"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// TestLoopbackRefusesRebinding: collabd on loopback created documents for
// any Host, so a page whose name was rebound to 127.0.0.1 could use it.
// Now only the loopback names, and -allowed-hosts, are served there.
func TestLoopbackRefusesRebinding(t *testing.T) {
	s := startServer(t)
	_, port, _ := strings.Cut(strings.TrimPrefix(s.URL, "http://"), ":")
	for _, tc := range []struct {
		host string
		want int
	}{
		{"evil.example:" + port, http.StatusForbidden},
		{"evil.example", http.StatusForbidden},
		{"localhost:" + port, http.StatusCreated},
		{"127.0.0.1:" + port, http.StatusCreated},
		{"[::1]:" + port, http.StatusCreated},
	} {
		if got, _ := postWithHost(t, http.DefaultClient, s.URL, tc.host); got != tc.want {
			t.Errorf("create with Host %q on loopback: %d, want %d", tc.host, got, tc.want)
		}
	}

	listed := startServer(t, "-allowed-hosts", "collab.example.com")
	if got, _ := postWithHost(t, http.DefaultClient, listed.URL, "collab.example.com"); got != http.StatusCreated {
		t.Errorf("create with a Host in -allowed-hosts: %d, want 201", got)
	}
	if got, _ := postWithHost(t, http.DefaultClient, listed.URL, "evil.example"); got != http.StatusForbidden {
		t.Errorf("create with a Host not in -allowed-hosts: %d, want 403", got)
	}
}

// TestHSTSOverTLS: collabd serving TLS sent no Strict-Transport-Security.
func TestHSTSOverTLS(t *testing.T) {
	cert, key, pool := selfSignedCert(t)
	s := startServer(t, "-tls-cert", cert, "-tls-key", key)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, path := range []string{"/", "/healthz"} {
		resp, err := c.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
			t.Errorf("GET %s over TLS: Strict-Transport-Security %q, want max-age=...", path, got)
		}
	}
	plain := startServer(t)
	resp, err := http.Get(plain.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Strict-Transport-Security"); got != "" {
		t.Errorf("over plain HTTP: Strict-Transport-Security %q, want none", got)
	}
}

// TestAllowedHostsConfig: the Host check is on for a loopback -addr and
// whenever -allowed-hosts is given, off otherwise.
func TestAllowedHostsConfig(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	for _, tc := range []struct {
		args []string
		want []string // nil: any Host
	}{
		{[]string{"-addr", "127.0.0.1:8080"}, []string{}},
		{[]string{"-addr", "localhost:8080"}, []string{}},
		{[]string{"-addr", "[::1]:8080"}, []string{}},
		{[]string{"-addr", ":8080"}, nil},
		{[]string{"-addr", "0.0.0.0:8080"}, nil},
		{[]string{"-addr", "192.0.2.1:8080"}, nil},
		{[]string{"-addr", "127.0.0.1:8080", "-allowed-hosts", "a.example, b.example"}, []string{"a.example", "b.example"}},
		{[]string{"-addr", ":8080", "-allowed-hosts", "a.example"}, []string{"a.example"}},
	} {
		cfg, err := parseConfig(tc.args, none, io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		got := cfg.collab.AllowedHosts
		if (got == nil) != (tc.want == nil) || strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%q: AllowedHosts %#v, want %#v", tc.args, got, tc.want)
		}
	}
}
