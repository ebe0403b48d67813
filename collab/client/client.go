package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/coder/websocket"
	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

// Options configures a Client. The zero value works.
type Options struct {
	// Token is an access token (docs/embedding.md), sent as ?token= on
	// the handshake; SetToken replaces it for later reconnects.
	Token string
	// ClientID is the client id to use; empty means a new random one.
	// Reusing one continues an earlier session's seq numbering.
	ClientID string
	// Name is shown to the other editors.
	Name string
	// HTTPHeader is sent with the WebSocket handshake (an Origin, say).
	HTTPHeader http.Header
	// ReadLimit bounds one message from the server (default 64 MiB).
	ReadLimit int64
}

// ErrLostEdits is returned by Reconnect when the server sent the full text
// instead of catch-up ops while local edits were unacknowledged: they
// could not be rebased and were dropped.
var ErrLostEdits = errors.New("client: unacknowledged local edits were lost")

// Client edits one document over the WebSocket protocol, on top of the
// ot.Client state machine: it applies local edits at once, keeps at most
// one op in flight, rebases on ops from other editors, and resumes after a
// reconnect without sending or applying anything twice. The Go tests and
// the load generator use it. It is safe for concurrent use.
//
// Its calls mirror the JavaScript SDK's CollabDocument (sdk/collabd.d.ts):
// Open, Text, Rev, Insert, Delete, OnChange, OnPresence, SetSelection,
// WaitSynced, Close.
type Client struct {
	opts Options

	// sendMu orders writes as they were decided under mu.
	sendMu sync.Mutex

	mu     sync.Mutex
	url    string // of the editing endpoint; ReconnectTo changes it
	ws     *websocket.Conn
	doc    *ot.Doc
	state  *ot.Client
	color  string
	viewID string
	author string          // this client's author id, from the welcome
	peers  map[string]Peer // by author id
	// ranged counts the peers with selections: every remote op would
	// otherwise walk the whole peer map, which with hundreds of editors
	// on a document (most with no selection known) was half the
	// client's CPU (collabload -cpuprofile, 400 editors).
	ranged  int
	err     error         // the last protocol error from the server
	changed chan struct{} // closed and replaced whenever state changes
	done    chan struct{} // closed when the current connection's reader ends

	// Listeners and the events queued for them (events.go).
	listeners  listeners
	queue      []event
	delivering bool
	drained    *sync.Cond // on mu: the deliverer took the queue
	stopping   bool       // Drop or Close: the reader must not wait
}

