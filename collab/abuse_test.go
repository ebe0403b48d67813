package collab

// Each attack of issue 9 that the HTTP side answers, as a test that fails
// without its fix. All of them are bounded in count and time, and stay on
// loopback.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

// apiErrorOf decodes an API error body, failing the test if it is not one.
func apiErrorOf(t *testing.T, body []byte) (code, message string) {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("body %.200q is not an API error: %v", body, err)
	}
	return e.Error.Code, e.Error.Message
}

// churnDoc stores a document that inserted and deleted size bytes rounds
// times: its text is empty, its log rounds*size bytes.
func churnDoc(t *testing.T, m *memStore, rounds, size int) string {
	t.Helper()
	id := uuid.NewString()
	if err := m.Create(context.Background(), DocMeta{ID: id, ViewID: uuid.NewString()}, nil); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", size)
	var recs []Record
	for i := range rounds {
		rev := int64(2*i + 1)
		recs = append(recs,
			Record{Rev: rev, Op: ot.Op{ot.Insert(big)}, Client: "c", Seq: rev},
			Record{Rev: rev + 1, Op: ot.Op{ot.Delete(size)}, Client: "c", Seq: rev + 1})
	}
	if err := m.Append(context.Background(), id, recs); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestOpsPageBoundedByBytes is the churned /ops page: 1 MB inserted and
// deleted again and again made one ?limit=1000 page 500 MB. The page is
// now cut at MaxOpsPageBytes, and paging still reaches every op.
func TestOpsPageBoundedByBytes(t *testing.T) {
	const size, rounds = 256 << 10, 20 // a 10 MiB log
	ts := newTestServer(t, Options{MaxOpsPageBytes: 1 << 20})
	id := churnDoc(t, ts.store, rounds, size)

	seen := 0
	for from, pages := int64(0), 0; ; pages++ {
		if pages > 2*rounds+1 {
			t.Fatalf("paging did not end after %d pages", pages)
		}
		status, _, body := doHTTP(t, http.MethodGet, fmt.Sprintf("%s/api/docs/%s/ops?from=%d&limit=1000", ts.URL, id, from), "", nil)
		if status != http.StatusOK {
			t.Fatalf("GET ops: status %d: %s", status, body)
		}
		if len(body) > 2<<20 {
			t.Fatalf("a page of %d bytes, want at most about 1 MiB", len(body))
		}
		var page []OpRecord
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		seen += len(page)
		from = page[len(page)-1].Rev
	}
	if seen != 2*rounds {
		t.Errorf("paging saw %d ops, want %d", seen, 2*rounds)
	}
	// One op larger than the whole budget still comes, alone.
	ts2 := newTestServer(t, Options{MaxOpsPageBytes: 1000})
	id2 := churnDoc(t, ts2.store, 2, 5000)
	var page []OpRecord
	getJSONStatus(t, ts2.URL+"/api/docs/"+id2+"/ops", http.StatusOK, &page)
	if len(page) != 1 || page[0].Rev != 1 {
		t.Errorf("a page under a budget smaller than its first op: got %d ops, want op 1 alone", len(page))
	}
}

// TestCreateFlood: a loop of POST /api/docs made 7,400 documents a second.
// One address now gets its burst, then 429 rate_limited, while another
// address (behind a trusted proxy) is not held up.
func TestCreateFlood(t *testing.T) {
	ts := newTestServer(t, Options{
		CreateRate: 0.5, CreateBurst: 5,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	post := func(from string) (int, []byte) {
		req, _ := http.NewRequestWithContext(guardCtx(t), http.MethodPost, ts.URL+"/api/docs", nil)
		req.Header.Set("X-Forwarded-For", from)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	created := 0
	for i := range 50 {
		status, body := post("198.51.100.7")
		if status == http.StatusCreated {
			created++
			continue
		}
		if status != http.StatusTooManyRequests {
			t.Fatalf("create %d: status %d, want 201 or 429", i, status)
		}
		if code, _ := apiErrorOf(t, body); code != CodeRateLimited {
			t.Errorf("create %d: code %q, want %q", i, code, CodeRateLimited)
		}
	}
	// 5 of burst, and perhaps one more refilled while the loop ran.
	if created < 5 || created > 6 {
		t.Errorf("one address created %d documents in a burst of 50, want 5 (burst) or 6", created)
	}
	if status, body := post("203.0.113.9"); status != http.StatusCreated {
		t.Errorf("another address: status %d (%s), want 201", status, body)
	}
	// IPv6 addresses of one /64 share a bucket.
	for i := range 5 {
		post(fmt.Sprintf("2001:db8:1:2::%x", i+1))
	}
	if status, _ := post("2001:db8:1:2::ffff"); status != http.StatusTooManyRequests {
		t.Errorf("the sixth create from one IPv6 /64: status %d, want 429", status)
	}
}

// TestAddrBucketsBounded: a flood of fresh addresses does not grow the
// create limiter's memory past its bound, and a limited address is not
// forgotten while it is still limited, unless the map overflows.
func TestAddrBucketsBounded(t *testing.T) {
	b := newAddrBuckets(1, 2, 100)
	now := time.Now()
	for range 3 {
		b.allow("victim", now)
	}
	if b.allow("victim", now) {
		t.Fatal("a drained bucket allowed a create")
	}
	for i := range 10_000 {
		b.allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256), now)
		if len(b.m) > 100 {
			t.Fatalf("after %d addresses the map holds %d, want at most 100", i+1, len(b.m))
		}
	}
	// Refilled buckets go first: an hour later, all are forgotten.
	b.allow("fresh", now.Add(time.Hour))
	b.evict(now.Add(time.Hour))
	if len(b.m) > 1 {
		t.Errorf("an hour later %d buckets remain, want the refilled ones gone", len(b.m))
	}
}

// slowPost starts a POST /api/docs that announces length bytes and sends
// only sent of them, then drips one more byte every drip (if not zero). It
// returns the connection; the caller reads it to see the server's answer.
func slowPost(t *testing.T, addr string, length, sent int, drip time.Duration) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /api/docs HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, length)
	body := append([]byte(`{"text":"`), bytes.Repeat([]byte("a"), sent)...)
	if _, err := conn.Write(body[:sent]); err != nil {
		t.Fatal(err)
	}
	if drip > 0 {
		go func() {
			for range length {
				time.Sleep(drip)
				if _, err := conn.Write([]byte("a")); err != nil {
					return
				}
			}
		}()
	}
	return conn
}

