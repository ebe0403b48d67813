package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
