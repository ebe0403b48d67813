package collab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/collabd/collabd/ot"
)

// Cluster mode (docs/scaling.md). When the Store also implements Cluster,
// several nodes serve the same documents. Each document has one owner
// node at a time; its hub is the ordinary hub, which transforms, batches
// and appends, and whose store refuses an append at a position another
// node has taken. A hub of the document on any other node is a follower:
// it applies the records the store delivers from the document's log,
// acknowledges its own editors' ops when their records arrive (so an ack
// never overtakes a broadcast, and means the op is durable), and forwards
// its editors' ops to the owner. Presence, leaves and takeovers of a
// client's session travel between the nodes as notices.
//
// A hub learns everything from its DocLink's events, in its own goroutine,
// so it stays one actor.

// Cluster is implemented by a Store shared by several nodes.
type Cluster interface {
	// Link joins this node to document id, trying to become its owner.
	// The hub then loads the document and calls Start.
	Link(ctx context.Context, id string) (link DocLink, owner bool, err error)
}

// DocLink is one hub's tie to the other nodes serving its document.
type DocLink interface {
	// Start begins the events: submissions from other nodes if this node
	// owns the document, else the records committed after rev.
	Start(ctx context.Context, rev int64) error
	// Events delivers LinkEvents until Close.
	Events() <-chan LinkEvent
	// Forward sends an op to the owner. ErrNoOwner means nobody owns the
	// document now; any other error is ambiguous (the op may have been
	// taken), and the resend is deduplicated.
	Forward(ctx context.Context, s Submission) (SubmitReply, error)
	// TryOwn asks the link to take the document's lease, in the
	// background; LinkOwner follows if it did.
	TryOwn()
	// Notify sends a notice to the document's hubs on other nodes.
	Notify(notice []byte)
	// Close ends the link, handing the lease over if this node held it.
	Close()
}

// LinkEventKind says what a LinkEvent carries.
type LinkEventKind int

const (
	// LinkRecord: Record was committed (follower only).
	LinkRecord LinkEventKind = iota + 1
	// LinkSubmit: another node forwards Submission; answer with Respond,
	// once (owner only).
	LinkSubmit
	// LinkNotice: another node's hub sent Notice.
	LinkNotice
	// LinkOwner: this node now holds the lease, and submissions follow
	// instead of records.
	LinkOwner
	// LinkLost: the link cannot go on (lease lost, log unreadable,
	// disconnected from the cluster for too long): Err says why.
	LinkLost
)

// LinkEvent is one event of a DocLink.
type LinkEvent struct {
	Kind       LinkEventKind
	Record     Record
	Submission Submission
	Respond    func(SubmitReply)
	Notice     []byte
	Err        error
}

// Submission is an op forwarded to the owner: an editor's (Client set) or
// a restore's (Client empty, Seq 0).
type Submission struct {
	Client string
	Seq    int64
	Rev    int64
	Op     ot.Op
	// Strict, for an HTTP write (Client "http:..."), asks that the op be
	// applied only if the head is still Rev (writefwd.go).
	Strict bool
	// Stream, instead of Op, is a piece of an HTTP stream (stream.go):
	// the owner inserts its text at its caret (a position at Rev) and
	// answers with the caret after it.
	Stream *StreamPiece
	// Rotate, instead of Op, asks the owner to move the document to
	// these new ids (rotate.go).
	Rotate *DocMeta
}

// StreamPiece is a stream's piece as it travels to the owner: Text to
// insert at Caret (none: just show the stream in presence as Name), or
// End, which takes the stream out of presence.
type StreamPiece struct {
	Caret int
	Text  string
	Name  string
	End   bool
}

// SubmitReply is the owner's verdict on a Submission: empty Code when it
// took the op (its record follows on the log), else the protocol error
// for the editor. Rev is the revision a restore became, once committed.
type SubmitReply struct {
	Code    string
	Message string
	Rev     int64
	// Caret is a stream's caret after its piece, at Rev.
	Caret int
}

