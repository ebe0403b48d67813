package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// A Follower delivers a document's committed records, in revision order,
// each once, from an ordered consumer on its subject: what every node with
// editors or viewers of the document runs to broadcast and acknowledge
// (docs/scaling.md). It is safe for concurrent use.
//
// An ordered consumer recreates itself after a reconnect or a missed
// heartbeat at the sequence after the last one it delivered, so a dropped
// connection delays records but never loses or repeats one; the Follower
// also checks that revisions run without a gap and skips any it has
// already delivered.
type Follower struct {
	c      chan Record
	cancel context.CancelFunc
	done   chan struct{} // closed when the goroutine has exited

	// mu guards err.
	mu  sync.Mutex
	err error
}

// Follow starts delivering the records of document id with Rev > fromRev
// on C, the committed ones first and then each as it is committed, until
// Close or ctx ends. buf is C's capacity (minimum 1): a receiver that falls
// behind holds up only this follower, whose consumer then waits.
func (s *Store) Follow(ctx context.Context, id string, fromRev int64, buf int) (*Follower, error) {
	e, err := s.last(ctx, id)
	if err != nil {
		return nil, err
	}
	if e.seq == 0 {
		if _, err := s.meta(ctx, id); err != nil {
			return nil, err
		}
	}
	fromRev = max(fromRev, 0)
	if fromRev > e.rev {
		return nil, fmt.Errorf("follow doc %s from rev %d: it ends at %d: %w", id, fromRev, e.rev, ErrConflict)
	}
	// Start at the message holding fromRev+1, or just past the end: a
	// start sequence rather than "deliver new", so nothing committed
	// between this read and the consumer's creation is missed.
	start := e.seq + 1
	if fromRev < e.rev {
		if start, err = s.seek(ctx, id, fromRev, e); err != nil {
			return nil, err
		}
	}
	cons, err := s.ops.OrderedConsumer(ctx, natsjs.OrderedConsumerConfig{
		FilterSubjects: []string{opsSubject(id)},
		DeliverPolicy:  natsjs.DeliverByStartSequencePolicy,
		OptStartSeq:    start,
	})
	if err != nil {
		return nil, fmt.Errorf("follow doc %s: %w", id, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("follow doc %s: %w", id, err)
	}
	fctx, cancel := context.WithCancel(ctx)
	f := &Follower{c: make(chan Record, max(buf, 1)), cancel: cancel, done: make(chan struct{})}
	go f.run(fctx, s, id, fromRev, it)
	return f, nil
}

// Idle checks of a Follower. An ordered consumer on three replicas now and
// then delivers nothing until its heartbeat gives up, 10 s later; editors
// on the node would wait that long for their acks. So a follower that has
// delivered nothing for followIdle reads the subject's end from the
// leader, and if the log has moved past what it delivered, reads the
// records it lacks with direct gets (direct.go) and delivers them; the
// consumer's copies of them are skipped when they come. While nothing
// happens the checks back off to one every followIdleMax.
const (
	followIdle    = time.Second
	followIdleMax = 30 * time.Second
)

// C delivers the records. It is closed when the follower stops; Err then
// says why.
func (f *Follower) C() <-chan Record { return f.c }

// Err returns why the follower stopped: ErrClosed after Close, the
// context's error, ErrCorrupt for a gap or an undecodable message, or a
// NATS error. Nil while it runs.
func (f *Follower) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Close stops the follower and waits for its goroutine. Idempotent.
func (f *Follower) Close() {
	f.cancel()
	<-f.done
	f.mu.Lock()
	if f.err == nil || errors.Is(f.err, context.Canceled) {
		f.err = ErrClosed
	}
	f.mu.Unlock()
}

func (f *Follower) run(ctx context.Context, s *Store, id string, rev int64, it natsjs.MessagesContext) {
	defer close(f.done)
	defer close(f.c)
	// Stop unblocks Next when ctx ends, and also ends the server-side
	// consumer promptly.
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	deliver := func(r Record) error {
		if r.Rev <= rev {
			return nil
		}
		if r.Rev != rev+1 {
			return fmt.Errorf("follow doc %s: rev %d follows %d: %w", id, r.Rev, rev, ErrCorrupt)
		}
		select {
		case f.c <- r:
			rev = r.Rev
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := func() error {
		idle := followIdle
		for {
			msg, err := it.Next(natsjs.NextMaxWait(idle))
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, nats.ErrTimeout) {
				before := rev
				if err := s.fill(ctx, id, rev, deliver); err != nil {
					if errors.Is(err, ErrCorrupt) || ctx.Err() != nil {
						return err
					}
					s.log.Debug("follow: read the log's end", "doc", id, "err", err)
				}
				if rev > before {
					s.log.Debug("follow: the consumer was behind; read from the log", "doc", id, "from", before, "to", rev)
					idle = followIdle
				} else {
					idle = min(2*idle, followIdleMax)
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("follow doc %s: %w", id, err)
			}
			idle = followIdle
			if s.followSkip {
				continue // a test's stalled consumer
			}
			recs, err := decodeGroup(msg.Headers(), msg.Data())
			if err != nil {
				return fmt.Errorf("follow doc %s: %v: %w", id, err, ErrCorrupt)
			}
			for _, r := range recs {
				if err := deliver(r); err != nil {
					return err
				}
			}
		}
	}()
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// fill hands deliver the records of document id after rev that the log
// holds, read from the stream's end as the leader knows it.
func (s *Store) fill(ctx context.Context, id string, rev int64, deliver func(Record) error) error {
	e, err := s.last(ctx, id)
	if err != nil || e.rev <= rev {
		return err
	}
	return s.records(ctx, id, rev, func(_ uint64, r Record) error { return deliver(r) })
}
