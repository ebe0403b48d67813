package collab

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// viewer is one SSE spectator. The hub pushes encoded events into its
// bounded queue and never waits: a viewer whose queue is full is kicked,
// and its EventSource reconnects with Last-Event-ID and resumes.
type viewer struct {
	events   chan []byte
	kicked   chan struct{}
	kickOnce sync.Once
}

func (v *viewer) kick() { v.kickOnce.Do(func() { close(v.kicked) }) }

// addViewer registers a viewer and answers with the events that bring it
// from revision since to the current one: the missing ops when they are
// still available, else a snapshot. Registration and the answer happen in
// one step of the hub, so no op falls between them or is sent twice.
func (h *hub) addViewer(m viewerReq) {
	var start [][]byte
	switch {
	case m.since == h.rev:
		// Up to date: nothing to send until the next op.
	case m.since >= 0 && m.since < h.rev:
		ops, err := h.opsAfter(m.since)
		if err == nil {
			start = make([][]byte, len(ops))
			for i, r := range ops {
				start[i] = appendSSEOp(nil, r.Rev, r.Op)
			}
			break
		}
		h.log.Debug("viewer resume point unavailable; sending a snapshot", "since", m.since, "err", err)
		fallthrough
	default:
		start = [][]byte{appendSSESnapshot(nil, h.rev, h.doc.String())}
	}
	h.viewers[m.v] = struct{}{}
	m.reply <- start
}

// broadcastViewers queues one event for every viewer, kicking those that
// cannot take it.
func (h *hub) broadcastViewers(ev []byte) {
	for v := range h.viewers {
		select {
		case v.events <- ev:
		default:
			v.kick()
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
// reconnect, else ?since=R, else -1 (nothing). A Last-Event-ID that is not
// a revision is treated as absent, so the viewer gets a fresh snapshot.
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

// serveEvents streams a document's events to one viewer until the viewer
// goes away, falls too far behind, or the server shuts down.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request, id string) {
	since, ok := resumePoint(r)
	if !ok {
		writeError(w, http.StatusBadRequest, CodeBadMessage, "since must be a revision >= 0")
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

	v := &viewer{events: make(chan []byte, s.opts.ViewerQueue), kicked: make(chan struct{})}
	req := viewerReq{v: v, since: since, reply: make(chan [][]byte, 1)}
	if !h.send(r.Context(), req) {
		s.writeStoreError(w, r, errHubGone(r.Context()))
		return
	}
	var start [][]byte
	select {
	case start = <-req.reply:
	case <-h.done:
		s.writeStoreError(w, r, errShuttingDown)
		return
	case <-r.Context().Done():
		// The hub registers the viewer anyway; tell it to forget it.
		h.send(context.Background(), viewerLeaveReq{v: v})
		return
	}
	defer h.send(context.Background(), viewerLeaveReq{v: v})

	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store, no-transform")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	// The stream outlives the server's ReadTimeout and WriteTimeout: there
	// is no body to read, and each write below sets its own deadline and
	// clears it afterwards. Clearing matters: an HTTP/2 stream is reset
	// when its write deadline passes, even while nothing is being written,
	// so a deadline left behind would cut a healthy idle stream.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	if err := rc.SetWriteDeadline(time.Time{}); errors.Is(err, http.ErrNotSupported) {
		s.log.Warn("SSE stream cannot set write deadlines; the server's WriteTimeout will end it",
			"path", r.URL.Path)
	}
	write := func(chunks ...[]byte) bool {
		rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		for _, c := range chunks {
			if _, err := w.Write(c); err != nil {
				return false
			}
		}
		if rc.Flush() != nil {
			return false
		}
		rc.SetWriteDeadline(time.Time{})
		return true
	}
	if !write(append([][]byte{[]byte("retry: 2000\n\n")}, start...)...) {
		return
	}

	// A timer reset after every write, rather than a ticker: pings go only
	// to streams that have been quiet for a whole interval.
	ping := time.NewTimer(s.opts.Heartbeat)
	defer ping.Stop()
	var batch [][]byte
	for {
		select {
		case ev := <-v.events:
			batch = gather(append(batch[:0], ev), v.events)
			if !write(batch...) {
				return
			}
			ping.Reset(s.opts.Heartbeat)
		case <-ping.C:
			if !write([]byte(": ping\n\n")) {
				return
			}
			ping.Reset(s.opts.Heartbeat)
		case <-v.kicked:
			// Send what was queued before the kick (on shutdown, every
			// committed op); a viewer kicked for overflow resumes from
			// its last id anyway.
			for batch = gather(batch[:0], v.events); len(batch) > 0; batch = gather(batch[:0], v.events) {
				if !write(batch...) {
					return
				}
			}
			return
		case <-r.Context().Done():
			return
		}
	}
}