// ErrNoOwner is what DocLink.Forward returns (possibly wrapped) when no
// node owns the document.
var ErrNoOwner = errors.New("no owner")

// Timings of forwarding.
const (
	forwardTimeout = 2 * time.Second
	// forwardRetry is how often ops forwarded but not yet seen committed
	// are looked at again.
	forwardRetry = 200 * time.Millisecond
	// forwardResend is how long an op the owner took may stay unseen on
	// the log before it is forwarded again: the owner may have died with
	// it in its batch.
	forwardResend = time.Second
	// peerRefresh is how often a hub repeats its editors' presence for
	// the other nodes, and peerExpiry how long it keeps another node's
	// editor without hearing of it.
	peerRefresh = 10 * time.Second
	peerExpiry  = 35 * time.Second
)

// submitReq is a Submission waiting in the hub's queue: it is an op, and
// is sequenced in order with this node's own.
type submitReq struct {
	s       Submission
	respond func(SubmitReply)
}

// forward is an op of this node's editor sent to the owner.
type forward struct {
	req      opReq
	sent     time.Time
	inflight bool // a Forward call is under way
	taken    bool // the owner took it: its record is due on the log
}

// fwdReply is a Forward call's outcome, sent to the hub's inbox.
type fwdReply struct {
	client string
	seq    int64
	rep    SubmitReply
	err    error
	// restore, for a forwarded restore, hears its outcome.
	restore chan restoreReply
	// write, for a forwarded HTTP write, hears its outcome (writefwd.go).
	write chan writeReply
	// rotate, for a forwarded rotation, hears its outcome (rotate.go).
	rotate chan error
}

// remotePeer is an editor connected to another node.
type remotePeer struct {
	Peer
	// shown: this node's editors have it, at h.rev. Otherwise Ranges are
	// at rev, which the log here has not reached yet.
	shown bool
	rev   int64
	seen  time.Time
}

// notice is what hubs of one document on different nodes tell each other.
type notice struct {
	// "presence", "leave", "hello", "deleted", "comments" (another node
	// changed the comments), or "who": a hub that has just loaded asks
	// for the others' presence.
	Kind   string  `json:"kind"`
	Author string  `json:"author,omitempty"`
	Name   string  `json:"name,omitempty"`
	Color  string  `json:"color,omitempty"`
	Ranges []Range `json:"ranges,omitempty"`
	Rev    int64   `json:"rev,omitempty"`
	// Client is set in "hello": a client id opening a session on another
	// node, whose session here that supersedes. Notices stay inside the
	// cluster, which already stores client ids in its op records.
	Client string `json:"client,omitempty"`
	// At, in "hello", is when that session opened (Unix nanoseconds): a
	// session here opened later is the newer one, and the notice, which
	// raced with the client's move back to this node, is stale.
	At int64 `json:"at,omitempty"`
}

// openLink joins the cluster before the document is loaded, so that an
// owner loads what every earlier owner committed.
func (h *hub) openLink(ctx context.Context) error {
	c, ok := h.srv.store.(Cluster)
	if !ok {
		return nil
	}
	link, owner, err := c.Link(ctx, h.id)
	if err != nil {
		return fmt.Errorf("join cluster: %w", err)
	}
	h.link, h.owner = link, owner
	if owner {
		h.srv.opts.Metrics.owning(1)
	}
	h.forwards = make(map[string]*forward)
	h.remote = make(map[string]*seqState)
	h.peers = make(map[string]*remotePeer)
	h.hellos = make(map[string]int64)
	h.fwdCtx, h.fwdCancel = context.WithCancel(context.Background())
	return nil
}

// closeLink ends the hub's part in the cluster; the hub is stopping.
func (h *hub) closeLink() {
	if h.link == nil {
		return
	}
	for _, e := range h.editors {
		h.notify(notice{Kind: "leave", Author: e.author})
	}
	h.fwdCancel()
	h.fwdWG.Wait()
	h.link.Close()
	if h.owner {
		h.srv.opts.Metrics.owning(-1)
	}
}

