package collab

// This file bounds what an editing session's client may send below the
// level of messages: WebSocket frames, and the time a message takes.
//
// coder/websocket reads frames inside its message reader, and answers
// pings itself: a message that never ends (a text frame without FIN,
// then empty continuation frames without end) reaches neither the
// per-message rate limit nor the size limit, and neither does a flood of
// pings, each of which costs the server a pong. The library offers no hook
// per frame, so a frameMeter sits under it, on the hijacked connection,
// and reads the frame headers as the bytes go by.

import (
	"encoding/binary"
	"errors"
	"math"
	"net"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// closeSlowMessage closes a connection whose client took longer than
// MessageTimeout to send one message: like a reader too slow to take what
// it is sent (closeOverflow), the client reconnects and resumes.
const closeSlowMessage = websocket.StatusTryAgainLater

// errSlowMessage is what a frameMeter's Read returns once a message has
// taken longer than MessageTimeout to arrive.
var errSlowMessage = errors.New("message unfinished at its deadline")

// maxFrameHeader is the longest WebSocket frame header: two bytes, an
// 8-byte extended length and a 4-byte mask key (RFC 6455, 5.2).
const maxFrameHeader = 14

// frameMeter is the hijacked connection of an editing session, seen by
// coder/websocket. Its Read counts the frames the client sends, pings
// (each as pingFrames) and continuation frames included, against a token
// bucket of FrameRate frames per second in bursts of FrameBurst; and it
// gives each message MessageTimeout to arrive whole, with a read deadline
// set only while a message is unfinished at the end of a read (so the
// usual message, which arrives in one, costs no deadline). Past either,
// Read fails from then on: with a *protoError (rate_limited), or with
// errSlowMessage, which readMessage and readLoop turn into the session's
// close. The read in which the budget runs out is dropped whole, so
// coder/websocket handles no frame past it.
//
// It is not safe for concurrent use, except for Close: coder/websocket
// reads under a lock of its own, and the handler attaches the meter before
// the session starts.
type frameMeter struct {
	net.Conn
	bucket  tokenBucket
	timeout time.Duration   // MessageTimeout
	stop    <-chan struct{} // closed when the server is; cuts a linger short
	err     error           // once set, what every Read returns
	// cut is set with err, for Close, which may run on another goroutine.
	cut atomic.Bool

	hdr  [maxFrameHeader]byte
	have int   // bytes of the current frame's header in hdr
	skip int64 // bytes of the current frame's payload still to come
	// ends is set while the current frame is a message's last.
	ends bool
	// inMessage is set from a message's first byte until the end of its
	// last frame's payload; armed once its deadline is set.
	inMessage, armed bool
	deadlineSet      bool // the connection has a read deadline
}

// newFrameMeter returns a meter for o's frame budget, which is never
// less than its message budget: every message is at least a frame, and a
// server allowed more messages (for a load test, say) would otherwise be
// cut short by frames.
func newFrameMeter(o *Options, stop <-chan struct{}) *frameMeter {
	rate, burst := max(o.FrameRate, o.RateLimit), float64(max(o.FrameBurst, o.RateBurst))
	return &frameMeter{
		bucket:  tokenBucket{rate: rate, burst: burst, tokens: burst},
		timeout: o.MessageTimeout,
		stop:    stop,
	}
}

// cutLinger is how long a connection the meter has cut stays open, unread,
// after coder/websocket closes it: net/http's wait before it closes a
// connection whose client may still be sending (rstAvoidanceDelay).
const cutLinger = 500 * time.Millisecond

func (m *frameMeter) fail(err error) error {
	m.err = err
	m.cut.Store(true)
	return err
}

// Close closes the connection; one the meter has cut only after
// cutLinger. Its client is most likely still sending, and closing a
// socket with unread bytes resets the connection: the reset can discard
// the error message and the close frame just written, on either side,
// before the client reads them. Left unread meanwhile, the client is held
// back by TCP at no cost to the server. coder/websocket calls Close once,
// from whichever goroutine closes the session; a server that closes cuts
// the wait short.
func (m *frameMeter) Close() error {
	if m.cut.Load() {
		t := time.NewTimer(cutLinger)
		select {
		case <-t.C:
		case <-m.stop:
			t.Stop()
		}
	}
	return m.Conn.Close()
}

// attach makes the meter read from nc. prefix is what was read from nc
// past the upgrade request before (net/http's buffered bytes), which
// coder/websocket reads first: the meter counts it now, and reports
// false if the client is past its budget already (the prefix is then
// to be dropped, as a Read would drop it).
func (m *frameMeter) attach(nc net.Conn, prefix []byte) bool {
	m.Conn = nc
	now := time.Now()
	if err := m.scan(prefix, now); err != nil {
		m.fail(err)
		return false
	}
	m.setDeadline(now)
	return true
}

func (m *frameMeter) Read(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	n, err := m.Conn.Read(p)
	if err != nil && m.deadlineSet && isTimeout(err) {
		return 0, m.fail(errSlowMessage)
	}
	if n == 0 {
		return n, err
	}
	now := time.Now()
	if serr := m.scan(p[:n], now); serr != nil {
		return 0, m.fail(serr)
	}
	m.setDeadline(now)
	return n, err
}

// scan follows the frames in b, the next bytes from the client. It
// returns the error to fail with once the client is past its budget.
func (m *frameMeter) scan(b []byte, now time.Time) error {
	for len(b) > 0 {
		if m.skip > 0 {
			k := min(m.skip, int64(len(b)))
			m.skip -= k
			b = b[k:]
			if m.skip == 0 && m.ends {
				m.inMessage = false
			}
			continue
		}
		m.hdr[m.have] = b[0]
		m.have++
		b = b[1:]
		if op := m.hdr[0] & 0x0f; m.have == 1 && (op == frameText || op == frameBinary) {
			// A message is timed from its first byte.
			m.inMessage, m.armed = true, false
		}
		if m.have < frameHeaderLen(m.hdr[:m.have]) {
			continue
		}
		cost := m.frame(m.hdr[:m.have])
		m.have = 0
		if !m.bucket.take(now, cost) {
			return errorf(CodeRateLimited, "more than %g WebSocket frames per second (bursts of %g) on this connection", m.bucket.rate, m.bucket.burst)
		}
	}
	return nil
}

// Opcodes of WebSocket frames (RFC 6455, 5.2): a message begins with a
// text or binary frame; from close on, they are control frames.
const (
	frameText   = 1
	frameBinary = 2
	frameClose  = 8
	framePing   = 9
)

// pingFrames is what a ping costs of the frame budget: coder/websocket
// answers each with a pong, a write of its own, which costs the server
// some twenty times what reading an empty frame does. Without it, a
// client reconnecting to flood pings would make the server write a
// burst's worth of pongs per connection.
const pingFrames = 16

// frame takes in a complete frame header, and returns its cost in frames.
func (m *frameMeter) frame(h []byte) float64 {
	fin, op := h[0]&0x80 != 0, h[0]&0x0f
	m.ends = fin && op < frameClose
	m.skip = framePayloadLen(h)
	if m.skip == 0 && m.ends {
		m.inMessage = false
	}
	if op == framePing {
		return min(pingFrames, m.bucket.burst)
	}
	return 1
}

// setDeadline gives a message first found unfinished at the end of a
// read MessageTimeout from then to arrive, and lifts the deadline once it
// has.
func (m *frameMeter) setDeadline(now time.Time) {
	switch {
	case m.inMessage && !m.armed:
		m.armed, m.deadlineSet = true, true
		m.Conn.SetReadDeadline(now.Add(m.timeout))
	case !m.inMessage && m.deadlineSet:
		m.deadlineSet = false
		m.Conn.SetReadDeadline(time.Time{})
	}
}

// frameHeaderLen is the length of the frame header that h begins: at
// least two bytes, then as many as its second byte says.
func frameHeaderLen(h []byte) int {
	if len(h) < 2 {
		return 2
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 { // masked, as every client frame must be
		n += 4
	}
	return n
}

// framePayloadLen is the payload length of the complete header h. A
// length past int64 (which coder/websocket refuses) reads as the largest.
func framePayloadLen(h []byte) int64 {
	switch n := h[1] & 0x7f; n {
	case 126:
		return int64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		return int64(min(binary.BigEndian.Uint64(h[2:]), math.MaxInt64))
	default:
		return int64(n)
	}
}
