package ot

import (
	"fmt"
)

// An in-memory server and network, used by the client tests and the
// concurrent trace replay. The server does what the protocol asks of the
// real one: it transforms an incoming op against every op committed since
// the op's base revision (committed op first, so it wins ties), applies it,
// acks the sender and broadcasts to the others. Each peer has a queue of
// messages from the server, delivered one at a time in order.

type simEntry struct {
	op     Op
	client int
	seq    int64
}

type simMsg struct {
	op     Op
	rev    int64
	seq    int64
	client int // the op's author
	ack    bool
}

type simPeer struct {
	c    *Client
	doc  *Doc
	in   []simMsg // from the server, in order
	head int      // in[head:] is undelivered
	// out holds ops not yet uploaded when uploads are delayed.
	out []Pending
}

func (p *simPeer) pending() int { return len(p.in) - p.head }

type simNet struct {
	server  *Doc
	history []simEntry // history[i] is op i+1
	lastSeq []int64    // per client: highest seq applied
	peers   []*simPeer
	// delayUploads queues ops from clients until uploadOne; otherwise the
	// server handles an op the moment it is sent.
	delayUploads bool
	// onSend, if set, sees every op a client sends (for trace bookkeeping).
	onSend func(peer int, p *Pending)
	// rebased counts ops the server had to transform: made concurrently
	// with ops committed before them.
	rebased int
}

func newSimNet(clients int, text string) *simNet {
	n := &simNet{server: NewDoc(text), lastSeq: make([]int64, clients)}
	for range clients {
		n.peers = append(n.peers, &simPeer{c: NewClient(0, 0), doc: NewDoc(text)})
	}
	return n
}

func (n *simNet) rev() int64 { return int64(len(n.history)) }

// send hands a client's op to the server, now or later.
func (n *simNet) send(i int, p *Pending) error {
	if n.onSend != nil {
		n.onSend(i, p)
	}
	if n.delayUploads {
		n.peers[i].out = append(n.peers[i].out, *p)
		return nil
	}
	return n.receive(i, *p)
}

// uploadOne lets the server handle the oldest queued op of client i.
func (n *simNet) uploadOne(i int) error {
	p := n.peers[i]
	if len(p.out) == 0 {
		return nil
	}
	m := p.out[0]
	p.out = p.out[1:]
	return n.receive(i, m)
}

// receive is the server's handling of {"type":"op"} from client i.
func (n *simNet) receive(i int, p Pending) error {
	if p.Seq <= n.lastSeq[i] {
		// A resend of an applied op: ack it again with its original revision.
		for r := len(n.history) - 1; r >= 0; r-- {
			if h := n.history[r]; h.client == i && h.seq == p.Seq {
				n.queue(i, simMsg{ack: true, rev: int64(r + 1), seq: p.Seq, client: i})
				return nil
			}
		}
		return fmt.Errorf("server: client %d resent unknown seq %d", i, p.Seq)
	}
	if p.Seq != n.lastSeq[i]+1 {
		return fmt.Errorf("server: client %d seq %d after %d", i, p.Seq, n.lastSeq[i])
	}
	if p.Rev < 0 || p.Rev > n.rev() {
		return fmt.Errorf("server: client %d op at rev %d, server at %d", i, p.Rev, n.rev())
	}
	op := p.Op
	if p.Rev < n.rev() {
		n.rebased++
	}
	for _, h := range n.history[p.Rev:] {
		var err error
		if _, op, err = Transform(h.op, op); err != nil {
			return fmt.Errorf("server: transform client %d seq %d: %w", i, p.Seq, err)
		}
	}
	if err := n.server.Apply(op); err != nil {
		return fmt.Errorf("server: apply client %d seq %d: %w", i, p.Seq, err)
	}
	n.history = append(n.history, simEntry{op: op, client: i, seq: p.Seq})
	n.lastSeq[i] = p.Seq
	rev := n.rev()
	for j := range n.peers {
		if j == i {
			n.queue(j, simMsg{ack: true, rev: rev, seq: p.Seq, client: i})
		} else {
			n.queue(j, simMsg{op: op, rev: rev, seq: p.Seq, client: i})
		}
	}
	return nil
}

