package collab

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
)

// A large document must not cost a copy of its text per reader: 150
// viewers of a 2,000,000-emoji document once took the server from 9 MB to
// 2 GB, each holding its own snapshot. So the hub builds a document's text
// once per revision, and its JSON encoding once, and every HTTP reader and
// SSE viewer writes out those same immutable bytes. What one slow reader
// can pin is then at most one revision's text, for at most the deadline
// of its write (writeTimeout: the client write timeout plus the text's
// size at MinWriteRate), after which it is disconnected.
//
// New viewers share a snapshot across revisions too: while the op events
// since the hub's snapshot are few (at most maxCatchUpBytes), a new viewer
// gets that snapshot followed by those events, all shared, instead of a
// fresh snapshot of its own revision. So viewers joining a document that
// is being edited do not each pin a different revision's text.

// docSnapshot is a document's committed text at one revision. Its fields
// are never changed once the hub has handed it out.
type docSnapshot struct {
	rev  int64
	text string
	// json is text as a JSON string, quotes included; nil until needed.
	json []byte
	// sseHead and sseTail frame json into an SSE snapshot event.
	sseHead, sseTail []byte
}

// snapshotState is the hub's cache of its latest snapshot.
type snapshotState struct {
	snap *docSnapshot
	// events are the SSE op events committed since snap.rev, shared with
	// the viewers they were broadcast to; eventBytes is their size. Past
	// maxCatchUpBytes they are dropped and stale is set: the next new
	// viewer gets a fresh snapshot.
	events     [][]byte
	eventBytes int
	stale      bool
	// used is when snap was last handed out; an unused one is let go.
	used time.Time
}

// snapshot returns the snapshot of the committed text at h.rev, with its
// JSON encoding when withJSON. It must be called only when no op awaits
// its commit (as for every request but ops; see process).
func (h *hub) snapshot(withJSON bool) *docSnapshot {
	st := &h.snaps
	if st.snap == nil || st.snap.rev != h.rev {
		st.snap = &docSnapshot{rev: h.rev, text: h.doc.String()}
		clear(st.events)
		st.events, st.eventBytes, st.stale = nil, 0, false
	}
	s := st.snap
	if withJSON && s.json == nil {
		// A new value rather than a change to one handed out: readers
		// of the old one may still be writing its text.
		js, _ := json.Marshal(s.text) // a string always encodes
		s = &docSnapshot{rev: s.rev, text: s.text, json: js}
		s.sseHead, s.sseTail = sseSnapshotHead(s.rev), sseSnapshotTail
		st.snap = s
	}
	st.used = time.Now()
	return s
}

// viewerStart returns the events that bring a new viewer to the current
// revision: the hub's snapshot and the op events since it, while those
// are few; else a fresh snapshot. Every slice is shared.
func (h *hub) viewerStart() [][]byte {
	st := &h.snaps
	if st.snap == nil || st.snap.json == nil || st.stale {
		h.snapshot(true)
	}
	s := st.snap
	st.used = time.Now()
	start := make([][]byte, 0, 3+len(st.events))
	start = append(start, s.sseHead, s.json, s.sseTail)
	// Unless stale, events hold exactly the ops after s.rev (noteEvent).
	return append(start, st.events...)
}

// wantsEvents reports whether committed ops must be noted for new viewers.
func (st *snapshotState) wantsEvents() bool {
	return st.snap != nil && st.snap.json != nil && !st.stale
}

// noteEvent records an op event just broadcast to viewers, for the new
// viewers that start from the cached snapshot.
func (h *hub) noteEvent(rev int64, ev []byte) {
	st := &h.snaps
	if !st.wantsEvents() {
		return
	}
	if st.snap.rev+int64(len(st.events))+1 != rev || st.eventBytes+len(ev) > maxCatchUpBytes {
		clear(st.events)
		st.events, st.eventBytes, st.stale = nil, 0, true
		return
	}
	st.events = append(st.events, ev)
	st.eventBytes += len(ev)
}

// dropUnusedSnapshot lets go of a snapshot nobody has asked for since
// before; the hub calls it on its ticker.
func (h *hub) dropUnusedSnapshot(before time.Time) {
	if st := &h.snaps; st.snap != nil && st.used.Before(before) {
		clear(st.events)
		*st = snapshotState{}
	}
}

// writeBody answers a request with a body made of chunks (strings or
// byte slices), under a deadline that grows with its size (writeTimeout):
// a slow reader is cut off rather than allowed to pin the body.
func (s *Server) writeBody(w http.ResponseWriter, contentType string, chunks ...any) {
	n := 0
	for _, c := range chunks {
		switch c := c.(type) {
		case string:
			n += len(c)
		case []byte:
			n += len(c)
		}
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(n))
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(writeTimeout(s.opts.WriteTimeout, s.opts.MinWriteRate, n)))
	w.WriteHeader(http.StatusOK)
	for _, c := range chunks {
		var err error
		switch c := c.(type) {
		case string:
			_, err = io.WriteString(w, c)
		case []byte:
			_, err = w.Write(c)
		}
		if err != nil {
			return
		}
	}
}
