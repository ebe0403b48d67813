package collab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Close codes the protocol table does not list.
const (
	// closeSuperseded closes a connection whose client has opened a newer one.
	closeSuperseded = websocket.StatusNormalClosure
	// closeOverflow closes a connection too slow to take what it is sent;
	// the client reconnects and resumes from its revision.
	closeOverflow = websocket.StatusTryAgainLater
)

// maxFrameMessages and maxFrameBytes bound how many queued messages the
// writer coalesces into one frame (a JSON array).
const (
	maxFrameMessages = 128
	maxFrameBytes    = 256 << 10
)

// conn is one editor's WebSocket connection. The session's goroutine reads
// from it; a writer goroutine drains its send queue. The hub only ever
// calls enqueue, fail and closeWith, which never block.
type conn struct {
	ws     *websocket.Conn
	client string // set from the hello before the hub first sees the conn
	log    *slog.Logger
	// tokenName, from the access token, replaces the hello's name.
	tokenName string
	connMetrics

	send chan []byte
	// closing is closed, once, when the connection is to end with
	// closeCode; the writer flushes what is queued, then closes.
	closing chan struct{}

	// mu orders enqueue against fail and closeWith: nothing is queued
	// once the connection is closing, so an error message is the last
	// thing the client hears before the close.
	mu        sync.Mutex
	closed    bool
	closeCode websocket.StatusCode
	closeMsg  string
	// discard drops what is queued instead of flushing it: a connection
	// closed for being too slow would otherwise stay attached while it
	// slowly takes a full queue.
	discard bool
	// welcome, when set, is a welcome to write from the store before
	// anything queued (catchup.go).
	welcome *welcomeStream
}

// enqueueWelcome queues a welcome whose ops the writer reads from the
// store. It must be the first message queued on the connection: a nil
// message in the queue marks its place.
func (c *conn) enqueueWelcome(w *welcomeStream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.welcome = w
	select {
	case c.send <- nil:
	default:
		c.discard = true
		c.closeLocked(closeOverflow, "too slow to keep up; reconnect")
	}
}

func (c *conn) takeWelcome() *welcomeStream {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.welcome
	c.welcome = nil
	return w
}

// isClosed reports whether the connection is closing: nothing more is
// sent on it, and nothing more from it should be acted on.
func (c *conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// enqueue queues one encoded message. A connection whose queue is full is
// closed rather than allowed to hold up the hub; one that is closing
// takes nothing more.
func (c *conn) enqueue(msg []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	select {
	case c.send <- msg:
	default:
		c.slowEditor()
		c.discard = true
		c.closeLocked(closeOverflow, "too slow to keep up; reconnect")
	}
}

// fail sends an error message, if there is room, and closes the
// connection with the error's close code.
func (c *conn) fail(e *protoError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.protoErrorSent(e.Code)
	select {
	case c.send <- encodeError(e):
	default:
	}
	c.closeLocked(websocket.StatusCode(closeCodes[e.Code]), e.Code)
}

// closeWith closes the connection with a code and a short reason.
func (c *conn) closeWith(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closeLocked(code, reason)
	}
}

func (c *conn) closeLocked(code websocket.StatusCode, reason string) {
	c.closed = true
	c.closeCode, c.closeMsg = code, reason
	close(c.closing)
}

// writeLoop sends queued messages until the connection closes, batching
// those already waiting into one frame. If hubDone closes first, the hub
// stopped without closing this connection (it may have been waiting in
// the hub's queue), and hubGone says why.
func (c *conn) writeLoop(ctx context.Context, timeout time.Duration, hubDone <-chan struct{}, hubGone func() *protoError) {
	var frame []byte
	var batch [][]byte
	write := func() error {
		frame = encodeFrame(frame[:0], batch)
		wctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		acked := c.acking(batch) // metrics.go
		err := c.ws.Write(wctx, websocket.MessageText, frame)
		if err == nil {
			c.wrote(acked, len(frame))
		}
		return err
	}
	for {
		select {
		case msg := <-c.send:
			if msg == nil {
				if w := c.takeWelcome(); w != nil {
					if err := w.write(ctx, c.ws, timeout); err != nil {
						c.log.Debug("catch-up from the store failed", "err", err)
						c.ws.CloseNow()
						return
					}
				}
				continue
			}
			batch = gather(append(batch[:0], msg), c.send)
			if err := write(); err != nil {
				c.ws.CloseNow()
				return
			}
		case <-c.closing:
			// Flush what was queued before the close, the error message
			// last among them, then close with the code. (discard and the
			// close code were set before closing was closed.)
			if c.discard {
				c.ws.Close(c.closeCode, c.closeMsg)
				return
			}
			for batch = gather(batch[:0], c.send); len(batch) > 0; batch = gather(batch[:0], c.send) {
				if err := write(); err != nil {
					c.ws.CloseNow()
					return
				}
			}
			c.ws.Close(c.closeCode, c.closeMsg)
			return
		case <-hubDone:
			hubDone = nil
			c.fail(hubGone())
		case <-ctx.Done():
			c.ws.CloseNow()
			return
		}
	}
}

