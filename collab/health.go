package collab

import (
	"context"
	"errors"
	"sync"
	"time"
)

// writeFailureHold is how long /healthz reports a failed write of the
// store when no write has succeeded since. A node taken out of its load
// balancer gets no more writes to prove it healthy, so the failure is
// not kept for ever: after this long the node is offered traffic again,
// and the next failed commit takes it out again.
const writeFailureHold = time.Minute

// writeHealth remembers how the store's latest writes went: commits,
// creates and snapshots, the writes that carry clients' data. Ping
// proves little on its own: bbolt can write its small record into a free
// page of a file on a full disk while every commit that must grow the
// file fails. It is safe for concurrent use.
type writeHealth struct {
	mu     sync.Mutex
	failed time.Time // the latest failure, zero once a write succeeded after it
	err    error
}

// noteWrite records the outcome of a write. Errors that say nothing of
// the store's ability to write (an unknown or deleted document, a node
// that no longer owns one, a client that went away) are not failures.
func (s *Server) noteWrite(err error) {
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNoOwner), errors.Is(err, context.Canceled):
		return
	}
	g := &s.writes
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		g.failed, g.err = time.Time{}, nil
		return
	}
	g.failed, g.err = time.Now(), err
}

// noteCommit is noteWrite for a hub's commit or snapshot. In cluster
// mode (solo false) one fails as often because another node took the
// document, so there only the store's Ping speaks for its health.
func (s *Server) noteCommit(err error, solo bool) {
	if solo {
		s.noteWrite(err)
	}
}

// writeFailure returns the store's latest write error and its time, if
// no write has succeeded since and it is less than writeFailureHold old.
func (s *Server) writeFailure() (time.Time, error) {
	g := &s.writes
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err == nil || time.Since(g.failed) >= writeFailureHold {
		return time.Time{}, nil
	}
	return g.failed, g.err
}
