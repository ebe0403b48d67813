package collab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// tokenBucket limits the rate of messages on one connection.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func (b *tokenBucket) allow(now time.Time) bool { return b.take(now, 1) }

// take takes n tokens, if there are that many.
func (b *tokenBucket) take(now time.Time, n float64) bool {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < n {
		return false
	}
	b.tokens -= n
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
	detached := false // the session goroutine has taken over the cleanup
	defer func() {
		if !detached {
			s.sessionWG.Done()
		}
	}()
	h, err := s.acquire(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	defer func() {
		if !detached {
			s.release(h)
		}
	}()

	// The session outlives the server's request timeouts; coder/websocket
	// applies its own per-read and per-write deadlines.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	joiner := &frameJoiner{} // join.go
	ws, err := websocket.Accept(&jsonErrorWriter{ResponseWriter: w, meter: newFrameMeter(&s.opts, s.ctx.Done()), joiner: joiner}, r, &websocket.AcceptOptions{OriginPatterns: s.opts.AllowedOrigins})
	if err != nil {
		s.log.Debug("websocket upgrade refused", "doc", logID(id), "err", err)
		return // Accept has answered the request
	}
	// The limit is enforced below, so that the client hears too_large
	// rather than the library's bare close 1009.
	ws.SetReadLimit(-1)

	// The connection is ours now: the session runs on a goroutine of its
	// own and this handler returns. Its goroutine's stack, grown deep in
	// net/http, the middleware and the handshake, would otherwise stay
	// with every idle session (8 KB of the 32 an idle editor may cost).
	// The session keeps this request's place under the connection caps.
	// The request's context ends with this handler; the session's ends
	// when its access token (if any) expires.
	tokenCtx, endToken := s.detachToken(r.Context())
	detached = true
	releaseSlot := takeConnSlot(r)
	go s.runSession(h, ws, joiner, tokenName(r.Context()), tokenCtx, func() {
		endToken()
		releaseSlot()
	})
}

// runSession runs an accepted editing session: the hello, then every
// message until the connection ends. Close waits for it (sessionWG);
// done releases its place under the connection caps. name is the access
// token's display name, if any; tokenCtx ends with cause errTokenExpired
// when the token expires.
func (s *Server) runSession(h *hub, ws *websocket.Conn, joiner *frameJoiner, name string, tokenCtx context.Context, done func()) {
	defer s.sessionWG.Done()
	defer s.release(h)
	defer done()

	// The connection's context is not the server's: on shutdown the
	// client must first hear shutting_down, then get close code 1001. An
	// editor hears it from the hub, after the ack of the commit in
	// flight; a connection whose hello the hub never handled, from
	// readLoop. The hub cannot unload while this session holds it, so a
	// hub that stops under a session has shut down or failed.
	ctx, cancel := context.WithCancel(context.Background())
	c := newConn(ctx, ws, &s.opts)
	c.joiner = joiner
	c.tokenName = name
	defer s.opts.Metrics.editorSession()()
	defer watchToken(tokenCtx, c)()
	joined := s.readLoop(ctx, h, c)
	if joined {
		h.send(context.Background(), leaveReq{c: c})
	}
	c.finish(cancel)
}

// hubGone is the error for a session whose hub stopped under it.
func (s *Server) hubGone(h *hub) *protoError {
	if errors.Is(h.goneErr(context.Background()), ErrNotFound) {
		return errorf(CodeNotFound, "the document was deleted")
	}
	if s.ctx.Err() != nil {
		return errorf(CodeShuttingDown, "the server is going away; reconnect later")
	}
	return errorf(CodeInternal, "internal error; reconnect")
}

// jsonErrorWriter turns the plain-text error that websocket.Accept writes
// for a request it refuses (no upgrade headers, a foreign origin, a wrong
// version) into the API's JSON error body. A successful upgrade hijacks
// the connection underneath it.
type jsonErrorWriter struct {
	http.ResponseWriter
	status int
	// meter, if set, is what the WebSocket reads the client through
	// (frames.go): Hijack puts it in.
	meter *frameMeter
	// joiner, if set, is what the WebSocket writes the client through
	// (join.go).
	joiner *frameJoiner
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

// WriteString, Flush and ReadFrom pass on the wrapped writer's own, as
// every wrapper must (see countingWriter), an error body still going
// through Write.
func (w *jsonErrorWriter) WriteString(s string) (int, error) {
	if w.status < 400 {
		return io.WriteString(w.ResponseWriter, s)
	}
	return w.Write([]byte(s))
}

func (w *jsonErrorWriter) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

func (w *jsonErrorWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status < 400 {
		return io.Copy(w.ResponseWriter, r)
	}
	return io.Copy(struct{ io.Writer }{w}, r) // through Write, not back here
}

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
	// Until the hub has handled the hello, the hub does not know of this
	// connection: on shutdown, it is told here.
	stopShutdown := context.AfterFunc(s.ctx, func() { c.fail(s.hubGone(h)) })
	defer stopShutdown()
	for {
		buf, perr, err := s.readMessage(c.ws)
		switch {
		case errors.Is(err, errSlowMessage):
			c.closeWith(closeSlowMessage, fmt.Sprintf("message unfinished after %s; reconnect", s.opts.MessageTimeout))
			return joined
		case err != nil:
			return joined
		case perr != nil:
			c.fail(perr)
			return joined
		case !limiter.allow(time.Now()):
			c.fail(errorf(CodeRateLimited, "more than %g messages per second (burst %d)", s.opts.RateLimit, s.opts.RateBurst))
			return joined
		}

		msg, perr := decodeClientMessage(buf.Bytes()) // keeps nothing of it
		s.putReadBuffer(buf)
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
		charged, perr := h.charge(req) // budget.go
		if perr != nil {
			c.fail(perr)
			return joined
		}
		if !h.send(ctx, req) {
			h.uncharge(charged)
			if ctx.Err() == nil {
				c.fail(errorf(CodeShuttingDown, "the document is closing; reconnect later"))
			}
			return joined
		}
		if !joined {
			// Until the hub has handled the hello, nobody would tell
			// the client if the hub stopped with it still queued.
			select {
			case <-c.admitted:
				stopShutdown()
			case <-h.done:
				c.fail(s.hubGone(h))
				return true
			case <-ctx.Done():
				return true
			}
		}
		joined = true
	}
}

// readMessage reads one message of at most MaxMessageBytes into a
// buffer, which the caller hands back with putReadBuffer. A protocol
// problem with the message, or a client past its frame budget
// (frames.go), comes back as a *protoError; a connection failure as an
// error, errSlowMessage for a message past MessageTimeout.
//
// The buffer is taken only once a message has begun to arrive, so an idle
// session holds none: they are shared, through a pool, by the sessions
// that are reading.
//
// It reads without a context: the session's is cancelled only after the
// read loop has returned, and whatever ends a session early (fail, the
// hello timer, shutdown) closes the connection, which ends the read.
// coder/websocket would register a callback on a cancellable context for
// every message.
func (s *Server) readMessage(ws *websocket.Conn) (*bytes.Buffer, *protoError, error) {
	limit := s.opts.MaxMessageBytes
	typ, r, err := ws.Reader(context.Background())
	if err != nil {
		if perr := meterError(err); perr != nil {
			return nil, perr, nil
		}
		return nil, nil, err
	}
	buf, _ := s.readBuffers.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	var perr *protoError
	switch {
	case err != nil:
		if perr = meterError(err); perr != nil {
			err = nil
		}
	case n > limit:
		perr = errorf(CodeTooLarge, "message is larger than %d bytes", limit)
	case typ != websocket.MessageText:
		perr = errorf(CodeBadMessage, "binary messages are not part of the protocol; send JSON text")
	default:
		return buf, nil, nil
	}
	s.putReadBuffer(buf)
	return nil, perr, err
}

// meterError returns the protocol error that a read failed with, if its
// frameMeter stopped it (frames.go): the connection is failed with it.
func meterError(err error) *protoError {
	var perr *protoError
	if errors.As(err, &perr) {
		return perr
	}
	return nil
}

// maxPooledReadBuffer is the largest read buffer kept for reuse: one grown
// for a large message is let go, so that the pool does not hold a
// megabyte per session that once sent one.
const maxPooledReadBuffer = 64 << 10

func (s *Server) putReadBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledReadBuffer {
		s.readBuffers.Put(buf)
	}
}
