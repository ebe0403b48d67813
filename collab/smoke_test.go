package collab

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/ot"
)

// testServer is a collab Server behind httptest, on an in-memory store.
type testServer struct {
	*httptest.Server
	srv   *Server
	store *memStore
}

func newTestServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	store := newMemStore()
	srv := New(store, opts)
	ts := &testServer{Server: httptest.NewServer(srv), srv: srv, store: store}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close server: %v", err)
		}
		ts.Close()
	})
	return ts
}

// createDoc creates a document with text and returns its edit and view ids.
func (ts *testServer) createDoc(t *testing.T, text string) (id, viewID string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"text": text})
	resp, err := http.Post(ts.URL+"/api/docs", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: got status %d, want 201", resp.StatusCode)
	}
	var out struct{ ID, ViewID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.ID, out.ViewID
}

func (ts *testServer) wsURL(id string) string {
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/api/docs/" + id + "/ws"
}

func (ts *testServer) dial(t *testing.T, id string, opts ClientOptions) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, ts.wsURL(id), opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSmokeTwoEditors(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "hello")
	a := ts.dial(t, id, ClientOptions{Name: "A"})
	b := ts.dial(t, id, ClientOptions{Name: "B"})
	if got := a.Text(); got != "hello" {
		t.Fatalf("got text %q, want hello", got)
	}
	if err := a.Edit(ot.Op{ot.Retain(5), ot.Insert(" world")}); err != nil {
		t.Fatal(err)
	}
	// A's edit may reach B first: B capitalizes whatever text it has.
	if err := b.EditFunc(func(text string) ot.Op {
		return ot.Op{}.Delete(1).Insert("H").Retain(utf8.RuneCountInString(text) - 1)
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range []*Client{a, b} {
		if err := c.WaitRev(ctx, 3); err != nil {
			t.Fatalf("wait: %v", err)
		}
	}
	if a.Text() != "Hello world" || b.Text() != "Hello world" {
		t.Fatalf("got %q and %q, want both \"Hello world\"", a.Text(), b.Text())
	}
}
