package collab

import (
	"sync/atomic"
	"time"
)

// writeWatch cuts a connection whose write outlasts its deadline. It used
// to be a timer reset before each write and stopped after it: two
// operations on the runtime's timer heap per frame, a few per cent of the
// server's CPU when frames are small and many (docs/cpu.md). Now one
// timer stays armed while writes go on: each write only notes its
// deadline, and the timer, when it fires, cuts the connection if the
// write under way is past its deadline, re-arms itself for that deadline
// if it is not, and stops if no write is under way. A write whose
// deadline falls before the timer's rearms it sooner, so no write is
// given longer than its own deadline.
//
// begin and end are called by the connection's writer, one at a time.
type writeWatch struct {
	due    atomic.Int64 // the deadline of the write under way, Unix ns; 0: none
	armed  atomic.Bool  // the timer is set to fire
	fireAt atomic.Int64 // when it fires, Unix ns
	timer  *time.Timer
	cut    func()
}

// begin notes that a write with deadline d starts now.
func (w *writeWatch) begin(d time.Duration) {
	now := time.Now().UnixNano()
	due := now + int64(d)
	w.due.Store(due)
	if w.armed.CompareAndSwap(false, true) || w.fireAt.Load() > due {
		w.arm(due - now)
	}
}

// end notes that the write is done.
func (w *writeWatch) end() { w.due.Store(0) }

func (w *writeWatch) arm(wait int64) {
	w.fireAt.Store(time.Now().UnixNano() + wait)
	if w.timer == nil {
		w.timer = time.AfterFunc(time.Duration(wait), w.fire)
	} else {
		w.timer.Reset(time.Duration(wait))
	}
}

func (w *writeWatch) fire() {
	w.armed.Store(false)
	due := w.due.Load()
	if due == 0 {
		return // no write under way: the next one arms the timer again
	}
	now := time.Now().UnixNano()
	if now >= due {
		w.cut()
		return
	}
	if w.armed.CompareAndSwap(false, true) {
		w.arm(due - now)
	}
}

// stop releases the timer once the connection is done.
func (w *writeWatch) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}