// TestSlowBodiesCut: bodies that stop short, or drip a byte at a time,
// held their connections (and 1.15 GB) for ever. They are now cut when
// BodyTimeout has passed since the request began.
func TestSlowBodiesCut(t *testing.T) {
	ts := newTestServer(t, Options{BodyTimeout: 300 * time.Millisecond})
	addr := strings.TrimPrefix(ts.URL, "http://")
	for _, tc := range []struct {
		name string
		drip time.Duration
	}{
		{"stops short", 0},
		{"drips", 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := slowPost(t, addr, 100_000, 1000, tc.drip)
			conn.SetReadDeadline(time.Now().Add(guard))
			_, err := io.Copy(io.Discard, conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server kept a slow body's connection open for %v", guard)
			}
		})
	}
	// The server still serves others afterwards.
	if status, _, body := postDoc(t, ts, `{"text":"after"}`); status != http.StatusCreated {
		t.Errorf("create after slow bodies: status %d: %s", status, body)
	}
}

// TestBodyBudget: the bytes of bodies being read at once are bounded; a
// create past the budget is refused at once rather than read.
func TestBodyBudget(t *testing.T) {
	ts := newTestServer(t, Options{MaxBodyBytesInFlight: 10_000, BodyTimeout: guard})
	addr := strings.TrimPrefix(ts.URL, "http://")
	slowPost(t, addr, 8000, 100, 0)
	// The slow body must hold its reservation before the second asks.
	deadline := time.Now().Add(guard)
	for {
		ts.srv.bodies.mu.Lock()
		used := ts.srv.bodies.used
		ts.srv.bodies.mu.Unlock()
		if used == 8000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slow body reserved %d bytes, want 8000", used)
		}
		time.Sleep(5 * time.Millisecond)
	}
	body := `{"text":"` + strings.Repeat("b", 4000) + `"}`
	status, _, resp := postDoc(t, ts, body)
	if status != http.StatusServiceUnavailable {
		t.Fatalf("a create past the body budget: status %d (%s), want 503", status, resp)
	}
	if code, _ := apiErrorOf(t, resp); code != CodeRateLimited {
		t.Errorf("code %q, want %q", code, CodeRateLimited)
	}
	if status, _, resp := postDoc(t, ts, `{"text":"small"}`); status != http.StatusCreated {
		t.Errorf("a small create within the budget: status %d (%s), want 201", status, resp)
	}
}

