package collab

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/collabd/collabd/ot"
)

// errStorageFull is why a create or a growing op is refused: the data
// file is past MaxDataBytes, or the disk has less than MinFreeBytes left.
var errStorageFull = errors.New("storage is full")

// diskGuard caches the store's Usage for DiskCheckInterval, so that
// checking it on every create and op costs a mutex, not system calls. It
// is safe for concurrent use.
type diskGuard struct {
	store Store
	every time.Duration

	mu      sync.Mutex
	checked time.Time
	usage   Usage
	err     error
}

// get returns the latest reading, and whether it was taken just now.
func (g *diskGuard) get(ctx context.Context) (u Usage, fresh bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now := time.Now(); now.Sub(g.checked) >= g.every {
		g.usage, g.err = g.store.Usage(ctx)
		g.checked = now
		fresh = true
	}
	return g.usage, fresh, g.err
}

// storageFull returns an error wrapping errStorageFull, saying why, when
// nothing that grows the data may be written now. A store that cannot
// tell its usage is logged and let through: the write itself fails if
// the disk really is full, and /healthz reports the failure.
func (s *Server) storageFull(ctx context.Context) error {
	u, fresh, err := s.disk.get(ctx)
	if err != nil {
		if fresh { // once per reading, not once per op
			s.log.Warn("store usage unknown", "err", err)
		}
		return nil
	}
	return s.usageFull(u)
}

// usageFull is storageFull for a reading already taken.
func (s *Server) usageFull(u Usage) error {
	if max := s.opts.MaxDataBytes; max > 0 && u.DataBytes >= max {
		return fmt.Errorf("%w: the data takes %d bytes, the limit is %d", errStorageFull, u.DataBytes, max)
	}
	if min := s.opts.MinFreeBytes; min > 0 && u.FreeBytes >= 0 && u.FreeBytes < min {
		return fmt.Errorf("%w: %d bytes free on disk, below the %d kept in reserve", errStorageFull, u.FreeBytes, min)
	}
	return nil
}

// admitGrowth is applyOp's last check of an op that fits the document:
// an op that inserts text is refused once the document's history is at
// MaxDocHistory, the store is full or the documents in memory hold the
// MemoryBudget, while deletions go through, so a full server can still
// be tidied. It counts what the op adds to the document's log (in
// opBytes, close to what the store takes) when it lets it through.
func (h *hub) admitGrowth(op ot.Op, seq int64) *protoError {
	n := int64(opBytes(op))
	if inserts(op) {
		if max := h.srv.opts.MaxDocHistory; max > 0 && h.logBytes+n > max {
			return &protoError{Code: CodeTooLarge, Seq: seq,
				Message: fmt.Sprintf("the document's history is full (%d bytes, limit %d); it can only shrink", h.logBytes, max)}
		}
		if err := h.srv.storageFull(h.srv.ctx); err != nil {
			return &protoError{Code: CodeTooLarge, Seq: seq, Message: err.Error() + "; only deletions are accepted"}
		}
		if h.srv.mem.full() { // budget.go
			return &protoError{Code: CodeTooLarge, Seq: seq, Message: h.srv.memoryFullMessage()}
		}
	}
	h.logBytes += n
	return nil
}

func inserts(op ot.Op) bool {
	for _, c := range op {
		if c.IsInsert() {
			return true
		}
	}
	return false
}