// Dial connects to a document's editing endpoint: wsURL is the server's
// ws:// or http:// URL of /api/docs/{id}/ws.
func Dial(ctx context.Context, wsURL string, opts Options) (*Client, error) {
	if opts.ClientID == "" {
		opts.ClientID = uuid.NewString()
	} else if id, err := uuid.Parse(opts.ClientID); err == nil {
		// The server speaks of client ids in canonical (lower-case) form;
		// so must we, to recognise our own ops in catch-up.
		opts.ClientID = id.String()
	}
	if opts.ReadLimit == 0 {
		opts.ReadLimit = 64 << 20
	}
	c := &Client{url: wsURL, opts: opts, peers: make(map[string]Peer), changed: make(chan struct{})}
	c.drained = sync.NewCond(&c.mu)
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// ID returns the client id. It is this session's secret: the server
// never sends it to anybody.
func (c *Client) ID() string { return c.opts.ClientID }

// Author returns the public author id the server names this client by,
// as told in the latest welcome.
func (c *Client) Author() string { c.mu.Lock(); defer c.mu.Unlock(); return c.author }

// connect opens a connection, says hello and applies the welcome. On a
// reconnect it says which revision it has, applies the catch-up ops and
// resends the op in flight, if the server does not have it yet.
func (c *Client) connect(ctx context.Context) error {
	c.mu.Lock()
	url, tokURL := c.url, withToken(c.url, c.opts.Token)
	c.mu.Unlock()
	ws, _, err := websocket.Dial(ctx, tokURL, &websocket.DialOptions{HTTPHeader: c.opts.HTTPHeader})
	if err != nil {
		return fmt.Errorf("dial %s: %w", url, err)
	}
	ws.SetReadLimit(c.opts.ReadLimit)

	c.mu.Lock()
	h := map[string]any{"type": typeHello, "client": c.opts.ClientID, "name": c.opts.Name}
	if c.state != nil {
		h["rev"] = c.state.Rev()
	}
	c.mu.Unlock()
	if err := ws.Write(ctx, websocket.MessageText, mustJSON(h)); err != nil {
		ws.CloseNow()
		return fmt.Errorf("send hello: %w", err)
	}
	dec := new(FrameDecoder)
	// A message after the welcome that does not decode is an error of the
	// reader's, once it has handled what came before it.
	frame, err := dec.ReadFrame(ctx, ws)
	if err != nil {
		ws.CloseNow()
		return fmt.Errorf("read welcome: %w", err)
	}
	msgs, pendingErr := dec.Decode(frame)
	if len(msgs) == 0 {
		ws.CloseNow()
		return fmt.Errorf("expected a welcome, got %s", truncate(string(frame), 200))
	}
	var w welcomeMessage
	if err := json.Unmarshal(msgs[0].Raw, &w); err != nil || w.Type != typeWelcome {
		ws.CloseNow()
		return fmt.Errorf("expected a welcome, got %s", truncate(string(msgs[0].Raw), 200))
	}
	if w.Protocol != ProtocolVersion {
		ws.CloseNow()
		return fmt.Errorf("server speaks protocol %d, this client %d", w.Protocol, ProtocolVersion)
	}

	c.mu.Lock()
	resend, werr := c.applyWelcome(&w)
	c.ws = ws
	c.done = make(chan struct{})
	c.stopping = false
	done := c.done
	c.notify()
	c.sendMu.Lock()
	c.mu.Unlock()
	// The welcome may share its frame with later messages.
	go c.readLoop(ws, done, dec, msgs[1:], pendingErr)
	if resend != nil {
		c.writeOp(ws, resend)
	}
	c.sendMu.Unlock()
	c.deliver(false)
	return werr
}

// applyWelcome installs the document from a welcome. It returns the op
// to resend, if any. Called with mu held.
func (c *Client) applyWelcome(w *welcomeMessage) (*ot.Pending, error) {
	c.color, c.viewID, c.author = w.Color, w.ViewID, w.Author
	// Peers' selections are at the welcome's revision: they are installed
	// after the catch-up ops, which must not move them again.
	defer func() {
		clear(c.peers)
		c.ranged = 0
		out := c.state.Outstanding()
		for _, p := range w.Peers {
			if out != nil {
				transformRanges(p.Ranges, out)
			}
			c.setPeer(p)
		}
		c.queuePresence()
	}()
	if w.Text != nil || c.state == nil {
		var lost error
		if c.state != nil && c.state.Outstanding() != nil {
			lost = ErrLostEdits
		}
		text := ""
		if w.Text != nil {
			text = *w.Text
		}
		if c.doc != nil && c.listeners.changes() {
			// A resync replaces the text: listeners see it as one op.
			reset := ot.Op{}.Delete(c.doc.Len()).Insert(text)
			c.queue = append(c.queue, event{change: &Change{Rev: w.Rev, Op: reset}})
		}
		c.doc = ot.NewDoc(text)
		c.state = ot.NewClient(w.Rev, w.LastSeq)
		return nil, lost
	}
	// The buffer promoted by an ack is not sent during catch-up: the op in
	// flight at the end is sent once, made on the latest revision.
	for _, r := range w.Ops {
		if _, err := c.apply(r.Rev, r.Op, r.Author, r.Author != "" && r.Author == c.author, r.Seq); err != nil {
			return nil, err
		}
	}
	return c.state.Inflight(), nil
}

// apply handles op rev from the server: an ack of our in-flight op when it
// is ours (as in catch-up: mine, it names our author id, and it has the
// in-flight seq), else another editor's op to rebase and apply. It
// returns the buffered op that an ack promoted, to be sent. Called with
// mu held.
func (c *Client) apply(rev int64, op ot.Op, author string, mine bool, seq int64) (*ot.Pending, error) {
	if in := c.state.Inflight(); in != nil && mine && seq == in.Seq {
		return c.state.Ack(rev, seq)
	}
	local, err := c.state.ApplyServer(rev, op)
	if err != nil {
		return nil, err
	}
	if err := c.doc.Apply(local); err != nil {
		return nil, fmt.Errorf("apply op %d: %w", rev, err)
	}
	c.transformPeers(local)
	if c.listeners.changes() {
		c.queue = append(c.queue, event{change: &Change{Rev: rev, Op: local, Author: author}})
	}
	return nil, nil
}

// transformPeers moves the other editors' selections through an op
// applied to the local text, so that they stay on the same characters.
// Called with mu held.
func (c *Client) transformPeers(op ot.Op) {
	if c.ranged == 0 {
		return
	}
	for _, p := range c.peers {
		transformRanges(p.Ranges, op) // in place: the map's copy shares the slice
	}
}

// setPeer installs or replaces p, keeping ranged in step.
func (c *Client) setPeer(p Peer) {
	c.dropPeer(p.Author)
	c.peers[p.Author] = p
	if len(p.Ranges) > 0 {
		c.ranged++
	}
}

func (c *Client) dropPeer(author string) {
	if old, ok := c.peers[author]; ok {
		delete(c.peers, author)
		if len(old.Ranges) > 0 {
			c.ranged--
		}
	}
}

func (c *Client) writeOp(ws *websocket.Conn, p *ot.Pending) {
	msg := fmt.Appendf(nil, `{"type":"op","rev":%d,"seq":%d,"op":`, p.Rev, p.Seq)
	msg = append(p.Op.AppendJSON(msg), '}')
	// A failed write ends the connection; the reader sees it, and the op
	// is resent after Reconnect.
	ws.Write(context.Background(), websocket.MessageText, msg)
}

// serverMessage is any message from the server after the welcome, as
// encoding/json decodes it (FrameDecoder's fallback).
type serverMessage struct {
	Type    string  `json:"type"`
	Rev     int64   `json:"rev"`
	Seq     int64   `json:"seq"`
	Op      ot.Op   `json:"op"`
	Author  string  `json:"author"`
	Name    string  `json:"name"`
	Color   string  `json:"color"`
	Ranges  []Range `json:"ranges"`
	Code    string  `json:"code"`
	Message string  `json:"message"`
}

// readLoop handles the server's messages until the connection ends,
// starting with pending, what shared the welcome's frame, and pendingErr,
// the decoding error that followed them.
func (c *Client) readLoop(ws *websocket.Conn, done chan struct{}, dec *FrameDecoder, pending []Message, pendingErr error) {
	defer close(done)
	defer ws.CloseNow()
	fail := func(err error) {
		c.mu.Lock()
		c.err = err
		c.notify()
		c.mu.Unlock()
	}
	for {
		for i := range pending {
			if err := c.handle(ws, &pending[i], i == len(pending)-1); err != nil {
				fail(err)
				return
			}
		}
		if pendingErr != nil {
			fail(pendingErr)
			return
		}
		frame, err := dec.ReadFrame(context.Background(), ws)
		if err != nil {
			c.mu.Lock()
			if c.err == nil && websocket.CloseStatus(err) != -1 && websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				c.err = fmt.Errorf("connection closed: %w", err)
			}
			c.notify()
			c.mu.Unlock()
			return
		}
		pending, pendingErr = dec.Decode(frame)
	}
}