// TestCrossOriginCreate: any web page could make its visitors' browsers
// create documents (a cross-origin text/plain POST needs no preflight).
// Only the server's own origin and -allowed-origins may now, and a body
// must say it is JSON.
func TestCrossOriginCreate(t *testing.T) {
	ts := newTestServer(t, Options{AllowedOrigins: []string{"app.example.com", "https://*.example.org"}})
	own := ts.URL
	for _, tc := range []struct {
		name, origin, ctype, body string
		status                    int
		code                      string
	}{
		{"no origin", "", "application/json", `{"text":"a"}`, http.StatusCreated, ""},
		{"own origin", own, "application/json", `{"text":"a"}`, http.StatusCreated, ""},
		{"allowed host", "http://app.example.com", "application/json", `{}`, http.StatusCreated, ""},
		{"allowed scheme and host", "https://x.example.org", "application/json", `{}`, http.StatusCreated, ""},
		{"pattern needs its scheme", "http://x.example.org", "application/json", `{}`, http.StatusForbidden, CodeForbidden},
		{"foreign origin", "https://evil.example", "application/json", `{"text":"a"}`, http.StatusForbidden, CodeForbidden},
		{"foreign, no body", "https://evil.example", "", ``, http.StatusForbidden, CodeForbidden},
		{"null origin", "null", "text/plain", `{"text":"a"}`, http.StatusForbidden, CodeForbidden},
		{"text/plain body", "", "text/plain", `{"text":"a"}`, http.StatusUnsupportedMediaType, CodeBadMessage},
		{"form body", own, "application/x-www-form-urlencoded", `text=a`, http.StatusUnsupportedMediaType, CodeBadMessage},
		{"json with charset", own, "application/json; charset=utf-8", `{"text":"a"}`, http.StatusCreated, ""},
		{"empty body, any type", "", "text/plain", ``, http.StatusCreated, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(guardCtx(t), http.MethodPost, ts.URL+"/api/docs", strings.NewReader(tc.body))
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			if tc.code != "" {
				if code, _ := apiErrorOf(t, body); code != tc.code {
					t.Errorf("code %q, want %q", code, tc.code)
				}
			}
		})
	}
}

// TestDiskFull: with the disk full, /healthz said ok and empty creates
// succeeded. Now /healthz answers 503, creates 507 too_large, ops that
// insert too_large with close 4413, while reads and deletions still work.
func TestDiskFull(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  Options
		usage Usage
	}{
		{"free space below -min-free-bytes", Options{MinFreeBytes: 1 << 20}, Usage{DataBytes: 1 << 20, FreeBytes: 4096}},
		{"data past -max-data-bytes", Options{MaxDataBytes: 1 << 20}, Usage{DataBytes: 2 << 20, FreeBytes: 1 << 40}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.DiskCheckInterval = time.Nanosecond
			ts := newTestServer(t, opts)
			id, viewID := ts.createDoc(t, "hello")
			ctx := guardCtx(t)
			r := ts.raw(t, id)
			r.hello(t, ctx, uuid.NewString(), 1)

			ts.store.setUsage(tc.usage)
			status, _, body := doHTTP(t, http.MethodGet, ts.URL+"/healthz", "", nil)
			if status != http.StatusServiceUnavailable {
				t.Errorf("healthz on a full disk: status %d (%s), want 503", status, body)
			}
			for _, body := range []string{"", `{"text":"x"}`} {
				status, _, resp := postDoc(t, ts, body)
				if status != http.StatusInsufficientStorage {
					t.Errorf("create %q on a full disk: status %d (%s), want 507", body, status, resp)
					continue
				}
				if code, _ := apiErrorOf(t, resp); code != CodeTooLarge {
					t.Errorf("create %q: code %q, want %q", body, code, CodeTooLarge)
				}
			}
			// Reads work.
			var doc struct{ Text string }
			getJSONStatus(t, ts.URL+"/api/view/"+viewID, http.StatusOK, &doc)
			if doc.Text != "hello" {
				t.Errorf("view on a full disk: text %q, want hello", doc.Text)
			}
			// A deletion goes through; an insert does not.
			r.sendOp(t, ctx, 1, 1, ot.Op{ot.Retain(4), ot.Delete(1)})
			if ack := r.expect(t, ctx, typeAck); ack.Rev != 2 {
				t.Errorf("deletion on a full disk: ack rev %d, want 2", ack.Rev)
			}
			r.sendOp(t, ctx, 2, 2, ot.Op{ot.Retain(4), ot.Insert("!")})
			r.expectError(t, ctx, CodeTooLarge, 4413)

			// Space again: everything works.
			ts.store.setUsage(Usage{FreeBytes: -1})
			getJSONStatus(t, ts.URL+"/healthz", http.StatusOK, nil)
			ts.createDoc(t, "")
		})
	}
}

