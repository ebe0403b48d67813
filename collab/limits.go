package collab

// This file holds what bounds anonymous clients before any handler runs:
// who a client is (its address, trusting X-Forwarded-For only from the
// configured proxies), how many requests it may have in progress, how
// fast it may create documents, and how long and how large its request
// bodies may be.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Protect wraps next with the server's protections for anonymous
// clients: security headers (headers.go), the caps on requests in
// progress overall and per client address, and the size and time limits
// of request bodies. The server's own API is always behind it; cmd wraps
// the frontend's files with ProtectPages. Requests are counted once
// however often Protect is applied along the way.
//
// Requests are counted in one of three pools, so that a pool filled by
// one kind of request never refuses another: the API's (MaxConns, which
// long-lived WebSocket and SSE sessions fill), /healthz's
// (MaxHealthConns), and the static pages' (MaxPageConns, see
// ProtectPages). A load balancer's health check and a browser fetching
// the editor still get through while every editor's place is taken.
func (s *Server) Protect(next http.Handler) http.Handler {
	return s.protect(next, nil)
}

// ProtectPages is Protect for the frontend's static files: the same
// headers and body limits, counted under MaxPageConns and
// MaxPageConnsPerAddr instead of the API's caps.
func (s *Server) ProtectPages(next http.Handler) http.Handler {
	return s.protect(next, s.pageConns)
}

// protect is Protect counting under pool, or for a nil pool under the
// one poolFor picks.
func (s *Server) protect(next http.Handler, pool *connLimiter) http.Handler {
	return s.securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(protectedKey{}) != nil {
			next.ServeHTTP(w, r)
			return
		}
		// The checks are a function of their own, so that their frame is
		// not under every long-lived stream's (an idle SSE viewer's stack
		// must stay small enough for the GC to shrink it).
		r, slot := s.admit(w, r, pool)
		if slot == nil {
			return
		}
		defer slot.done()
		next.ServeHTTP(w, r)
	}))
}

// poolFor returns the caps an API request counts under: /healthz has its
// own, which nothing long-lived can fill. The path is compared exactly,
// as the route "GET /healthz" matches it; any other spelling goes to the
// API's caps, whatever the mux makes of it.
func (s *Server) poolFor(r *http.Request) *connLimiter {
	if r.URL.Path == "/healthz" {
		return s.healthConns
	}
	return s.conns
}

// admit checks the Host, applies the body limits and takes a place under
// the connection caps of pool (nil: poolFor's); it answers a request that
// gets none and returns a nil slot.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, pool *connLimiter) (*http.Request, *connSlot) {
	if !s.hostAllowed(r) { // hosts.go
		refuseHost(w, r)
		return r, nil
	}
	if hasBody(r) {
		// The deadline cuts a body that stops short or drips, even
		// one that net/http reads on its own after a handler left it
		// unread; the WebSocket and SSE handlers, which read no
		// body, clear it.
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.opts.BodyTimeout))
		r.Body = &protectedBody{ReadCloser: http.MaxBytesReader(w, r.Body, s.maxCreateBody()), raw: r.Body, gate: s.lingering}
	}
	if pool == nil {
		pool = s.poolFor(r)
	}
	addr := s.clientAddr(r)
	release, status := pool.acquire(addr)
	if status != 0 {
		refuse(w, r, status, CodeRateLimited, pool.capMessage(status))
		return r, nil
	}
	slot := &connSlot{release: release}
	return r.WithContext(context.WithValue(context.WithValue(r.Context(), protectedKey{}, addr), connSlotKey{}, slot)), slot
}

func hasBody(r *http.Request) bool { return r.Body != nil && r.Body != http.NoBody }

// refuse answers a request without using its body, and closes the
// connection after the answer: otherwise net/http reads up to 256 KiB of
// the body after the handler, to reuse the connection, and a client that
// drips its body would keep the refused request's connection (until
// BodyTimeout) after all.
//
// Closing a connection whose client is still sending makes the kernel
// reset it, and the reset throws away the answer the client has not read
// yet: most clients, and a browser uploading a file, would report a
// broken connection instead of the 413 or 429. So, as nginx's lingering
// close does, the rest of the body is read and discarded for a while
// (lingerTime, lingerBytes, at most maxLingering connections at once;
// see lingerGate) before the connection closes.
func refuse(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	if !hasBody(r) {
		writeError(w, status, code, message)
		return
	}
	// Over HTTP/2 the stream is reset instead, and Connection: close
	// would end every other stream of the connection too.
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	writeError(w, status, code, message)
	linger(w, r)
}

// Lingering bounds: how long and how much of a refused body is read, and
// how many connections may be doing so at once. They are far below what
// any client can make the server read anyway (BodyTimeout, the create
// limit), and what is read goes nowhere.
const (
	lingerTime   = 10 * time.Second
	lingerBytes  = 64 << 20
	maxLingering = 64
)

