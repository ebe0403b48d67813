package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBackup takes a hot backup from a running server's admin endpoint,
// checks that the file it holds cannot be copied directly meanwhile, and
// serves the copy as a data file of its own.
func TestBackup(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "collab.db")
	s := startServerAt(t, data, "-admin-addr", "127.0.0.1:0")
	id := createDoc(t, s.URL, "backed up 😀")

	backup := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"backup"}, args...), &out, io.Discard)
		return out.String(), err
	}
	hot := filepath.Join(dir, "hot.db")
	if out, err := backup("-from", s.AdminURL, "-o", hot); err != nil {
		t.Fatalf("backup -from a running server: %v", err)
	} else if !strings.HasPrefix(out, "wrote ") {
		t.Errorf("backup printed %q, want \"wrote N bytes to ...\"", out)
	}
	locked := filepath.Join(dir, "locked.db")
	if _, err := backup("-data", data, "-lock-timeout", "50ms", "-o", locked); err == nil || !strings.Contains(err.Error(), "-from") {
		t.Errorf("backup -data of a file a server holds: got %v, want an error pointing to -from", err)
	}
	if _, err := os.Stat(locked); !os.IsNotExist(err) {
		t.Errorf("a failed backup left %s behind (stat: %v)", locked, err)
	}
	s.Stop(t)

	// With the server gone, the file can be copied directly too.
	cold := filepath.Join(dir, "cold.db")
	if _, err := backup("-data", data, "-o", cold); err != nil {
		t.Fatalf("backup -data of an unused file: %v", err)
	}
	if _, err := backup("-from", s.AdminURL, "-o", filepath.Join(dir, "gone.db")); err == nil {
		t.Error("backup -from a stopped server: got nil error")
	}
	if _, err := backup("-data", data); err == nil {
		t.Error("backup without -o: got nil error")
	}
	typo := filepath.Join(dir, "colab.db")
	if _, err := backup("-data", typo, "-o", filepath.Join(dir, "typo-copy.db")); err == nil {
		t.Error("backup -data of a missing file: got nil error")
	}
	if _, err := os.Stat(typo); !os.IsNotExist(err) {
		t.Errorf("backup -data of a missing file created it (stat: %v)", err)
	}

	for _, copy := range []string{hot, cold} {
		r := startServerAt(t, copy)
		resp, err := http.Get(r.URL + "/api/docs/" + id + "/text")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "backed up 😀" {
			t.Errorf("%s: GET text: got %d %q, want 200 \"backed up 😀\"", filepath.Base(copy), resp.StatusCode, body)
		}
		r.Stop(t)
	}
}

// createDoc creates a document holding text and returns its edit id.
func createDoc(t *testing.T, base, text string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"text": text})
	resp, err := http.Post(base+"/api/docs", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: status %d, %v", resp.StatusCode, err)
	}
	return doc.ID
}

// TestShutdownDuringStalledBackup: a backup client that stops reading
// holds its copy of the data file, but shutdown still ends within its
// timeout rather than waiting for the client.
func TestShutdownDuringStalledBackup(t *testing.T) {
	s := startServer(t, "-admin-addr", "127.0.0.1:0", "-shutdown-timeout", "300ms")
	// Far more than the kernel's socket buffers hold.
	big := strings.Repeat("0123456789", 150_000)
	for range 12 {
		createDoc(t, s.URL, big)
	}
	// A small receive buffer, and nothing read past the headers: the
	// server's writes soon block.
	d := net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(s.AdminURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /backup HTTP/1.1\r\nHost: %s\r\n\r\n", strings.TrimPrefix(s.AdminURL, "http://"))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.ContentLength <= 0 {
		t.Fatalf("GET /backup: got %s with Content-Length %d, want 200 and the size", resp.Status, resp.ContentLength)
	}
	if resp.ContentLength < 16<<20 {
		t.Fatalf("the backup is only %d bytes: too small to stall", resp.ContentLength)
	}

	stop, done := s.stop, s.done
	s.stop = nil // this test checks run's return itself
	stop()
	select {
	case err := <-done:
		// Cutting the backup short is reported, not hidden.
		if err == nil || !strings.Contains(err.Error(), "shutdown") {
			t.Errorf("run returned %v, want the shutdown timeout reported", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return within 20s of cancellation while a backup client stalled")
	}
}