// handle applies one message from the server, and sends the buffered op
// that an ack promotes. Waiters are woken after the last message of a
// frame (last), not for each: a batch frame of a busy document holds
// dozens of ops, and each wake-up costs a channel.
func (c *Client) handle(ws *websocket.Conn, m *Message, last bool) error {
	var op ot.Op
	if m.Type == typeOp {
		var err error
		if op, err = m.Op(); err != nil {
			return err
		}
	}
	c.mu.Lock()
	var next *ot.Pending
	var err error
	switch m.Type {
	case typeAck:
		next, err = c.state.Ack(m.Rev, m.Seq)
	case typeOp:
		var author string
		if c.listeners.changes() {
			author = m.Author() // allocates: only for listeners
		}
		next, err = c.apply(m.Rev, op, author, c.author != "" && m.AuthorIs(c.author), m.Seq)
	case typePresence:
		// The selections are at the revision the client is at; its local
		// text also holds its unacknowledged edits.
		if out := c.state.Outstanding(); out != nil {
			transformRanges(m.Ranges, out)
		}
		c.setPeer(Peer{Author: m.Author(), Name: m.Name, Color: m.Color, Ranges: m.Ranges})
		c.queuePresence()
	case typeLeave:
		c.dropPeer(m.Author())
		c.queuePresence()
	case typeError:
		c.err = &ServerError{Code: m.Code, Message: m.Message, Seq: m.Seq}
	}
	if last || err != nil {
		c.notify()
	}
	c.sendMu.Lock()
	c.mu.Unlock()
	if next != nil {
		c.writeOp(ws, next)
	}
	c.sendMu.Unlock()
	if last || err != nil {
		c.deliver(true)
	}
	return err
}

