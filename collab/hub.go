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

// Requests to a hub, sent over its inbox by sessions and handlers.
type (
	joinReq struct {
		c     *conn
		hello *hello
		// parked is when a follower first held the join back (cluster.go:
		// parkJoin); zero until then.
		parked time.Time
	}
	opReq struct {
		c     *conn
		m     *opMessage
		bytes int       // opBytes(m.op), counted once by the session
		recv  time.Time // when it arrived, for metrics; zero without them
	}
	cursorReq struct {
		c *conn
		m *cursorMessage
	}
	leaveReq struct{ c *conn }
	// textReq asks for the committed text, and its JSON encoding when
	// json is set; reply has room for the answer.
	textReq struct {
		reply chan textReply
		json  bool
	}
	// viewerReq registers an SSE viewer that has seen revision since (-1:
	// nothing); reply has room for the events to start it with.
	viewerReq struct {
		v     *viewer
		since int64
		reply chan viewerReply
	}
	viewerLeaveReq struct{ v *viewer }
)

type textReply struct {
	*docSnapshot // shared and immutable: see snapshot.go
	viewID       string
}

// editor is a client editing the document, on its current connection.
type editor struct {
	c      *conn
	client string // secret: never sent to anybody
	author string // the public id derived from client
	name   string
	color  string
	ranges []Range
	seqState
	// acked is the highest seq acknowledged on c: a resend that races
	// its original's commit (cluster mode) is acknowledged once.
	acked int64
	// comments: the client asked for comment messages (comments.go).
	comments bool
}

// pendingOp is an op applied in memory whose commit is in flight.
type pendingOp struct {
	rec Record
	c   *conn // the connection it came from, to be acknowledged on
	// restored, for an op the server made to restore a revision (c is
	// nil), hears the op's revision once it is committed.
	restored chan restoreReply
	// committed, for an op forwarded by another node that wants to hear
	// its revision (a restore there), is called with it once committed.
	committed func(rev int64)
}

const (
	inboxSize = 256
	// maxQueue bounds the requests a hub defers while a commit is in
	// flight; beyond it, senders wait on the inbox.
	maxQueue = 4096
	// maxBatch and maxBatchBytes bound the ops that go to the store in one
	// append.
	maxBatch      = 512
	maxBatchBytes = 8 << 20
	// maxQueueBytes bounds the inserted text of the ops deferred while a
	// commit is in flight, alongside maxQueue's count.
	maxQueueBytes = 64 << 20
	// preloadHistory is how many of its latest ops a document reads into
	// its history when it loads, so that editors and viewers resuming
	// after a restart catch up from memory.
	preloadHistory = 256
	// storeTimeout bounds one store call made by a hub.
	storeTimeout = 30 * time.Second
)

