package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// The webhook outbox of a cluster: a stream every node adds its events to,
// delivered by one node at a time, the holder of the "webhooks" lease. So
// events outlive the node that queued them: when the node delivering them
// dies its lease lapses and another node takes over from the oldest event
// still in the stream (what was being posted may be posted again:
// deliveries are at least once, and each event has its own id).
//
// The stream's own limits (messages and bytes, oldest dropped first)
// bound it, whichever node adds.
const (
	streamHooks  = "COLLAB_HOOKS"
	subjectHooks = "collab.hooks"
	hooksLease   = "webhooks"
	// hooksAcquireWait bounds one try to take the delivery lease.
	hooksAcquireWait = time.Second
)

// HookEvent is one queued webhook event.
type HookEvent struct {
	Seq    uint64
	Queued time.Time
	Body   []byte
}

// Outbox is the cluster's webhook outbox. It is safe for concurrent use.
type Outbox struct {
	s  *Store
	st natsjs.Stream

	// mu guards lease: held while this node delivers.
	mu    sync.Mutex
	lease *Lease
}

// Outbox creates (or updates) the cluster's webhook outbox, bounded to
// maxEvents events and maxBytes bytes (non-positive: no bound).
func (s *Store) Outbox(ctx context.Context, maxEvents, maxBytes int64) (*Outbox, error) {
	if maxEvents <= 0 {
		maxEvents = -1
	}
	if maxBytes <= 0 {
		maxBytes = -1
	}
	st, err := s.js.CreateOrUpdateStream(ctx, natsjs.StreamConfig{
		Name:        streamHooks,
		Description: "collabd webhook events waiting for delivery, oldest first",
		Subjects:    []string{subjectHooks},
		Storage:     natsjs.FileStorage,
		Replicas:    s.replicas,
		Retention:   natsjs.LimitsPolicy,
		Discard:     natsjs.DiscardOld,
		MaxMsgs:     maxEvents,
		MaxBytes:    maxBytes,
		AllowDirect: true,
	})
	if err != nil {
		return nil, fmt.Errorf("jetstream: stream %s: %w", streamHooks, err)
	}
	return &Outbox{s: s, st: st}, nil
}

// Add queues bodies, in order, each once it is stored.
func (o *Outbox) Add(ctx context.Context, bodies [][]byte) error {
	for _, b := range bodies {
		// A message id: a publish asked again (publishTry) is stored once.
		if _, err := o.s.js.Publish(ctx, subjectHooks, b, natsjs.WithMsgID(uuid.NewString()),
			natsjs.WithExpectStream(streamHooks)); err != nil {
			return fmt.Errorf("webhook outbox: %w", err)
		}
	}
	return nil
}

// Pending returns up to limit of the oldest queued events, if this node
// delivers them (it holds the "webhooks" lease, or takes it now);
// otherwise none.
func (o *Outbox) Pending(ctx context.Context, limit int) ([]HookEvent, error) {
	if !o.delivers(ctx) {
		return nil, nil
	}
	var out []HookEvent
	seq := uint64(1)
	for len(out) < limit {
		m, err := o.st.GetMsg(ctx, seq, natsjs.WithGetMsgSubject(subjectHooks))
		if errors.Is(err, natsjs.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("webhook outbox: %w", err)
		}
		out = append(out, HookEvent{Seq: m.Sequence, Queued: m.Time, Body: m.Data})
		seq = m.Sequence + 1
	}
	return out, nil
}

// Remove drops every event up to seq (the events delivered are always
// the oldest).
func (o *Outbox) Remove(ctx context.Context, seq uint64) error {
	if err := o.st.Purge(ctx, natsjs.WithPurgeSequence(seq+1)); err != nil {
		return fmt.Errorf("webhook outbox: %w", err)
	}
	return nil
}

// Size returns how many events are queued and the bytes they take.
func (o *Outbox) Size(ctx context.Context) (int, int64, error) {
	info, err := o.st.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("webhook outbox: %w", err)
	}
	return int(info.State.Msgs), int64(info.State.Bytes), nil
}

// Delivers reports whether this node holds the delivery lease now.
func (o *Outbox) Delivers() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lease != nil && o.lease.Valid()
}

// delivers reports whether this node delivers the events: it holds the
// lease, or has just taken it.
func (o *Outbox) delivers(ctx context.Context) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.lease != nil {
		if o.lease.Valid() {
			return true
		}
		o.lease.Close()
		o.lease = nil
	}
	actx, cancel := context.WithTimeout(ctx, hooksAcquireWait)
	defer cancel()
	l, err := o.s.Acquire(actx, hooksLease)
	if err != nil {
		if !errors.Is(err, ErrHeld) {
			o.s.log.Debug("jetstream: take the webhook delivery lease", "err", err)
		}
		return false
	}
	o.lease = l
	return true
}

// Close gives up delivering: another node takes over at once.
func (o *Outbox) Close() {
	o.mu.Lock()
	l := o.lease
	o.lease = nil
	o.mu.Unlock()
	if l != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := l.Release(ctx); err != nil {
			l.Close()
		}
	}
}