// linkInbox is linkEvents while the hub has room for more requests: when
// it has too much deferred, submissions from other nodes wait in the
// link (and NATS) as this node's own wait in the inbox.
func (h *hub) linkInbox() <-chan LinkEvent {
	if h.queueFull() {
		return nil
	}
	return h.linkEvents()
}

// linkEvents is the link's event channel, or nil on a single node.
func (h *hub) linkEvents() <-chan LinkEvent {
	if h.link == nil {
		return nil
	}
	return h.link.Events()
}

// retryC fires while forwarded ops or parked joins wait, or nil.
func (h *hub) retryC() <-chan time.Time {
	if len(h.forwards) == 0 && len(h.parked) == 0 {
		return nil
	}
	if h.retry == nil {
		h.retry = time.NewTimer(forwardRetry)
	}
	return h.retry.C
}

// linkEvent handles one event of the link. It reports false when the hub
// must stop.
func (h *hub) linkEvent(ev LinkEvent) bool {
	switch ev.Kind {
	case LinkRecord:
		if h.owner {
			return true // sent before the link turned owner; Load covers it
		}
		if err := h.applyCommitted(ev.Record); err != nil {
			h.fail(err)
			return false
		}
	case LinkSubmit:
		h.enqueueReq(submitReq{s: ev.Submission, respond: ev.Respond})
	case LinkNotice:
		h.noticed(ev.Notice)
		if h.deleted {
			return false
		}
	case LinkOwner:
		if err := h.promote(); err != nil {
			h.fail(fmt.Errorf("take over as owner: %w", err))
			return false
		}
	case LinkLost:
		h.log.Warn("document left by its cluster link; closing its connections", "err", ev.Err)
		h.shutdown()
		return false
	}
	return true
}

// applyCommitted applies a record committed by the owner (follower).
func (h *hub) applyCommitted(r Record) error {
	if r.Rev <= h.rev {
		return nil // already applied: seen before a promotion's catch-up
	}
	if r.Rev != h.rev+1 {
		return fmt.Errorf("log gives rev %d after rev %d", r.Rev, h.rev)
	}
	if err := h.doc.Apply(r.Op); err != nil {
		return fmt.Errorf("apply rev %d from the log: %w", r.Rev, err)
	}
	h.rev = r.Rev
	h.savedRev = h.rev // the owner snapshots; a follower never needs to
	h.remember(r, opBytes(r.Op))
	var ackTo *editor
	if e := h.editors[r.Client]; e != nil && r.Seq > e.lastSeq {
		e.lastSeq, e.lastRev = r.Seq, r.Rev
		ackTo = e
	}
	if f := h.forwards[r.Client]; f != nil && f.req.m.seq <= r.Seq {
		delete(h.forwards, r.Client)
	}
	h.publish(r, ackTo)
	// After the op is on its way to the editors: movePresence may show a
	// remote peer held for this revision, and the editors' clients take a
	// presence to be at the revision they have.
	h.movePresence(r.Op)
	h.unpark()
	return nil
}

// forwardOp sends an op of this node's editor to the owner (follower).
func (h *hub) forwardOp(m opReq) {
	e := h.live(m.c)
	if e == nil {
		return
	}
	dup, perr := h.checkSeq(&e.seqState, m.m)
	switch {
	case perr != nil:
		m.c.fail(perr)
		return
	case dup:
		// e.lastSeq comes from the log, so its op is committed; if its
		// record came while this resend waited, it was acked then.
		h.ack(e, e.lastRev, m.m.seq)
		return
	}
	if f := h.forwards[e.client]; f != nil && f.req.m.seq == m.m.seq {
		f.req = m // the same op again, on a newer connection
		return
	}
	f := &forward{req: m}
	h.forwards[e.client] = f
	h.sendForward(e.client, f)
}

// sendForward starts one Forward call for f.
func (h *hub) sendForward(client string, f *forward) {
	f.inflight, f.sent = true, time.Now()
	sub := Submission{Client: client, Seq: f.req.m.seq, Rev: f.req.m.rev, Op: f.req.m.op}
	h.startForward(sub, fwdReply{client: client, seq: sub.Seq})
}