// hub owns one loaded document. Only its run goroutine touches the fields
// below ready; others send requests to inbox, selecting on done so that
// nothing waits on a hub that has stopped.
type hub struct {
	srv *Server
	id  string
	log *slog.Logger

	inbox chan any
	ready chan struct{} // closed once loaded, or once loading failed
	done  chan struct{} // closed when run returns
	// loadErr is set before ready is closed and never changed after.
	loadErr error
	// deleted is set, before done is closed, when the hub stops because
	// its document was deleted (history.go).
	deleted bool
	// refs counts acquire calls not yet released; guarded by srv.mu.
	refs int

	viewID   string
	doc      *ot.Doc
	rev      int64 // latest revision applied in memory
	savedRev int64 // revision of the last snapshot this hub saved or loaded
	// history holds recent ops; history[i].Rev == histBase+1+i.
	// histBytes is their inserted text, which HistoryBytes bounds.
	history   []Record
	histBase  int64
	histBytes int
	editors   map[string]*editor // by client id
	present   presentNames       // their names, for the workspace (present.go)
	ranged    map[string]*editor // the editors with a selection, by client id
	viewers   map[*viewer]struct{}
	authors   map[string]string // authorOf's memo, by client id
	snaps     snapshotState     // the text built once per revision
	comments  commentSet        // comments.go

	queue      []any // requests deferred while a commit is in flight
	queueBytes int   // inserted text of the ops in queue
	batch      []pendingOp
	batchBytes int
	committing bool
	commitDone chan error
	// commitLen is the document's length after the batch being
	// committed; unsent counts the ops committed but not yet sent out
	// (only while the hub handles a finished commit); spare is the other
	// of the two arrays the batch alternates between.
	commitLen  int
	unsent     int64
	spare      []pendingOp
	lastActive time.Time
	// paceUntil is when the next commit may start (pace.go); the timer
	// fires then while requests wait.
	paceUntil time.Time
	paceTimer *time.Timer
	paceArmed bool
	// rebase transforms ops over those committed since their revision,
	// reusing its buffers.
	rebase ot.Rebaser
	// batchAuthors is publishBatch's scratch set of client ids.
	batchAuthors map[string]struct{}

	// logBytes is what the document's op log takes, for MaxDocHistory.
	logBytes int64
	mem      hubMem // its part of the server's MemoryBudget (budget.go)

	// Cluster mode (cluster.go); link is nil on a single node.
	link      DocLink
	owner     bool                   // this node holds the lease: the hub sequences
	forwards  map[string]*forward    // follower: this node's ops at the owner, by client
	retry     *time.Timer            // follower: when to look at forwards again
	parked    []joinReq              // follower: joins waiting for the log
	remote    map[string]*seqState   // owner: other nodes' clients, by client id
	peers     map[string]*remotePeer // other nodes' editors, by author id
	peersAt   time.Time              // when presence was last repeated to them
	hellos    map[string]int64       // when this node's sessions opened, by client (notice.At)
	fwdCtx    context.Context        // ends the Forward calls when the hub stops
	fwdCancel context.CancelFunc
	fwdWG     sync.WaitGroup
}

func newHub(s *Server, id string) *hub {
	return &hub{
		srv:        s,
		id:         id,
		log:        s.log.With("doc", logID(id)),
		inbox:      make(chan any, inboxSize),
		ready:      make(chan struct{}),
		done:       make(chan struct{}),
		editors:    make(map[string]*editor),
		ranged:     make(map[string]*editor),
		viewers:    make(map[*viewer]struct{}),
		commitDone: make(chan error, 1),
	}
}

// send delivers a request to the hub. It reports false if the hub stopped
// or ctx ended first.
func (h *hub) send(ctx context.Context, m any) bool {
	select {
	case h.inbox <- m:
		return true
	case <-h.done:
		return false
	case <-ctx.Done():
		return false
	}
}

// text returns the document's committed text and revision, and with
// withJSON the text's JSON encoding.
func (h *hub) text(ctx context.Context, withJSON bool) (textReply, error) {
	req := textReq{reply: make(chan textReply, 1), json: withJSON}
	if !h.send(ctx, req) {
		return textReply{}, h.goneErr(ctx)
	}
	select {
	case r := <-req.reply:
		return r, nil
	case <-h.done:
		return textReply{}, h.goneErr(ctx)
	case <-ctx.Done():
		return textReply{}, ctx.Err()
	}
}

func errHubGone(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errShuttingDown
}

