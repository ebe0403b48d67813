package collab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// viewerState says whether a viewer's stream goes on.
type viewerState uint8

const (
	viewerOpen viewerState = iota
	// viewerEnded: the hub stopped (shutdown or failure). The writer sends
	// what is queued, every committed op, and ends the stream.
	viewerEnded
	// viewerOverflow: the viewer fell ViewerQueue events, or
	// ViewerQueueBytes of them, behind. Its queue
	// is dropped at once and the stream ends; the EventSource reconnects
	// with Last-Event-ID and resumes without a gap.
	viewerOverflow
)

// maxSpareQueue is the largest queue capacity a viewer keeps between
// bursts; a larger one is let go, so an idle viewer holds little memory.
const maxSpareQueue = 16

// viewer is one SSE spectator. The hub pushes encoded events, each shared
// by every viewer, into its bounded queue and never waits on it; the
// viewer's handler goroutine takes them and writes them out.
//
// The queue is a slice under a mutex rather than a buffered channel, so
// that an idle viewer holds a few words instead of ViewerQueue slots: with
// thousands of viewers per server this is most of a viewer's own memory.
type viewer struct {
	limit    int           // most events queued before the viewer is dropped
	maxBytes int           // most bytes of them
	wake     chan struct{} // capacity 1: the queue or the state changed
	// stream, set by the hub before it answers the viewer's request, is
	// the part of its catch-up to read from the store.
	stream *viewerStream

	// mu guards the fields below.
	mu     sync.Mutex
	queue  [][]byte
	queued int // bytes in queue
	state  viewerState
}

func newViewer(limit, maxBytes int) *viewer {
	return &viewer{limit: limit, maxBytes: maxBytes, wake: make(chan struct{}, 1)}
}

func (v *viewer) signal() {
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// push queues an event. It reports false when the viewer takes no more
// events, because its stream is ending or because this event overflowed
// its queue; the hub then forgets it. push never blocks.
func (v *viewer) push(ev []byte) bool {
	v.mu.Lock()
	ok := v.state == viewerOpen
	if ok && len(v.queue) > 0 && (len(v.queue) >= v.limit || v.queued+len(ev) > v.maxBytes) {
		v.state, v.queue, v.queued, ok = viewerOverflow, nil, 0, false
	}
	if ok {
		v.queue = append(v.queue, ev)
		v.queued += len(ev)
	}
	v.mu.Unlock()
	v.signal()
	return ok
}

// kick ends the viewer's stream after the events already queued. The hub
// calls it when it stops.
func (v *viewer) kick() {
	v.mu.Lock()
	if v.state == viewerOpen {
		v.state = viewerEnded
	}
	v.mu.Unlock()
	v.signal()
}

// take returns the queued events and the state, and gives the viewer
// spare, the writer's emptied last batch, to queue into next: a steady
// stream swaps two slices and allocates nothing.
func (v *viewer) take(spare [][]byte) ([][]byte, viewerState) {
	v.mu.Lock()
	defer v.mu.Unlock()
	batch := v.queue
	v.queue, v.queued = spare[:0], 0
	return batch, v.state
}

// addViewer registers a viewer and answers with the events that bring it
// from revision since to the current one: the missing ops when they are
// still available, else a snapshot. Registration and the answer happen in
// one step of the hub, so no op falls between them or is sent twice. The
// hub handles a viewerReq only when no op is awaiting its commit, so h.rev
// is committed here.
func (h *hub) addViewer(m viewerReq) {
	if len(h.viewers) >= h.srv.opts.MaxViewers {
		m.reply <- viewerReply{full: true}
		return
	}
	h.viewerAhead(m.since)
	var start [][]byte
	switch {
	case m.since == h.rev:
		// Up to date: nothing to send until the next op.
	case m.since >= 0 && m.since < h.rev:
		var ok bool
		if start, ok = h.recentAfter(m.since); ok {
			break // the events that were broadcast, shared
		}
		if m.since >= h.histBase {
			var err error
			if start, err = catchUpEvents(h.history[m.since-h.histBase:]); err == nil {
				break
			}
		}
		// Older than memory, or large: the viewer's handler reads the ops
		// from the store (catchup.go). Every op up to h.rev is committed.
		m.v.stream = &viewerStream{from: m.since, to: h.rev}
	default:
		// A new viewer (since -1), one too far behind, or one ahead of the
		// document: the shared snapshot (snapshot.go).
		start = h.viewerStart()
	}
	h.viewers[m.v] = struct{}{}
	m.reply <- viewerReply{start: start}
}

// viewerReply answers a viewerReq: the events to start the viewer with,
// or full when the document has MaxViewers viewers already.
type viewerReply struct {
	start [][]byte
	full  bool
}

// maxCatchUpBytes bounds the op events a resuming viewer is sent from the
// hub's memory; further behind than that, its handler reads them from the
// store, so that a viewer's start costs bounded memory however many
// resume together.
const maxCatchUpBytes = 1 << 20

// catchUpEvents encodes ops as SSE events, or fails when they would take
// more than maxCatchUpBytes.
func catchUpEvents(ops []Record) ([][]byte, error) {
	events := make([][]byte, 0, len(ops))
	size := 0
	for _, r := range ops {
		ev := appendSSEOp(nil, r.Rev, r.Op)
		if size += len(ev); size > maxCatchUpBytes {
			return nil, fmt.Errorf("catch-up from rev %d is over %d bytes", ops[0].Rev-1, maxCatchUpBytes)
		}
		events = append(events, ev)
	}
	return events, nil
}

// broadcastViewers queues one event for every viewer, dropping those that
// cannot take it.
func (h *hub) broadcastViewers(ev []byte) {
	for v := range h.viewers {
		if !v.push(ev) {
			delete(h.viewers, v)
		}
	}
}

func (s *Server) handleDocEvents(w http.ResponseWriter, r *http.Request) {
	id, ok := docID(r)
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such document")
		return
	}
	s.serveEvents(w, r, id)
}