// startForward calls Forward in a goroutine the hub waits for when it
// stops, and hands the outcome to the hub's inbox.
func (h *hub) startForward(sub Submission, out fwdReply) {
	h.fwdWG.Add(1)
	go func() {
		defer h.fwdWG.Done()
		wait := forwardTimeout
		if out.rotate != nil {
			wait = rotateTimeout // a rotation copies the whole history
		}
		ctx, cancel := context.WithTimeout(h.fwdCtx, wait)
		start := time.Now()
		out.rep, out.err = h.link.Forward(ctx, sub)
		h.srv.opts.Metrics.forwarded(time.Since(start))
		cancel()
		select {
		case h.inbox <- out:
		case <-h.done:
		case <-h.fwdCtx.Done():
			if out.restore != nil {
				out.restore <- restoreReply{rev: -1}
			}
			if out.write != nil {
				out.write <- writeReply{unanswered: true}
			}
			if out.rotate != nil {
				out.rotate <- fmt.Errorf("%w: %w", ErrUnavailable, errNotSequencer)
			}
		}
	}()
}

// forwarded handles the outcome of a Forward call.
func (h *hub) forwarded(r fwdReply) {
	if r.rotate != nil {
		h.rotateForwarded(r) // rotate.go
		return
	}
	if r.write != nil {
		h.writeForwarded(r)
		return
	}
	if r.restore != nil {
		switch {
		case r.err != nil:
			h.log.Warn("forward restore", "err", r.err)
			r.restore <- restoreReply{rev: -1}
		case r.rep.Code != "":
			// The owner refused it: a bound (too_large), or a revision
			// it does not have yet.
			r.restore <- restoreReply{rev: -1, err: &protoError{Code: r.rep.Code, Message: r.rep.Message}}
		default:
			r.restore <- restoreReply{rev: r.rep.Rev}
		}
		return
	}
	f := h.forwards[r.client]
	if f == nil || f.req.m.seq != r.seq {
		return // settled meanwhile: its record came, or the editor went
	}
	f.inflight = false
	switch {
	case errors.Is(r.err, ErrNoOwner):
		h.link.TryOwn() // and resend at the next retry
	case r.err != nil:
		h.log.Debug("forward op", "err", r.err)
	case r.rep.Code != "":
		delete(h.forwards, r.client)
		f.req.c.fail(&protoError{Code: r.rep.Code, Message: r.rep.Message, Seq: r.seq})
	default:
		f.taken = true
	}
}

// retryForwards resends ops whose Forward failed, or which the owner took
// but which have not reached the log for a while.
func (h *hub) retryForwards() {
	h.retry = nil
	now := time.Now()
	defer h.unpark()
	for client, f := range h.forwards {
		if h.live(f.req.c) == nil {
			delete(h.forwards, client) // its editor left; it resends elsewhere
			continue
		}
		if !f.inflight && (!f.taken || now.Sub(f.sent) >= forwardResend) {
			f.taken = false
			h.sendForward(client, f)
		}
	}
}