func (h *hub) run() {
	defer h.srv.hubWG.Done()
	defer close(h.done)
	defer h.releaseMemory()

	if err := h.load(); err != nil {
		h.loadErr = err
		h.srv.forget(h)
		h.closeLink()
		close(h.ready)
		return
	}
	defer h.closeLink()
	close(h.ready)
	h.srv.opts.Metrics.hubLoaded()
	defer h.srv.opts.Metrics.hubUnloaded()

	tickEvery := max(h.srv.opts.IdleUnload/2, 10*time.Millisecond)
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	defer h.stopPace()
	h.lastActive = time.Now()
	for {
		h.account()
		// While too much is deferred, leave requests in the inbox, so that
		// their senders wait.
		inbox := h.inbox
		if h.queueFull() {
			inbox = nil
		}
		select {
		case m := <-inbox:
			h.lastActive = time.Now()
			h.enqueueReq(m)
			h.drainInbox()
			if h.mayProcess() {
				h.process()
			}
			if h.deleted || h.unloadIdle() { // unloadIdle: after a shrink
				return
			}
		case err := <-h.commitDone:
			h.committing = false
			if err != nil {
				h.fail(fmt.Errorf("append ops: %w", err))
				return
			}
			// The ops that waited for this commit are transformed and
			// start theirs before this batch is sent out, so that the
			// next fsync overlaps the fan-out. Only ops: a join or a
			// read must see the fan-out done (a welcome after the
			// broadcasts it already contains would repeat them).
			done, length := h.takeBatch()
			h.unsent = int64(len(done))
			if h.mayProcess() {
				h.processOps()
			}
			h.committed(done, length)
			h.unsent = 0
			if h.mayProcess() {
				h.process()
			}
		case ev := <-h.linkInbox():
			h.lastActive = time.Now()
			if !h.linkEvent(ev) {
				return
			}
			if h.mayProcess() {
				h.process()
			}
		case <-h.paceC():
			h.paceArmed = false
			if h.mayProcess() {
				h.process()
			}
		case <-h.retryC():
			h.retryForwards()
		case <-tick.C:
			h.dropUnusedSnapshot(time.Now().Add(-tickEvery))
			h.refreshPeers(time.Now())
			h.saveComments(false)
			if h.unloadIdle() {
				return
			}
		case <-h.srv.ctx.Done():
			h.shutdown()
			return
		}
	}
}

func (h *hub) load() error {
	ctx, cancel := context.WithTimeout(h.srv.ctx, storeTimeout)
	defer cancel()
	if err := h.openLink(ctx); err != nil {
		return fmt.Errorf("load doc %s: %w", h.id, err)
	}
	d, err := h.srv.store.Load(ctx, h.id)
	if err != nil && h.srv.ctx.Err() != nil {
		return fmt.Errorf("load doc %s: %w", h.id, errShuttingDown)
	}
	if err != nil {
		return fmt.Errorf("load doc %s: %w", h.id, err)
	}
	h.viewID = d.Meta.ViewID
	h.doc = ot.NewDoc(d.Text)
	h.rev = d.Rev
	h.savedRev = d.Rev
	h.histBase = d.Rev
	h.logBytes = d.LogBytes
	// The latest ops come into memory, so the clients that reconnect after
	// a restart catch up without a store read each. Without them, history
	// just starts here.
	if from := max(d.Rev-preloadHistory, 0); from < d.Rev {
		if recent, err := h.opsAfter(from); err == nil {
			h.histBase = from
			for _, r := range recent {
				h.remember(r, opBytes(r.Op))
			}
		} else {
			h.log.Warn("read recent ops", "from", from, "err", err)
		}
	}
	if h.link != nil {
		if err := h.link.Start(ctx, h.rev); err != nil {
			return fmt.Errorf("load doc %s: follow the cluster: %w", h.id, err)
		}
		h.notify(notice{Kind: "who"})
	}
	h.log.Debug("document loaded", "rev", d.Rev, "len", h.doc.Len(), "owner", h.owner)
	return nil
}

// drainInbox moves whatever else is already waiting into the queue, so
// that ops arriving together are committed together.
func (h *hub) drainInbox() {
	for !h.queueFull() {
		select {
		case m := <-h.inbox:
			h.enqueueReq(m)
		default:
			return
		}
	}
}

func (h *hub) queueFull() bool {
	return len(h.queue) >= maxQueue || h.queueBytes >= maxQueueBytes
}

func (h *hub) enqueueReq(m any) {
	h.took(m)
	h.queue = append(h.queue, m)
	h.queueBytes += reqBytes(m)
}