// ServerError is an error message the server sent.
type ServerError struct {
	Code, Message string
	Seq           int64
}

func (e *ServerError) Error() string { return "server error " + e.Code + ": " + e.Message }

// notify wakes everyone waiting for a change. Called with mu held.
func (c *Client) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Edit applies op, made on the current local text, locally at once and
// sends it to the server, or buffers it while another op is in flight.
// Ops from other editors may change the local text at any moment; to make
// an op on the text as it is, use EditFunc.
func (c *Client) Edit(op ot.Op) error {
	return c.edit(func() ot.Op { return op })
}

// EditFunc is Edit for an op made on the current local text: it calls f
// with the text and the client's lock held, so that nothing changes the
// text before the op f returns is applied. A nil op changes nothing. f
// must not call the Client's methods.
func (c *Client) EditFunc(f func(text string) ot.Op) error {
	return c.edit(func() ot.Op { return c.orNoop(f(c.doc.String())) })
}

// EditView is EditFunc for an op made from a View of the client's
// state: its revision and seqs as well as its text.
func (c *Client) EditView(f func(v View) ot.Op) error {
	return c.edit(func() ot.Op { return c.orNoop(f(View{c})) })
}

// EditLenFunc is EditFunc for an op that needs only the local text's
// length in code points, which it gets without the text being copied
// into a string (the load generator types hundreds of editors into
// documents of many thousand code points).
func (c *Client) EditLenFunc(f func(n int) ot.Op) error {
	return c.edit(func() ot.Op { return c.orNoop(f(c.doc.Len())) })
}

// orNoop returns op, or for a nil op the no-op on the local text, which
// sends nothing. Called with mu held.
func (c *Client) orNoop(op ot.Op) ot.Op {
	if op != nil {
		return op
	}
	return ot.Op{}.Retain(c.doc.Len())
}

// edit applies and sends the op that build makes with mu held.
func (c *Client) edit(build func() ot.Op) error {
	c.mu.Lock()
	op := build()
	if err := c.doc.Apply(op); err != nil {
		c.mu.Unlock()
		return err
	}
	p, err := c.state.ApplyLocal(op)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	c.transformPeers(op)
	if c.listeners.changes() {
		c.queue = append(c.queue, event{change: &Change{Rev: c.state.Rev(), Op: op, Author: c.author, Local: true}})
	}
	c.notify()
	ws := c.ws
	c.sendMu.Lock()
	c.mu.Unlock()
	if p != nil {
		c.writeOp(ws, p)
	}
	c.sendMu.Unlock()
	c.deliver(false)
	return nil
}

// SetCursor sends this editor's selections, as of the local text. Like
// the protocol, it sends nothing while an op is unacknowledged.
func (c *Client) SetCursor(ranges []Range) error {
	c.mu.Lock()
	if c.state.State() != ot.Synchronized {
		c.mu.Unlock()
		return nil
	}
	msg := mustJSON(map[string]any{"type": typeCursor, "rev": c.state.Rev(), "ranges": ranges})
	ws := c.ws
	c.sendMu.Lock()
	c.mu.Unlock()
	defer c.sendMu.Unlock()
	return ws.Write(context.Background(), websocket.MessageText, msg)
}

// Text returns the local text, including unacknowledged edits.
func (c *Client) Text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.doc.String()
}

// Len returns the local text's length in code points.
func (c *Client) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.doc.Len()
}

// Rev returns the latest server revision the client has applied.
func (c *Client) Rev() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.Rev()
}

// Color returns the color the server gave this editor, and ViewID the
// document's view id.
func (c *Client) Color() string  { c.mu.Lock(); defer c.mu.Unlock(); return c.color }
func (c *Client) ViewID() string { c.mu.Lock(); defer c.mu.Unlock(); return c.viewID }

// Peers returns the other editors, sorted by author id.
func (c *Client) Peers() []Peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peersLocked()
}

