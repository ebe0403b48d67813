package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
	owner    string // the node the lease named when last read ("": read it)
	trying   bool   // a TryOwn is under way
	lost     bool   // LinkLost was sent
	done     bool   // Close was called
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

// Forwarding follows the lease, not "nobody answers". An op goes to the
// node the lease names (cached, re-read when that node does not answer).
// A node that stopped answering (paused: SIGSTOP, a long stall) still
// holds its subscriptions, and would until NATS noticed minutes later; its
// lease, though, lapses a TTL after its last renewal. So when a request
// times out the follower reads the lease: while the same node holds it the
// op is sent again (ops are deduplicated by client and seq), and once it
// has lapsed Forward reports ErrNoOwner and the hub takes the lease. A
// lapsed owner stops at once on its own (its Lease reports Lost).
const (
	// forwardTry bounds the first request to the owner within a Forward.
	forwardTry = time.Second
	// forwardProbe bounds the later ones, between reads of the lease.
	forwardProbe = 250 * time.Millisecond
)

func (l *jsLink) Forward(ctx context.Context, s collab.Submission) (collab.SubmitReply, error) {
	sub := jetstream.Submission{Client: s.Client, Seq: s.Seq, Rev: s.Rev, Op: s.Op, Strict: s.Strict,
		Stream: (*jetstream.StreamPiece)(s.Stream)}
	// A stream's piece is not deduplicated by the owner: never sent twice.
	resend := s.Stream == nil
	try := forwardTry
	fresh := false
	for {
		node, err := l.ownerNode(ctx, fresh)
		if err != nil {
			return collab.SubmitReply{}, err
		}
		tctx, cancel := context.WithTimeout(ctx, try)
		r, err := l.c.st.ForwardTo(tctx, l.id, node, sub)
		cancel()
		if err == nil {
			return collab.SubmitReply{Code: r.Code, Message: r.Message, Rev: r.Rev, Caret: r.Caret}, nil
		}
		unserved := errors.Is(err, jetstream.ErrNoOwner)
		timedOut := !unserved && ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout))
		if !unserved && !timedOut {
			return collab.SubmitReply{}, mapJSErr(err)
		}
		// Who holds the lease now?
		now, lerr := l.ownerNode(ctx, true)
		switch {
		case lerr != nil:
			return collab.SubmitReply{}, lerr
		case now != node && (unserved || resend):
			fresh = false // another node took it over: send it there
		case unserved:
			// The lease names a node that does not serve the document:
			// dead, or giving it up. The hub tries to take it.
			return collab.SubmitReply{}, mapJSErr(err)
		case !resend:
			return collab.SubmitReply{}, mapJSErr(err)
		default:
			// The owner holds its lease and does not answer: ask again,
			// briefly, until it answers or its lease lapses.
			try = forwardProbe
		}
	}
}

// ownerNode returns the node that holds the document's lease, from the
// cache unless fresh; collab.ErrNoOwner when none does.
func (l *jsLink) ownerNode(ctx context.Context, fresh bool) (string, error) {
	l.mu.Lock()
	node := l.owner
	l.mu.Unlock()
	if node != "" && !fresh {
		return node, nil
	}
	node, err := l.c.st.Owner(ctx, l.id)
	if errors.Is(err, jetstream.ErrNotFound) {
		err = fmt.Errorf("%w: the lease of doc %s has lapsed", collab.ErrNoOwner, l.id)
	}
	if err != nil {
		l.mu.Lock()
		l.owner = ""
		l.mu.Unlock()
		return "", mapJSErr(err)
	}
	l.mu.Lock()
	l.owner = node
	l.mu.Unlock()
	return node, nil
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
