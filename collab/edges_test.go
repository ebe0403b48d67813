package collab

// Tests of issue 22's edge findings: the pools of /healthz and the pages.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

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

// TestRefusedBodyAnswerArrives: a create whose body is over the limit was
// refused by closing the connection while the client still sent, and the
// reset threw away the 413 before the client read it (2 tries in 3). The
// body is now drained for a bounded while first. The client here sends
// all of its body before it reads anything, as simple clients do, and
// gives up if sending fails, as curl does.
func TestRefusedBodyAnswerArrives(t *testing.T) {
	const size = 16 << 20 // well past loopback's socket buffers
	for _, tc := range []struct {
		name    string
		chunked bool
		busy    bool // the address is at its cap
		status  int
	}{
		{"Content-Length over the limit", false, false, http.StatusRequestEntityTooLarge},
		{"chunked body over the limit", true, false, http.StatusRequestEntityTooLarge},
		{"address at its cap", false, true, http.StatusTooManyRequests},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A server each: a connection the last one closed may
			// not have given its place back yet.
			ts := newTestServer(t, Options{MaxDocChars: 1000, MaxConnsPerAddr: 1})
			if tc.busy {
				_, viewID := ts.createDoc(t, "x")
				_, stop := openStream(t, ts.URL+"/api/view/"+viewID+"/events", "")
				defer stop()
			}
			c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(guard))
			head := "POST /api/docs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
			if tc.chunked {
				head += "Transfer-Encoding: chunked\r\n\r\n"
			} else {
				head += fmt.Sprintf("Content-Length: %d\r\n\r\n", size)
			}
			if _, err := io.WriteString(c, head); err != nil {
				t.Fatal(err)
			}
			chunk := bytes.Repeat([]byte("a"), 64<<10)
			for sent := 0; sent < size; sent += len(chunk) {
				var err error
				if tc.chunked {
					_, err = fmt.Fprintf(c, "%x\r\n%s\r\n", len(chunk), chunk)
				} else {
					_, err = c.Write(chunk)
				}
				if err != nil {
					// As curl does: a client whose upload breaks
					// reports that, not the answer it never read.
					t.Fatalf("sending the body: %v after %d bytes, want it all taken and a %d", err, sent, tc.status)
				}
			}
			if tc.chunked {
				io.WriteString(c, "0\r\n\r\n")
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("reading the answer: %v, want a %d response", err, tc.status)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			if !resp.Close {
				t.Errorf("the answer does not close the connection")
			}
		})
	}
}

// TestLingerBounded: the draining of a refused body stops at its byte
// bound and its time bound, and past maxLingering connections at once a
// refused one is cut at once, as before.
func TestLingerBounded(t *testing.T) {
	// post starts a create of size bytes on a server of its own, with a
	// drain bound of 1 MiB, one lingering connection at most, and
	// linger time d; it sends send bytes of the body.
	server := func(t *testing.T, d time.Duration) string {
		ts := newTestServer(t, Options{MaxDocChars: 1000})
		ts.srv.lingering.bytes, ts.srv.lingering.max, ts.srv.lingering.time = 1<<20, 1, d
		return strings.TrimPrefix(ts.URL, "http://")
	}
	post := func(t *testing.T, addr string, size, send int) (net.Conn, error) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(guard))
		fmt.Fprintf(c, "POST /api/docs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size)
		chunk := bytes.Repeat([]byte("a"), 64<<10)
		for sent := 0; sent < send; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return c, err
			}
		}
		return c, nil
	}
	// drip sends a little of a large body and stops: the server lingers,
	// waiting for more. It returns once the 413 has come, and with it
	// the server's place in the gate has been taken.
	drip := func(t *testing.T, addr string) *bufio.Reader {
		t.Helper()
		c, err := post(t, addr, 16<<20, 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("dripper: %v %v, want 413", resp, err)
		}
		io.ReadAll(resp.Body)
		return br
	}

	t.Run("bytes", func(t *testing.T) {
		if _, err := post(t, server(t, guard), 64<<20, 64<<20); err == nil {
			t.Errorf("64 MiB sent past a 1 MiB drain bound, want the connection cut")
		}
	})
	t.Run("one lingering at most", func(t *testing.T) {
		addr := server(t, guard)
		drip(t, addr)
		if _, err := post(t, addr, 16<<20, 16<<20); err == nil {
			t.Errorf("a second refused upload was drained with the gate full, want it cut")
		}
	})
	t.Run("time", func(t *testing.T) {
		br := drip(t, server(t, 50*time.Millisecond))
		if _, err := br.ReadByte(); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("the server still holds a dripping client's connection past its linger time")
		}
	})
}