// gather appends the messages already waiting in ch, within the frame limits.
func gather(batch [][]byte, ch chan []byte) [][]byte {
	size := 0
	for _, m := range batch {
		size += len(m)
	}
	for len(batch) < maxFrameMessages && size < maxFrameBytes {
		select {
		case m := <-ch:
			if m != nil { // a welcome's mark, moot once closing
				batch = append(batch, m)
				size += len(m)
			}
		default:
			return batch
		}
	}
	return batch
}

// encodeFrame writes one message as itself, and several as a JSON array.
func encodeFrame(dst []byte, batch [][]byte) []byte {
	if len(batch) == 1 {
		return append(dst, batch[0]...)
	}
	dst = append(dst, '[')
	for i, m := range batch {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, m...)
	}
	return append(dst, ']')
}

// tokenBucket limits the rate of messages on one connection.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func (b *tokenBucket) allow(now time.Time) bool {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// handleWS runs one editing session: the upgrade, the hello, then every
// message until the connection ends.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	id, ok := docID(r)
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such document")
		return
	}
	if !s.trackSession() {
		writeError(w, http.StatusServiceUnavailable, CodeShuttingDown, errShuttingDown.Error())
		return
	}
	defer s.sessionWG.Done()
	h, err := s.acquire(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	defer s.release(h)

	// The session outlives the server's request timeouts; coder/websocket
	// applies its own per-read and per-write deadlines.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	ws, err := websocket.Accept(&jsonErrorWriter{ResponseWriter: w}, r, &websocket.AcceptOptions{OriginPatterns: s.opts.AllowedOrigins})
	if err != nil {
		s.log.Debug("websocket upgrade refused", "doc", logID(id), "err", err)
		return // Accept has answered the request
	}
	// The limit is enforced below, so that the client hears too_large
	// rather than the library's bare close 1009.
	ws.SetReadLimit(-1)

	c := &conn{
		ws:      ws,
		log:     s.log.With("doc", logID(id), "remote", r.RemoteAddr),
		send:    make(chan []byte, s.opts.SendQueue),
		closing: make(chan struct{}),

		tokenName:   tokenName(r.Context()),
		connMetrics: connMetrics{metrics: s.opts.Metrics},
	}
	defer s.opts.Metrics.editorSession()()
	defer watchToken(r.Context(), c)()
	// The connection's context is not the server's: on shutdown the
	// client must first hear shutting_down, then get close code 1001. An
	// editor hears it from the hub, after the ack of the commit in
	// flight; a connection the hub does not know of (its hello still
	// queued, say) once the hub has stopped, from the writer. The hub
	// cannot unload while this session holds it, so a hub that stops
	// under a session has shut down or failed.
	ctx, cancel := context.WithCancel(context.Background())
	hubGone := func() *protoError {
		if errors.Is(h.goneErr(ctx), ErrNotFound) {
			return errorf(CodeNotFound, "the document was deleted")
		}
		if s.ctx.Err() != nil {
			return errorf(CodeShuttingDown, "the server is going away; reconnect later")
		}
		return errorf(CodeInternal, "internal error; reconnect")
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop(ctx, s.opts.WriteTimeout, h.done, hubGone)
	}()

	joined := s.readLoop(ctx, h, c)
	if joined {
		h.send(context.Background(), leaveReq{c: c})
	}
	select {
	case <-c.closing:
		// Let the writer flush the error and close with its code.
		select {
		case <-writerDone:
		case <-time.After(s.opts.WriteTimeout):
		}
	default:
	}
	cancel()
	<-writerDone
}

