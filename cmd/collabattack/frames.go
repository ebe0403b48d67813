package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

func framesAttack() attack {
	return attack{
		name:    "frames",
		summary: "WebSocket frame floods: empty continuations, pings, cursors, or a dripped message (CPU, close codes)",
		about: `Opens -conns editing sessions on one document, each from its own address
(127.0.1.x), speaking raw WebSocket frames, and floods each according to
-mode:
  cont    a text frame without FIN, then empty continuation frames
  ping    empty pings
  cursor  valid cursor messages, one per frame
  drip    a text frame without FIN, then one 1-byte continuation every
          -drip-every (the server should cut it after -message-timeout, 30 s
          by default: give -duration 40s)
Until the server closes the connection, -duration ends, or -max-frames frames
are sent in all. With -reconnect each connection starts again whenever the
server closes it (at most -max-sessions sessions in all). Prints the frames
sent, how each session ended (close code and reason, or the error), and the
server's CPU (-server-pid) with an honest editor's ack latency.`,
		duration: 10 * time.Second,
		honest:   true,
		flags: func(fs *flag.FlagSet) func(context.Context, *session) error {
			var o floodOptions
			fs.StringVar(&o.mode, "mode", "cont", "`flood`: cont, ping, cursor or drip")
			fs.IntVar(&o.conns, "conns", 1, "connections flooding at once, each from its own address")
			fs.BoolVar(&o.reconnect, "reconnect", false, "start again whenever the server closes a connection")
			fs.Int64Var(&o.maxFrames, "max-frames", 1_000_000_000, "frames to send in all, at most")
			fs.Int64Var(&o.maxSessions, "max-sessions", 100_000, "sessions to open in all, at most (with -reconnect)")
			fs.DurationVar(&o.dripEvery, "drip-every", time.Second, "interval between the dripped bytes (-mode drip)")
			return func(ctx context.Context, s *session) error {
				switch {
				case o.mode != "cont" && o.mode != "ping" && o.mode != "cursor" && o.mode != "drip":
					return fmt.Errorf("-mode %q: want cont, ping, cursor or drip", o.mode)
				case o.conns < 1 || o.maxFrames < 1 || o.maxSessions < 1:
					return fmt.Errorf("-conns, -max-frames and -max-sessions must be at least 1")
				case o.dripEvery <= 0:
					return fmt.Errorf("-drip-every must be positive")
				}
				return attackFrames(ctx, s, &o)
			}
		},
	}
}

type floodOptions struct {
	mode        string
	conns       int
	reconnect   bool
	maxFrames   int64
	maxSessions int64
	dripEvery   time.Duration
}