// protectedBody is a request body behind Protect's limit; it keeps the
// body under the limit, for linger to drain, and the server's lingerGate.
type protectedBody struct {
	io.ReadCloser // the limited body handlers read
	raw           io.ReadCloser
	gate          *lingerGate
}

// linger drains a refused request's body for a bounded time, so that its
// client reads the answer before the connection closes; then it closes
// the connection. Where it may not (HTTP/2, a client waiting for 100
// Continue, who sends nothing, or too many lingering already) it cuts
// the connection at once.
func linger(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	pb, ok := r.Body.(*protectedBody)
	if !ok || r.ProtoMajor != 1 || r.Header.Get("Expect") != "" || !pb.gate.enter() {
		rc.SetReadDeadline(time.Now())
		return
	}
	defer pb.gate.leave()
	rc.EnableFullDuplex() // the body is read after the answer is written
	if rc.Flush() == nil && rc.SetReadDeadline(time.Now().Add(pb.gate.time)) == nil {
		io.Copy(io.Discard, io.LimitReader(pb.raw, pb.gate.bytes))
	}
	rc.SetReadDeadline(time.Now())
}

// lingerGate holds the lingering bounds (lingerTime and the others, or a
// test's) and counts the connections lingering at once. It is safe for
// concurrent use.
type lingerGate struct {
	time  time.Duration
	bytes int64
	max   int

	mu sync.Mutex
	n  int
}

func (g *lingerGate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n >= g.max {
		return false
	}
	g.n++
	return true
}

func (g *lingerGate) leave() {
	g.mu.Lock()
	g.n--
	g.mu.Unlock()
}

// capMessage says which of l's caps a request was refused at.
func (l *connLimiter) capMessage(status int) string {
	if status == http.StatusServiceUnavailable {
		return fmt.Sprintf("the server has %d %s in progress, its limit; try again later", l.max, l.what)
	}
	return fmt.Sprintf("this address has %d %s in progress, its limit; try again later", l.perAddr, l.what)
}

// connSlot is a request's place under the connection caps. A handler
// whose session outlives it (a hijacked WebSocket, run on a goroutine of
// its own) takes it over with takeConnSlot and releases it when the
// session ends, so the session still counts.
type connSlot struct {
	release func()
	taken   bool // set by the handler's goroutine only
}

type connSlotKey struct{}

func (c *connSlot) done() {
	if !c.taken {
		c.release()
	}
}

// takeConnSlot hands the request's place under the caps to the caller,
// who must call the returned func once, when the session ends.
func takeConnSlot(r *http.Request) func() {
	c, ok := r.Context().Value(connSlotKey{}).(*connSlot)
	if !ok {
		return func() {}
	}
	c.taken = true
	return c.release
}

// protectedKey marks a request's context once Protect has counted it and
// carries the client address (a string, see addrKey).
type protectedKey struct{}

// requestAddr returns the client address Protect found for r, or finds it.
func (s *Server) requestAddr(r *http.Request) string {
	if a, ok := r.Context().Value(protectedKey{}).(string); ok {
		return a
	}
	return s.clientAddr(r)
}

// clientAddr returns the key under which r's client is counted: its IP
// address, or for IPv6 its /64, since one host is usually given a whole
// /64 and could otherwise use a fresh address per request. The peer is
// the client unless it is a trusted proxy; then X-Forwarded-For is read
// from the right, skipping trusted proxies, and the first other address
// is the client's. A malformed entry stops the walk at the last good one.
func (s *Server) clientAddr(r *http.Request) string {
	peer := parseIP(r.RemoteAddr)
	if !peer.IsValid() {
		return r.RemoteAddr
	}
	client := peer
	if s.trusted(peer) {
		hops := forwardedFor(r.Header)
		for i := len(hops) - 1; i >= 0; i-- {
			a := parseIP(hops[i])
			if !a.IsValid() {
				break
			}
			client = a
			if !s.trusted(a) {
				break
			}
		}
	}
	return addrKey(client)
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedFor returns the X-Forwarded-For entries, every header line in
// order.
func forwardedFor(h http.Header) []string {
	var out []string
	for _, line := range h.Values("X-Forwarded-For") {
		for _, f := range strings.Split(line, ",") {
			out = append(out, strings.TrimSpace(f))
		}
	}
	return out
}

// parseIP reads "ip", "ip:port" or "[ip]:port", unmapping IPv4-in-IPv6.
func parseIP(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}
	}
	return a.WithZone("").Unmap()
}

