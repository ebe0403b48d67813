package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/storage/jetstream"
)

// jsCluster implements collab.Cluster on JetStream: a document's hub on
// this node links to the others through a lease, the document's op
// subject, its request/reply subject and its notice subject
// (docs/scaling.md).
type jsCluster struct {
	st   *jetstream.Store
	node []byte // this node's id, prefixed to its notices
	log  *slog.Logger

	mu    sync.Mutex
	links map[*jsLink]struct{}

	cancel context.CancelFunc
	wg     sync.WaitGroup

	// gate, set only by tests, stalls the records follower links pass
	// to their hubs until the channel it holds is closed: a node whose
	// log lags (cluster_inproc_test.go).
	gate atomic.Pointer[chan struct{}]
}

// disconnectGrace is how long a node may be cut from NATS before its hubs
// give up their documents and close their clients, so that those
// reconnect to a node that can serve them.
const disconnectGrace = 3 * time.Second

// linkEvents is the capacity of a link's event channel.
const linkEvents = 1024

func newJSCluster(st *jetstream.Store, log *slog.Logger) *jsCluster {
	ctx, cancel := context.WithCancel(context.Background())
	c := &jsCluster{st: st, node: []byte(st.NodeID() + "\n"), log: log,
		links: make(map[*jsLink]struct{}), cancel: cancel}
	c.wg.Add(1)
	go c.watch(ctx)
	return c
}

// close stops the connection watch. The hubs close their own links.
func (c *jsCluster) close() {
	c.cancel()
	c.wg.Wait()
}

// watch ends every link once NATS has been unreachable for
// disconnectGrace: the lease will not be renewed, the log cannot be
// followed, and clients are better served by another node.
func (c *jsCluster) watch(ctx context.Context) {
	defer c.wg.Done()
	nc := c.st.Conn()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var since time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if nc.Status() == nats.CONNECTED {
				since = time.Time{}
				continue
			}
			if since.IsZero() {
				since = now
				continue
			}
			if now.Sub(since) < disconnectGrace {
				continue
			}
			c.mu.Lock()
			links := make([]*jsLink, 0, len(c.links))
			for l := range c.links {
				links = append(links, l)
			}
			c.mu.Unlock()
			for _, l := range links {
				l.lose(errors.New("disconnected from NATS"))
			}
		}
	}
}

func (c *jsCluster) Link(ctx context.Context, id string) (collab.DocLink, bool, error) {
	l := &jsLink{c: c, id: id, events: make(chan collab.LinkEvent, linkEvents), closed: make(chan struct{})}
	lease, err := c.st.Acquire(ctx, id)
	switch {
	case err == nil:
		l.lease = lease
	case errors.Is(err, jetstream.ErrHeld):
	default:
		return nil, false, mapJSErr(err)
	}
	c.mu.Lock()
	c.links[l] = struct{}{}
	c.mu.Unlock()
	return l, l.lease != nil, nil
}

// jsLink is one document's collab.DocLink.
type jsLink struct {
	c      *jsCluster
	id     string
	events chan collab.LinkEvent
	closed chan struct{}
	wg     sync.WaitGroup

	mu       sync.Mutex
	lease    *jetstream.Lease // nil while a follower
	serving  *jetstream.Serving
	follower *jetstream.Follower
	peers    *nats.Subscription
	trying   bool // a TryOwn is under way
	lost     bool // LinkLost was sent
	done     bool // Close was called
}

// emit hands an event to the hub, or drops it once the link is closed.
func (l *jsLink) emit(ev collab.LinkEvent) bool {
	select {
	case l.events <- ev:
		return true
	case <-l.closed:
		return false
	}
}

// lose tells the hub, once, that the link cannot go on.
func (l *jsLink) lose(err error) {
	l.mu.Lock()
	if l.lost || l.done {
		l.mu.Unlock()
		return
	}
	l.lost = true
	l.mu.Unlock()
	l.emit(collab.LinkEvent{Kind: collab.LinkLost, Err: err})
}

func (l *jsLink) Events() <-chan collab.LinkEvent { return l.events }