// TestHealthzStoreFailure: a store that cannot write makes /healthz 503.
func TestHealthzStoreFailure(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.store.mu.Lock()
	ts.store.pingErr = errors.New("injected: no space left on device")
	ts.store.mu.Unlock()
	status, _, body := doHTTP(t, http.MethodGet, ts.URL+"/healthz", "", nil)
	if status != http.StatusServiceUnavailable {
		t.Fatalf("healthz with a failing store: status %d (%s), want 503", status, body)
	}
}

// TestDocHistoryBudget: inserting 1 MB and deleting it again, over and
// over, could fill the disk through one document whose text stays empty.
// Past MaxDocHistory, its inserts are refused while deletions still pass.
func TestDocHistoryBudget(t *testing.T) {
	const size = 20_000
	ts := newTestServer(t, Options{MaxDocHistory: 100_000})
	id, _ := ts.createDoc(t, "")
	ctx := guardCtx(t)
	r := ts.raw(t, id)
	r.hello(t, ctx, uuid.NewString(), 0)
	big := strings.Repeat("y", size)
	rev, seq := int64(0), int64(0)
	for round := 0; ; round++ {
		if round > 10 {
			t.Fatal("100 KB of history took 10 rounds of 20 KB and more")
		}
		seq++
		r.sendOp(t, ctx, rev, seq, ot.Op{ot.Insert(big)})
		m, err := r.next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == typeError {
			if m.Code != CodeTooLarge {
				t.Fatalf("got error %s, want too_large", m.raw)
			}
			if round < 4 {
				t.Errorf("refused after %d rounds of %d bytes, want 4 to fit in 100,000", round, size)
			}
			break
		}
		if m.Type != typeAck {
			t.Fatalf("got %s, want an ack", m.raw)
		}
		rev++
		seq++
		r.sendOp(t, ctx, rev, seq, ot.Op{ot.Delete(size)})
		r.expect(t, ctx, typeAck)
		rev++
	}

	// After the refusal, a new session may still delete: make some text
	// first in a fresh document whose budget has room for one insert.
	id2, _ := ts.createDoc(t, strings.Repeat("z", 90_000))
	r2 := ts.raw(t, id2)
	c2 := uuid.NewString()
	r2.hello(t, ctx, c2, 1)
	r2.sendOp(t, ctx, 1, 1, ot.Op{ot.Retain(90_000), ot.Insert(big)})
	r2.expectError(t, ctx, CodeTooLarge, 4413)
	r3 := ts.raw(t, id2)
	r3.hello(t, ctx, c2, 1)
	r3.sendOp(t, ctx, 1, 1, ot.Op{ot.Delete(90_000)})
	if ack := r3.expect(t, ctx, typeAck); ack.Rev != 2 {
		t.Errorf("deletion past the history budget: ack rev %d, want 2", ack.Rev)
	}
}