// reqBytes is what a request holds that can be large: an op's inserted
// text.
func reqBytes(m any) int {
	switch m := m.(type) {
	case opReq:
		return m.bytes
	case writeReq:
		return m.bytes
	}
	return 0
}

// opBytes is the inserted text of op plus a little per component.
func opBytes(op ot.Op) int {
	n := 0
	for _, c := range op {
		n += len(c.S) + 16
	}
	return n
}

func (h *hub) idle() bool {
	return len(h.editors) == 0 && len(h.viewers) == 0 && !h.committing &&
		len(h.forwards) == 0 && len(h.parked) == 0 &&
		len(h.queue) == 0 && time.Since(h.lastActive) >= h.srv.opts.IdleUnload
}

// process handles deferred requests in order. Ops are applied in memory
// and gathered into one batch; any other request needs the committed
// state, so it waits until the batch before it has been committed.
func (h *hub) process() { h.processQueue(false) }

// processOps is process for the ops at the head of the queue only.
func (h *hub) processOps() { h.processQueue(true) }

func (h *hub) processQueue(opsOnly bool) {
	n := 0
	for n < len(h.queue) && len(h.batch) < maxBatch && h.batchBytes < maxBatchBytes && !h.deleted {
		m := h.queue[n]
		if !isOp(m) && (len(h.batch) > 0 || opsOnly) {
			break
		}
		h.queue[n] = nil
		h.queueBytes -= reqBytes(m)
		n++
		h.handle(m)
	}
	h.queue = h.queue[:copy(h.queue, h.queue[n:])]
	if len(h.batch) > 0 {
		h.startCommit()
	}
}

// isOp reports whether a request is an op, which may join a batch.
func isOp(m any) bool {
	switch m.(type) {
	case opReq, submitReq, writeReq:
		return true
	}
	return false
}

func (h *hub) handle(m any) {
	switch m := m.(type) {
	case joinReq:
		h.join(m.c, m.hello, time.Time{})
	case opReq:
		h.srv.opts.Metrics.opDequeued(m.recv)
		if h.link != nil && !h.owner {
			h.forwardOp(m)
		} else {
			h.applyOp(m.c, m.m)
		}
	case submitReq:
		h.submitted(m.s, m.respond)
	case writeReq:
		h.write(m) // httpwrite.go
	case fwdReply:
		h.forwarded(m)
	case cursorReq:
		h.cursor(m.c, m.m)
	case leaveReq:
		h.leave(m.c)
	case textReq:
		m.reply <- textReply{docSnapshot: h.snapshot(m.json), viewID: h.viewID}
	case viewerReq:
		h.addViewer(m)
	case viewerLeaveReq:
		delete(h.viewers, m.v)
	case restoreReq:
		if h.link != nil && !h.owner {
			h.restoreFollower(m)
		} else {
			h.restore(m)
		}
	case deleteReq:
		h.deleteDoc(m)
	case rotateReq:
		h.rotate(m) // rotate.go
	case shrinkReq:
		h.shrink()
	case commentReq:
		h.handleComment(m)
	default:
		panic(fmt.Sprintf("collab: hub got %T", m))
	}
}

// current returns the editor whose connection is c, or nil if c has been
// superseded or has left.
func (h *hub) current(c *conn) *editor {
	e := h.editors[c.client]
	if e == nil || e.c != c {
		return nil
	}
	return e
}

// live is current for a connection that is not closing either: what
// arrives from a superseded connection, or after the error that ends a
// session (an op queued right behind a rejected one, say), is ignored.
func (h *hub) live(c *conn) *editor {
	if e := h.current(c); e != nil && !c.isClosed() {
		return e
	}
	return nil
}

