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

// A Follower delivers a document's committed records, in revision order,
// each once: what every node with editors or viewers of the document runs
// to broadcast and acknowledge (docs/scaling.md). It is safe for
// concurrent use.
//
// It needs no consumer. The stream republishes each message it stores on
// subjectPub<id> (RePublish), and the Follower holds a plain subscription
// there; what it misses (it subscribed after, its connection dropped, the
// subscription fell behind and NATS dropped messages) it notices as a gap
// in revisions or as silence, and reads from the log with direct gets
// (direct.go). Messages it has delivered already are skipped. Ordered
// consumers, which it used before, now and then delivered nothing on
// three replicas until their heartbeat gave up, 10 s later, and each cost
// the stream leader a consumer per followed document.
type Follower struct {
	c      chan Record
	cancel context.CancelFunc
	done   chan struct{} // closed when the goroutine has exited

	// mu guards err.
	mu  sync.Mutex
	err error
}

// followPending bounds the messages a Follower's subscription holds for
// it: past that NATS drops them, and the Follower reads them from the log.
const followPending = 4096

// Follow starts delivering the records of document id with Rev > fromRev
// on C, the committed ones first and then each as it is committed, until
// Close or ctx ends. buf is C's capacity (minimum 1): a receiver that falls
// behind holds up only this follower.
func (s *Store) Follow(ctx context.Context, id string, fromRev int64, buf int) (*Follower, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	// Subscribed first: whatever is stored from now on reaches it, and
	// what was stored before is read from the log below.
	msgs := make(chan *nats.Msg, followPending)
	sub, err := s.nc.ChanSubscribe(subjectPub+id, msgs)
	if err != nil {
		return nil, fmt.Errorf("follow doc %s: %w", id, err)
	}
	e, err := s.last(ctx, id)
	if err == nil && e.seq == 0 {
		_, err = s.meta(ctx, id)
	}
	fromRev = max(fromRev, 0)
	if err == nil && fromRev > e.rev {
		err = fmt.Errorf("follow doc %s from rev %d: it ends at %d: %w", id, fromRev, e.rev, ErrConflict)
	}
	if err != nil {
		sub.Unsubscribe()
		return nil, err
	}
	fctx, cancel := context.WithCancel(ctx)
	f := &Follower{c: make(chan Record, max(buf, 1)), cancel: cancel, done: make(chan struct{})}
	// Where the log stood for fromRev, when known: the end just read.
	var at uint64
	if fromRev == e.rev {
		at = e.seq
	}
	go f.run(fctx, s, id, fromRev, at, sub, msgs)
	return f, nil
}

// Idle checks of a Follower. A republished message may be lost (core NATS
// delivers at most once: a reconnect, a slow subscription); if it was the
// last of a burst no later message shows the gap, and editors on the node
// would wait for their acks. So a follower that has received nothing for
// followIdle reads the subject's end from the leader, and if the log has
// moved past what it delivered, reads the records it lacks with direct
// gets and delivers them. While nothing happens the checks back off to
// one every followIdleMax.
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

func (f *Follower) run(ctx context.Context, s *Store, id string, rev int64, at uint64, sub *nats.Subscription, msgs <-chan *nats.Msg) {
	defer close(f.done)
	defer close(f.c)
	defer sub.Unsubscribe()
	// at is the stream sequence of the message holding rev when known,
	// else 0: a gap is then read from the message after it, where
	// finding where rev lies would take a binary search over the
	// stream, and each step of it, in a stream interleaving many
	// documents, walks many messages in the server.
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
	// fill reads what the log holds past rev; a failure to read is
	// retried at the next idle check.
	fill := func() error {
		before := rev
		if err := s.fill(ctx, id, rev, &at, deliver); err != nil {
			if errors.Is(err, ErrCorrupt) || ctx.Err() != nil {
				return err
			}
			s.log.Debug("follow: read the log's end", "doc", id, "err", err)
		}
		if rev > before {
			s.log.Debug("follow: read from the log", "doc", id, "from", before, "to", rev)
		}
		return nil
	}
	err := func() error {
		// What was committed before the subscription.
		if err := fill(); err != nil {
			return err
		}
		idle := followIdle
		timer := time.NewTimer(idle)
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
				before := rev
				if err := fill(); err != nil {
					return err
				}
				if rev > before {
					idle = followIdle
				} else {
					idle = min(2*idle, followIdleMax)
				}
				timer.Reset(idle)
				continue
			case msg := <-msgs:
				if s.followSkip {
					continue // a test's lost messages
				}
				recs, err := decodeGroup(msg.Header, msg.Data)
				if err != nil {
					return fmt.Errorf("follow doc %s: %v: %w", id, err, ErrCorrupt)
				}
				if len(recs) > 0 && recs[0].Rev > rev+1 {
					// Missed: read the gap, and this message, from the log.
					if err := fill(); err != nil {
						return err
					}
				}
				for _, r := range recs {
					if r.Rev > rev+1 {
						break // the log could not be read: the idle check will
					}
					if err := deliver(r); err != nil {
						return err
					}
				}
				if len(recs) > 0 && rev == recs[len(recs)-1].Rev {
					// Delivered through this message: where the next
					// gap would be read from.
					at, _ = strconv.ParseUint(msg.Header.Get(natsjs.SequenceHeader), 10, 64)
				}
				idle = followIdle
				if !timer.Stop() {
					select {
					case <-timer.C:
					default:
					}
				}
				timer.Reset(idle)
			}
		}
	}()
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// fill hands deliver the records of document id after rev that the log
// holds, read from the stream's end as the leader knows it. *at is the
// stream sequence of the message holding rev, or 0 when not known; fill
// moves it to the last message it read through.
func (s *Store) fill(ctx context.Context, id string, rev int64, at *uint64, deliver func(Record) error) error {
	e, err := s.last(ctx, id)
	if err != nil || e.rev <= rev {
		return err
	}
	var seq uint64
	fn := func(mseq uint64, r Record) error {
		if err := deliver(r); err != nil {
			return err
		}
		seq = mseq
		return nil
	}
	if *at == 0 || *at >= e.seq {
		err = s.records(ctx, id, rev, fn)
	} else {
		// Only the messages after the one holding rev: no search.
		err = s.scan(ctx, id, *at+1, e.seq, func(mseq uint64, recs []Record) error {
			for _, r := range recs {
				if err := fn(mseq, r); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if seq != 0 {
		*at = seq
	}
	return err
}
