package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// A Lease is this node's claim to own one document: key doc id in the
// collab_owners bucket, whose max age is the lease TTL. Acquire creates the
// key (only if absent); a goroutine owned by the Lease renews it with a
// compare-and-set on the key's revision every RenewEvery, and the bucket
// drops the key TTL after the last successful renewal.
//
// The lease is advice, not the fence: it says who should append, and Append
// is fenced by stream position whoever holds it. So a lease may be trusted
// loosely, and the timing below is conservative rather than exact.
//
// Lease is safe for concurrent use.
type Lease struct {
	s   *Store
	doc string

	cancel context.CancelFunc
	done   chan struct{} // closed when the renew loop has exited
	lost   chan struct{} // closed when the lease is known or presumed gone

	// mu guards the fields below.
	mu sync.Mutex
	// rev is the key's revision after our last write, for the next CAS.
	rev uint64
	// deadline is when the key may expire at the earliest: TTL after the
	// moment our last successful renewal was sent. The server stamps the
	// message later than that, so this errs early, whatever the clocks.
	deadline time.Time
	err      error // why the lease was lost; nil while held
}

// Acquire takes the owner lease of document doc for this node and starts
// renewing it. It fails with ErrHeld (naming the holder) if another node
// holds it. A key naming this node is taken over (see reacquire); a node
// restarted with the same NodeID therefore gets its documents back at once
// instead of after the TTL, so NodeIDs must be unique among live nodes.
func (s *Store) Acquire(ctx context.Context, doc string) (*Lease, error) {
	if err := checkID(doc); err != nil {
		return nil, err
	}
	sent := time.Now()
	rev, err := s.owners.Create(ctx, doc, []byte(s.node))
	if errors.Is(err, natsjs.ErrKeyExists) {
		rev, err = s.reacquire(ctx, doc)
	}
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", doc, err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	l := &Lease{
		s: s, doc: doc, cancel: cancel,
		done: make(chan struct{}), lost: make(chan struct{}),
		rev: rev, deadline: sent.Add(s.ttl),
	}
	go l.renewLoop(rctx)
	return l, nil
}

// reacquire takes over a key that exists: only if it names this node (a
// lease this process closed without releasing, say when a hub closed and
// the document reopened at once), by a CAS on the entry's revision, so a
// Lease of ours still renewing it would lose its next CAS and report Lost.
// Otherwise ErrHeld, naming the holder.
func (s *Store) reacquire(ctx context.Context, doc string) (uint64, error) {
	e, err := s.owners.Get(ctx, doc)
	if errors.Is(err, natsjs.ErrKeyNotFound) {
		// Expired between our Create and this Get; the caller retries.
		return 0, fmt.Errorf("held by nobody now: %w", ErrHeld)
	}
	if err != nil {
		return 0, err
	}
	if holder := string(e.Value()); holder != s.node {
		return 0, fmt.Errorf("held by %s: %w", holder, ErrHeld)
	}
	rev, err := s.owners.Update(ctx, doc, []byte(s.node), e.Revision())
	if errors.Is(err, natsjs.ErrKeyRevisionMismatch) || isWrongLastSeq(err) {
		return 0, fmt.Errorf("changed hands meanwhile: %w", ErrHeld)
	}
	return rev, err
}

// Owner returns the node id holding document doc's lease, or ErrNotFound
// when nobody does.
func (s *Store) Owner(ctx context.Context, doc string) (string, error) {
	if err := checkID(doc); err != nil {
		return "", err
	}
	e, err := s.owners.Get(ctx, doc)
	if errors.Is(err, natsjs.ErrKeyNotFound) {
		return "", fmt.Errorf("lease %s: %w", doc, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("lease %s: %w", doc, err)
	}
	return string(e.Value()), nil
}

// Doc returns the document the lease is for.
func (l *Lease) Doc() string { return l.doc }

// Lost is closed once the lease is gone or may be: another node's write
// won the CAS, the key expired, or no renewal succeeded before the
// deadline. The owner should then stop accepting ops for the document.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Err returns nil while the lease is held, then why it was lost
// (wrapping ErrLeaseLost), or ErrClosed after Close or Release.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Valid reports whether the lease is held and its deadline not passed.
func (l *Lease) Valid() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err == nil && time.Now().Before(l.deadline)
}

// Close stops renewing and waits for the renew loop, leaving the key to
// expire: what a crash does, minus the crash. Idempotent.
func (l *Lease) Close() {
	l.cancel()
	<-l.done
	l.fail(ErrClosed)
}

// Release stops renewing and deletes the key if it is still ours (CAS on
// its revision), so another node can take the document at once instead of
// waiting out the TTL. A graceful shutdown releases every lease.
func (l *Lease) Release(ctx context.Context) error {
	l.Close()
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()
	err := l.s.owners.Delete(ctx, l.doc, natsjs.LastRevision(rev))
	if err != nil && !isWrongLastSeq(err) && !errors.Is(err, natsjs.ErrKeyNotFound) {
		return fmt.Errorf("lease %s: release: %w", l.doc, err)
	}
	return nil
}

// fail records the first reason the lease ended and closes lost.
func (l *Lease) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = err
		close(l.lost)
	}
}

func (l *Lease) renewLoop(ctx context.Context) {
	defer close(l.done)
	tick := time.NewTicker(l.s.renew)
	defer tick.Stop()
	for {
		l.mu.Lock()
		wait := time.Until(l.deadline)
		l.mu.Unlock()
		expire := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			expire.Stop()
			return
		case <-expire.C:
			l.fail(fmt.Errorf("lease %s: not renewed within %v: %w", l.doc, l.s.ttl, ErrLeaseLost))
			return
		case <-tick.C:
			expire.Stop()
		}
		if err := l.renewOnce(ctx); err != nil {
			l.fail(err)
			return
		}
	}
}

// renewOnce tries one renewal. It returns an error only when the lease is
// certainly lost; a timeout or a cut connection is retried on the next
// tick until the deadline.
func (l *Lease) renewOnce(ctx context.Context) error {
	l.mu.Lock()
	rev, deadline := l.rev, l.deadline
	l.mu.Unlock()
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	sent := time.Now()
	next, err := l.s.renewKey(ctx, l.doc, rev)
	switch {
	case err == nil:
		l.mu.Lock()
		l.rev, l.deadline = next, sent.Add(l.s.ttl)
		l.mu.Unlock()
		return nil
	case errors.Is(err, natsjs.ErrKeyRevisionMismatch) || isWrongLastSeq(err):
		// Expired and maybe taken: someone else's write, or none at all.
		return fmt.Errorf("lease %s: %v: %w", l.doc, err, ErrLeaseLost)
	default:
		if ctx.Err() == nil {
			l.s.log.Warn("jetstream: lease renewal failed; retrying", "doc", l.doc, "err", err)
		}
		return nil
	}
}

// renewKey writes this node's id as the value of key in the owners
// bucket, as owners.Update(key, node, rev) does, through storeMsg: a
// renewal of every lease every TTL/3 is a steady stream of publishes.
func (s *Store) renewKey(ctx context.Context, key string, rev uint64) (uint64, error) {
	m := nats.NewMsg("$KV." + bucketOwners + "." + key)
	m.Data = []byte(s.node)
	m.Header.Set(natsjs.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
	ack, err := s.storeMsg(ctx, m)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}