// submitted handles an op another node forwarded (owner). The verdict is
// sent once the op is applied in memory; its ack travels on the log.
func (h *hub) submitted(s Submission, respond func(SubmitReply)) {
	if s.Rotate != nil {
		h.submittedRotate(s, respond) // rotate.go
		return
	}
	if strings.HasPrefix(s.Client, httpClientPrefix) {
		h.submittedWrite(s, respond) // writefwd.go
		return
	}
	m := &opMessage{rev: s.Rev, seq: s.Seq, op: s.Op}
	if s.Client == "" { // a restore made on another node
		if m.rev > h.rev {
			respond(SubmitReply{Code: CodeBadOp, Message: "restore made on a revision this owner does not have"})
			return
		}
		var st seqState
		if perr := h.sequence(&st, "", m, pendingOp{committed: func(rev int64) { respond(SubmitReply{Rev: rev}) }}); perr != nil {
			respond(SubmitReply{Code: perr.Code, Message: perr.Message})
		}
		return
	}
	st, ackTo, err := h.clientState(s.Client)
	if err != nil {
		h.log.Error("read client seq", "author", h.authorOf(s.Client), "err", err)
		respond(SubmitReply{Code: CodeInternal, Message: "internal error"})
		return
	}
	dup, perr := h.checkSeq(st, m)
	switch {
	case perr != nil:
		respond(SubmitReply{Code: perr.Code, Message: perr.Message})
	case dup:
		respond(SubmitReply{}) // its record is on the log, or about to be
	default:
		if perr := h.sequence(st, s.Client, m, pendingOp{c: ackTo}); perr != nil {
			respond(SubmitReply{Code: perr.Code, Message: perr.Message})
			return
		}
		respond(SubmitReply{})
	}
}

// clientState returns the dedupe state of a submission's client (owner).
// A client still connected here is one of this node's own: an op it
// forwarded just before taking over as owner, which comes back to it.
// Its state is the editor's, and its commit acknowledges the editor.
// (A client that moved to another node has been dropped here by that
// node's hello notice.)
func (h *hub) clientState(client string) (*seqState, *conn, error) {
	if e := h.editors[client]; e != nil {
		return &e.seqState, e.c, nil
	}
	if st := h.remote[client]; st != nil {
		return st, nil, nil
	}
	ctx, cancel := context.WithTimeout(h.srv.ctx, storeTimeout)
	seq, rev, err := h.srv.store.ClientSeq(ctx, h.id, client)
	cancel()
	if err != nil {
		return nil, nil, err
	}
	st := &seqState{lastSeq: seq, lastRev: rev}
	h.pruneRemote()
	h.remote[client] = st
	return st, nil, nil
}

// pruneRemote makes room in the owner's table of other nodes' clients
// when it is full: it forgets those whose ops are all committed (the
// store has their state for when they come again).
func (h *hub) pruneRemote() {
	if len(h.remote) < maxRemoteClients {
		return
	}
	committed := h.durableRev()
	for c, st := range h.remote {
		if st.lastRev <= committed {
			delete(h.remote, c)
		}
	}
}

// maxRemoteClients bounds the owner's table of other nodes' clients.
const maxRemoteClients = 10_000

// dropEditor closes an editor's connection and tells the others it left.
func (h *hub) dropEditor(e *editor, reason string) {
	e.c.closeWith(closeSuperseded, reason)
	delete(h.editors, e.client)
	delete(h.ranged, e.client)
	h.publishPresent()
	msg := mustJSON(leaveMessage{Type: typeLeave, Author: e.author})
	for _, p := range h.editors {
		p.c.enqueue(msg)
	}
}

// promote makes a follower the owner: it reads what the log holds past
// its revision, and its editors' forwarded ops become its own.
func (h *hub) promote() error {
	ctx, cancel := context.WithTimeout(h.srv.ctx, storeTimeout)
	defer cancel()
	d, err := h.srv.store.Load(ctx, h.id) // also tells the store where the log ends
	if err != nil {
		return err
	}
	for h.rev < d.Rev {
		page, err := h.srv.store.Ops(ctx, h.id, h.rev, 1000, h.srv.opts.MaxCatchUpBytes)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return fmt.Errorf("log has no ops after rev %d, yet ends at %d", h.rev, d.Rev)
		}
		for _, r := range page {
			if err := h.applyCommitted(r); err != nil {
				return err
			}
		}
	}
	if h.rev != d.Rev || h.doc.Len() != len([]rune(d.Text)) {
		return fmt.Errorf("document at rev %d (%d code points) here, rev %d (%d) in the store",
			h.rev, h.doc.Len(), d.Rev, len([]rune(d.Text)))
	}
	h.owner = true
	h.srv.opts.Metrics.owning(1)
	h.srv.opts.Metrics.tookOver()
	h.savedRev = h.rev
	h.log.Info("took over as owner", "rev", h.rev)
	// The ops this node forwarded are now its own to apply; those the old
	// owner committed are deduplicated by their seq.
	for client, f := range h.forwards {
		delete(h.forwards, client)
		h.queue = append(h.queue, f.req)
		h.queueBytes += f.req.bytes
	}
	h.unpark()
	return nil
}