// openStream starts GET url with X-Forwarded-For from, and returns the
// response (its body still open, for a stream) and a func that ends it.
func openStream(t *testing.T, url, from string) (*http.Response, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if from != "" {
		req.Header.Set("X-Forwarded-For", from)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stop := func() { cancel(); resp.Body.Close() }
	t.Cleanup(stop)
	if resp.StatusCode == http.StatusOK {
		// The stream's first bytes mean the handler runs, and counts.
		if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	return resp, stop
}

// TestConnCaps: nothing capped connections overall or per address. Long
// SSE and WebSocket sessions count while they last; past the per-address
// cap comes 429, past the global one 503, both rate_limited.
func TestConnCaps(t *testing.T) {
	ts := newTestServer(t, Options{
		MaxConns: 5, MaxConnsPerAddr: 3,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	id, viewID := ts.createDoc(t, "x")
	events := ts.URL + "/api/view/" + viewID + "/events"
	wantRefused := func(resp *http.Response, status int) {
		t.Helper()
		if resp.StatusCode != status {
			t.Fatalf("status %d, want %d", resp.StatusCode, status)
		}
		body, _ := io.ReadAll(resp.Body)
		if code, _ := apiErrorOf(t, body); code != CodeRateLimited {
			t.Errorf("code %q, want %q", code, CodeRateLimited)
		}
	}

	// Address A: a WebSocket and two streams, then a third is one too many.
	hdr := http.Header{"X-Forwarded-For": {"192.0.2.1"}}
	ws, _, err := websocket.Dial(guardCtx(t), ts.wsURL(id), &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	_, stopA1 := openStream(t, events, "192.0.2.1")
	openStream(t, events, "192.0.2.1")
	resp, _ := openStream(t, events, "192.0.2.1")
	wantRefused(resp, http.StatusTooManyRequests)
	if _, resp, err := websocket.Dial(guardCtx(t), ts.wsURL(id), &websocket.DialOptions{HTTPHeader: hdr}); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a fourth session from one address over WebSocket: %v, want 429", err)
	}

	// Address B: two more fill the server; then anyone gets 503.
	openStream(t, events, "192.0.2.2")
	openStream(t, events, "192.0.2.2")
	resp, _ = openStream(t, events, "192.0.2.3")
	wantRefused(resp, http.StatusServiceUnavailable)

	// A session that ends frees its place.
	stopA1()
	deadline := time.Now().Add(guard)
	for {
		resp, _ := openStream(t, events, "192.0.2.3")
		if resp.StatusCode == http.StatusOK {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("an ended stream's place was not freed: still %d", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestForwardedForTrust: X-Forwarded-For is believed only from a trusted
// proxy, read from the right, past other trusted proxies.
func TestForwardedForTrust(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no header", "192.0.2.1:1234", nil, "192.0.2.1"},
		{"untrusted peer's header ignored", "192.0.2.1:1234", []string{"198.51.100.1"}, "192.0.2.1"},
		{"trusted peer", "10.1.2.3:80", []string{"198.51.100.1"}, "198.51.100.1"},
		{"right-most untrusted wins", "10.1.2.3:80", []string{"6.6.6.6, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"several header lines", "10.1.2.3:80", []string{"6.6.6.6", "198.51.100.2"}, "198.51.100.2"},
		{"garbage stops the walk", "10.1.2.3:80", []string{"198.51.100.1, bogus"}, "10.1.2.3"},
		{"all trusted", "10.1.2.3:80", []string{"10.4.4.4"}, "10.4.4.4"},
		{"IPv6 peer by /64", "[2001:db8:1:2:3:4:5:6]:443", nil, "2001:db8:1:2::/64"},
		{"mapped IPv4", "[::ffff:192.0.2.9]:1", nil, "192.0.2.9"},
		{"IPv6 behind a trusted v6 proxy", "[fd00::1]:80", []string{"2001:db8:a:b::1"}, "2001:db8:a:b::/64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{opts: Options{TrustedProxies: trusted}}
			r := &http.Request{RemoteAddr: tc.peer, Header: http.Header{}}
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := s.clientAddr(r); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSecurityHeaders: pages, JSON and /text carried no security headers.
func TestSecurityHeaders(t *testing.T) {
	ts := newTestServer(t, Options{FrameAncestors: "'self' https://wiki.example.com"})
	pages := httptestServer(t, ts.srv.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<!doctype html><p>page</p>")
	})))
	id, _ := ts.createDoc(t, "<script>alert(1)</script>")
	for _, tc := range []struct {
		url     string
		wantCSP []string
	}{
		{pages + "/index.html", []string{"script-src 'self'", "frame-ancestors 'self' https://wiki.example.com", "default-src 'none'"}},
		{ts.URL + "/api/docs/" + id, []string{"default-src 'none'", "frame-ancestors 'none'"}},
		{ts.URL + "/api/docs/" + id + "/text", []string{"default-src 'none'", "sandbox"}},
		{ts.URL + "/api/docs/nope", []string{"default-src 'none'"}},
		{ts.URL + "/healthz", []string{"default-src 'none'"}},
	} {
		_, hdr, _ := doHTTP(t, http.MethodGet, tc.url, "", nil)
		if got := hdr.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q, want nosniff", tc.url, got)
		}
		if got := hdr.Get("Referrer-Policy"); got != "no-referrer" {
			t.Errorf("%s: Referrer-Policy %q, want no-referrer", tc.url, got)
		}
		csp := hdr.Get("Content-Security-Policy")
		for _, want := range tc.wantCSP {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", tc.url, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q allows something unsafe", tc.url, csp)
		}
	}
}

// httptestServer serves h on loopback for the test and returns its URL.
func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogsCarryNoEditID: edit ids appeared in ERROR and debug logs. The
// logs now name a document by a hash of its id, also inside errors.
func TestLogsCarryNoEditID(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts := newTestServer(t, Options{Logger: logger})
	id, viewID := ts.createDoc(t, "hello")
	ctx := guardCtx(t)
	// Debug lines: a load, an upgrade refused, a viewer.
	doHTTP(t, http.MethodGet, ts.URL+"/api/docs/"+id+"/ws", "", nil)
	s := openSSE(t, http.DefaultClient, ts.URL+"/api/view/"+viewID+"/events", nil)
	s.next(t)
	// An error whose text names the document, as the store's do.
	ts.store.setFail(fmt.Errorf("append doc %s: injected failure", id))
	r := ts.raw(t, id)
	r.hello(t, ctx, uuid.NewString(), 1)
	r.sendOp(t, ctx, 1, 1, ot.Op{ot.Retain(5), ot.Insert("!")})
	r.expectError(t, ctx, CodeInternal, 1011)

	got := logs.String()
	if !strings.Contains(got, "injected failure") {
		t.Fatalf("the store failure was not logged:\n%s", got)
	}
	if strings.Contains(got, id) {
		t.Errorf("the logs carry the edit id %s:\n%s", id, got)
	}
	if !strings.Contains(got, logID(id)) {
		t.Errorf("the logs never name the document by its hash %s:\n%s", logID(id), got)
	}
}

// TestRefusedBodyClosesConnection: a request refused at a cap with its
// body unread must not keep its connection while net/http would read
// the rest of the body to reuse it: 2,000 dripping bodies refused 429
// all stayed open so.
func TestRefusedBodyClosesConnection(t *testing.T) {
	ts := newTestServer(t, Options{MaxConnsPerAddr: 1, BodyTimeout: 2 * guard})
	_, viewID := ts.createDoc(t, "x")
	openStream(t, ts.URL+"/api/view/"+viewID+"/events", "") // fills the address's one place
	conn := slowPost(t, strings.TrimPrefix(ts.URL, "http://"), 100_000, 10, 0)
	conn.SetReadDeadline(time.Now().Add(guard))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a create past the address's cap: %v", err)
	}
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("status %d, want 429", resp.StatusCode)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	if err == nil {
		var b [1]byte
		_, err = conn.Read(b[:])
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the refused request's connection stayed open, waiting for its body")
	}
}

// TestTCPCaps: connections that send nothing, or sit idle between
// requests, are not requests in progress; LimitListener bounds them.
func TestTCPCaps(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		testTCPCap(t, Options{MaxTCPConns: 4, MaxTCPConnsPerAddr: 2})
	})
	// A trusted proxy is exempt from the per-address cap, not the total.
	t.Run("total", func(t *testing.T) {
		testTCPCap(t, Options{MaxTCPConns: 2, MaxTCPConnsPerAddr: 1,
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	})
}

// testTCPCap checks that a server whose caps allow two connections from
// the test keeps two and closes the third.
func testTCPCap(t *testing.T, opts Options) {
	srv := New(newMemStore(), opts)
	t.Cleanup(func() { srv.Close(context.Background()) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lln := srv.LimitListener(ln)
	defer lln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := lln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedByServer reports whether the server closed c at once.
	closedByServer := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		var b [1]byte
		_, err := c.Read(b[:])
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
	a1, a2 := dial(), dial()
	if closedByServer(a1) || closedByServer(a2) {
		t.Fatal("connections within the per-address cap were closed")
	}
	if !closedByServer(dial()) {
		t.Fatal("a third connection was kept, over the cap")
	}
	// The server side of a closed connection gives its place back.
	(<-accepted).Close()
	deadline := time.Now().Add(guard)
	for closedByServer(dial()) {
		if time.Now().After(deadline) {
			t.Fatal("a closed connection's place was not given back")
		}
	}
}
