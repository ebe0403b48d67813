package collab

// Tests of the bounds on WebSocket frames (frames.go), driven frame by
// frame over a raw TCP connection: the Go WebSocket libraries never send
// an empty continuation frame or a flood of pings.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// WebSocket opcodes (RFC 6455, 5.2).
const (
	wsCont  = 0
	wsText  = 1
	wsClose = 8
	wsPing  = 9
	wsPong  = 10
)

// clientFrame encodes one client frame, masked as RFC 6455 requires.
func clientFrame(op byte, fin bool, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n < 1<<16:
		out = append(out, 0x80|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	key := [4]byte{0x1f, 0x2e, 0x3d, 0x4c}
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i%4])
	}
	return out
}

// frameConn is an editing session driven frame by frame. One goroutine
// may write while another reads.
type frameConn struct {
	nc net.Conn
	br *bufio.Reader
}

// dialFrames opens a WebSocket to document id by hand. Every read and
// write on it fails after guard.
func (ts *testServer) dialFrames(t *testing.T, id string) *frameConn {
	t.Helper()
	return ts.dialFramesEarly(t, id, nil)
}

// dialFramesEarly is dialFrames sending early, frames, right after the
// upgrade request, without waiting for the answer.
func (ts *testServer) dialFramesEarly(t *testing.T, id string, early []byte) *frameConn {
	t.Helper()
	host := strings.TrimPrefix(ts.URL, "http://")
	nc, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(guard))
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/docs/"+id+"/ws", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Version", "13")
	var b bytes.Buffer
	req.Write(&b)
	b.Write(early)
	if _, err := nc.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: got status %d, want 101", resp.StatusCode)
	}
	return &frameConn{nc: nc, br: br}
}

func (f *frameConn) write(op byte, fin bool, payload string) error {
	_, err := f.nc.Write(clientFrame(op, fin, []byte(payload)))
	return err
}

