package collab

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/collabd/collabd/ot"
)

// loadAtStore counts the LoadAt calls that reach the store, and holds
// them until gate is closed.
type loadAtStore struct {
	*memStore
	gate  chan struct{}
	loads atomic.Int64
}

func (s *loadAtStore) LoadAt(ctx context.Context, id string, rev int64) (*StoredDoc, error) {
	s.loads.Add(1)
	select {
	case <-s.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.memStore.LoadAt(ctx, id, rev)
}

// appendRevs appends n ops to document id in the store directly (nobody
// has it open): each replaces its first code point.
func appendRevs(t *testing.T, m *memStore, id string, n int) {
	t.Helper()
	d, err := m.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	chars := len([]rune(d.Text))
	for i := range n {
		op := ot.Op{}.Insert(string(rune('A' + i%26))).Delete(1).Retain(chars - 1)
		rec := Record{Rev: d.Rev + int64(i) + 1, Op: op, Client: "test", Seq: int64(i) + 1, Time: time.Now()}
		if err := m.Append(context.Background(), id, []Record{rec}); err != nil {
			t.Fatal(err)
		}
	}
}

// inProgress returns the requests the server has in progress.
func inProgress(s *Server) int {
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	return s.conns.total
}

// waitFor polls cond until it holds, failing the test after guard.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Readers of one past revision share one text: the store rebuilds it once
// for readers that come together (the first rebuilds, the others wait)
// and for readers that come after, by any of the endpoints.
func TestPastRevisionReadersShareOneText(t *testing.T) {
	mem := newMemStore()
	store := &loadAtStore{memStore: mem, gate: make(chan struct{})}
	ts := newTestServerStore(t, mem, store, Options{})
	id, viewID := ts.createDoc(t, "hello, world")
	appendRevs(t, mem, id, 3)

	const readers = 8
	url := fmt.Sprintf("%s/api/docs/%s/text?rev=2", ts.URL, id)
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(url)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var b strings.Builder
			if _, err := bufio.NewReader(resp.Body).WriteTo(&b); err != nil {
				errs <- err
				return
			}
			if resp.StatusCode != http.StatusOK || b.String() != "Aello, world" {
				errs <- fmt.Errorf("got %d %q, want 200 %q", resp.StatusCode, b.String(), "Aello, world")
			}
		}()
	}
	// Every reader is in the server, rebuilding the text or waiting for
	// it, before the store answers.
	waitFor(t, "the readers' requests", func() bool { return inProgress(ts.srv) == readers })
	close(store.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := store.loads.Load(); n != 1 {
		t.Errorf("%d readers who came together: the store rebuilt rev 2 %d times, want once", readers, n)
	}

	// Later readers, by every endpoint, reuse it.
	for _, u := range []string{
		fmt.Sprintf("/api/docs/%s/text?rev=2", id),
		fmt.Sprintf("/api/docs/%s?rev=2", id),
		fmt.Sprintf("/api/view/%s/text?rev=2", viewID),
		fmt.Sprintf("/api/view/%s?rev=2", viewID),
	} {
		code, hdr, body := doHTTP(t, http.MethodGet, ts.URL+u, "", nil)
		if code != http.StatusOK || !strings.Contains(string(body), "Aello, world") {
			t.Errorf("GET %s: got %d %s", u, code, body)
		}
		if got := hdr.Get("X-Collab-Rev"); strings.HasSuffix(u, "text?rev=2") && got != "2" {
			t.Errorf("GET %s: X-Collab-Rev %q, want 2", u, got)
		}
		if strings.Contains(u, "/view/") && strings.Contains(string(body), id) {
			t.Errorf("GET %s: the answer names the edit id: %s", u, body)
		}
	}
	if n := store.loads.Load(); n != 1 {
		t.Errorf("after later readers: the store rebuilt rev 2 %d times, want once", n)
	}
	// Another revision is another text.
	if code, _, body := doHTTP(t, http.MethodGet, fmt.Sprintf("%s/api/docs/%s/text?rev=3", ts.URL, id), "", nil); code != http.StatusOK || string(body) != "Bello, world" {
		t.Errorf("GET text?rev=3: got %d %q", code, body)
	}
}

