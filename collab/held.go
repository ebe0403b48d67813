package collab

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unsafe"
)

// A reader that asks for a large body and then does not read it keeps the
// body in memory until its write deadline (writeTimeout), which for a
// document of several megabytes is a minute or more. Sharing bodies
// (snapshot.go, pastrev.go) makes many such readers of one revision cost
// one copy; heldBytes bounds what readers of many different revisions, or
// of a head that moves between their requests, or of pages of ops (each
// reader's own), can hold in total: every large body that writeBody
// writes, and every new SSE viewer's snapshot until it is written (sse.go),
// counts against one server-wide budget
// (Options.MaxHeldResponseBytes), once however many responses share it,
// and a request that would take the total past it is answered 503
// rate_limited at once instead of pinning more.

// heldMinBytes is the size under which a body is not counted: it fits in
// the connection's write buffer, so it holds nothing of ours.
const heldMinBytes = 4 << 10

// heldRetryAfter is the Retry-After of a request refused for want of
// budget, in seconds: held bodies go when their readers take them or
// their write deadlines pass.
const heldRetryAfter = "5"

// heldBytes is the server-wide budget of bytes held for responses. A block
// is one body (or one reservation, see pastrev.go), identified by the
// address of its memory, and is charged once while anybody holds it. It is
// safe for concurrent use.
type heldBytes struct {
	max int64

	mu     sync.Mutex
	used   int64
	blocks map[unsafe.Pointer]*heldBlock
	// freed, when not nil, is closed at the next release: holdWait
	// waits on it.
	freed chan struct{}
}

type heldBlock struct {
	n    int64
	refs int
}

func newHeldBytes(max int64) *heldBytes {
	return &heldBytes{max: max, blocks: make(map[unsafe.Pointer]*heldBlock)}
}

// hold charges block key of n bytes, unless it is already held, and
// reports false, charging nothing, if that would take the total past the
// budget. A block larger than the whole budget is still let through when
// nothing else is held, so that a small budget cannot make a document
// unreadable. Each hold that reports true is ended by one release.
func (b *heldBytes) hold(key unsafe.Pointer, n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.holdLocked(key, n)
}

// holdWait is hold that waits up to wait, or until ctx ends, for room.
// Only holds that end soon by themselves are worth waiting for: the
// rebuilds of past revisions (pastrev.go), not slow readers.
func (b *heldBytes) holdWait(ctx context.Context, key unsafe.Pointer, n int64, wait time.Duration) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		b.mu.Lock()
		ok := b.holdLocked(key, n)
		if !ok && b.freed == nil {
			b.freed = make(chan struct{})
		}
		freed := b.freed
		b.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-freed:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

func (b *heldBytes) holdLocked(key unsafe.Pointer, n int64) bool {
	if blk, ok := b.blocks[key]; ok {
		blk.refs++
		return true
	}
	if b.used > 0 && b.used+n > b.max {
		return false
	}
	b.used += n
	b.blocks[key] = &heldBlock{n: n, refs: 1}
	return true
}

func (b *heldBytes) release(key unsafe.Pointer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	blk := b.blocks[key]
	if blk.refs--; blk.refs == 0 {
		b.used -= blk.n
		delete(b.blocks, key)
		if b.freed != nil {
			close(b.freed)
			b.freed = nil
		}
	}
}

// inUse returns the bytes held, for tests.
func (b *heldBytes) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// holdChunks holds the body chunks (strings or byte slices) of
// heldMinBytes or more, all or none; it returns the func that releases
// them, or false.
func (b *heldBytes) holdChunks(chunks []any) (func(), bool) {
	var keys []unsafe.Pointer
	release := func() {
		for _, k := range keys {
			b.release(k)
		}
	}
	for _, c := range chunks {
		var key unsafe.Pointer
		var n int
		switch c := c.(type) {
		case string:
			key, n = unsafe.Pointer(unsafe.StringData(c)), len(c)
		case []byte:
			key, n = unsafe.Pointer(unsafe.SliceData(c)), len(c)
		}
		if n < heldMinBytes {
			continue
		}
		if !b.hold(key, int64(n)) {
			release()
			return nil, false
		}
		keys = append(keys, key)
	}
	return release, true
}

// refuseHeld answers a request that found no room under the budget.
func (s *Server) refuseHeld(w http.ResponseWriter) {
	w.Header().Set("Retry-After", heldRetryAfter)
	writeError(w, http.StatusServiceUnavailable, CodeRateLimited,
		"the server is at its limit of "+strconv.FormatInt(s.opts.MaxHeldResponseBytes, 10)+
			" bytes held for responses that readers have not taken yet; try again later")
}