// readFrame reads one server frame, which is never masked.
func (f *frameConn) readFrame() (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(f.br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		_, err = io.ReadFull(f.br, e[:])
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		_, err = io.ReadFull(f.br, e[:])
		n = binary.BigEndian.Uint64(e[:])
	}
	if err != nil {
		return 0, nil, err
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(f.br, payload)
	return h[0] & 0x0f, payload, err
}

// hello says hello and waits for the welcome; it returns the revision.
func (f *frameConn) hello(t *testing.T) int64 {
	t.Helper()
	h := fmt.Sprintf(`{"type":"hello","client":%q,"name":"frames"}`, uuid.NewString())
	if err := f.write(wsText, true, h); err != nil {
		t.Fatalf("send hello: %v", err)
	}
	for {
		op, p, err := f.readFrame()
		if err != nil {
			t.Fatalf("waiting for the welcome: %v", err)
		}
		var m wireMsg
		if op == wsText && json.Unmarshal(p, &m) == nil && m.Type == typeWelcome {
			return m.Rev
		}
	}
}

// closed is how a session ended, as the client saw it.
type closed struct {
	texts  []string // the messages that came, as they came
	pongs  int
	code   int // the close frame's code; -1 when none came
	reason string
}

// untilClose reads until the server's close frame, or until the
// connection fails.
func (f *frameConn) untilClose() (closed, error) {
	c := closed{code: -1}
	for {
		op, p, err := f.readFrame()
		if err != nil {
			return c, err
		}
		switch op {
		case wsText:
			c.texts = append(c.texts, string(p))
		case wsPong:
			c.pongs++
		case wsClose:
			if len(p) >= 2 {
				c.code, c.reason = int(binary.BigEndian.Uint16(p)), string(p[2:])
			}
			return c, nil
		}
	}
}

// flood writes frames, pattern after pattern, until the connection
// fails or n patterns have gone; it returns how many went.
func (f *frameConn) flood(pattern []byte, n int) (int, error) {
	const perWrite = 64
	chunk := bytes.Repeat(pattern, perWrite)
	for sent := 0; sent < n; sent += perWrite {
		if _, err := f.nc.Write(chunk); err != nil {
			return sent, err
		}
	}
	return n, nil
}

// frameBudget is a server's Options with a budget of burst frames. The
// bucket refills by one frame per thousand seconds: no test waits that
// long, so none depends on how fast it runs. The message budget, which
// the frame budget is never less than, is one message, the hello.
func frameBudget(burst int) Options {
	return Options{FrameRate: 0.001, FrameBurst: burst, RateLimit: 0.001, RateBurst: 1}
}

// TestFrameFlood: frames that make no message, or a message that never
// ends, count against the connection's frame budget as much as messages
// do; past it the client hears rate_limited and the connection closes
// with 4429. Before frames were counted, a text frame without FIN followed
// by empty continuation frames went on for as long as the client liked
// (167 million frames in 10 s, at 153% CPU), and so did pings, each
// answered. The pings the flood carries show how many frames the server
// handled: no more than the burst, whatever the flood.
func TestFrameFlood(t *testing.T) {
	const burst = 64
	empty := string(clientFrame(wsCont, false, nil))
	ping := string(clientFrame(wsPing, true, nil))
	for _, tc := range []struct {
		name    string
		start   string // sent once before the flood
		pattern string // sent until the server closes
		perPing int    // frames the pattern costs, per ping
	}{
		{"continuation", string(clientFrame(wsText, false, []byte(`{"type":"op",`))), strings.Repeat(empty, 9) + ping, 9 + pingFrames},
		{"ping", "", ping, pingFrames},
		{"pong", "", string(clientFrame(wsPong, true, nil)), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, frameBudget(burst))
			id, _ := ts.createDoc(t, "x")
			f := ts.dialFrames(t, id)
			f.hello(t)
			if tc.start != "" {
				if _, err := f.nc.Write([]byte(tc.start)); err != nil {
					t.Fatal(err)
				}
			}
			// A flood far past the burst, of 64 MiB, more than the
			// socket buffers take: the server must close long before it
			// has all gone.
			patterns := (64 << 20) / len(tc.pattern)
			sent := make(chan int, 1)
			go func() {
				n, _ := f.flood([]byte(tc.pattern), patterns)
				sent <- n
			}()
			c, err := f.untilClose()
			if err != nil {
				t.Fatalf("got %v after %d messages and %d pongs, want a close 4429", err, len(c.texts), c.pongs)
			}
			f.nc.Close() // the flood stops
			if n := <-sent; n >= patterns {
				t.Errorf("the server took all %d patterns of the flood before it closed", patterns)
			}
			if c.code != closeCodes[CodeRateLimited] {
				t.Errorf("got close %d %q, want %d", c.code, c.reason, closeCodes[CodeRateLimited])
			}
			if len(c.texts) != 1 || !strings.Contains(c.texts[0], `"code":"rate_limited"`) || !strings.Contains(c.texts[0], "frames per second") {
				t.Errorf("got messages %q before the close, want one rate_limited error about frames", c.texts)
			}
			if tc.perPing > 0 && c.pongs*tc.perPing > burst {
				t.Errorf("the server answered %d pings, so handled frames worth about %d, want at most the burst of %d", c.pongs, c.pongs*tc.perPing, burst)
			}
		})
	}
}

// TestFrameFloodWithUpgrade: frames sent along with the upgrade request,
// before its answer, are read ahead by net/http before the WebSocket
// takes the connection over; they count as much as any, and past the
// burst the server drops them unread rather than answer them.
func TestFrameFloodWithUpgrade(t *testing.T) {
	const burst = 64
	ts := newTestServer(t, frameBudget(burst))
	id, _ := ts.createDoc(t, "x")
	hello := fmt.Sprintf(`{"type":"hello","client":%q,"name":"frames"}`, uuid.NewString())
	// 500 pings, 3,000 bytes: with the request, within net/http's buffer.
	early := append(clientFrame(wsText, true, []byte(hello)), bytes.Repeat(clientFrame(wsPing, true, nil), 500)...)
	f := ts.dialFramesEarly(t, id, early)
	c, err := f.untilClose()
	if err != nil {
		t.Fatalf("got %v after messages %q and %d pongs, want a close 4429", err, c.texts, c.pongs)
	}
	if c.code != closeCodes[CodeRateLimited] {
		t.Errorf("got close %d %q, want %d", c.code, c.reason, closeCodes[CodeRateLimited])
	}
	if c.pongs*pingFrames > burst {
		t.Errorf("the server answered %d pings, worth %d frames, want at most the burst of %d", c.pongs, c.pongs*pingFrames, burst)
	}
}

