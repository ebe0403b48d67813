package collab

import (
	"cmp"
	"errors"
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// The memory budget. Each loaded document's bounds (HistoryBytes of
// history, MaxDocChars of text, its queues) are per document, and one
// address that loaded 64 documents and flooded each with 1 MB inserts
// took the server to 4.7 GB. So the memory that documents hold is also
// charged to one budget for the whole server (Options.MemoryBudget),
// like a database's buffer pool:
//
//   - each hub charges what it holds (its history, text, cached snapshot
//     and events, deferred ops, and the store's copies of the batch it is
//     committing) at the top of every turn of its loop, as one atomic add
//     of the change, and releases it all when it stops;
//   - a session charges each op it hands to a hub before it sends it, and
//     the hub releases that when it takes the op from its inbox (where
//     the op is counted again, as queued), so that a flood waiting in
//     inboxes counts too.
//
// Past three quarters of the budget, the documents with the most to free
// (the largest histories; the largest documents nobody has open) are
// asked to shrink: they keep only their newest ops in memory (older ones
// are read back from the store, for transforms (hub.opsAfter) as for
// catch-ups (catchup.go)), let go of their cached snapshot, and unload at
// once if nobody has them open. Past the whole budget, while that takes effect,
// ops that insert text are refused with too_large, and documents not in
// memory are not loaded (503 rate_limited); deletions and reads of
// loaded documents still work.

// errMemoryFull is why an op that inserts text, or the loading of a
// document, is refused: the documents in memory hold the server's
// MemoryBudget.
var errMemoryFull = errors.New("the server's memory for documents is full")

const (
	// shrinkKeep is the history a document keeps when asked to shrink:
	// its newest ops up to this many bytes, so that the ops of editors
	// typing along still transform from memory.
	shrinkKeep = 64 << 10
	// reclaimEvery is how often, at most, the largest documents are asked
	// to shrink while the budget is over its mark.
	reclaimEvery = 20 * time.Millisecond
	// warnEvery is how often, at most, refusals are logged.
	warnEvery = 10 * time.Second
	// inboxClosed marks a hub's inbox charge once the hub has stopped.
	inboxClosed = math.MinInt64 / 2
)

// memBudget is the server's memory budget for documents. It is safe for
// concurrent use: every method is a few atomic operations, but for the
// reclaiming that charges past the mark start, at most every reclaimEvery.
type memBudget struct {
	max     int64  // math.MaxInt64 when there is no budget
	reclaim func() // asks the largest documents to shrink

	used        atomic.Int64
	peak        atomic.Int64 // the most used has been
	lastReclaim atomic.Int64 // unix nanoseconds
	lastWarn    atomic.Int64 // unix nanoseconds
}

func newMemBudget(max int64, reclaim func()) *memBudget {
	if max <= 0 {
		max = math.MaxInt64
	}
	return &memBudget{max: max, reclaim: reclaim}
}

// mark is where reclaiming starts.
func (b *memBudget) mark() int64 { return b.max - b.max/4 }

// full reports whether the budget is spent.
func (b *memBudget) full() bool {
	if b.used.Load() < b.max {
		return false
	}
	b.pressed()
	return true
}

// add charges n bytes, or releases them when n is negative.
func (b *memBudget) add(n int64) {
	u := b.used.Add(n)
	if n > 0 {
		b.charged(u)
	}
}

// tryAdd charges n bytes unless that would spend the budget.
func (b *memBudget) tryAdd(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.max {
			b.pressed()
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			b.charged(u + n)
			return true
		}
	}
}

func (b *memBudget) charged(used int64) {
	for p := b.peak.Load(); used > p && !b.peak.CompareAndSwap(p, used); p = b.peak.Load() {
	}
	if used > b.mark() {
		b.pressed()
	}
}

// pressed reclaims, unless that was done less than reclaimEvery ago.
func (b *memBudget) pressed() {
	now := time.Now().UnixNano()
	last := b.lastReclaim.Load()
	if now-last < int64(reclaimEvery) || !b.lastReclaim.CompareAndSwap(last, now) {
		return
	}
	b.reclaim()
}

// memoryFullMessage tells a client why its op or request was refused,
// and the log, every warnEvery at most, that some were.
func (s *Server) memoryFullMessage() string {
	now := time.Now().UnixNano()
	if last := s.mem.lastWarn.Load(); now-last >= int64(warnEvery) && s.mem.lastWarn.CompareAndSwap(last, now) {
		s.log.Warn("memory budget spent: refusing inserting ops and document loads",
			"used", s.mem.used.Load(), "budget", s.mem.max)
	}
	return errMemoryFull.Error() + "; try again later"
}

