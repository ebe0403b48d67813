package collab

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// memAccess is an in-memory AccessStore for tests.
type memAccess struct {
	mu       sync.Mutex
	records  map[string]Access
	sessions map[string]Session
}

func newMemAccess() *memAccess {
	return &memAccess{records: map[string]Access{}, sessions: map[string]Session{}}
}

func (m *memAccess) Access(ctx context.Context, doc string) (Access, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.records[doc]
	if !ok {
		return Access{}, fmt.Errorf("access %s: %w", doc, ErrNotFound)
	}
	a.Members = slices.Clone(a.Members)
	return a, nil
}

func (m *memAccess) SetAccess(ctx context.Context, doc string, a Access) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a.Members = slices.Clone(a.Members)
	m.records[doc] = a
	return nil
}

func (m *memAccess) DeleteAccess(ctx context.Context, doc string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.records, doc)
	return nil
}

func (m *memAccess) Session(ctx context.Context, key string) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[key]
	if !ok {
		return Session{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	return s, nil
}

func (m *memAccess) SetSession(ctx context.Context, key string, s Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[key] = s
	return nil
}

func (m *memAccess) DeleteSession(ctx context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, key)
	return nil
}