func (n *simNet) queue(i int, m simMsg) {
	p := n.peers[i]
	if p.head == len(p.in) {
		// Drained: reuse the queue's memory.
		p.in, p.head = p.in[:0], 0
	}
	p.in = append(p.in, m)
}

// local applies a local edit at client i and sends what the client says to.
func (n *simNet) local(i int, op Op) error {
	p := n.peers[i]
	if err := p.doc.Apply(op); err != nil {
		return fmt.Errorf("client %d: local apply %v: %w", i, op, err)
	}
	send, err := p.c.ApplyLocal(op)
	if err != nil {
		return fmt.Errorf("client %d: ApplyLocal: %w", i, err)
	}
	if send != nil {
		return n.send(i, send)
	}
	return nil
}

// deliver hands client i its oldest message from the server and returns it.
func (n *simNet) deliver(i int) (simMsg, error) {
	p := n.peers[i]
	m := p.in[p.head]
	p.in[p.head] = simMsg{} // drop the reference to the op
	p.head++
	return m, n.handle(i, m)
}

func (n *simNet) handle(i int, m simMsg) error {
	p := n.peers[i]
	if m.ack {
		send, err := p.c.Ack(m.rev, m.seq)
		if err != nil {
			return fmt.Errorf("client %d: Ack: %w", i, err)
		}
		if send != nil {
			return n.send(i, send)
		}
		return nil
	}
	op, err := p.c.ApplyServer(m.rev, m.op)
	if err != nil {
		return fmt.Errorf("client %d: ApplyServer: %w", i, err)
	}
	if err := p.doc.Apply(op); err != nil {
		return fmt.Errorf("client %d: apply server op %d: %w", i, m.rev, err)
	}
	return nil
}

// reconnect drops client i's connection, losing everything in transit both
// ways, and reconnects it the way the Client doc comment describes: a
// welcome with the ops after the client's revision, then a resend of the
// in-flight op if the server did not have it.
func (n *simNet) reconnect(i int) error {
	p := n.peers[i]
	p.in, p.head, p.out = nil, 0, nil
	for r := p.c.Rev(); r < n.rev(); r++ {
		h := n.history[r]
		m := simMsg{op: h.op, rev: r + 1, seq: h.seq, client: h.client}
		in := p.c.Inflight()
		if in == nil || h.client != i || h.seq != in.Seq {
			if err := n.handle(i, m); err != nil {
				return fmt.Errorf("reconnect: %w", err)
			}
			continue
		}
		// The server applied our in-flight op before the drop. Any
		// buffer promoted by the ack is sent once, below, as Inflight.
		if _, err := p.c.Ack(m.rev, m.seq); err != nil {
			return fmt.Errorf("reconnect: %w", err)
		}
	}
	if in := p.c.Inflight(); in != nil {
		return n.send(i, in)
	}
	return nil
}

// settle delivers everything in flight until the network is quiet.
func (n *simNet) settle() error {
	for busy := true; busy; {
		busy = false
		for i, p := range n.peers {
			for len(p.out) > 0 {
				busy = true
				if err := n.uploadOne(i); err != nil {
					return err
				}
			}
			for p.pending() > 0 {
				busy = true
				if _, err := n.deliver(i); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// converged reports an error unless every client and the server hold the
// same text and every client is synchronized at the server's revision.
func (n *simNet) converged() error {
	want := n.server.String()
	for i, p := range n.peers {
		if got := p.doc.String(); got != want {
			return fmt.Errorf("client %d text got %q, want %q", i, got, want)
		}
		if got := p.c.State(); got != Synchronized {
			return fmt.Errorf("client %d state got %v, want Synchronized", i, got)
		}
		if got := p.c.Rev(); got != n.rev() {
			return fmt.Errorf("client %d rev got %d, want %d", i, got, n.rev())
		}
	}
	return nil
}
