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
// since the hub's snapshot are still among its recent events (at most
// maxCatchUpBytes of them), a new viewer gets that snapshot followed by
// those events, all shared, instead of a fresh snapshot of its own
// revision. So viewers joining a document that is being edited do not
// each pin a different revision's text. Viewers resuming from a recent
// revision get the same shared events.

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

// snapshotState is the hub's cache of its latest snapshot and of the SSE
// events of its latest ops.
type snapshotState struct {
	snap *docSnapshot
	// used is when snap was last handed out; an unused one is let go.
	used time.Time
	// recent holds the encoded op events of revisions recentBase+1 to
	// recentBase+len(recent), the same slices that were broadcast, at
	// most maxCatchUpBytes of them (recentBytes). They are current only
	// while they reach h.rev: ops committed while nobody watched were not
	// encoded.
	recent      [][]byte
	recentBase  int64
	recentBytes int
}

// snapshot returns the snapshot of the committed text at h.rev, with its
// JSON encoding when withJSON. It must be called only when no op awaits
// its commit (as for every request but ops; see process).
func (h *hub) snapshot(withJSON bool) *docSnapshot {
	st := &h.snaps
	if st.snap == nil || st.snap.rev != h.rev {
		st.snap = &docSnapshot{rev: h.rev, text: h.doc.String()}
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

// recentAfter returns the shared events of the ops after rev, if the hub
// still has them all; the slice is the caller's, its elements shared.
func (h *hub) recentAfter(rev int64) ([][]byte, bool) {
	st := &h.snaps
	if rev < st.recentBase || st.recentBase+int64(len(st.recent)) != h.rev {
		return nil, false
	}
	return append([][]byte(nil), st.recent[rev-st.recentBase:]...), true
}

// viewerStart returns the events that bring a new viewer to the current
// revision: the hub's snapshot and the op events since it, while it has
// those; else a fresh snapshot. Every slice is shared.
func (h *hub) viewerStart() [][]byte {
	st := &h.snaps
	var tail [][]byte
	ok := st.snap != nil && st.snap.json != nil
	if ok {
		tail, ok = h.recentAfter(st.snap.rev)
	}
	if !ok {
		h.snapshot(true)
		tail = nil
	}
	s := st.snap
	st.used = time.Now()
	return append([][]byte{s.sseHead, s.json, s.sseTail}, tail...)
}

// wantsEvents reports whether committed ops must be encoded as events
// even with no viewer: a snapshot is cached that new viewers would start
// from.
func (st *snapshotState) wantsEvents() bool { return st.snap != nil }

// noteEvent records the op event of revision rev, just broadcast.
func (h *hub) noteEvent(rev int64, ev []byte) {
	st := &h.snaps
	if st.recentBase+int64(len(st.recent))+1 != rev {
		// Some ops were not encoded: start again from this one.
		st.recent, st.recentBase, st.recentBytes = nil, rev-1, 0
	}
	st.recent = append(st.recent, ev)
	st.recentBytes += len(ev)
	if st.recentBytes <= maxCatchUpBytes {
		return
	}
	// Over budget: drop the oldest, into a fresh array so that the
	// dropped events are let go of (viewers hold copies of the headers).
	drop := 0
	for drop < len(st.recent) && st.recentBytes > maxCatchUpBytes/2 {
		st.recentBytes -= len(st.recent[drop])
		drop++
	}
	st.recent = append([][]byte(nil), st.recent[drop:]...)
	st.recentBase += int64(drop)
}

// dropUnusedSnapshot lets go of a snapshot nobody has asked for since
// before, and of the recent events when nobody watches; the hub calls it
// on its ticker.
func (h *hub) dropUnusedSnapshot(before time.Time) {
	st := &h.snaps
	if st.snap != nil && st.used.Before(before) {
		st.snap = nil
	}
	if st.snap == nil && len(h.viewers) == 0 {
		*st = snapshotState{}
	}
}

// writeBody answers a request with a body made of chunks (strings or
// byte slices), under a deadline that grows with its size (writeTimeout):
// a slow reader is cut off rather than allowed to pin the body. The
// chunks count against the server's budget of held bytes (held.go) while
// they are written; with no room under it, the answer is 503.
func (s *Server) writeBody(w http.ResponseWriter, contentType string, chunks ...any) {
	release, ok := s.held.holdChunks(chunks)
	if !ok {
		w.Header().Del("X-Collab-Rev")
		s.refuseHeld(w)
		return
	}
	defer release()
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