func (s *Server) handleViewEvents(w http.ResponseWriter, r *http.Request) {
	id, err := s.viewDoc(r)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.serveEvents(w, r, id)
}

// resumePoint returns the revision a viewer has seen: Last-Event-ID on a
// reconnect (it wins over the ?since that the EventSource's URL still
// carries), else ?since=R, else -1 (nothing). A Last-Event-ID that is not
// a revision is treated as absent, so the viewer gets a fresh snapshot; a
// malformed since is the caller's mistake and reported.
func resumePoint(r *http.Request) (int64, bool) {
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if rev, err := strconv.ParseInt(v, 10, 64); err == nil && rev >= 0 {
			return rev, true
		}
		return -1, true
	}
	if v := r.URL.Query().Get("since"); v != "" {
		rev, err := strconv.ParseInt(v, 10, 64)
		return rev, err == nil && rev >= 0
	}
	return -1, true
}

// Fixed parts of the stream.
var (
	sseRetry = []byte("retry: 2000\n\n")
	ssePing  = []byte(": ping\n\n")
)

// serveEvents streams a document's events to one viewer until the viewer
// goes away, falls too far behind, or the server shuts down.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request, id string) {
	// Three steps, so that the frames of the setup are gone from this
	// goroutine's stack while it streams: an idle viewer's stack must stay
	// small enough for the GC to shrink it (docs/performance.md, "Abuse
	// resistance: memory").
	st := s.startEvents(w, r, id)
	if st == nil {
		return // answered
	}
	defer st.end()
	defer s.opts.Metrics.viewerSession()()
	s.streamEvents(w, r, id, st)
}

// eventStream is a viewer registered with its hub, and what to start its
// stream with.
type eventStream struct {
	s     *Server
	h     *hub
	v     *viewer
	start [][]byte
	// unhold lets go of start under the budget of held bytes (held.go)
	// once it is written; nil after.
	unhold func()
}

// end unregisters the viewer and lets go of the hub and the session.
func (st *eventStream) end() {
	st.unholdStart()
	st.h.send(context.Background(), viewerLeaveReq{v: st.v})
	st.s.release(st.h)
	st.s.sessionWG.Done()
}

func (st *eventStream) unholdStart() {
	if st.unhold != nil {
		st.unhold()
		st.unhold = nil
	}
}

