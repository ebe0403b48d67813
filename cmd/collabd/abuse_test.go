package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
)

// stalledGet sends GET path to addr with Host host over a connection
// with a tiny receive buffer, reads the response's head and nothing more,
// so that the server's writes soon block. The connection closes when the
// test ends.
func stalledGet(t *testing.T, addr, host, path string) *http.Response {
	t.Helper()
	d := net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host)
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestBackupDoesNotStallWriters: a backup client that reads slowly held
// bbolt's read transaction, and once the file outgrew its memory map no
// write could commit (healthz 503 for 28 s at 970 MB). With a small map,
// writers must now keep committing past it while the client stalls.
func TestBackupDoesNotStallWriters(t *testing.T) {
	dir := t.TempDir()
	db, err := storage.Open(filepath.Join(dir, "collab.db"), storage.Options{InitialMmapSize: 1 << 20, SnapshotEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	mb := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	create := func(i int) error {
		id := fmt.Sprintf("doc-%d", i)
		return db.Create(ctx, storage.Meta{ID: id, ViewID: "view-" + id}, &storage.Record{Rev: 1, Op: ot.Op{ot.Insert(mb)}})
	}
	// Far more than the kernel's socket buffers hold.
	for i := range 12 {
		if err := create(i); err != nil {
			t.Fatal(err)
		}
	}
	ts := httptest.NewUnstartedServer(nil)
	host := ts.Listener.Addr().String()
	ts.Config.Handler = adminHandler(db, dir, []string{host}, slog.New(slog.DiscardHandler))
	ts.Start()
	defer ts.Close()
	defer ts.CloseClientConnections() // the stalled client, first

	resp := stalledGet(t, host, host, "/backup")
	if resp.StatusCode != http.StatusOK || resp.ContentLength < 12<<20 {
		t.Fatalf("GET /backup: %s, %d bytes; want 200 and at least 12 MiB", resp.Status, resp.ContentLength)
	}
	// The file grows from about 13 MiB past 32 MiB, so bbolt must remap.
	before, _ := db.Usage()
	done := make(chan error, 1)
	go func() {
		for i := 12; i < 40; i++ {
			if err := create(i); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	// Under backupWriteTimeout (30 s), after which the old code let go.
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("writers stalled for 15 s behind a backup client that stopped reading")
	}
	after, _ := db.Usage()
	if after.FileBytes <= 32<<20 {
		t.Errorf("the file grew from %d to %d bytes only: not past the 32 MiB map, so no remap was needed", before.FileBytes, after.FileBytes)
	}
	// The temporary copy was unlinked at once: nothing is left beside
	// the data file, even while the download is under way.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "collab.db" {
			t.Errorf("%s left beside the data file", e.Name())
		}
	}
}

// TestAdminChecksHost: /backup answered any Host, so a page whose name
// an attacker pointed at 127.0.0.1 could read the database from a browser
// on the same machine (DNS rebinding).
func TestAdminChecksHost(t *testing.T) {
	s := startServer(t, "-admin-addr", "127.0.0.1:0", "-admin-hosts", "backup.internal:8081")
	addr := strings.TrimPrefix(s.AdminURL, "http://")
	_, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct {
		host string
		want int
	}{
		{addr, http.StatusOK},
		{"localhost:" + port, http.StatusOK},
		{"LOCALHOST:" + port, http.StatusOK},
		{"backup.internal:8081", http.StatusOK},
		{"rebound.attacker.example:" + port, http.StatusForbidden},
		{"127.0.0.1", http.StatusForbidden},
		{"", http.StatusForbidden},
	} {
		req, _ := http.NewRequest(http.MethodGet, s.AdminURL+"/backup", nil)
		req.Host = tc.host
		if tc.host == "" {
			req.Host = " " // net/http would fill in an empty one
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			if tc.want == http.StatusOK {
				t.Errorf("Host %q: %v", tc.host, err)
			}
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Host %q: status %d, want %d", tc.host, resp.StatusCode, tc.want)
		}
		if tc.want == http.StatusForbidden && !strings.Contains(string(body), `"forbidden"`) {
			t.Errorf("Host %q: body %.100q, want a forbidden error", tc.host, body)
		}
	}
}

// TestDiskFullTmpfs runs the server on a small tmpfs and fills it: with
// the disk full, /healthz said ok and empty creates succeeded.
func TestDiskFullTmpfs(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (needs root and mount(8)): %v: %s", err, strings.TrimSpace(string(out)))
	}
	// Registered before the server starts, so it runs after it stops.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	s := startServerAt(t, filepath.Join(mnt, "collab.db"), "-min-free-bytes", "8388608")
	get := func(path string) int {
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	post := func() int {
		resp, err := http.Post(s.URL+"/api/docs", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get("/healthz"); got != http.StatusOK {
		t.Fatalf("healthz on an empty tmpfs: %d, want 200", got)
	}
	// Fill the disk to the last block.
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
	// The guard's reading lasts a second.
	time.Sleep(1100 * time.Millisecond)
	if got := get("/healthz"); got != http.StatusServiceUnavailable {
		t.Errorf("healthz on a full disk: %d, want 503", got)
	}
	if got := post(); got != http.StatusInsufficientStorage {
		t.Errorf("an empty create on a full disk: %d, want 507", got)
	}
	os.Remove(filler)
	time.Sleep(1100 * time.Millisecond)
	if got := get("/healthz"); got != http.StatusOK {
		t.Errorf("healthz once space is back: %d, want 200", got)
	}
	if got := post(); got != http.StatusCreated {
		t.Errorf("a create once space is back: %d, want 201", got)
	}
}

// TestRunLogsCarryNoEditID: the whole server's logs, storage's included,
// name documents by a hash of their id.
func TestRunLogsCarryNoEditID(t *testing.T) {
	var logs syncWriter
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "c.db"), "-log-level", "debug"}, pw, &logs)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	base := strings.TrimSpace(line[strings.Index(line, "http://"):])
	id := createDoc(t, base, "hello")
	// A viewer and a refused upgrade log at debug with the document.
	resp, err := http.Get(base + "/api/docs/" + id + "/ws")
	if err == nil {
		resp.Body.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := logs.String()
	if !strings.Contains(got, "document loaded") {
		t.Fatalf("no document was logged at debug:\n%s", got)
	}
	if strings.Contains(got, id) {
		t.Errorf("the logs carry the edit id %s:\n%s", id, got)
	}
}

// syncWriter is a strings.Builder safe for a logger and a test at once.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestParseAbuseFlags: the limits have environment twins, and a bad
// trusted proxy is an error naming its variable.
func TestParseAbuseFlags(t *testing.T) {
	env := map[string]string{
		"COLLABD_TRUSTED_PROXIES":         "10.0.0.0/8, 192.0.2.1,fd00::/8",
		"COLLABD_MAX_CONNS":               "100",
		"COLLABD_FRAME_ANCESTORS":         "'self'",
		"COLLABD_FRAME_RATE":              "50",
		"COLLABD_MESSAGE_TIMEOUT":         "5s",
		"COLLABD_MAX_HELD_RESPONSE_BYTES": "1048576",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := parseConfig([]string{"-max-conns-per-addr", "7", "-admin-hosts", "a:1,b:2", "-frame-burst", "300"}, lookup, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.collab
	if got := fmt.Sprint(o.TrustedProxies); got != "[10.0.0.0/8 192.0.2.1/32 fd00::/8]" {
		t.Errorf("trusted proxies %s, want [10.0.0.0/8 192.0.2.1/32 fd00::/8]", got)
	}
	if o.MaxConns != 100 || o.MaxConnsPerAddr != 7 || o.FrameAncestors != "'self'" {
		t.Errorf("got max-conns %d, per addr %d, frame-ancestors %q; want 100, 7, 'self'", o.MaxConns, o.MaxConnsPerAddr, o.FrameAncestors)
	}
	if o.FrameRate != 50 || o.FrameBurst != 300 || o.MessageTimeout != 5*time.Second {
		t.Errorf("got frame rate %g, burst %d, message timeout %s; want 50, 300, 5s", o.FrameRate, o.FrameBurst, o.MessageTimeout)
	}
	if o.MaxHeldResponseBytes != 1<<20 {
		t.Errorf("max held response bytes %d, want 1048576", o.MaxHeldResponseBytes)
	}
	if fmt.Sprint(cfg.adminHosts) != "[a:1 b:2]" {
		t.Errorf("admin hosts %v, want [a:1 b:2]", cfg.adminHosts)
	}
	env["COLLABD_TRUSTED_PROXIES"] = "10.0.0.0/33"
	if _, err := parseConfig(nil, lookup, io.Discard); err == nil || !strings.Contains(err.Error(), "COLLABD_TRUSTED_PROXIES") {
		t.Errorf("a bad CIDR: got %v, want an error naming COLLABD_TRUSTED_PROXIES", err)
	}
}

// TestPagesCarryCSP: the frontend's files are behind the same headers as
// the API, and the home page runs no inline script that the policy would
// block.
func TestPagesCarryCSP(t *testing.T) {
	s := startServer(t, "-frame-ancestors", "'self'")
	for _, path := range []string{"/", "/index.js", "/edit.html"} {
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'self'") {
			t.Errorf("%s: CSP %q, want script-src 'self' and frame-ancestors 'self'", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", path)
		}
		if strings.HasSuffix(path, "/") || strings.HasSuffix(path, ".html") {
			for _, tag := range strings.Split(string(body), "<script")[1:] {
				if !strings.Contains(strings.SplitN(tag, ">", 2)[0], "src=") {
					t.Errorf("%s has an inline script, which the CSP blocks", path)
				}
			}
		}
	}
}