// restoreFollower forwards a restore to the owner (follower).
func (h *hub) restoreFollower(m restoreReq) {
	op := diffOp(h.doc.String(), m.text)
	if op.IsNoop() {
		m.reply <- restoreReply{rev: h.rev}
		return
	}
	h.startForward(Submission{Rev: h.rev, Op: op}, fwdReply{restore: m.reply})
}

// notify sends a notice to the other nodes; nothing on a single node.
func (h *hub) notify(n notice) {
	if h.link == nil {
		return
	}
	if n.Kind == "hello" {
		// Sent as a session of n.Client opens here: remember when, to
		// tell a later hello from another node from an earlier one.
		n.At = time.Now().UnixNano()
		h.hellos[n.Client] = n.At
		// The client was another node's editor until now: it is no
		// longer a remote peer here, or its own welcome would list it,
		// others' would list it twice, and its expiry would tell them it
		// left. The other node's presence of it is ignored from now on
		// (noticed: localAuthor).
		delete(h.peers, h.authorOf(n.Client))
	}
	h.link.Notify(mustJSON(n))
}

// noticed handles a notice from another node's hub of this document.
func (h *hub) noticed(b []byte) {
	var n notice
	if err := json.Unmarshal(b, &n); err != nil {
		h.log.Warn("bad notice from another node", "err", err)
		return
	}
	switch n.Kind {
	case "who":
		for _, e := range h.editors {
			h.notifyPresence(e)
		}
	case "hello":
		// Notices and joins reach the hub on different channels: a client
		// that went from here to another node and straight back can have
		// that node's hello arrive after its new session here opened.
		// (This compares two nodes' clocks; they are assumed closer than
		// the time a client takes to reconnect.)
		if at, ok := h.hellos[n.Client]; ok && n.At < at {
			return
		}
		if e := h.editors[n.Client]; e != nil {
			if h.owner {
				// Its ops may still be in the batch: the store does not
				// know them yet.
				st := e.seqState
				h.remote[n.Client] = &st
			}
			h.dropEditor(e, "superseded by a newer connection of this client")
		}
	case "presence":
		if _, local := h.localAuthor(n.Author); local {
			return
		}
		p := h.peers[n.Author]
		if p == nil {
			if len(h.peers) >= 4*h.srv.opts.MaxEditors {
				return
			}
			p = &remotePeer{}
			h.peers[n.Author] = p
		}
		p.Peer = Peer{Author: n.Author, Name: n.Name, Color: n.Color, Ranges: n.Ranges}
		if p.Ranges == nil {
			p.Ranges = []Range{}
		}
		p.rev, p.seen, p.shown = n.Rev, time.Now(), false
		if p.rev <= h.rev {
			h.placePeer(p)
		} // else movePeers shows it once the log here reaches p.rev
	case "leave":
		if _, ok := h.peers[n.Author]; ok {
			delete(h.peers, n.Author)
			h.sendEditors(mustJSON(leaveMessage{Type: typeLeave, Author: n.Author}))
		}
	case "deleted":
		h.closeDeleted()
	case "comments":
		h.commentsChanged() // comments.go
	}
}

// localAuthor returns this node's editor with an author id.
func (h *hub) localAuthor(author string) (*editor, bool) {
	for _, e := range h.editors {
		if e.author == author {
			return e, true
		}
	}
	return nil, false
}