// A past revision kept for reuse is not served once its document is
// deleted.
func TestPastRevisionOfDeletedDocument(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, viewID := ts.createDoc(t, "secret")
	appendRevs(t, ts.store, id, 1)
	if code, _, _ := doHTTP(t, http.MethodGet, fmt.Sprintf("%s/api/docs/%s/text?rev=1", ts.URL, id), "", nil); code != http.StatusOK {
		t.Fatalf("GET text?rev=1: got %d, want 200", code)
	}
	if code, _, body := doHTTP(t, http.MethodDelete, fmt.Sprintf("%s/api/docs/%s", ts.URL, id), "", nil); code != http.StatusNoContent {
		t.Fatalf("DELETE: got %d %s", code, body)
	}
	for _, u := range []string{fmt.Sprintf("/api/docs/%s/text?rev=1", id), fmt.Sprintf("/api/docs/%s?rev=1", id), fmt.Sprintf("/api/view/%s?rev=1", viewID)} {
		status, hdr, body := doHTTP(t, http.MethodGet, ts.URL+u, "", nil)
		wantAPIError(t, "GET "+u+" after delete", status, hdr, body, http.StatusNotFound, CodeNotFound)
	}
}

// slowReader sends GET path on a connection with a small receive buffer
// and never reads the answer.
func slowReader(t *testing.T, ts *testServer, path string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: setRcvbuf(4096)}
	nc, err := d.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if _, err := fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	return nc
}

// The bytes held for readers that do not take them are bounded in total:
// past MaxHeldResponseBytes, a request for another text is refused with
// 503 and Retry-After, while readers of a text already held share it; and
// once the slow reader goes, its text no longer counts. The head's text
// counts as any other.
func TestHeldResponseBytesBudget(t *testing.T) {
	const size = 6 << 20 // more than the kernel buffers a stalled write
	ts := newTestServer(t, Options{MaxDocChars: 2 * size, MaxHeldResponseBytes: size + size/2})
	id, _ := ts.createDoc(t, strings.Repeat("a", size))
	appendRevs(t, ts.store, id, 1)

	a := slowReader(t, ts, fmt.Sprintf("/api/docs/%s/text?rev=1", id))
	// Held: its text alone, the reservation for its rebuild given back.
	waitFor(t, "the slow reader's text to be held", func() bool { return ts.srv.held.inUse() == size })

	for _, u := range []string{
		fmt.Sprintf("/api/docs/%s/text?rev=2", id),
		fmt.Sprintf("/api/docs/%s?rev=2", id),
		fmt.Sprintf("/api/docs/%s/text", id),   // the head, rev 2 too
		fmt.Sprintf("/api/docs/%s?rev=1", id),  // rev 1's JSON is another body
		fmt.Sprintf("/api/docs/%s/ops", id),    // so is a page of ops
		fmt.Sprintf("/api/docs/%s/events", id), // and a new viewer's snapshot
	} {
		status, hdr, body := doHTTP(t, http.MethodGet, ts.URL+u, "", nil)
		if status != http.StatusServiceUnavailable {
			t.Errorf("GET %s with the budget held: got status %d and %d bytes, want 503", u, status, len(body))
			continue
		}
		wantAPIError(t, "GET "+u+" with the budget held", status, hdr, body, http.StatusServiceUnavailable, CodeRateLimited)
		if hdr.Get("Retry-After") == "" {
			t.Errorf("GET %s: 503 without Retry-After", u)
		}
		if hdr.Get("X-Collab-Rev") != "" {
			t.Errorf("GET %s: 503 with X-Collab-Rev %q", u, hdr.Get("X-Collab-Rev"))
		}
	}
	// The text the slow reader holds is shared, not held again.
	code, _, body := doHTTP(t, http.MethodGet, fmt.Sprintf("%s/api/docs/%s/text?rev=1", ts.URL, id), "", nil)
	if code != http.StatusOK || len(body) != size {
		t.Fatalf("GET text?rev=1 beside the slow reader: got %d and %d bytes, want 200 and %d", code, len(body), size)
	}
	if got := ts.srv.held.inUse(); got > size+size/2 {
		t.Errorf("held %d bytes, past the budget of %d", got, size+size/2)
	}

	a.Close()
	waitFor(t, "the slow reader's text to be let go", func() bool { return ts.srv.held.inUse() == 0 })
	code, _, body = doHTTP(t, http.MethodGet, fmt.Sprintf("%s/api/docs/%s/text", ts.URL, id), "", nil)
	if code != http.StatusOK || len(body) != size || body[0] != 'A' {
		t.Fatalf("GET text after the slow reader left: got %d and %d bytes, want 200 and %d", code, len(body), size)
	}
}

