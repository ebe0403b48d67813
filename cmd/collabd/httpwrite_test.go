package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestHTTPWriteIdempotentAcrossRestart: a write retried with its
// Idempotency-Key after a restart, on the same bbolt data file, gets the
// first answer and applies nothing.
func TestHTTPWriteIdempotentAcrossRestart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "collab.db")
	s1 := startServerAt(t, data)
	resp, err := http.Post(s1.URL+"/api/docs", "application/json", strings.NewReader(`{"text":"abc"}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()

	write := func(base string) (int, string) {
		req, _ := http.NewRequest("POST", base+"/api/docs/"+created.ID+"/ops", strings.NewReader(`{"rev":1,"op":[3,"!"]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "retry-me")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code1, first := write(s1.URL)
	if code1 != 200 {
		t.Fatalf("first write: got %d %s", code1, first)
	}
	s1.Stop(t)

	s2 := startServerAt(t, data)
	code2, again := write(s2.URL)
	if code2 != 200 || again != first {
		t.Errorf("retry after restart: got %d %s, want 200 %s", code2, again, first)
	}
	resp, err = http.Get(s2.URL + "/api/docs/" + created.ID)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Rev  int64
		Text string
	}
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if doc.Text != "abc!" || doc.Rev != 2 {
		t.Errorf("after the retry: got %q at rev %d, want %q at 2", doc.Text, doc.Rev, "abc!")
	}
}
