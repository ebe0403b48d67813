package collab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/collabd/collabd/ot"
)

// Every write that grows the store passes one check, Admission.Admit:
// creates (with or without a first op), editors' ops, restores, ops
// forwarded by other nodes, and the offline commands that write a data
// file (cmd/collabd: import). The hub's accept (accept.go) is the only
// place that adds an op to a document's log, and it admits each op
// before applying it.

// ErrStorageFull is why a write that grows the store is refused: the
// data takes MaxDataBytes or more, or the disk has less than
// MinFreeBytes left.
var ErrStorageFull = errors.New("storage is full")

// ErrHistoryFull is why a write that grows a document's op log is
// refused: the log would take more than MaxDocHistory bytes.
var ErrHistoryFull = errors.New("the document's history is full")

// Limits are the bounds Admission enforces, with Options' meanings: a
// zero or negative value is no bound (Options.setDefaults supplies the
// server's defaults).
type Limits struct {
	MaxDataBytes  int64
	MinFreeBytes  int64
	MaxDocHistory int64
	// DiskCheckInterval is how long a reading of the store's usage is
	// reused (zero: read it for every write).
	DiskCheckInterval time.Duration
}

// Growth describes a write for Admit.
type Growth struct {
	// LogBytes is what the document's op log takes before the write (0
	// for a new document), and Adds what the write adds to it, both in
	// the unit of StoredDoc.LogBytes (see RecordBytes).
	LogBytes, Adds int64
	// Inserts says the write adds text (or a document). One that only
	// deletes is admitted whatever the bounds, so that a full server can
	// still be tidied.
	Inserts bool
}

// Admission decides whether a write that grows the store may go ahead.
// It is safe for concurrent use.
type Admission struct {
	limits Limits
	log    *slog.Logger
	disk   diskGuard
}

// NewAdmission returns the Admission for writes to store; log hears when
// the store cannot tell its usage (nil: not logged).
func NewAdmission(store Store, limits Limits, log *slog.Logger) *Admission {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Admission{limits: limits, log: log, disk: diskGuard{store: store, every: limits.DiskCheckInterval}}
}

// Admit returns nil if the write g may go ahead, else an error wrapping
// ErrHistoryFull or ErrStorageFull that says why. A store that cannot
// tell its usage is logged and let through: the write itself fails if
// the disk really is full, and /healthz reports the failure.
func (a *Admission) Admit(ctx context.Context, g Growth) error {
	if !g.Inserts {
		return nil
	}
	if max := a.limits.MaxDocHistory; max > 0 && g.LogBytes+g.Adds > max {
		return fmt.Errorf("%w (%d bytes, this write adds %d, the limit is %d)",
			ErrHistoryFull, g.LogBytes, g.Adds, max)
	}
	return a.disk.admit(ctx, g.Adds, func(u Usage, adding int64) error {
		return a.usageFull(u, adding)
	}, a.log)
}

// usageFull is the storage half of Admit for a reading u, with adding
// bytes admitted since it was taken (this write's included), which u does
// not show yet.
func (a *Admission) usageFull(u Usage, adding int64) error {
	with := ""
	if adding > 0 {
		with = fmt.Sprintf(" with the %d being written", adding)
	}
	if max := a.limits.MaxDataBytes; max > 0 && u.DataBytes+adding >= max {
		return fmt.Errorf("%w: the data takes %d bytes%s, the limit is %d", ErrStorageFull, u.DataBytes+adding, with, max)
	}
	if min := a.limits.MinFreeBytes; min > 0 && u.FreeBytes >= 0 && u.FreeBytes-adding < min {
		return fmt.Errorf("%w: %d bytes free on disk%s, below the %d kept in reserve", ErrStorageFull, u.FreeBytes-adding, with, min)
	}
	return nil
}

// diskGuard caches the store's Usage for DiskCheckInterval, so that
// checking it on every create and op costs a mutex, not system calls,
// and counts the bytes admitted since, so that writes let through on one
// reading cannot add up past a bound before the next. It is safe for
// concurrent use.
type diskGuard struct {
	store Store
	every time.Duration

	mu      sync.Mutex
	checked time.Time
	usage   Usage
	err     error
	pending int64 // bytes admitted since usage was read
}

// admit checks a write of n bytes with full, against the latest reading
// and the bytes admitted since it, and counts it if full lets it
// through. A reading that failed lets everything through, and is logged
// once.
func (g *diskGuard) admit(ctx context.Context, n int64, full func(u Usage, adding int64) error, log *slog.Logger) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	fresh := g.read(ctx)
	if g.err != nil {
		if fresh {
			log.Warn("store usage unknown", "err", g.err)
		}
		return nil
	}
	if err := full(g.usage, g.pending+n); err != nil {
		return err
	}
	g.pending += n
	return nil
}

// read takes a new reading if the last is older than g.every, and
// reports whether it did. g.mu is held.
func (g *diskGuard) read(ctx context.Context) (fresh bool) {
	if now := time.Now(); now.Sub(g.checked) >= g.every {
		// A hub waits for this under g.mu, and every other inserting hub
		// behind it: a store that is slow to answer (NATS, in cluster
		// mode) must not hold them for long.
		ctx, cancel := context.WithTimeout(ctx, usageTimeout)
		defer cancel()
		g.usage, g.err = g.store.Usage(ctx)
		g.checked, g.pending = now, 0
		return true
	}
	return false
}

// usageTimeout bounds one reading of the store's usage.
const usageTimeout = 2 * time.Second

// RecordSizer is implemented by a Store that can tell what a record adds
// to a document's op log, in the unit of StoredDoc.LogBytes. collab
// counts MaxDocHistory with it; for a Store without it, with
// EstimateRecordBytes.
type RecordSizer interface {
	RecordBytes(r Record) int64
}

// EstimateRecordBytes is what a record takes in a compact binary
// encoding (package storage's): a version byte, the rev, time and seq
// as varints, the client id, each component as a varint and an insert's
// text with its length, a 4-byte checksum; plus the client id again
// (its dedupe entry) and 32 bytes of keys and overhead. It is what the
// bytes on disk are, not the 16 bytes a component takes in memory: a
// one-character insert takes 3.
func EstimateRecordBytes(r Record) int64 {
	n := 1 + uvarintLen(uint64(r.Rev)) + varintLen(unixNano(r.Time)) + varintLen(r.Seq) +
		uvarintLen(uint64(len(r.Client))) + len(r.Client) + uvarintLen(uint64(len(r.Op))) + 4
	for _, c := range r.Op {
		n += varintLen(int64(c.N))
		if c.N == 0 {
			n += uvarintLen(uint64(len(c.S))) + len(c.S)
		}
	}
	return int64(n + len(r.Client) + 32)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// uvarintLen is len(binary.AppendUvarint(nil, v)).
func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// varintLen is len(binary.AppendVarint(nil, v)).
func varintLen(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return uvarintLen(u)
}

// recordBytes is what r adds to its document's op log in this server's
// store.
func (s *Server) recordBytes(r Record) int64 {
	if rs, ok := s.store.(RecordSizer); ok {
		return rs.RecordBytes(r)
	}
	return EstimateRecordBytes(r)
}

// storageFull returns an error wrapping ErrStorageFull when nothing
// that grows the data may be written now: a create without a body, say.
func (s *Server) storageFull(ctx context.Context) error {
	return s.admission.Admit(ctx, Growth{Inserts: true})
}

func inserts(op ot.Op) bool {
	for _, c := range op {
		if c.IsInsert() {
			return true
		}
	}
	return false
}