func (h *hub) join(c *conn, hl *hello, parkedAt time.Time) {
	parked := false
	defer func() {
		if !parked {
			c.admit()
		}
	}()
	old := h.editors[hl.client]
	if old == nil && len(h.editors) >= h.srv.opts.MaxEditors {
		c.fail(errorf(CodeRateLimited, "document has too many editors (limit %d); try again later", h.srv.opts.MaxEditors))
		return
	}
	e := &editor{c: c, client: hl.client, author: h.authorOf(hl.client), name: hl.name, ranges: []Range{}, comments: hl.comments}
	h.srv.authorNames.note(e.author, e.name) // authors.go
	if old != nil {
		// The client reconnected: its old connection is closed and
		// anything still arriving on it is ignored from now on.
		if parked = h.parkJoin(joinReq{c: c, hello: hl, parked: parkedAt}, old.lastRev); parked {
			return
		}
		old.c.closeWith(closeSuperseded, "superseded by a newer connection of this client")
		e.color, e.ranges, e.seqState = old.color, old.ranges, old.seqState
	} else {
		ctx, cancel := context.WithTimeout(h.srv.ctx, storeTimeout)
		seq, rev, err := h.srv.store.ClientSeq(ctx, h.id, hl.client)
		cancel()
		if err != nil {
			h.log.Error("read client seq", "author", e.author, "err", err)
			c.fail(errorf(CodeInternal, "internal error"))
			return
		}
		if parked = h.parkJoin(joinReq{c: c, hello: hl, parked: parkedAt}, rev); parked {
			return
		}
		e.lastSeq, e.lastRev = seq, rev
		e.color = h.pickColor(e.author)
		delete(h.remote, hl.client) // it edited through another node before
	}
	h.notify(notice{Kind: "hello", Client: hl.client})

	w := welcomeMessage{
		Type: typeWelcome, Protocol: ProtocolVersion, Doc: h.id, ViewID: h.viewID,
		Rev: h.rev, Color: e.color, Author: e.author, Peers: []Peer{}, LastSeq: e.lastSeq,
	}
	for _, p := range h.editors {
		if p.client != e.client {
			w.Peers = append(w.Peers, Peer{Author: p.author, Name: p.name, Color: p.color, Ranges: p.ranges})
		}
	}
	w.Peers = h.shownPeers(w.Peers)
	// The catch-up: the ops after hl.rev from memory, or from the store
	// when they are older (catchup.go); the text for a client that has
	// none or claims a revision the document does not have.
	switch {
	case hl.rev >= h.histBase && hl.rev <= h.rev:
		ops := h.history[hl.rev-h.histBase:]
		w.Ops = make([]OpRecord, len(ops))
		for i, r := range ops {
			w.Ops[i] = OpRecord{Rev: r.Rev, Op: r.Op, Author: h.authorOf(r.Client), Seq: r.Seq}
		}
		c.enqueue(mustJSON(w))
	case hl.rev >= 0 && hl.rev < h.histBase:
		c.enqueueWelcome(h.newWelcomeStream(w, hl.rev, h.rev))
	default:
		text := h.doc.String()
		w.Text = &text
		c.enqueue(mustJSON(w))
	}
	h.editors[e.client] = e
	h.welcomeComments(e)
	h.noteRanges(e)
	h.broadcastPresence(e)
	h.publishPresent()
}

func (h *hub) leave(c *conn) {
	e := h.current(c)
	if e == nil {
		return
	}
	delete(h.editors, c.client)
	delete(h.ranged, c.client)
	h.sendEditors(mustJSON(leaveMessage{Type: typeLeave, Author: e.author}))
	h.notify(notice{Kind: "leave", Author: e.author})
	h.publishPresent()
}

// applyOp transforms an op from one of this node's editors against
// everything committed since its base revision, applies it in memory and
// adds it to the batch. Its ack and broadcast wait for the commit.
func (h *hub) applyOp(c *conn, m *opMessage) {
	e := h.live(c)
	if e == nil {
		return
	}
	dup, perr := h.checkSeq(&e.seqState, m)
	switch {
	case perr != nil:
		c.fail(perr)
	case dup:
		// A resend of an op already applied: acknowledge it again with
		// its original revision, never apply it twice. If the original is
		// in the batch about to be committed, it came on this same
		// connection (a newer one joins only after the commit), or from
		// another node for this editor (cluster.go: submitted), and the
		// commit acknowledges it: an ack now would come before the op is
		// durable. Either way, one ack per connection (h.ack).
		if e.lastRev <= h.durableRev() {
			h.ack(e, e.lastRev, m.seq)
		}
	default:
		if perr := h.sequence(&e.seqState, e.client, m, pendingOp{c: c}); perr != nil {
			c.fail(perr)
		}
	}
}