// peersLocked is Peers with mu held.
func (c *Client) peersLocked() []Peer {
	out := make([]Peer, 0, len(c.peers))
	for _, p := range c.peers {
		p.Ranges = append([]Range(nil), p.Ranges...)
		out = append(out, p)
	}
	sortPeers(out)
	return out
}

func sortPeers(p []Peer) {
	for i := 1; i < len(p); i++ {
		for j := i; j > 0 && strings.Compare(p[j-1].Author, p[j].Author) > 0; j-- {
			p[j-1], p[j] = p[j], p[j-1]
		}
	}
}

// Err returns the last error the server reported, or why the connection
// ended abnormally; nil otherwise.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Wait blocks until cond, called with a View of the client's state (and
// its lock held), holds, or ctx ends, or the connection fails.
func (c *Client) Wait(ctx context.Context, cond func(v View) bool) error {
	return c.wait(ctx, func(c *Client) bool { return cond(View{c}) })
}

// wait is Wait for a condition on the Client's fields.
func (c *Client) wait(ctx context.Context, cond func(c *Client) bool) error {
	for {
		c.mu.Lock()
		ok := cond(c)
		changed, err, done := c.changed, c.err, c.done
		c.mu.Unlock()
		if ok {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case <-changed:
		case <-done:
			c.mu.Lock()
			ok, err := cond(c), c.err
			c.mu.Unlock()
			if ok {
				return nil
			}
			if err == nil {
				err = errors.New("client: connection closed")
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitSynced waits until every local edit has been acknowledged.
func (c *Client) WaitSynced(ctx context.Context) error {
	return c.wait(ctx, func(c *Client) bool { return c.state.State() == ot.Synchronized })
}

// WaitRev waits until the client has applied revision rev and has no
// unacknowledged edits.
func (c *Client) WaitRev(ctx context.Context, rev int64) error {
	return c.wait(ctx, func(c *Client) bool {
		return c.state.Rev() >= rev && c.state.State() == ot.Synchronized
	})
}

// WaitAcked waits until the server has acknowledged every op of this
// client up to seq.
func (c *Client) WaitAcked(ctx context.Context, seq int64) error {
	return c.wait(ctx, func(c *Client) bool { return c.ackedSeq() >= seq })
}

// Seqs returns the highest seq this client has given an op and the highest
// the server has acknowledged: they are equal when every local edit is
// acknowledged. Edits buffered behind the op in flight have no seq yet.
func (c *Client) Seqs() (assigned, acked int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.LastSeq(), c.ackedSeq()
}

// ackedSeq is the highest acknowledged seq. Called with mu held.
func (c *Client) ackedSeq() int64 {
	if p := c.state.Inflight(); p != nil {
		return p.Seq - 1
	}
	return c.state.LastSeq()
}

// Synced reports whether every local edit has been acknowledged, and the
// text and revision it is at, in one consistent reading.
func (c *Client) Synced() (ok bool, text string, rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.State() == ot.Synchronized, c.doc.String(), c.state.Rev()
}

// Drop cuts the connection abruptly, as a network failure would, leaving
// the client's state for Reconnect.
func (c *Client) Drop() {
	c.mu.Lock()
	ws, done := c.ws, c.done
	c.stopReader()
	c.mu.Unlock()
	ws.CloseNow()
	<-done
}

// Reconnect opens a new connection for the same client id and resumes:
// catch-up ops rebase the local edits, and the op in flight is resent
// unless the server already applied it. The old connection, if still
// open, is closed.
func (c *Client) Reconnect(ctx context.Context) error {
	c.Drop()
	c.mu.Lock()
	c.err = nil
	c.mu.Unlock()
	return c.connect(ctx)
}

// ReconnectTo is Reconnect at another URL of the same document's editing
// endpoint, for a server that came back elsewhere (another port, say).
// Later reconnects use the new URL too.
func (c *Client) ReconnectTo(ctx context.Context, wsURL string) error {
	c.mu.Lock()
	c.url = wsURL
	c.mu.Unlock()
	return c.Reconnect(ctx)
}

// Close ends the session with a normal closure.
func (c *Client) Close() error {
	c.mu.Lock()
	ws, done := c.ws, c.done
	c.stopReader()
	c.mu.Unlock()
	err := ws.Close(websocket.StatusNormalClosure, "bye")
	<-done
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
