package collab

import "time"

// Holding others' ops. At a few hundred ops a second in a document of
// dozens of editors, most commits carry one op, and each commit was a
// frame to every editor: a write system call, a writer goroutine started
// and a read at the client, per op and per editor, which was most of the
// server's CPU (docs/cpu.md). So after a committed batch the hub leaves
// the frame of others' ops to an editor held until gap has passed since
// that editor's last frame, where gap is the document's editors divided
// by BroadcastBudget (at most maxHold; under minPace, no hold). The ops
// that come meanwhile join it, and each editor gets at most one frame
// of others' ops per gap.
//
// Acks are never held: an editor waits for its own op's ack before it
// sends the next, and the ack goes out at once, with whatever others'
// ops are held before it, in order (a client must see every revision
// before its own). A closing connection, and a frame's worth queued,
// are not held either. What a hold costs is that others' ops reach an
// editor up to gap later; a document with a few editors is not held.

// maxHold bounds how long an editor's frame of others' ops is held.
const maxHold = 20 * time.Millisecond

// holdGap is the least time between two frames of others' ops to one of
// n editors, for a budget of such frames per second for the document
// (zero or negative: no hold).
func holdGap(n, budget int) time.Duration {
	if budget <= 0 || n <= 1 {
		return 0
	}
	d := time.Duration(n) * time.Second / time.Duration(budget)
	if d < minPace {
		return 0
	}
	return min(d, maxHold)
}

// holdLocked holds the writer back for wait, unless something urgent
// comes first.
func (c *conn) holdLocked(wait time.Duration) {
	c.held = true
	if c.holdTimer == nil {
		c.holdTimer = time.AfterFunc(wait, c.release)
	} else {
		c.holdTimer.Reset(wait)
	}
}

// unholdLocked ends a hold.
func (c *conn) unholdLocked() {
	if c.held {
		c.held = false
		c.holdTimer.Stop()
	}
}

// release ends a hold when its time is up, writing what is queued on the
// timer's own goroutine.
func (c *conn) release() {
	c.mu.Lock()
	if !c.held {
		c.mu.Unlock()
		return // stale: a writer was started meanwhile
	}
	c.held = false
	if c.writing || c.wsClosed || c.corked || len(c.queue) == 0 {
		c.mu.Unlock()
		return
	}
	c.writing = true
	c.writers.Add(1)
	c.mu.Unlock()
	c.writeOut()
}

// enqueueAck queues an ack, which is never held: it goes out at once,
// after whatever was held before it.
func (c *conn) enqueueAck(msg []byte) { c.enqueueMsg(msg, true) }
