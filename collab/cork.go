package collab

import "time"

// The hub fans out a committed batch op by op, each op to every editor.
// A writer started by an op's enqueue would write it alone, and be
// started again for the next op a moment later: with hundreds of editors
// reading fast, that was a goroutine, a frame and a write system call per
// message, and the writers' churn kept the hub goroutine waiting for a
// CPU (docs/performance.md, "One document, hundreds of editors"). So the
// hub corks its editors' connections for the length of a batch: what it
// queues goes out in as few frames as fit, and the writers start once,
// at the end (or as soon as a frame's worth is queued, so that a cork
// never holds more than a frame).

// cork holds back the connection's writer until uncork. A connection
// that is closing is not held back.
func (c *conn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork lets the writer go, starting it if anything is queued.
func (c *conn) uncork() { c.uncorkHeld(0) }

// uncorkHeld lets the writer go, but when nothing urgent is queued, no
// sooner than gap after the last frame (hold.go).
func (c *conn) uncorkHeld(gap time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if len(c.queue) == 0 {
		return
	}
	if gap > 0 && !c.urgent && !c.writing && !c.held {
		if wait := gap - time.Since(c.lastFrame); wait > 0 {
			c.holdLocked(wait)
		}
	}
	c.startWriterLocked() // unless held
}

// corkEditors corks every editor's connection and returns them, for
// uncorkAll.
func (h *hub) corkEditors() []*conn {
	if len(h.editors) < 2 {
		return nil // nobody to fan out to
	}
	cs := make([]*conn, 0, len(h.editors))
	for _, e := range h.editors {
		e.c.cork()
		cs = append(cs, e.c)
	}
	return cs
}

// uncorkEditors uncorks what corkEditors corked, holding others' ops
// back for the document's hold gap (hold.go).
func (h *hub) uncorkEditors(cs []*conn) {
	gap := holdGap(len(h.editors), h.srv.opts.BroadcastBudget)
	for _, c := range cs {
		c.uncorkHeld(gap)
	}
}

func uncorkAll(cs []*conn) {
	for _, c := range cs {
		c.uncork()
	}
}