// placePeer moves a remote peer's ranges from its revision to h.rev and
// shows it to this node's editors.
func (h *hub) placePeer(p *remotePeer) {
	if p.rev < h.histBase {
		p.Ranges = []Range{} // too old to place; its next refresh will do
		h.showPeer(p, h.rev)
		return
	}
	later := h.history[p.rev-h.histBase:]
	n := h.doc.Len()
	if len(later) > 0 {
		n = later[0].Op.BaseLen()
	}
	for i, r := range p.Ranges {
		p.Ranges[i] = Range{min(max(r[0], 0), n), min(max(r[1], 0), n)}
	}
	// On the owner, the editors here have the ops up to the batch in
	// flight, not those in it: they are shown the ranges at the
	// committed revision, and the batch's ops, when they come, move them
	// on, as the hub's copy moves now.
	k := max(len(later)-len(h.batch), 0)
	for _, r := range later[:k] {
		transformRanges(p.Ranges, r.Op)
	}
	h.showPeer(p, p.rev+int64(k))
	for _, r := range later[k:] {
		transformRanges(p.Ranges, r.Op)
	}
}

// showPeer shows a remote peer, whose ranges are at rev, to this node's
// editors, which must have every op up to rev and none after.
func (h *hub) showPeer(p *remotePeer, rev int64) {
	p.shown = true
	h.sendEditors(mustJSON(presenceMessage{Type: typePresence, Author: p.Author, Name: p.Name,
		Color: p.Color, Ranges: p.Ranges, Rev: rev}))
}

// movePeers moves the shown remote peers' ranges through an op just
// applied as revision h.rev, and shows those whose revision it reaches.
func (h *hub) movePeers(op ot.Op) {
	for _, p := range h.peers {
		switch {
		case p.shown:
			transformRanges(p.Ranges, op)
		case p.rev == h.rev:
			h.showPeer(p, h.rev) // a follower: it has no batch
		}
	}
}

// refreshPeers repeats this node's presence for the other nodes and
// forgets the other nodes' editors not heard of for too long: their node
// may have died without saying goodbye.
func (h *hub) refreshPeers(now time.Time) {
	if h.link == nil || now.Sub(h.peersAt) < peerRefresh {
		return
	}
	h.peersAt = now
	for _, e := range h.editors {
		h.notifyPresence(e)
	}
	for c := range h.hellos {
		if h.editors[c] == nil {
			delete(h.hellos, c)
		}
	}
	for a, p := range h.peers {
		if now.Sub(p.seen) > peerExpiry {
			delete(h.peers, a)
			h.sendEditors(mustJSON(leaveMessage{Type: typeLeave, Author: a}))
		}
	}
}

// notifyPresence tells the other nodes where an editor of this node is.
func (h *hub) notifyPresence(e *editor) {
	h.notify(notice{Kind: "presence", Author: e.author, Name: e.name, Color: e.color, Ranges: e.ranges, Rev: h.rev})
}

// sendEditors queues msg for every editor of this node.
func (h *hub) sendEditors(msg []byte) {
	for _, e := range h.editors {
		e.c.enqueue(msg)
	}
}

// shownPeers appends the remote peers to a welcome's.
func (h *hub) shownPeers(peers []Peer) []Peer {
	for _, p := range h.peers {
		if p.shown {
			peers = append(peers, p.Peer)
		}
	}
	return peers
}

// parkJoin decides a join in cluster mode before its welcome is built,
// and reports whether the join is held (parked, or refused) rather than
// going ahead now. rev is the revision of the client's last op.
//
// A welcome must never be behind the client: given the text at an older
// revision than its hello's, a client rolls back, loses its unacknowledged
// edits and then sees a gap; told a lastSeq whose op is past the welcome's
// revision, it cannot find that op in the catch-up. So a follower holds
// the join while the client is ahead of the log here, or an op of its is
// on its way to the owner, for at most parkLimit. After that, or at once
// on the owner (whose log does not grow by waiting), behind resolves it.
func (h *hub) parkJoin(m joinReq, rev int64) bool {
	if h.link == nil {
		return false
	}
	want := max(rev, m.hello.rev)
	_, busy := h.forwards[m.hello.client]
	if !busy && want <= h.rev {
		return false
	}
	if !h.owner {
		if m.parked.IsZero() {
			m.parked = time.Now()
		}
		if time.Since(m.parked) <= parkLimit {
			h.parked = append(h.parked, m)
			return true
		}
	}
	if want <= h.rev {
		// Only an op in flight: the welcome's lastSeq is true as of
		// h.rev, the client resends the op, and forwardOp takes the
		// resend as the same op.
		return false
	}
	return h.behind(m, want)
}

