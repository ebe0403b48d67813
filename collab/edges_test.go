package collab

// Tests of issue 22's edge findings: the pools of /healthz and the pages.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

// blockingPingStore is a memStore whose Ping waits until release is
// closed, telling entered each time one starts: a health check that holds
// its place under the caps for as long as a test wants.
type blockingPingStore struct {
	*memStore
	entered chan struct{}
	release chan struct{}
}

func (b *blockingPingStore) Ping(ctx context.Context) error {
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.memStore.Ping(ctx)
}

// TestPoolsApart: /healthz, the pages and the API each have caps of their
// own, per address and in all; filling one leaves the others working.
func TestPoolsApart(t *testing.T) {
	mem := newMemStore()
	bs := &blockingPingStore{memStore: mem, entered: make(chan struct{}, 8), release: make(chan struct{})}
	ts := newTestServerStore(t, mem, bs, Options{
		MaxConns: 2, MaxConnsPerAddr: 2,
		MaxHealthConns: 2, MaxHealthConnsPerAddr: 1,
		MaxPageConns: 2, MaxPageConnsPerAddr: 1,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	defer close(bs.release)
	_, viewID := ts.createDoc(t, "x")
	events := ts.URL + "/api/view/" + viewID + "/events"
	pages := httptestServer(t, ts.srv.ProtectPages(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "page\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // a slow reader, say
	})))
	status := func(url, from string) int {
		t.Helper()
		resp, stop := openStream(t, url, from)
		if resp.StatusCode != http.StatusOK {
			stop()
		}
		return resp.StatusCode
	}
	healthFrom := func(from string) <-chan int {
		got := make(chan int, 1)
		go func() {
			req, _ := http.NewRequestWithContext(guardCtx(t), http.MethodGet, ts.URL+"/healthz", nil)
			req.Header.Set("X-Forwarded-For", from)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				got <- 0
				return
			}
			resp.Body.Close()
			got <- resp.StatusCode
		}()
		return got
	}

	// The API's pool full of streams.
	for _, from := range []string{"192.0.2.1", "192.0.2.2"} {
		if got := status(events, from); got != http.StatusOK {
			t.Fatalf("stream from %s: %d, want 200", from, got)
		}
	}
	if got := status(events, "192.0.2.3"); got != http.StatusServiceUnavailable {
		t.Fatalf("a third stream: %d, want 503", got)
	}
	// The pages' pool: one per address, two in all.
	if got := status(pages+"/a", "192.0.2.1"); got != http.StatusOK {
		t.Fatalf("page with the API full: %d, want 200", got)
	}
	if got := status(pages+"/b", "192.0.2.1"); got != http.StatusTooManyRequests {
		t.Errorf("second page from one address: %d, want 429", got)
	}
	if got := status(pages+"/c", "192.0.2.2"); got != http.StatusOK {
		t.Fatalf("page from another address: %d, want 200", got)
	}
	if got := status(pages+"/d", "192.0.2.3"); got != http.StatusServiceUnavailable {
		t.Errorf("third page: %d, want 503", got)
	}
	// /healthz still answers, with both other pools full; its own pool
	// is bounded too.
	first := healthFrom("192.0.2.1")
	<-bs.entered
	if got := <-healthFrom("192.0.2.1"); got != http.StatusTooManyRequests {
		t.Errorf("second health check from one address: %d, want 429", got)
	}
	second := healthFrom("192.0.2.2")
	<-bs.entered
	if got := <-healthFrom("192.0.2.3"); got != http.StatusServiceUnavailable {
		t.Errorf("third health check: %d, want 503", got)
	}
	bs.release <- struct{}{}
	bs.release <- struct{}{}
	for _, c := range []<-chan int{first, second} {
		if got := <-c; got != http.StatusOK {
			t.Errorf("health check with the API and pages full: %d, want 200", got)
		}
	}
}

// TestHealthzCommitFailure: with the free-space check off, /healthz said
// ok on a full disk while every commit failed, since its ping fitted in a
// free page. The latest failed write now makes it 503 until a write
// succeeds again.
func TestHealthzCommitFailure(t *testing.T) {
	ts := newTestServer(t, Options{MinFreeBytes: -1})
	id, _ := ts.createDoc(t, "hello")
	getJSONStatus(t, ts.URL+"/healthz", http.StatusOK, nil)

	ts.store.mu.Lock()
	ts.store.failErr = errors.New("injected: write: no space left on device")
	ts.store.mu.Unlock()
	ctx := guardCtx(t)
	r := ts.raw(t, id)
	r.hello(t, ctx, uuid.NewString(), 1)
	r.sendOp(t, ctx, 1, 1, ot.Op{ot.Retain(5), ot.Insert("!")})
	r.expectError(t, ctx, CodeInternal, websocket.StatusInternalError)

	status, _, body := doHTTP(t, http.MethodGet, ts.URL+"/healthz", "", nil)
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "cannot commit") {
		t.Errorf("healthz after a failed commit: status %d (%s), want 503 saying storage cannot commit", status, body)
	}

	// A write that succeeds clears it.
	ts.store.mu.Lock()
	ts.store.failErr = nil
	ts.store.mu.Unlock()
	ts.createDoc(t, "")
	getJSONStatus(t, ts.URL+"/healthz", http.StatusOK, nil)
}