func TestHeldBytes(t *testing.T) {
	b := newHeldBytes(100)
	k1, k2, k3 := unsafe.Pointer(new(int)), unsafe.Pointer(new(int)), unsafe.Pointer(new(int))
	steps := []struct {
		hold    bool // else release
		key     unsafe.Pointer
		n       int64
		ok      bool
		inUseTo int64
	}{
		{true, k1, 300, true, 300}, // larger than the budget, alone: let through
		{true, k2, 1, false, 300},
		{true, k1, 300, true, 300}, // shared: counted once
		{false, k1, 0, true, 300},
		{false, k1, 0, true, 0},
		{true, k2, 60, true, 60},
		{true, k3, 40, true, 100},
		{true, k1, 1, false, 100},
		{false, k3, 0, true, 60},
		{true, k1, 40, true, 100},
	}
	for i, s := range steps {
		ok := true
		if s.hold {
			ok = b.hold(s.key, s.n)
		} else {
			b.release(s.key)
		}
		if ok != s.ok || b.inUse() != s.inUseTo {
			t.Fatalf("step %d: got %v and %d held, want %v and %d", i, ok, b.inUse(), s.ok, s.inUseTo)
		}
	}
}

// holdWait gets room that a release makes while it waits, and gives up
// when its wait ends.
func TestHeldBytesWait(t *testing.T) {
	b := newHeldBytes(100)
	k1, k2 := unsafe.Pointer(new(int)), unsafe.Pointer(new(int))
	b.hold(k1, 100)
	if b.holdWait(context.Background(), k2, 50, time.Millisecond) {
		t.Fatal("holdWait got room that nobody made")
	}
	got := make(chan bool)
	go func() { got <- b.holdWait(context.Background(), k2, 50, guard) }()
	b.release(k1)
	if !<-got {
		t.Fatal("holdWait did not get the room a release made")
	}
	if b.inUse() != 50 {
		t.Fatalf("held %d bytes, want 50", b.inUse())
	}
}

// The past texts no request uses are kept up to the cache's bytes, the
// least recently used going first; those in use always stay.
func TestPastTextsKeepRecentWithinBytes(t *testing.T) {
	c := newPastTexts(25)
	get := func(rev int64) *pastText {
		e, first := c.get(pastKey{"d", rev})
		if first {
			e.text = strings.Repeat("x", 10)
			close(e.ready)
		}
		return e
	}
	e1, e2 := get(1), get(2)
	e3 := get(3)
	c.put(e1)
	c.put(e2)
	if len(c.m) != 3 || c.idle != 20 {
		t.Fatalf("got %d entries, %d idle bytes; want 3, 20", len(c.m), c.idle)
	}
	c.put(e3) // 30 idle bytes: rev 1 goes
	if _, ok := c.m[pastKey{"d", 1}]; ok || len(c.m) != 2 || c.idle != 20 {
		t.Fatalf("got %d entries (rev 1 kept: %v), %d idle bytes; want 2, 20", len(c.m), ok, c.idle)
	}
	if e := get(2); e != e2 {
		t.Fatal("rev 2 was rebuilt, want it reused")
	}
	if c.idle != 10 {
		t.Fatalf("got %d idle bytes with rev 2 in use, want 10", c.idle)
	}
}
