package ot

import (
	"errors"
	"fmt"
)

var (
	// ErrRevision is returned by Client when a server op or ack does not
	// carry the revision right after the client's.
	ErrRevision = errors.New("ot: unexpected revision")
	// ErrUnexpectedAck is returned by Client.Ack when no op is in flight or
	// the ack's seq is not the in-flight op's.
	ErrUnexpectedAck = errors.New("ot: unexpected ack")
)

// State is the phase of a Client.
type State int

const (
	// Synchronized: every local edit has been acknowledged.
	Synchronized State = iota
	// AwaitingAck: one op is in flight and nothing else is pending.
	AwaitingAck
	// AwaitingWithBuffer: one op is in flight and later local edits wait,
	// composed into one buffered op, for its ack.
	AwaitingWithBuffer
)

func (s State) String() string {
	switch s {
	case Synchronized:
		return "Synchronized"
	case AwaitingAck:
		return "AwaitingAck"
	case AwaitingWithBuffer:
		return "AwaitingWithBuffer"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Pending is an op message to send to the server:
// {"type":"op","rev":Rev,"seq":Seq,"op":Op}.
type Pending struct {
	Rev int64
	Seq int64
	Op  Op
}

// Client is the client side of the protocol as a pure state machine: it
// tracks the revision the local text is at, the one op in flight and the
// buffer of later local edits, and it rebases them over ops from the server.
// It does no I/O and holds no text; the caller applies the ops it returns.
//
// Transitions:
//
//	Synchronized --ApplyLocal--> AwaitingAck (returns the op to send)
//	AwaitingAck --ApplyLocal--> AwaitingWithBuffer
//	AwaitingWithBuffer --ApplyLocal--> AwaitingWithBuffer (composes), or
//	    AwaitingAck if the buffer composes to a no-op
//	AwaitingAck --Ack--> Synchronized
//	AwaitingWithBuffer --Ack--> AwaitingAck (returns the buffer to send)
//	any --ApplyServer--> same state (in-flight op and buffer transformed),
//	    or AwaitingAck if the buffer is transformed to a no-op
//
// When transforming, the server's op wins ties (Transform(serverOp,
// pending)): the server committed it before our pending op, and the server
// applies the same rule, so both sides agree.
//
// Reconnecting keeps the same Client. On a welcome carrying catch-up ops,
// feed each op to ApplyServer, except the op whose client id and seq equal
// this client's in-flight op, which goes to Ack (the server applied it before
// the connection dropped); during catch-up, do not send the Pending that Ack
// may return. After the last catch-up op, if an op is in flight (the old one
// or the promoted buffer), send Inflight(): its seq, the current revision,
// and the op transformed to it. Sending only at the end means each op is
// sent once on the new connection, made on the latest revision. Should the
// server already have that seq, it only re-acks it. A welcome carrying full
// text instead of ops means local state cannot be rebased: start over with
// NewClient(rev, lastSeq) on that text.
//
// A Client is not safe for concurrent use.
type Client struct {
	rev      int64
	lastSeq  int64
	inflight *Pending // nil when synchronized; its Rev is kept at rev
	// buffer is nil unless AwaitingWithBuffer, and never a no-op: edits
	// that cancel out (type, then backspace) or that a server op made
	// redundant leave nothing to send, so they go back to AwaitingAck
	// rather than costing Ack a revision.
	buffer Op
}

// NewClient returns a synchronized Client whose text is at revision rev;
// lastSeq is the highest seq already used, so the next op gets lastSeq+1.
func NewClient(rev, lastSeq int64) *Client {
	return &Client{rev: rev, lastSeq: lastSeq}
}

// Rev returns the revision the client's text is at, counting only server
// ops and acks (not local edits).
func (c *Client) Rev() int64 { return c.rev }

// LastSeq returns the highest seq assigned so far.
func (c *Client) LastSeq() int64 { return c.lastSeq }

// State returns the client's current phase.
func (c *Client) State() State {
	switch {
	case c.inflight == nil:
		return Synchronized
	case c.buffer == nil:
		return AwaitingAck
	}
	return AwaitingWithBuffer
}

// ApplyLocal records op, which the caller has already applied to its local
// text. When synchronized it returns the message to send (seq lastSeq+1, at
// the current revision); otherwise it composes op into the buffer and
// returns nil. A no-op is validated and then ignored: it would only waste a
// revision. If the buffer composes to a no-op, it is dropped for the same
// reason. On error the client is unchanged.
func (c *Client) ApplyLocal(op Op) (*Pending, error) {
	if err := op.Validate(); err != nil {
		return nil, fmt.Errorf("local op: %w", err)
	}
	if op.IsNoop() {
		// Even a no-op must fit the local text: a wrong length means the
		// caller's text and the client's pending ops disagree. When
		// synchronized the client knows no length to check against.
		if n, ok := c.localLen(); ok && op.BaseLen() != n {
			return nil, fmt.Errorf("local op: base %d, text %d: %w", op.BaseLen(), n, ErrLengthMismatch)
		}
		return nil, nil
	}
	op = op.Normalize()
	switch {
	case c.inflight == nil:
		c.lastSeq++
		c.inflight = &Pending{Rev: c.rev, Seq: c.lastSeq, Op: op}
		p := *c.inflight
		return &p, nil
	case c.buffer == nil:
		// No buffer to compose with, so check the length here.
		if op.BaseLen() != c.inflight.Op.TargetLen() {
			return nil, fmt.Errorf("local op: base %d, text %d: %w",
				op.BaseLen(), c.inflight.Op.TargetLen(), ErrLengthMismatch)
		}
		c.buffer = op
	default:
		b, err := Compose(c.buffer, op)
		if err != nil {
			return nil, fmt.Errorf("local op: %w", err)
		}
		c.buffer = dropNoop(b)
	}
	return nil, nil
}

// localLen returns the length of the local text, which the client knows
// only from its pending ops: false when synchronized.
func (c *Client) localLen() (int, bool) {
	switch {
	case c.inflight == nil:
		return 0, false
	case c.buffer == nil:
		return c.inflight.Op.TargetLen(), true
	}
	return c.buffer.TargetLen(), true
}

// dropNoop returns nil for a no-op buffer, keeping Client.buffer's
// invariant, and op otherwise.
func dropNoop(op Op) Op {
	if op.IsNoop() {
		return nil
	}
	return op
}

// ApplyServer takes op rev from another client, which the server made to
// apply on revision rev-1; rev must be Rev()+1. It rebases the in-flight op
// and the buffer over op and returns op rebased over them: the op to apply
// to the local text. On error the client is unchanged.
func (c *Client) ApplyServer(rev int64, op Op) (Op, error) {
	if rev != c.rev+1 {
		return nil, fmt.Errorf("server op %d at revision %d: %w", rev, c.rev, ErrRevision)
	}
	if c.inflight == nil {
		// Validate here too, so a bad op never reaches the caller's text.
		if err := op.Validate(); err != nil {
			return nil, fmt.Errorf("server op %d: %w", rev, err)
		}
		c.rev = rev
		return op, nil
	}
	op1, inflight1, err := Transform(op, c.inflight.Op)
	if err != nil {
		return nil, fmt.Errorf("server op %d against in-flight op: %w", rev, err)
	}
	var buffer1 Op
	if c.buffer != nil {
		op1, buffer1, err = Transform(op1, c.buffer)
		if err != nil {
			return nil, fmt.Errorf("server op %d against buffer: %w", rev, err)
		}
	}
	c.rev = rev
	// A fresh Pending, so one handed out earlier is not changed under its
	// holder. The in-flight op stays even if the server's op made it a
	// no-op: it was sent, and only its ack settles it.
	c.inflight = &Pending{Rev: rev, Seq: c.inflight.Seq, Op: inflight1}
	// The buffer can become a no-op, e.g. when both deleted the same text.
	c.buffer = dropNoop(buffer1)
	return op1, nil
}

// Ack handles the server's ack that the in-flight op (seq) became op rev;
// rev must be Rev()+1. If edits were buffered, they become the new in-flight
// op, returned for sending at revision rev. On error the client is
// unchanged.
func (c *Client) Ack(rev, seq int64) (*Pending, error) {
	if c.inflight == nil {
		return nil, fmt.Errorf("ack of seq %d with nothing in flight: %w", seq, ErrUnexpectedAck)
	}
	if seq != c.inflight.Seq {
		return nil, fmt.Errorf("ack of seq %d, in flight is %d: %w", seq, c.inflight.Seq, ErrUnexpectedAck)
	}
	if rev != c.rev+1 {
		return nil, fmt.Errorf("ack at revision %d, client at %d: %w", rev, c.rev, ErrRevision)
	}
	c.rev = rev
	c.inflight = nil
	if c.buffer == nil {
		return nil, nil
	}
	c.lastSeq++
	c.inflight = &Pending{Rev: rev, Seq: c.lastSeq, Op: c.buffer}
	c.buffer = nil
	p := *c.inflight
	return &p, nil
}

// Inflight returns the unacknowledged op, transformed to and labelled with
// the current revision, for resending after a reconnect; nil if none.
func (c *Client) Inflight() *Pending {
	if c.inflight == nil {
		return nil
	}
	p := *c.inflight
	p.Rev = c.rev
	return &p
}

// Outstanding returns all local edits the server has not acknowledged, as
// one op on the current revision's text, or nil if there are none.
func (c *Client) Outstanding() Op {
	if c.inflight == nil {
		return nil
	}
	if c.buffer == nil {
		return c.inflight.Op
	}
	// Both are kept consistent, so Compose cannot fail here.
	op, err := Compose(c.inflight.Op, c.buffer)
	if err != nil {
		panic("ot: client state corrupt: " + err.Error())
	}
	return op
}
