package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/collabd/collabd/collab/client"
)

// lightEditor is a protocol-obeying editor that keeps no text, only the
// document's length: it decodes just enough of each message to know the
// revision and the length change, so the load generator can drive more
// editors than one box could apply the ops of (every editor of a document
// receives every op: N² work in full mode). It types only insertions, whose
// length change a concurrent transform cannot alter, so its length stays
// exact without OT.
type lightEditor struct {
	ws  *websocket.Conn
	dec client.FrameDecoder // the reader's

	mu       sync.Mutex
	rev      int64 // latest revision known
	length   int   // document length in code points at rev
	seq      int64 // last seq sent
	inflight int   // code points of the op awaiting its ack, 0 if none
	pending  int   // keystrokes typed while an op was in flight
	timed    bool  // the in-flight op is timed
	sent     time.Time
	lat      []time.Duration
	err      error
	synced   chan struct{} // signalled on every ack and op
}

func dialLight(ctx context.Context, url, origin, name string, idx int) (*lightEditor, error) {
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(64 << 20)
	hello := fmt.Sprintf(`{"type":"hello","client":"%08x-0000-4000-8000-%012x","name":%q}`, idx, time.Now().UnixNano()&0xffffffffffff, name)
	if err := ws.Write(ctx, websocket.MessageText, []byte(hello)); err != nil {
		ws.CloseNow()
		return nil, err
	}
	_, data, err := ws.Read(ctx)
	if err != nil {
		ws.CloseNow()
		return nil, err
	}
	// The welcome may share its frame with later messages.
	e := &lightEditor{ws: ws, synced: make(chan struct{}, 1)}
	msgs, decErr := e.dec.Decode(data)
	var w struct {
		Type string
		Rev  int64
		Text string
	}
	if len(msgs) == 0 || json.Unmarshal(msgs[0].Raw, &w) != nil || w.Type != "welcome" {
		ws.CloseNow()
		return nil, fmt.Errorf("want welcome, got %.200s", data)
	}
	e.rev, e.length = w.Rev, utf8.RuneCountInString(w.Text)
	for i := range msgs[1:] {
		if err := e.handle(ctx, &msgs[1+i]); err != nil {
			decErr = err
			break
		}
	}
	if decErr != nil {
		ws.CloseNow()
		return nil, decErr
	}
	return e, nil
}

// read handles the server's messages until the connection ends.
func (e *lightEditor) read(ctx context.Context) {
	for {
		data, err := e.dec.ReadFrame(ctx, e.ws)
		if err != nil {
			e.fail(err)
			return
		}
		msgs, decErr := e.dec.Decode(data)
		for i := range msgs {
			if err := e.handle(ctx, &msgs[i]); err != nil {
				e.fail(err)
				return
			}
		}
		if decErr != nil {
			e.fail(decErr)
			return
		}
		select {
		case e.synced <- struct{}{}:
		default:
		}
	}
}

func (e *lightEditor) fail(err error) {
	e.mu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
	select {
	case e.synced <- struct{}{}:
	default:
	}
}

func (e *lightEditor) handle(ctx context.Context, msg *client.Message) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch msg.Type {
	case "op":
		if msg.Rev != e.rev+1 {
			return fmt.Errorf("op %d after rev %d", msg.Rev, e.rev)
		}
		d, err := msg.OpLenDelta()
		if err != nil {
			return err
		}
		e.rev, e.length = msg.Rev, e.length+d
	case "ack":
		if e.inflight == 0 || msg.Seq != e.seq || msg.Rev != e.rev+1 {
			return fmt.Errorf("unexpected ack %s (seq %d, rev %d)", msg.Raw, e.seq, e.rev)
		}
		if e.timed {
			e.lat = append(e.lat, time.Since(e.sent))
		}
		e.rev, e.length, e.inflight, e.timed = msg.Rev, e.length+e.inflight, 0, false
		if e.pending > 0 {
			n := e.pending
			e.pending = 0
			return e.sendLocked(ctx, n, false)
		}
	case "error":
		return fmt.Errorf("server error %s: %s", msg.Code, msg.Message)
	}
	return nil
}

// key types one keystroke: at once if nothing is in flight (timed), else
// buffered until the ack, like a real client composes.
func (e *lightEditor) key(ctx context.Context, pos func(n int) int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return e.err
	}
	if e.inflight > 0 {
		e.pending++
		return nil
	}
	// A write whose context ends closes the connection: the end of typing
	// must not cut a write short, so bound it by time instead.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return e.sendLockedAt(wctx, 1, true, pos(e.length))
}

func (e *lightEditor) sendLocked(ctx context.Context, n int, timed bool) error {
	return e.sendLockedAt(ctx, n, timed, e.length)
}