func addrKey(a netip.Addr) string {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// connLimiter counts requests in progress overall and per client
// address. It is safe for concurrent use. Its map holds only addresses
// with a request in progress, so MaxConns bounds it too.
type connLimiter struct {
	max, perAddr int
	what         string // what it counts, for messages: "requests"

	mu     sync.Mutex
	total  int
	byAddr map[string]int
}

func newConnLimiter(what string, max, perAddr int) *connLimiter {
	return &connLimiter{what: what, max: max, perAddr: perAddr, byAddr: make(map[string]int)}
}

// acquire counts one request from addr. It returns the function that
// uncounts it, or the status to refuse it with: 503 when the server is
// at its cap, 429 when the address is.
func (l *connLimiter) acquire(addr string) (release func(), status int) {
	return l.take(addr, true)
}

// acquireTCP is acquire for a connection; the empty address is bounded by
// the total alone.
func (l *connLimiter) acquireTCP(addr string) (release func(), status int) {
	return l.take(addr, addr != "")
}

func (l *connLimiter) take(addr string, perAddr bool) (release func(), status int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max {
		return nil, http.StatusServiceUnavailable
	}
	if perAddr && l.byAddr[addr] >= l.perAddr {
		return nil, http.StatusTooManyRequests
	}
	l.total++
	l.byAddr[addr]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if l.byAddr[addr]--; l.byAddr[addr] <= 0 {
				delete(l.byAddr, addr)
			}
		})
	}, 0
}

// addrBuckets is one token bucket per client address, for document
// creation. It is safe for concurrent use. It remembers at most max
// addresses: when full, it first forgets the buckets that have refilled
// (forgetting them changes nothing), then, if none has, an arbitrary
// tenth, so that a flood of fresh addresses costs a bounded map.
type addrBuckets struct {
	rate, burst float64
	max         int

	mu sync.Mutex
	m  map[string]*tokenBucket
}

func newAddrBuckets(rate float64, burst, max int) *addrBuckets {
	return &addrBuckets{rate: rate, burst: float64(burst), max: max, m: make(map[string]*tokenBucket)}
}

func (b *addrBuckets) allow(addr string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	tb := b.m[addr]
	if tb == nil {
		if len(b.m) >= b.max {
			b.evict(now)
		}
		tb = &tokenBucket{rate: b.rate, burst: b.burst, tokens: b.burst}
		b.m[addr] = tb
	}
	return tb.allow(now)
}

func (b *addrBuckets) evict(now time.Time) {
	for k, tb := range b.m {
		if tb.tokens+now.Sub(tb.last).Seconds()*tb.rate >= tb.burst {
			delete(b.m, k)
		}
	}
	for k := range b.m {
		if len(b.m) < b.max-b.max/10 {
			break
		}
		delete(b.m, k)
	}
}

// byteBudget bounds the bytes of request bodies held at once. It is safe
// for concurrent use.
type byteBudget struct {
	max int64

	mu   sync.Mutex
	used int64
}

// take reserves n bytes, or reports false without waiting: a client
// refused now retries, while one that waited would hold its connection.
func (b *byteBudget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

func (b *byteBudget) put(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// maxCreateBody is the largest body of POST /api/docs: a document of
// MaxDocChars code points takes at most 4 bytes each, and JSON escaping
// at most 6 bytes per UTF-16 unit.
func (s *Server) maxCreateBody() int64 {
	return int64(s.opts.MaxDocChars)*12 + 1024
}

// readCreateBody reads the body of a create within the server's budget of
// body bytes in flight and Protect's deadline, which it then lifts, so
// that the rest of the request is not cut. It answers the request itself
// when it reports false.
func (s *Server) readCreateBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	limit := s.maxCreateBody()
	// A body of unknown length may be as large as the limit.
	reserve := limit
	if r.ContentLength >= 0 {
		reserve = min(r.ContentLength, limit+1)
	}
	if r.ContentLength > limit {
		refuse(w, r, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("body is larger than %d bytes", limit))
		return nil, false
	}
	if !s.bodies.take(reserve) {
		w.Header().Set("Retry-After", "1")
		refuse(w, r, http.StatusServiceUnavailable, CodeRateLimited, "the server is reading too many request bodies; try again later")
		return nil, false
	}
	defer s.bodies.put(reserve)
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(io.LimitReader(http.MaxBytesReader(w, r.Body, limit), reserve+1))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig) || int64(buf.Len()) > limit:
		refuse(w, r, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("body is larger than %d bytes", limit))
		return nil, false
	case isTimeout(err):
		// Too slow: the connection is cut, nobody reads an answer.
		panic(http.ErrAbortHandler)
	case err != nil:
		writeError(w, http.StatusBadRequest, CodeBadMessage, "reading body: "+err.Error())
		return nil, false
	}
	http.NewResponseController(w).SetReadDeadline(time.Time{})
	return buf.Bytes(), true
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