// seqState is what the hub knows of one client's ops, for dedupe.
type seqState struct {
	lastSeq int64 // highest seq of this client applied (committed or in the batch)
	lastRev int64 // the revision that op became
}

// checkSeq checks an op's seq and rev against its client's state: dup
// for a resend of the op applied last, an error for one out of order or
// made on a revision this hub cannot transform from.
func (h *hub) checkSeq(st *seqState, m *opMessage) (dup bool, perr *protoError) {
	badOp := func(format string, args ...any) (bool, *protoError) {
		return false, &protoError{Code: CodeBadOp, Message: fmt.Sprintf(format, args...), Seq: m.seq}
	}
	switch {
	case m.seq == st.lastSeq:
		return true, nil
	case m.seq < st.lastSeq:
		return badOp("seq %d is out of order: seq %d was already applied", m.seq, st.lastSeq)
	case m.seq != st.lastSeq+1:
		return badOp("seq %d is out of order: the next op of this client must have seq %d", m.seq, st.lastSeq+1)
	case m.rev > h.rev:
		return badOp("rev %d is in the future: the document is at rev %d", m.rev, h.rev)
	case h.rev-m.rev > int64(h.srv.opts.MaxCatchUp):
		return badOp("rev %d is too old to transform (document at rev %d); reconnect", m.rev, h.rev)
	}
	return false, nil
}

// sequence transforms an op that passed checkSeq to the latest revision,
// applies it in memory, records it in st and adds it to the batch as p.
func (h *hub) sequence(st *seqState, client string, m *opMessage, p pendingOp) *protoError {
	defer h.srv.opts.Metrics.transformed(h.srv.opts.Metrics.clock())
	badOp := func(format string, args ...any) *protoError {
		return &protoError{Code: CodeBadOp, Message: fmt.Sprintf(format, args...), Seq: m.seq}
	}
	op := m.op
	if m.rev < h.rev {
		concurrent, err := h.opsAfter(m.rev)
		if errors.Is(err, errTooFarBack) {
			return badOp("rev %d is too far back to transform (document at rev %d); reconnect", m.rev, h.rev)
		}
		if err != nil {
			h.log.Error("read ops to transform against", "from", m.rev, "err", err)
			return errorf(CodeInternal, "internal error")
		}
		// Committed ops win ties: their inserts stay to the left.
		h.rebase.Reset(op)
		for _, r := range concurrent {
			if err := h.rebase.Over(r.Op); err != nil {
				return badOp("op does not apply to rev %d: %v", m.rev, err)
			}
		}
		op = h.rebase.Op()
	}
	if op.BaseLen() != h.doc.Len() {
		return badOp("op does not apply to rev %d: %v (op covers %d code points, document has %d)",
			m.rev, ot.ErrLengthMismatch, op.BaseLen(), h.doc.Len())
	}
	if perr := h.accept(op, client, m.seq, p); perr != nil {
		return perr
	}
	st.lastSeq, st.lastRev = m.seq, h.rev
	return nil
}

// remember appends a record, of opBytes bytes, to the in-memory history.
// Once it holds twice HistoryLimit ops or twice HistoryBytes of text, the
// oldest are dropped down to both limits in one copy, so the cost stays
// amortised O(1) per op. Dropped ops are read back from the store when
// needed.
func (h *hub) remember(rec Record, bytes int) {
	h.history = append(h.history, rec)
	h.histBytes += bytes
	limit, budget := h.srv.opts.HistoryLimit, h.srv.opts.HistoryBytes
	if len(h.history) < 2*limit && h.histBytes < 2*budget {
		return
	}
	drop := 0 // the newest op stays, however large
	for drop < len(h.history)-1 && (len(h.history)-drop > limit || h.histBytes > budget) {
		h.histBytes -= opBytes(h.history[drop].Op)
		drop++
	}
	h.history = append(h.history[:0:0], h.history[drop:]...)
	h.histBase += int64(drop)
}