func (e *lightEditor) sendLockedAt(ctx context.Context, n int, timed bool, at int) error {
	e.seq++
	ins := string(bytes.Repeat([]byte{'x'}, n))
	var op string
	switch {
	case at > 0 && at < e.length:
		op = fmt.Sprintf(`[%d,%q,%d]`, at, ins, e.length-at)
	case at > 0:
		op = fmt.Sprintf(`[%d,%q]`, at, ins)
	case e.length > 0:
		op = fmt.Sprintf(`[%q,%d]`, ins, e.length)
	default:
		op = fmt.Sprintf(`[%q]`, ins)
	}
	msg := fmt.Sprintf(`{"type":"op","rev":%d,"seq":%d,"op":%s}`, e.rev, e.seq, op)
	e.inflight, e.timed, e.sent = n, timed, time.Now()
	return e.ws.Write(ctx, websocket.MessageText, []byte(msg))
}

// waitRev waits until nothing is in flight or pending and rev is reached.
func (e *lightEditor) waitRev(ctx context.Context, rev int64) (int, error) {
	for {
		e.mu.Lock()
		done := e.inflight == 0 && e.pending == 0 && e.rev >= rev
		l, err := e.length, e.err
		e.mu.Unlock()
		if done {
			return l, nil
		}
		if err != nil {
			return 0, err
		}
		select {
		case <-e.synced:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// loadLight is load with light editors.
func loadLight(ctx context.Context, cfg config) (*report, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rep := &report{}
	docs := make([]string, cfg.docs)
	for i := range docs {
		id, err := createDoc(ctx, cfg)
		if err != nil {
			return nil, err
		}
		docs[i] = id
	}
	type ed struct {
		doc int
		e   *lightEditor
	}
	var eds []ed
	var readWG sync.WaitGroup
	readCtx, stopRead := context.WithCancel(ctx)
	defer func() {
		stopRead()
		for _, x := range eds {
			x.e.ws.CloseNow()
		}
		readWG.Wait()
	}()
	wsBase := "ws" + cfg.url[len("http"):]
	startRev := make([]int64, cfg.docs)
	for d, id := range docs {
		for i := range cfg.editors {
			e, err := dialLight(ctx, wsBase+"/api/docs/"+id+"/ws", cfg.url, fmt.Sprintf("light-%d-%d", d, i), len(eds))
			if err != nil {
				return nil, fmt.Errorf("editor %d of doc %d: %w", i, d, err)
			}
			eds = append(eds, ed{d, e})
			readWG.Add(1)
			go func() { defer readWG.Done(); e.read(readCtx) }()
		}
	}
	for d := range docs {
		for _, x := range eds {
			if x.doc == d {
				x.e.mu.Lock()
				startRev[d] = max(startRev[d], x.e.rev)
				x.e.mu.Unlock()
			}
		}
	}

	typeCtx, stopTyping := context.WithTimeout(ctx, cfg.duration)
	defer stopTyping()
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	rep.typing[0] = sample(cfg.pid)
	start := time.Now()
	for i, x := range eds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := typeLight(typeCtx, x.e, cfg.rate, uint64(i), &rep.keys); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("light editor %d on doc %d: %w", i, x.doc, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rep.elapsed = time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return rep, err
	}
	settleCtx, stopSettle := context.WithTimeout(ctx, cfg.settle)
	defer stopSettle()
	for _, x := range eds {
		if _, err := x.e.waitRev(settleCtx, 0); err != nil {
			return rep, fmt.Errorf("light editor did not get its acks: %w", err)
		}
	}
	rep.typing[1] = sample(cfg.pid)
	for d, id := range docs {
		text, rev, err := getDoc(settleCtx, cfg.url, id)
		if err != nil {
			return rep, err
		}
		rep.revs += rev - startRev[d]
		want := utf8.RuneCountInString(text)
		for _, x := range eds {
			if x.doc != d {
				continue
			}
			got, err := x.e.waitRev(settleCtx, rev)
			if err != nil {
				return rep, fmt.Errorf("light editor did not reach rev %d: %w", rev, err)
			}
			if got != want {
				rep.diverged = append(rep.diverged, fmt.Sprintf("doc %s: light editor has length %d, server %d", id, got, want))
			}
		}
	}
	for _, x := range eds {
		x.e.mu.Lock()
		rep.latencies = append(rep.latencies, x.e.lat...)
		x.e.mu.Unlock()
	}
	if len(rep.diverged) > 0 {
		return rep, errors.New("lengths diverged")
	}
	return rep, nil
}

func typeLight(ctx context.Context, e *lightEditor, rate float64, seed uint64, keys *atomic.Int64) error {
	interval := time.Duration(float64(time.Second) / rate)
	r := rand.New(rand.NewPCG(seed, 7))
	select {
	case <-time.After(time.Duration(r.Int64N(int64(interval)))):
	case <-ctx.Done():
		return nil
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	cursor := -1
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		err := e.key(ctx, func(n int) int {
			if cursor < 0 || cursor > n || r.IntN(10) == 0 {
				cursor = r.IntN(n + 1)
			}
			cursor++
			return cursor - 1
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		keys.Add(1)
	}
}