func attackFrames(ctx context.Context, s *session, o *floodOptions) error {
	d, err := s.t.createDoc(ctx, s.t.client(attackerAddr(0)), "x")
	if err != nil {
		return err
	}
	m, err := s.begin(ctx)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, s.duration)
	defer cancel()
	var sent, sessions, pongs atomic.Int64
	var ends tally
	start := time.Now()
	var wg sync.WaitGroup
	for c := range o.conns {
		wg.Go(func() {
			for actx.Err() == nil && sent.Load() < o.maxFrames && sessions.Add(1) <= o.maxSessions {
				f := &flooder{t: s.t, src: attackerAddr(c), path: "/api/docs/" + d.ID + "/ws", o: o, sent: &sent}
				ends.add(f.run(actx))
				pongs.Add(int64(f.pongs))
				if !o.reconnect {
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Fprintf(s.out, "mode %s: %d frames sent in %d sessions over %v (%.0f frames/s)\n", o.mode, sent.Load(),
		min(sessions.Load(), o.maxSessions), elapsed.Round(time.Millisecond), float64(sent.Load())/elapsed.Seconds())
	if o.mode == "ping" {
		fmt.Fprintf(s.out, "pongs received: %d\n", pongs.Load())
	}
	ends.print(s.out, "sessions ended by")
	m.end(s.out)
	return nil
}

// flooder is one raw WebSocket session flooding the server with frames.
type flooder struct {
	t    *target
	src  net.IP
	path string
	o    *floodOptions
	sent *atomic.Int64 // frames sent by all flooders

	// Set by the reader, read once it is done.
	end    string // how the session ended, as the reader saw it
	closed bool   // by a close frame from the server
	pongs  int
}

// run opens a session, floods it until the server closes it or ctx ends,
// and says how it ended.
func (f *flooder) run(ctx context.Context) string {
	nc, err := dialer(f.src, nil).DialContext(ctx, "tcp", f.t.host)
	if err != nil {
		return "dial " + errKey(err)
	}
	defer nc.Close()
	// The attack's end interrupts any write or read in progress.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	br, err := f.handshake(nc)
	if err != nil {
		return err.Error()
	}
	welcomed := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		f.read(br, welcomed)
	}()
	hello := fmt.Appendf(nil, `{"type":"hello","client":%q,"name":"flood"}`, uuid.NewString())
	if _, err := nc.Write(frame(opText, true, hello)); err != nil {
		nc.Close()
		<-readDone
		return "send hello " + errKey(err)
	}
	select {
	case <-welcomed:
	case <-readDone:
	case <-time.After(5 * time.Second):
	}
	werr := f.flood(ctx, nc, readDone)
	// Give the server's close frame a moment to arrive.
	select {
	case <-readDone:
	case <-time.After(500 * time.Millisecond):
	}
	nc.Close()
	<-readDone
	switch {
	case f.closed:
		return f.end
	case ctx.Err() != nil || errors.Is(werr, errStopped):
		// Whatever the reader saw then was the attack's own doing.
		return "not closed by the server before the attack stopped"
	case werr == nil:
		return f.end
	default:
		return "write " + errKey(werr)
	}
}

// errStopped is flood's return when the attack's budget of time or frames
// ran out first.
var errStopped = errors.New("attack stopped")

// flood writes the mode's frames until the server closes (readDone), a
// write fails, or the attack stops.
func (f *flooder) flood(ctx context.Context, nc net.Conn, readDone <-chan struct{}) error {
	var chunk []byte
	per := int64(0)
	switch f.o.mode {
	case "cont":
		chunk, per = bytes.Repeat(frame(opContinuation, false, nil), 10_000), 10_000
	case "ping":
		chunk, per = bytes.Repeat(frame(opPing, true, nil), 10_000), 10_000
	case "cursor":
		chunk, per = bytes.Repeat(frame(opText, true, []byte(`{"type":"cursor","rev":0,"ranges":[[0,0]]}`)), 1000), 1000
	case "drip":
		chunk, per = frame(opContinuation, false, []byte(" ")), 1
	}
	if f.o.mode == "cont" || f.o.mode == "drip" {
		if _, err := nc.Write(frame(opText, false, []byte(`{"type":"op",`))); err != nil {
			return err
		}
		f.sent.Add(1)
	}
	for {
		select {
		case <-readDone:
			return nil
		case <-ctx.Done():
			return errStopped
		default:
		}
		if f.sent.Load() >= f.o.maxFrames {
			return errStopped
		}
		if _, err := nc.Write(chunk); err != nil {
			if ctx.Err() != nil {
				return errStopped
			}
			return err
		}
		f.sent.Add(per)
		if f.o.mode == "drip" {
			select {
			case <-readDone:
				return nil
			case <-ctx.Done():
				return errStopped
			case <-time.After(f.o.dripEvery):
			}
		}
	}
}

// handshake sends the upgrade request and reads the 101.
func (f *flooder) handshake(nc net.Conn) (*bufio.Reader, error) {
	var key [16]byte
	rand.Read(key[:])
	fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", f.path, f.t.host, f.t.base, base64.StdEncoding.EncodeToString(key[:]))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, fmt.Errorf("handshake %s", errKey(err))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("handshake refused: %s", statusKey(resp.StatusCode, body))
	}
	return br, nil
}

// read reads the server's frames until the connection ends, noting the
// welcome (the first text frame), pongs, and how the session ended.
func (f *flooder) read(br *bufio.Reader, welcomed chan struct{}) {
	texts := 0
	for {
		op, payload, err := readFrame(br)
		if err != nil {
			f.end = "connection " + errKey(err)
			return
		}
		switch op {
		case opText:
			if texts++; texts == 1 {
				close(welcomed)
			}
		case opPong:
			f.pongs++
		case opClose:
			code, reason := 1005, "" // no status given
			if len(payload) >= 2 {
				code, reason = int(binary.BigEndian.Uint16(payload)), string(payload[2:])
			}
			f.end, f.closed = fmt.Sprintf("close %d %s", code, reason), true
			return
		}
	}
}

// WebSocket opcodes (RFC 6455, 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// frame encodes a client frame. Clients must mask: this one masks with a
// zero key, which leaves the payload as it is.
func frame(op byte, fin bool, payload []byte) []byte {
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
	out = append(out, 0, 0, 0, 0)
	return append(out, payload...)
}

// maxServerFrame bounds a frame from the server that readFrame keeps.
const maxServerFrame = 64 << 20

// readFrame reads one frame from the server (which does not mask).
func readFrame(br *bufio.Reader) (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(br, e[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		if _, err := io.ReadFull(br, e[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(e[:])
	}
	if n > maxServerFrame {
		return 0, nil, fmt.Errorf("server frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0f, payload, nil
}