// TestHostCheck: a server on loopback answered any Host, so a page that
// rebinds its own name to 127.0.0.1 could create and edit documents as
// its own origin. With AllowedHosts set, only those names and the
// loopback ones are served.
func TestHostCheck(t *testing.T) {
	ts := newTestServer(t, Options{AllowedHosts: []string{"collab.example.com", "*.collab.test"}})
	pages := httptestServer(t, ts.srv.ProtectPages(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "page")
	})))
	do := func(method, url, host string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(guardCtx(t), method, url, strings.NewReader(`{"text":"x"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"localhost:8080", true},
		{"LOCALHOST", true},
		{"127.0.0.1:1", true},
		{"127.0.0.2", true},
		{"[::1]:8080", true},
		{"collab.example.com", true},
		{"Collab.Example.Com:443", true},
		{"a.collab.test", true},
		{"evil.example", false},
		{"evil.example:8080", false},
		{"collab.example.com.evil.example", false},
		{"192.0.2.1:8080", false},
	} {
		for _, c := range []struct{ method, url string }{
			{http.MethodPost, ts.URL + "/api/docs"},
			{http.MethodGet, ts.URL + "/healthz"},
			{http.MethodGet, pages + "/"},
		} {
			status, body := do(c.method, c.url, tc.host)
			switch {
			case tc.ok && status >= 400:
				t.Errorf("%s %s with Host %q: %d (%s), want it served", c.method, c.url, tc.host, status, body)
			case !tc.ok && status != http.StatusForbidden:
				t.Errorf("%s %s with Host %q: %d, want 403", c.method, c.url, tc.host, status)
			case !tc.ok:
				if code, _ := apiErrorOf(t, body); code != CodeForbidden {
					t.Errorf("%s with Host %q: code %q, want %q", c.url, tc.host, code, CodeForbidden)
				}
			}
		}
	}
	// Without AllowedHosts, any Host is served.
	open := newTestServer(t, Options{})
	if status, body := do(http.MethodPost, open.URL+"/api/docs", "evil.example"); status != http.StatusCreated {
		t.Errorf("no AllowedHosts, Host evil.example: %d (%s), want 201", status, body)
	}
}

// TestHSTS: nothing sent Strict-Transport-Security over TLS. It comes
// over TLS, and from behind a trusted proxy that says https, never over
// plain HTTP.
func TestHSTS(t *testing.T) {
	opts := Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	srv := New(newMemStore(), opts)
	t.Cleanup(func() { srv.Close(context.Background()) })
	tlsTS := httptest.NewTLSServer(srv)
	defer tlsTS.Close()
	plain := httptest.NewServer(srv)
	defer plain.Close()
	untrusted := New(newMemStore(), Options{})
	t.Cleanup(func() { untrusted.Close(context.Background()) })
	untrustedTS := httptest.NewServer(untrusted)
	defer untrustedTS.Close()

	get := func(c *http.Client, url, proto string) string {
		t.Helper()
		req, _ := http.NewRequestWithContext(guardCtx(t), http.MethodGet, url+"/healthz", nil)
		if proto != "" {
			req.Header.Set("X-Forwarded-Proto", proto)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("Strict-Transport-Security")
	}
	want := "max-age=31536000"
	if got := get(tlsTS.Client(), tlsTS.URL, ""); got != want {
		t.Errorf("over TLS: Strict-Transport-Security %q, want %q", got, want)
	}
	if got := get(http.DefaultClient, plain.URL, "https"); got != want {
		t.Errorf("from a trusted proxy saying https: %q, want %q", got, want)
	}
	if got := get(http.DefaultClient, plain.URL, "http"); got != "" {
		t.Errorf("from a trusted proxy saying http: %q, want none", got)
	}
	if got := get(http.DefaultClient, plain.URL, ""); got != "" {
		t.Errorf("over plain HTTP: %q, want none", got)
	}
	if got := get(http.DefaultClient, untrustedTS.URL, "https"); got != "" {
		t.Errorf("X-Forwarded-Proto from an untrusted peer: %q, want none", got)
	}
}

// TestWebhookOutboxBounded: with the receiver down and text in changed
// events, the outbox grew by a document's text every debounce (855 MB in
// 46 s). Now past its byte bound the text is left out, past its count
// the oldest events go, and once the receiver is back it hears every
// document's latest revision.
func TestWebhookOutboxBounded(t *testing.T) {
	const maxBytes, maxEvents = 40_000, 30
	rc := newReceiver(t, []byte("webhook-secret"))
	rc.down.Store(true)
	out := &memOutbox{}
	ts := webhookServer(t, rc, out, WebhookOptions{Text: true, Debounce: 5 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		MaxOutboxBytes: maxBytes, MaxOutboxEvents: maxEvents})
	ctx := guardCtx(t)
	var docs []*Client
	var ids []string
	for range 4 {
		id, _ := ts.createDoc(t, strings.Repeat("t", 10_000))
		docs = append(docs, ts.dial(t, id, ClientOptions{}))
		ids = append(ids, id)
	}
	adds := func() int { out.mu.Lock(); defer out.mu.Unlock(); return out.adds }
	for i := range 40 {
		c := docs[i%len(docs)]
		before := adds()
		if err := c.Edit(ot.Op{ot.Retain(c.Len()), ot.Insert("!")}); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
		// Each edit its own changed event.
		for adds() == before {
			select {
			case <-ctx.Done():
				t.Fatalf("edit %d made no changed event", i)
			case <-time.After(time.Millisecond):
			}
		}
		n, b, _ := out.Size(ctx)
		if n > maxEvents || b > maxBytes {
			t.Fatalf("after edit %d the outbox holds %d events, %d bytes; want at most %d, %d", i, n, b, maxEvents, maxBytes)
		}
	}
	out.mu.Lock()
	first := out.evs[0].Seq
	var omitted, withText int
	for _, e := range out.evs {
		var ev webhookEvent
		json.Unmarshal(e.Body, &ev)
		switch {
		case ev.TextOmitted && ev.Text == nil:
			omitted++
		case ev.TextOmitted:
			t.Errorf("event %d says its text is omitted and has it", e.Seq)
		case ev.Text != nil:
			withText++
		}
	}
	out.mu.Unlock()
	if first == 1 {
		t.Errorf("44 events in an outbox of %d and the oldest is still there", maxEvents)
	}
	if omitted == 0 {
		t.Errorf("no event went without its text past the byte bound (%d with text)", withText)
	}

	rc.down.Store(false)
	for i, c := range docs {
		id, rev := ids[i], c.Rev()
		rc.waitFor(t, "the latest revision of every document", func(evs []webhookEvent) bool {
			e, ok := lastChanged(evs, id)
			return ok && e.Rev == rev
		})
	}
}

// TestWebhookOutboxBoundedAtStart: an outbox left past the bounds (by an
// older server, or other bounds) is brought within them at start-up, the
// oldest events going first.
func TestWebhookOutboxBoundedAtStart(t *testing.T) {
	out := &memOutbox{}
	var evs []OutboxEvent
	for i := range 50 {
		evs = append(evs, OutboxEvent{Queued: time.Now(), Body: []byte(fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("p", 1000)))})
	}
	out.Add(context.Background(), evs)
	rc := newReceiver(t, []byte("webhook-secret"))
	rc.down.Store(true)
	webhookServer(t, rc, out, WebhookOptions{MaxOutboxEvents: 10, MaxOutboxBytes: 1 << 20})
	n, _, _ := out.Size(context.Background())
	out.mu.Lock()
	first := out.evs[0].Seq
	out.mu.Unlock()
	if n != 10 || first != 41 {
		t.Errorf("outbox at start: %d events from seq %d, want the newest 10, from 41", n, first)
	}
}