// TestUnfinishedMessageCut: a message must arrive within MessageTimeout
// of its first byte, however its bytes trickle in; past it the
// connection closes with 1013, and its client reconnects. Before, a
// message could stay unfinished for as long as the connection lived.
func TestUnfinishedMessageCut(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start []byte // the message's beginning
		drip  []byte // sent every few milliseconds after it, if any
	}{
		{"continuation frames dripped", clientFrame(wsText, false, []byte(`{"type":"op",`)), clientFrame(wsCont, false, []byte(" "))},
		{"empty continuation frames dripped", clientFrame(wsText, false, []byte(`{"type":"op",`)), clientFrame(wsCont, false, nil)},
		{"one frame's payload dripped", clientFrame(wsText, true, []byte(`{"type":"op","rev":0,"seq":1,"op":[1,"`+strings.Repeat("y", 10_000)+`"]}`))[:100], []byte("y")},
		{"silence", clientFrame(wsText, false, []byte(`{"type":"op",`)), nil},
		{"a frame header in parts", clientFrame(wsText, true, []byte(strings.Repeat(" ", 200)))[:3], nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Generous for the frames, short for the message.
			ts := newTestServer(t, Options{MessageTimeout: 50 * time.Millisecond})
			id, _ := ts.createDoc(t, "x")
			f := ts.dialFrames(t, id)
			f.hello(t)
			if _, err := f.nc.Write(tc.start); err != nil {
				t.Fatal(err)
			}
			stop, dripped := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(dripped)
				for tc.drip != nil {
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
					if _, err := f.nc.Write(tc.drip); err != nil {
						return
					}
				}
			}()
			c, err := f.untilClose()
			close(stop)
			<-dripped
			if err != nil {
				t.Fatalf("got %v after messages %q, want a close 1013", err, c.texts)
			}
			if c.code != int(closeSlowMessage) || !strings.Contains(c.reason, "unfinished") {
				t.Errorf("got close %d %q, want %d, message unfinished", c.code, c.reason, closeSlowMessage)
			}
			if len(c.texts) > 0 {
				t.Errorf("got messages %q before the close, want none", c.texts)
			}
		})
	}
}

// TestSplitMessagesStillWork: what a client may legitimately send
// passes the frame bounds at their defaults: a 1 MiB op in 4 KiB frames
// (256 of them), with a ping between two of its frames, and many single
// frame messages at once up to the message burst.
func TestSplitMessagesStillWork(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "x")
	f := ts.dialFrames(t, id)
	rev := f.hello(t)

	text := strings.Repeat("a", 1_000_000)
	msg := fmt.Sprintf(`{"type":"op","rev":%d,"seq":1,"op":[1,%q]}`, rev, text)
	if len(msg) > 1<<20 {
		t.Fatalf("the op is %d bytes, more than the 1 MiB a message may have", len(msg))
	}
	var frames []byte
	for i := 0; i < len(msg); i += 4 << 10 {
		op := byte(wsCont)
		if i == 0 {
			op = wsText
		}
		end := min(i+4<<10, len(msg))
		frames = append(frames, clientFrame(op, end == len(msg), []byte(msg[i:end]))...)
		if i == 64<<10 {
			frames = append(frames, clientFrame(wsPing, true, []byte("mid"))...)
		}
	}
	// 199 cursors more, each its own frame: up to the message burst.
	for range 199 {
		frames = append(frames, clientFrame(wsText, true, []byte(fmt.Sprintf(`{"type":"cursor","rev":%d,"ranges":[[0,0]]}`, rev+1)))...)
	}
	werr := make(chan error, 1)
	go func() {
		_, err := f.nc.Write(frames)
		werr <- err
	}()
	pong, ack := false, false
	for !ack {
		op, p, err := f.readFrame()
		if err != nil {
			t.Fatalf("waiting for the ack: %v", err)
		}
		switch {
		case op == wsPong:
			pong = string(p) == "mid"
		case op == wsClose:
			t.Fatalf("got close %d %q, want the ack", binary.BigEndian.Uint16(p), p[2:])
		case op == wsText && strings.Contains(string(p), `"type":"error"`):
			t.Fatalf("got %s, want the ack", p)
		case op == wsText && strings.Contains(string(p), `"type":"ack"`):
			ack = true
		}
	}
	if err := <-werr; err != nil {
		t.Fatalf("send: %v", err)
	}
	if !pong {
		t.Errorf("the ping between the op's frames went unanswered")
	}
	if d := ts.waitDocRev(t, id, rev+1); len(d.Text) != 1+len(text) {
		t.Errorf("got a text of %d bytes, want %d", len(d.Text), 1+len(text))
	}
	checkServing(t, ts, id)
}