// errTooFarBack is why opsAfter refuses to reach back past MaxCatchUp ops
// or MaxCatchUpBytes of them.
var errTooFarBack = errors.New("too far back")

// opsAfter returns the ops with revisions in (rev, h.rev], from memory
// and, for older ones, from the store. The slice must not be kept.
func (h *hub) opsAfter(rev int64) ([]Record, error) {
	if rev >= h.histBase {
		return h.history[rev-h.histBase:], nil
	}
	if h.rev-rev > int64(h.srv.opts.MaxCatchUp) {
		return nil, fmt.Errorf("rev %d is more than %d ops behind rev %d: %w", rev, h.srv.opts.MaxCatchUp, h.rev, errTooFarBack)
	}
	ctx, cancel := context.WithTimeout(h.srv.ctx, storeTimeout)
	defer cancel()
	out := make([]Record, 0, h.rev-rev)
	size := 0
	for after := rev; after < h.histBase; {
		page, err := h.srv.store.Ops(ctx, h.id, after, int(h.histBase-after), max(h.srv.opts.MaxCatchUpBytes-size, 1))
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return nil, fmt.Errorf("store has no ops after rev %d", after)
		}
		for _, r := range page {
			if r.Rev != after+1 || r.Rev > h.histBase {
				return nil, fmt.Errorf("store returned rev %d after rev %d", r.Rev, after)
			}
			after = r.Rev
			out = append(out, r)
			if size += opBytes(r.Op); size > h.srv.opts.MaxCatchUpBytes {
				return nil, fmt.Errorf("ops after rev %d hold over %d bytes: %w", rev, h.srv.opts.MaxCatchUpBytes, errTooFarBack)
			}
		}
	}
	return append(out, h.history...), nil
}

func (h *hub) startCommit() {
	recs := make([]Record, len(h.batch))
	for i, p := range h.batch {
		recs[i] = p.rec
	}
	h.committing = true
	h.paceStarted(time.Now())
	h.commitLen = h.doc.Len()
	bytes := h.batchBytes
	solo := h.link == nil // health.go: noteCommit
	go func() {
		// Not h.srv.ctx: a commit under way finishes even while the
		// server shuts down, and the hub waits for it.
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		start := time.Now()
		err := h.srv.store.Append(ctx, h.id, recs)
		h.srv.noteCommit(err, solo)
		h.srv.opts.Metrics.committed(time.Since(start), len(recs), bytes)
		h.commitDone <- err
	}()
}

// durableRev is the latest revision committed and sent out: ops after it
// are in memory only, or not yet acknowledged.
func (h *hub) durableRev() int64 {
	return h.rev - int64(len(h.batch)) - h.unsent
}

// takeBatch hands over the batch whose commit finished, and the
// document's length after it, and starts an empty one.
func (h *hub) takeBatch() ([]pendingOp, int) {
	done := h.batch
	h.batch, h.spare = h.spare[:0], nil
	h.batchBytes = 0
	return done, h.commitLen
}

// committed acknowledges and broadcasts a batch that is now durable; the
// document had length ops after it.
func (h *hub) committed(done []pendingOp, length int) {
	defer h.srv.opts.Metrics.fanOutDone(time.Now())
	defer h.uncorkEditors(h.corkEditors()) // cork.go: a frame per editor, not one per op
	if len(done) > 0 {
		h.srv.webhooks.changed(h.id, h.viewID, done[0].rec.Rev, done[len(done)-1].rec.Rev, length)
		h.srv.workspace.changed(h.id) // workspace.go: the search index
	}
	h.publishBatch(done) // fanout.go
	for _, p := range done {
		if p.restored != nil {
			p.restored <- restoreReply{rev: p.rec.Rev}
		}
		if p.committed != nil {
			p.committed(p.rec.Rev)
		}
	}
	clear(done)
	h.spare = done[:0]
}