// jsonErrorWriter turns the plain-text error that websocket.Accept writes
// for a request it refuses (no upgrade headers, a foreign origin, a wrong
// version) into the API's JSON error body. A successful upgrade hijacks
// the connection underneath it.
type jsonErrorWriter struct {
	http.ResponseWriter
	status int
}

func (w *jsonErrorWriter) WriteHeader(status int) {
	w.status = status
	if status >= 400 {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Del("Content-Length")
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *jsonErrorWriter) Write(b []byte) (int, error) {
	if w.status < 400 {
		return w.ResponseWriter.Write(b)
	}
	code := CodeBadMessage
	if w.status == http.StatusForbidden {
		code = CodeForbidden
	}
	var e apiError
	e.Error.Code, e.Error.Message = code, strings.TrimSpace(string(b))
	if err := json.NewEncoder(w.ResponseWriter).Encode(e); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Unwrap lets websocket.Accept and http.ResponseController reach the
// connection to hijack.
func (w *jsonErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// readLoop reads client messages and hands them to the hub. It returns
// when the connection ends or must be closed, reporting whether the
// client joined the hub.
func (s *Server) readLoop(ctx context.Context, h *hub, c *conn) (joined bool) {
	limiter := tokenBucket{rate: s.opts.RateLimit, burst: float64(s.opts.RateBurst), tokens: float64(s.opts.RateBurst)}
	// The hello deadline is a timer, not the read's context:
	// coder/websocket closes the connection when a read's context ends,
	// and the client would never hear why. Failing the connection makes
	// the writer send the error and close, which ends the read.
	helloTimer := time.AfterFunc(s.opts.HelloTimeout, func() {
		c.fail(errorf(CodeBadMessage, "no hello within %s", s.opts.HelloTimeout))
	})
	defer helloTimer.Stop()
	var buf bytes.Buffer
	for {
		data, perr, err := readMessage(ctx, c.ws, &buf, s.opts.MaxMessageBytes)
		switch {
		case err != nil:
			return joined
		case perr != nil:
			c.fail(perr)
			return joined
		case !limiter.allow(time.Now()):
			c.fail(errorf(CodeRateLimited, "more than %g messages per second (burst %d)", s.opts.RateLimit, s.opts.RateBurst))
			return joined
		}

		msg, perr := decodeClientMessage(data)
		if perr != nil {
			c.fail(perr)
			return joined
		}
		var req any
		switch m := msg.(type) {
		case *hello:
			if joined {
				c.fail(errorf(CodeBadMessage, "hello was already sent on this connection"))
				return joined
			}
			if !helloTimer.Stop() {
				return joined // too late: the connection is failing
			}
			c.client = m.client
			if c.tokenName != "" {
				m.name = c.tokenName
			}
			req = joinReq{c: c, hello: m}
		case *opMessage:
			req = opReq{c: c, m: m, bytes: opBytes(m.op), recv: c.received()}
		case *cursorMessage:
			req = cursorReq{c: c, m: m}
		}
		if !joined && c.client == "" {
			c.fail(errorf(CodeBadMessage, "the first message must be a hello"))
			return joined
		}
		if !h.send(ctx, req) {
			if ctx.Err() == nil {
				c.fail(errorf(CodeShuttingDown, "the document is closing; reconnect later"))
			}
			return joined
		}
		joined = true
	}
}

// readMessage reads one message of at most limit bytes into buf. A
// protocol problem with the message comes back as a *protoError; a
// connection failure as an error.
func readMessage(ctx context.Context, ws *websocket.Conn, buf *bytes.Buffer, limit int64) ([]byte, *protoError, error) {
	typ, r, err := ws.Reader(ctx)
	if err != nil {
		return nil, nil, err
	}
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if n > limit {
		return nil, errorf(CodeTooLarge, "message is larger than %d bytes", limit), nil
	}
	if typ != websocket.MessageText {
		return nil, errorf(CodeBadMessage, "binary messages are not part of the protocol; send JSON text"), nil
	}
	return buf.Bytes(), nil, nil
}