// TestFrameMeterScan: the meter follows frames however the bytes are cut
// up by reads, through every length encoding, and knows when a message
// is unfinished.
func TestFrameMeterScan(t *testing.T) {
	type frame struct {
		op  byte
		fin bool
		n   int
	}
	frames := []frame{
		{wsText, true, 0}, {wsText, true, 125}, {wsText, true, 126}, {wsText, true, 65535}, {wsText, true, 65536},
		{wsText, false, 3}, {wsPing, true, 4}, {wsCont, false, 0}, {wsPong, true, 0}, {wsCont, false, 200}, {wsCont, true, 1},
		{wsText, false, 0}, {wsCont, true, 0},
	}
	var stream []byte
	cost := 0 // of the frames, in the budget's frames
	for _, f := range frames {
		stream = append(stream, clientFrame(f.op, f.fin, bytes.Repeat([]byte{'z'}, f.n))...)
		cost++
		if f.op == wsPing {
			cost += pingFrames - 1
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 40 {
		m := newFrameMeter(&Options{FrameRate: 0.001, FrameBurst: 1000, MessageTimeout: time.Minute}, nil)
		now := time.Now()
		for rest := stream; len(rest) > 0; {
			k := 1 + rng.IntN(min(len(rest), []int{1, 3, 20, 70000}[trial%4]))
			if err := m.scan(rest[:k], now); err != nil {
				t.Fatalf("trial %d: %v", trial, err)
			}
			rest = rest[k:]
		}
		if got := int(1000 - m.bucket.tokens); got != cost {
			t.Fatalf("trial %d: counted frames worth %d, want %d (%d frames, one a ping)", trial, got, cost, len(frames))
		}
		if m.have != 0 || m.skip != 0 || m.inMessage {
			t.Fatalf("trial %d: after the last frame, got header bytes %d, payload left %d, in a message %v; want none", trial, m.have, m.skip, m.inMessage)
		}
	}

	// Mid-message, whatever control frames come between.
	m := newFrameMeter(&Options{FrameRate: 0.001, FrameBurst: 1000, MessageTimeout: time.Minute}, nil)
	for i, step := range []struct {
		f    frame
		want bool
	}{
		{frame{wsText, false, 5}, true}, {frame{wsPing, true, 2}, true}, {frame{wsCont, false, 0}, true},
		{frame{wsCont, true, 7}, false}, {frame{wsPong, true, 1}, false}, {frame{wsText, true, 1}, false},
	} {
		b := clientFrame(step.f.op, step.f.fin, bytes.Repeat([]byte{'z'}, step.f.n))
		if err := m.scan(b, time.Now()); err != nil {
			t.Fatal(err)
		}
		if m.inMessage != step.want {
			t.Errorf("step %d: in a message %v, want %v", i, m.inMessage, step.want)
		}
	}

	// Never less than the message budget.
	m = newFrameMeter(&Options{FrameRate: 10, FrameBurst: 20, RateLimit: 100, RateBurst: 200}, nil)
	if m.bucket.rate != 100 || m.bucket.burst != 200 {
		t.Errorf("frames 10/s in bursts of 20, messages 100/s in bursts of 200: got a frame budget of %g/s in bursts of %g, want the message budget's", m.bucket.rate, m.bucket.burst)
	}

	// Past the burst, the error to fail with.
	m = newFrameMeter(&Options{FrameRate: 0.001, FrameBurst: 3, MessageTimeout: time.Minute}, nil)
	err := m.scan(bytes.Repeat(clientFrame(wsPing, true, nil), 4), time.Now())
	var perr *protoError
	if !errors.As(err, &perr) || perr.Code != CodeRateLimited {
		t.Errorf("four frames past a burst of three: got %v, want rate_limited", err)
	}
}