// publish sends a committed record to this node's clients: the ack to
// ackTo (nil: nobody here), the op to every other editor, the event to
// the viewers.
func (h *hub) publish(r Record, ackTo *editor) {
	if ackTo != nil {
		h.ack(ackTo, r.Rev, r.Seq)
	}
	if h.editorsBesides(r.Client) {
		msg := appendOpMessage(nil, r.Rev, r.Op, h.authorOf(r.Client), r.Seq)
		for _, e := range h.editors {
			if e.client != r.Client {
				e.c.enqueue(msg)
			}
		}
	}
	h.publishViewers(r)
}

// publishViewers sends a committed record to the viewers.
func (h *hub) publishViewers(r Record) {
	if len(h.viewers) > 0 || h.snaps.wantsEvents() {
		ev := appendSSEOp(nil, r.Rev, r.Op)
		h.broadcastViewers(ev)
		h.noteEvent(r.Rev, ev)
	}
}

// ack acknowledges an editor's op seq as revision rev, once per
// connection.
func (h *hub) ack(e *editor, rev, seq int64) {
	if seq <= e.acked {
		return
	}
	e.acked = seq
	e.c.queuingAck() // metrics.go
	e.c.enqueueAck(appendAck(nil, rev, seq))
}

// editorsBesides reports whether an editor other than client's is here.
func (h *hub) editorsBesides(client string) bool {
	switch len(h.editors) {
	case 0:
		return false
	case 1:
		_, self := h.editors[client]
		return !self
	}
	return true
}

// saveSnapshot stores the text at the current revision if it changed
// since the last snapshot.
func (h *hub) saveSnapshot() {
	h.saveComments(true)
	if h.rev == h.savedRev {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	err := h.srv.store.SaveSnapshot(ctx, h.id, h.rev, h.doc.String())
	h.srv.noteCommit(err, h.link == nil)
	if err != nil {
		h.log.Error("save snapshot", "rev", h.rev, "err", err)
		return
	}
	h.savedRev = h.rev
}

// shutdown ends the hub when the server closes: the commit in flight
// finishes and is acknowledged, editors are told to come back later, and
// the document is snapshotted.
func (h *hub) shutdown() {
	h.srv.forget(h)
	if h.committing {
		err := <-h.commitDone
		h.committing = false
		if err != nil {
			h.fail(fmt.Errorf("append ops: %w", err))
			return
		}
		h.committed(h.takeBatch())
	}
	// Ops applied in memory but never committed were never acknowledged:
	// their clients resend them to the next server.
	for _, e := range h.editors {
		e.c.fail(errorf(CodeShuttingDown, "the server is going away; reconnect later"))
	}
	for v := range h.viewers {
		v.kick()
	}
	h.saveSnapshot()
}

// fail stops a hub whose state can no longer be trusted to match the
// store. Every connection is closed; clients reconnect to a fresh hub
// loaded from the store, and resend what was never acknowledged.
func (h *hub) fail(err error) {
	h.log.Error("document failed; closing its connections", "err", err)
	h.srv.forget(h)
	if h.committing {
		<-h.commitDone
		h.committing = false
	}
	code := CodeInternal
	// In cluster mode a failed append is most often another node's
	// doing (it took the document) or the network's: clients should come
	// back, to whichever node can serve them.
	if errors.Is(err, context.Canceled) || h.srv.ctx.Err() != nil || h.link != nil {
		code = CodeShuttingDown
	}
	msg := "internal error"
	if code == CodeShuttingDown {
		msg = "the document could not be saved here; reconnect"
	}
	for _, e := range h.editors {
		e.c.fail(errorf(code, "%s", msg))
	}
	for v := range h.viewers {
		v.kick()
	}
}
