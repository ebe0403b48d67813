package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/collabd/collabd/collab/client"
	"github.com/google/uuid"
)

// doc is a document the attack created.
type doc struct {
	ID     string
	ViewID string `json:"viewId"`
	Rev    int64
}

// maxCreateTries bounds the 429s createDoc waits out.
const maxCreateTries = 100

// createDoc creates a document holding text (none if empty) with hc,
// waiting out 429s as Retry-After asks, until ctx ends or maxCreateTries.
func (t *target) createDoc(ctx context.Context, hc *http.Client, text string) (*doc, error) {
	var body []byte
	if text != "" {
		body, _ = json.Marshal(map[string]string{"text": text})
	}
	for try := 1; ; try++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url("/api/docs"), bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("create a document: %w", err)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		switch {
		case err != nil:
			return nil, fmt.Errorf("create a document: %w", err)
		case resp.StatusCode == http.StatusTooManyRequests && try < maxCreateTries:
			wait := time.Second
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = time.Duration(s) * time.Second
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("create a document: %s, and %w", statusKey(resp.StatusCode, b), ctx.Err())
			case <-time.After(wait):
			}
			continue
		case resp.StatusCode != http.StatusCreated:
			return nil, fmt.Errorf("create a document: %s", statusKey(resp.StatusCode, b))
		}
		var d doc
		if err := json.Unmarshal(b, &d); err != nil || d.ID == "" {
			return nil, fmt.Errorf("create a document: unexpected answer %.200s", b)
		}
		return &d, nil
	}
}

// serverError is an error message from the server.
type serverError struct{ code, message string }

func (e *serverError) Error() string { return e.code + ": " + e.message }

// editor speaks the editing protocol on a document nobody else edits,
// one op at a time: it needs no OT, only the revision and the length,
// and it sends ops as prepared JSON (the attacks send large ones). It is
// not safe for concurrent use.
type editor struct {
	ws     *websocket.Conn
	dec    client.FrameDecoder
	rev    int64
	length int // in code points
	seq    int64
}

// dialEditor joins document id with hc and reads the welcome.
func (t *target) dialEditor(ctx context.Context, hc *http.Client, id string) (*editor, error) {
	ws, _, err := t.dialWS(ctx, hc, "/api/docs/"+id+"/ws")
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(64 << 20)
	hello, _ := json.Marshal(map[string]string{"type": "hello", "client": uuid.NewString(), "name": "collabattack"})
	if err := ws.Write(ctx, websocket.MessageText, hello); err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("send hello: %w", err)
	}
	_, frame, err := ws.Read(ctx)
	if err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("read welcome: %w", err)
	}
	e := &editor{ws: ws}
	// The welcome may share its frame with later messages, which an
	// editor alone on its document can ignore.
	msgs, _ := e.dec.Decode(frame)
	var w struct {
		Type string
		Rev  int64
		Text string
	}
	if len(msgs) == 0 || json.Unmarshal(msgs[0].Raw, &w) != nil || w.Type != "welcome" {
		ws.CloseNow()
		return nil, fmt.Errorf("want a welcome, got %.200s", frame)
	}
	e.rev, e.length = w.Rev, utf8.RuneCountInString(w.Text)
	return e, nil
}

// apply sends op (its JSON), which changes the length by delta, and waits
// for its ack. An error message from the server is a *serverError.
func (e *editor) apply(ctx context.Context, op []byte, delta int) error {
	e.seq++
	msg := fmt.Appendf(nil, `{"type":"op","rev":%d,"seq":%d,"op":`, e.rev, e.seq)
	msg = append(append(msg, op...), '}')
	if err := e.ws.Write(ctx, websocket.MessageText, msg); err != nil {
		return err
	}
	for {
		frame, err := e.dec.ReadFrame(ctx, e.ws)
		if err != nil {
			return err
		}
		msgs, decErr := e.dec.Decode(frame)
		for _, m := range msgs {
			switch m.Type {
			case "ack":
				if m.Seq == e.seq {
					e.rev, e.length = m.Rev, e.length+delta
					return nil
				}
			case "op": // another editor's, though none is expected
				d, err := m.OpLenDelta()
				if err != nil {
					return err
				}
				e.rev, e.length = m.Rev, e.length+d
			case "error":
				return &serverError{m.Code, m.Message}
			}
		}
		if decErr != nil {
			return decErr
		}
	}
}

// close says goodbye with a normal close, briefly.
func (e *editor) close() {
	e.ws.Close(websocket.StatusNormalClosure, "")
}

// typeAt returns the JSON of an op inserting s at the end of a document
// of n code points.
func typeAt(n int, s string) []byte {
	q, _ := json.Marshal(s)
	if n == 0 {
		return fmt.Appendf(nil, "[%s]", q)
	}
	return fmt.Appendf(nil, "[%d,%s]", n, q)
}

// honest is an editor of good behaviour on a document of its own, from an
// address of its own: it types a character every 50 ms, one op in
// flight, and times each from send to ack, which the server sends once
// the op is on disk. Its latency is what an attack costs everyone else.
type honest struct {
	stop   chan struct{}
	cancel context.CancelFunc // cuts an op in flight short
	done   chan struct{}
	// Written by run until done.
	lat     []time.Duration
	unacked time.Duration // how long the op in flight at the end had waited
	err     error
}

// maxHonestOps bounds the honest editor's keystrokes: more than an hour's.
const maxHonestOps = 100_000

// Bounds of the wait for an ack: during the attack, and for the op still
// in flight when it ends.
const (
	maxAckWait   = 30 * time.Second
	finalAckWait = 5 * time.Second
)

// startHonest creates the honest editor's document and starts typing.
func startHonest(ctx context.Context, t *target) (*honest, error) {
	hc := t.client(honestAddr)
	d, err := t.createDoc(ctx, hc, "")
	if err != nil {
		return nil, fmt.Errorf("honest editor: %w", err)
	}
	e, err := t.dialEditor(ctx, hc, d.ID)
	if err != nil {
		return nil, fmt.Errorf("honest editor: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	h := &honest{stop: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go h.run(ctx, e)
	return h, nil
}

func (h *honest) run(ctx context.Context, e *editor) {
	defer close(h.done)
	defer e.close()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for range maxHonestOps {
		select {
		case <-h.stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// An ack slower than maxAckWait is a finding in itself: it is
		// reported, and the editor stops.
		actx, cancel := context.WithTimeout(ctx, maxAckWait)
		start := time.Now()
		err := e.apply(actx, typeAt(e.length, "a"), 1)
		cancel()
		switch {
		case err == nil:
			h.lat = append(h.lat, time.Since(start))
		case ctx.Err() != nil: // cut short by finish
			h.unacked = time.Since(start)
			return
		default:
			h.err = err
			return
		}
	}
}

// finish stops the editor and prints its acks' latencies. An op in flight
// is waited for a little: a slow ack is the figure that matters most.
func (h *honest) finish(out io.Writer) {
	if h == nil {
		return
	}
	close(h.stop)
	select {
	case <-h.done:
	case <-time.After(finalAckWait):
	}
	h.cancel()
	<-h.done
	fmt.Fprintf(out, "honest editor's ack latency: %s\n", latencies(h.lat))
	if h.unacked > 0 {
		fmt.Fprintf(out, "honest editor: one more op still unacknowledged after %v when it stopped\n", h.unacked.Round(time.Millisecond))
	}
	if h.err != nil {
		fmt.Fprintf(out, "honest editor stopped: %s\n", errKey(h.err))
	}
}