// reclaim asks the documents that would free the most by shrinking
// (the largest histories, and the largest documents nobody has open),
// enough of them to bring the budget down to half, by a request each in
// their inbox (a hub whose inbox is full is busy, and skipped). It never
// waits.
func (s *Server) reclaim() {
	type spare struct {
		h *hub
		n int64
	}
	s.mu.Lock()
	hubs := make([]spare, 0, len(s.hubs))
	for _, h := range s.hubs {
		if n := h.mem.spare.Load(); n > 0 {
			hubs = append(hubs, spare{h, n})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(hubs, func(a, b spare) int { return cmp.Compare(b.n, a.n) })
	excess := s.mem.used.Load() - s.mem.max/2
	for _, x := range hubs {
		if excess <= 0 {
			break
		}
		if !x.h.mem.asked.CompareAndSwap(false, true) {
			excess -= x.n // asked already, and not yet done
			continue
		}
		select {
		case x.h.inbox <- shrinkReq{}:
			excess -= x.n
		default:
			x.h.mem.asked.Store(false)
		}
	}
}

// shrinkReq asks a hub to hold less memory.
type shrinkReq struct{}

// hubMem is a hub's part of the budget.
type hubMem struct {
	charged int64 // what the hub charged; its run goroutine's
	// spare is what a shrink would free, for reclaim to read; spared is
	// its last value, the run goroutine's.
	spare  atomic.Int64
	spared int64
	asked  atomic.Bool // a shrinkReq is on its way
	// inbox is what sessions charged for the ops they sent the hub that
	// it has not taken yet; inboxClosed, plus what came later, once the
	// hub stopped and released it.
	inbox atomic.Int64
}

// account charges the budget with the change in what the hub holds. The
// run loop calls it on every turn.
func (h *hub) account() {
	snap := 0
	if s := h.snaps.snap; s != nil {
		snap = len(s.text) + len(s.json)
	}
	// Comment threads (comments.go): their text and their anchors.
	n := int64(h.histBytes + h.queueBytes + h.snaps.recentBytes + snap + h.comments.bytes + 16*len(h.comments.anchors))
	if h.committing {
		// The store holds copies of the batch until its commit is done:
		// the encoded records and the pages they are written to.
		n += 2 * int64(h.batchBytes)
	}
	if h.doc != nil {
		n += int64(h.doc.Size())
	}
	if d := n - h.mem.charged; d != 0 {
		h.srv.mem.add(d)
		h.mem.charged = n
	}
	// What shrink would free: all of it, for a document nobody has open
	// (it unloads); else the older history and the cached snapshot.
	spare := n
	if len(h.editors) > 0 || len(h.viewers) > 0 {
		spare = int64(max(h.histBytes-shrinkKeep, 0) + snap)
		if len(h.viewers) == 0 {
			spare += int64(h.snaps.recentBytes)
		}
	}
	if spare != h.mem.spared {
		h.mem.spare.Store(spare)
		h.mem.spared = spare
	}
}

// releaseMemory releases all the hub charged, when it stops, and what
// sessions charged for ops left in its inbox; any op charged after this
// is released by its session.
func (h *hub) releaseMemory() {
	h.srv.mem.add(-h.mem.charged)
	h.mem.charged = 0
	h.mem.spare.Store(0)
	h.srv.mem.add(-h.mem.inbox.Swap(inboxClosed))
}

// charge charges the budget for a request a session is about to send
// the hub (an op: the others hold little), and returns what to pass
// uncharge if it is not sent after all. An op that inserts text is
// refused when the budget is spent.
func (h *hub) charge(req any) (int64, *protoError) {
	m, ok := req.(opReq)
	if !ok {
		return 0, nil
	}
	n := int64(m.bytes)
	if !inserts(m.m.op) {
		h.srv.mem.add(n)
	} else if !h.srv.mem.tryAdd(n) {
		return 0, &protoError{Code: CodeTooLarge, Seq: m.m.seq, Message: h.srv.memoryFullMessage()}
	}
	if h.mem.inbox.Add(n) < 0 {
		// The hub has stopped: the send fails, and nothing is charged.
		h.mem.inbox.Add(-n)
		h.srv.mem.add(-n)
		return 0, nil
	}
	return n, nil
}

// uncharge releases what chargeOp charged for an op that was not sent.
func (h *hub) uncharge(n int64) {
	if n != 0 && h.mem.inbox.Add(-n) >= 0 {
		h.srv.mem.add(-n)
	} // else the hub stopped, and released it already
}

// took releases a session's charge for a request the hub took from its
// inbox; from now on the hub's own account counts it.
func (h *hub) took(m any) {
	if n := int64(reqBytes(m)); n != 0 {
		if _, ok := m.(opReq); ok {
			h.mem.inbox.Add(-n)
			h.srv.mem.add(-n)
		}
	}
}

// shrink drops all but the newest shrinkKeep bytes of the in-memory
// history (never an op not yet in the store) and the cached snapshot and
// events, and lets the hub unload at once if nobody has it open.
func (h *hub) shrink() {
	h.mem.asked.Store(false)
	durable := h.durableRev()
	drop, kept := len(h.history), 0 // history[drop:] stays
	for drop > 0 {
		r := h.history[drop-1]
		n := opBytes(r.Op)
		if r.Rev <= durable && kept+n > shrinkKeep {
			break
		}
		kept += n
		drop--
	}
	if drop > 0 {
		h.history = append(h.history[:0:0], h.history[drop:]...)
		h.histBase += int64(drop)
		h.histBytes = kept
	}
	h.dropUnusedSnapshot(time.Now().Add(time.Second))
	if len(h.editors) == 0 && len(h.viewers) == 0 {
		h.lastActive = time.Time{} // idle from now on
	}
	h.account()
}

// unloadIdle unloads the hub if it is idle and nobody holds it; run
// returns when it reports true.
func (h *hub) unloadIdle() bool {
	if !h.idle() || !h.srv.tryUnload(h) {
		return false
	}
	h.saveSnapshot()
	h.log.Debug("document unloaded", "rev", h.rev)
	return true
}