// parkLimit bounds how long parkJoin holds a join.
const parkLimit = 3 * time.Second

// catchUpTimeout bounds the store reads of behind and viewerAhead, which
// the hub waits for: past it, the client is told to reconnect (or the
// viewer gets the snapshot) rather than the document's other clients
// waiting longer.
const catchUpTimeout = 5 * time.Second

// behind handles a join from a client at revision want, which this hub
// has not reached: its link lags (a follower), or its lease has passed to
// another node that committed since (a stale owner). A follower reads
// what it lacks from the store, as promote does, and the join goes ahead.
// If the store has want but this hub cannot reach it, the client is told
// to reconnect (shutting_down, which every client takes as "reconnect and
// resume"), to this node later or another through the balancer. Only a
// client claiming a revision the store does not have either gets the text
// at h.rev, as on one node: nobody has its revision, and waiting would
// not help. It reports whether the join is held.
func (h *hub) behind(m joinReq, want int64) bool {
	ctx, cancel := context.WithTimeout(h.srv.ctx, catchUpTimeout)
	defer cancel()
	if !h.owner {
		err := h.catchUp(ctx, want)
		if err == nil && h.rev >= want {
			return false
		}
		if err != nil {
			h.log.Warn("catch up from the store for a join", "rev", h.rev, "want", want, "err", err)
		}
	}
	page, err := h.srv.store.Ops(ctx, h.id, want-1, 1, 1)
	if err == nil && len(page) == 0 {
		h.log.Info("client claims a revision the document does not have", "rev", h.rev, "claimed", want)
		return false
	}
	if err != nil {
		h.log.Warn("read the store for a join", "rev", h.rev, "want", want, "err", err)
	} else {
		h.log.Warn("client ahead of this node; telling it to reconnect", "rev", h.rev, "claimed", want, "owner", h.owner)
	}
	m.c.fail(errorf(CodeShuttingDown, "this node has not reached revision %d yet; reconnect", want))
	m.c.admit()
	return true
}

// viewerAhead brings a follower up to a viewer resuming from a revision
// its log has not reached, from the store, so that the viewer gets the
// ops after its revision rather than a snapshot at an older one. A viewer
// waits for nothing: if the store cannot be read, or does not have since
// either, it gets the snapshot, as on one node.
func (h *hub) viewerAhead(since int64) {
	if h.link == nil || h.owner || since <= h.rev {
		return
	}
	ctx, cancel := context.WithTimeout(h.srv.ctx, catchUpTimeout)
	defer cancel()
	if err := h.catchUp(ctx, since); err != nil {
		h.log.Warn("catch up from the store for a viewer", "rev", h.rev, "want", since, "err", err)
	}
}

// catchUp applies, on a follower, the records the store holds after h.rev,
// until the hub reaches want or the log ends. The link delivers the same
// records later; applyCommitted skips them.
func (h *hub) catchUp(ctx context.Context, want int64) error {
	// applyCommitted retries the parked joins, and one of them may be
	// what called this: those wait for the next retry instead.
	parked := h.parked
	h.parked = nil
	defer func() { h.parked = append(h.parked, parked...) }()
	for h.rev < want {
		page, err := h.srv.store.Ops(ctx, h.id, h.rev, 1000, h.srv.opts.MaxCatchUpBytes)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for _, r := range page {
			if err := h.applyCommitted(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// unpark retries the parked joins.
func (h *hub) unpark() {
	if len(h.parked) == 0 {
		return
	}
	parked := h.parked
	h.parked = nil
	for _, p := range parked {
		h.join(p.c, p.hello, p.parked)
	}
}
