package collab

import "time"

// Every committed batch is a fan-out: each editor of the document gets one
// frame with the batch's ops (cork.go), and each frame costs a write
// system call here and a read at the client, whatever it holds. With
// hundreds of editors the hub commits as fast as the disk syncs (a few
// hundred times a second on a quiet SSD), so frames are sent at hundreds
// of times the editors' count per second, and their fixed cost, not the
// ops, is what uses the CPU: 400 editors at 5 keystrokes/s made about
// 92,000 frames/s from 2,000 ops/s (docs/performance.md, "One document,
// hundreds of editors").
//
// So a document with many editors paces its commits: the next one starts
// no sooner than len(editors)/FanOutBudget after the one before, at most
// maxPace. The ops that come meanwhile wait in the queue and go out
// together, in fewer and fuller frames. A document with a few editors is
// not paced at all (its interval would be under minPace), and a busy disk
// paces on its own: the interval runs from the start of a commit, so a
// commit that takes longer than it adds no wait.

const (
	minPace = time.Millisecond      // shorter intervals are not worth a timer
	maxPace = 20 * time.Millisecond // the most an op waits for pacing
)

// paceInterval is the least time between the starts of two commits of a
// document with n editors, for a budget of frames per second (0: no
// pacing).
func paceInterval(n, budget int) time.Duration {
	if budget <= 0 || n <= 1 {
		return 0
	}
	d := time.Duration(n) * time.Second / time.Duration(budget)
	if d < minPace {
		return 0
	}
	return min(d, maxPace)
}

// paced reports whether the hub must leave its queue alone until the
// pace timer fires, arming the timer if it must.
func (h *hub) paced() bool {
	if len(h.queue) == 0 || h.paceUntil.IsZero() {
		return false
	}
	wait := time.Until(h.paceUntil)
	if wait <= 0 {
		h.paceUntil = time.Time{}
		return false
	}
	if !h.paceArmed {
		if h.paceTimer == nil {
			h.paceTimer = time.NewTimer(wait)
		} else {
			h.paceTimer.Reset(wait)
		}
		h.paceArmed = true
	}
	return true
}

// paceC fires when a paced queue may be processed, or is nil.
func (h *hub) paceC() <-chan time.Time {
	if !h.paceArmed {
		return nil
	}
	return h.paceTimer.C
}

// paceStarted notes that a commit started now.
func (h *hub) paceStarted(now time.Time) {
	if d := paceInterval(len(h.editors), h.srv.opts.FanOutBudget); d > 0 {
		h.paceUntil = now.Add(d)
	} else {
		h.paceUntil = time.Time{}
	}
}

// mayProcess reports whether the hub may take requests from its queue
// now: not while a commit is in flight, nor while its commits are paced.
func (h *hub) mayProcess() bool {
	return !h.committing && !h.paced()
}

// stopPace releases the pace timer when the hub stops.
func (h *hub) stopPace() {
	if h.paceTimer != nil {
		h.paceTimer.Stop()
	}
}