func (l *jsLink) Start(ctx context.Context, rev int64) error {
	sub, err := l.c.st.SubscribePeers(l.id, l.notice)
	if err != nil {
		return mapJSErr(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.peers = sub
	if l.lease != nil {
		return l.serveLocked()
	}
	return l.followLocked(ctx, rev)
}

// serveLocked takes forwarded ops and watches the lease. l.mu is held.
func (l *jsLink) serveLocked() error {
	sv, err := l.c.st.ServeAsync(l.id, func(sub jetstream.Submission, respond func(jetstream.Reply)) {
		l.emit(collab.LinkEvent{
			Kind: collab.LinkSubmit,
			Submission: collab.Submission{Client: sub.Client, Seq: sub.Seq, Rev: sub.Rev, Op: sub.Op, Strict: sub.Strict,
				Stream: (*collab.StreamPiece)(sub.Stream)},
			Respond: func(r collab.SubmitReply) {
				respond(jetstream.Reply{Code: r.Code, Message: r.Message, Rev: r.Rev, Caret: r.Caret})
			},
		})
	})
	if err != nil {
		return err
	}
	l.serving = sv
	lease := l.lease
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		select {
		case <-lease.Lost():
			l.lose(lease.Err())
		case <-l.closed:
		}
	}()
	return nil
}

// followLocked delivers the records after rev. l.mu is held.
func (l *jsLink) followLocked(ctx context.Context, rev int64) error {
	f, err := l.c.st.Follow(context.Background(), l.id, rev, 256)
	if err != nil {
		return mapJSErr(err)
	}
	l.follower = f
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for r := range f.C() {
			if g := l.c.gate.Load(); g != nil {
				select {
				case <-*g:
				case <-l.closed:
					return
				}
			}
			if !l.emit(collab.LinkEvent{Kind: collab.LinkRecord, Record: fromJS(r)}) {
				return
			}
		}
		// Unless the link stopped it (Close, or a take-over), the log
		// can no longer be followed.
		l.mu.Lock()
		mine := l.follower == f && !l.done
		l.mu.Unlock()
		if mine {
			l.lose(f.Err())
		}
	}()
	return nil
}

// notice passes on another node's notice.
func (l *jsLink) notice(data []byte) {
	own := l.c.node
	if bytes.HasPrefix(data, own) {
		return
	}
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		return
	}
	l.emit(collab.LinkEvent{Kind: collab.LinkNotice, Notice: data[i+1:]})
}

func (l *jsLink) Notify(n []byte) {
	msg := make([]byte, 0, len(l.c.node)+len(n))
	msg = append(append(msg, l.c.node...), n...)
	if err := l.c.st.PublishPeer(l.id, msg); err != nil {
		l.c.log.Debug("send notice", "err", err)
	}
}

func (l *jsLink) Forward(ctx context.Context, s collab.Submission) (collab.SubmitReply, error) {
	r, err := l.c.st.Forward(ctx, l.id, jetstream.Submission{Client: s.Client, Seq: s.Seq, Rev: s.Rev, Op: s.Op, Strict: s.Strict,
		Stream: (*jetstream.StreamPiece)(s.Stream)})
	if err != nil {
		return collab.SubmitReply{}, mapJSErr(err)
	}
	return collab.SubmitReply{Code: r.Code, Message: r.Message, Rev: r.Rev, Caret: r.Caret}, nil
}

func (l *jsLink) TryOwn() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.trying || l.lease != nil || l.done {
		return
	}
	l.trying = true
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		lease, err := l.c.st.Acquire(ctx, l.id)
		cancel()
		l.mu.Lock()
		l.trying = false
		if err != nil || l.done {
			l.mu.Unlock()
			if err == nil {
				release(lease) // won as the link closed: hand it on at once
			}
			return
		}
		l.lease = lease
		// Stop following first: from now on the hub sequences, and reads
		// what it missed from the store.
		f := l.follower
		l.follower = nil
		l.mu.Unlock()
		if f != nil {
			f.Close()
		}
		// The hub hears it is the owner before any submission can reach
		// it: it must first read the log's tail (promote), or it would
		// sequence a submission on a revision behind the log.
		if !l.emit(collab.LinkEvent{Kind: collab.LinkOwner}) {
			return // closed: Close has released the lease
		}
		l.mu.Lock()
		if l.done {
			l.mu.Unlock()
			return
		}
		err = l.serveLocked()
		l.mu.Unlock()
		if err != nil {
			l.lose(err)
		}
	}()
}

func (l *jsLink) Close() {
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return
	}
	l.done = true
	close(l.closed)
	lease, sv, f, peers := l.lease, l.serving, l.follower, l.peers
	l.mu.Unlock()
	if peers != nil {
		peers.Unsubscribe()
	}
	if sv != nil {
		// Not Close, which drains and so may wait out a disconnection:
		// the hub answers nothing more, and a subscription left in the
		// queue group would take a share of the other nodes' forwards.
		sv.Stop()
	}
	if f != nil {
		f.Close()
	}
	l.wg.Wait()
	if lease != nil {
		release(lease)
	}
	l.c.mu.Lock()
	delete(l.c.links, l)
	l.c.mu.Unlock()
}

// release gives a lease up at once rather than after its TTL; if NATS
// cannot be told, the lease just stops being renewed.
func release(lease *jetstream.Lease) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := lease.Release(ctx); err != nil {
		lease.Close()
	}
}