// startEvents registers a viewer with the document's hub and writes the
// stream's headers. When it cannot, it answers the request and returns nil.
func (s *Server) startEvents(w http.ResponseWriter, r *http.Request, id string) *eventStream {
	since, ok := resumePoint(r)
	if !ok {
		writeError(w, http.StatusBadRequest, CodeBadMessage, "since must be a revision >= 0")
		return nil
	}
	if !s.trackSession() {
		writeError(w, http.StatusServiceUnavailable, CodeShuttingDown, errShuttingDown.Error())
		return nil
	}
	h, err := s.acquire(r.Context(), id)
	if err != nil {
		s.sessionWG.Done()
		s.writeStoreError(w, r, err)
		return nil
	}
	fail := func(status int, code, message string) *eventStream {
		s.release(h)
		s.sessionWG.Done()
		if status != 0 {
			writeError(w, status, code, message)
		}
		return nil
	}

	v := newViewer(s.opts.ViewerQueue, s.opts.ViewerQueueBytes)
	req := viewerReq{v: v, since: since, reply: make(chan viewerReply, 1)}
	if !h.send(r.Context(), req) {
		if r.Context().Err() != nil {
			return fail(0, "", "")
		}
		return fail(http.StatusServiceUnavailable, CodeShuttingDown, errShuttingDown.Error())
	}
	st := &eventStream{s: s, h: h, v: v}
	select {
	case rep := <-req.reply:
		if rep.full {
			return fail(http.StatusTooManyRequests, CodeRateLimited,
				fmt.Sprintf("document has too many viewers (limit %d); try again later", s.opts.MaxViewers))
		}
		st.start = rep.start
	case <-h.done:
		return fail(http.StatusServiceUnavailable, CodeShuttingDown, errShuttingDown.Error())
	case <-r.Context().Done():
		// The hub registers the viewer anyway; tell it to forget it.
		h.send(context.Background(), viewerLeaveReq{v: v})
		return fail(0, "", "")
	}
	// A new viewer's snapshot is a body like a text's (writeBody): held
	// under the server's budget until written, or refused.
	chunks := make([]any, len(st.start))
	for i, c := range st.start {
		chunks[i] = c
	}
	if st.unhold, ok = s.held.holdChunks(chunks); !ok {
		h.send(context.Background(), viewerLeaveReq{v: v})
		fail(0, "", "")
		s.refuseHeld(w)
		return nil
	}

	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store, no-transform")
	hdr.Set("X-Accel-Buffering", "no")
	// net/http would format the Date header deep under the first flush.
	hdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	w.WriteHeader(http.StatusOK)

	// The stream outlives the server's ReadTimeout and WriteTimeout: there
	// is no body to read, and each write sets its own deadline and clears
	// it afterwards. Clearing matters: an HTTP/2 stream is reset when its
	// write deadline passes, even while nothing is being written, so a
	// deadline left behind would cut a healthy idle stream.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	if err := rc.SetWriteDeadline(time.Time{}); errors.Is(err, http.ErrNotSupported) {
		s.log.Warn("SSE stream cannot set write deadlines; the server's WriteTimeout will end it",
			"route", r.Pattern)
	}
	return st
}

// streamEvents writes a registered viewer's events until the viewer goes
// away, falls too far behind, or the hub stops.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request, id string, st *eventStream) {
	rc := http.NewResponseController(w)
	v := st.v
	// Each write's deadline grows with its size (writeTimeout), so that a
	// snapshot of a large document reaches a slow viewer, and yet no viewer
	// holds it in memory for longer than that.
	write := func(chunks ...[]byte) bool {
		n := 0
		for _, c := range chunks {
			n += len(c)
		}
		rc.SetWriteDeadline(time.Now().Add(writeTimeout(s.opts.WriteTimeout, s.opts.MinWriteRate, n)))
		s.opts.Metrics.sseWrote(chunks)
		for _, c := range chunks {
			if _, err := w.Write(c); err != nil {
				return false
			}
		}
		// One flush after the events that were waiting together: each
		// reaches the viewer as soon as it is written, none waits for a
		// later one.
		if rc.Flush() != nil {
			return false
		}
		rc.SetWriteDeadline(time.Time{})
		return true
	}
	start := st.start
	st.start = nil
	if !write(sseRetry) {
		return
	}
	if v.stream != nil {
		if err := s.writeViewerStream(r.Context(), id, v.stream, write); err != nil {
			if !errors.Is(err, http.ErrAbortHandler) && r.Context().Err() == nil {
				s.log.Warn("viewer catch-up from the store failed", "doc", id, "err", err)
			}
			return
		}
	}
	if len(start) > 0 && !write(start...) {
		return
	}
	start = nil
	st.unholdStart()

	// A timer reset after every write, rather than a ticker: pings go only
	// to streams that have been quiet for a whole interval.
	ping := time.NewTimer(s.opts.Heartbeat)
	defer ping.Stop()
	var batch [][]byte
	for {
		select {
		case <-v.wake:
		case <-ping.C:
			if !write(ssePing) {
				return
			}
			ping.Reset(s.opts.Heartbeat)
			continue
		case <-r.Context().Done():
			return
		}
		var state viewerState
		batch, state = v.take(batch)
		if state == viewerOverflow {
			// What was taken before the overflow has been written; the
			// viewer resumes from there.
			s.log.Debug("viewer too slow; disconnected", "doc", logID(id), "remote", r.RemoteAddr)
			s.opts.Metrics.slowViewer()
			return
		}
		if len(batch) > 0 {
			if !write(batch...) {
				return
			}
			ping.Reset(s.opts.Heartbeat)
		}
		if state == viewerEnded {
			return
		}
		// Let go of the events written, and of a capacity grown in a burst.
		clear(batch)
		if cap(batch) > maxSpareQueue {
			batch = nil
		}
	}
}
