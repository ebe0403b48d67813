package ot

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestStateString(t *testing.T) {
	tests := []struct {
		s    State
		want string
	}{
		{Synchronized, "Synchronized"},
		{AwaitingAck, "AwaitingAck"},
		{AwaitingWithBuffer, "AwaitingWithBuffer"},
		{State(9), "State(9)"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("State(%d).String() got %q, want %q", int(tt.s), got, tt.want)
		}
	}
}

// clientStep is one call on a Client in a scripted test.
type clientStep struct {
	name string
	// Exactly one of these calls is made.
	local  Op    // ApplyLocal
	server Op    // ApplyServer(rev, server)
	ack    bool  // Ack(rev, seq)
	rev    int64 // for server and ack
	seq    int64 // for ack

	wantSend  *Pending // message returned by ApplyLocal or Ack
	wantOp    Op       // op returned by ApplyServer
	wantErr   error
	wantState State
	wantRev   int64
}

func TestClientTransitions(t *testing.T) {
	hello := func() *Client { return NewClient(4, 2) } // text "abc" at rev 4
	tests := []struct {
		name  string
		steps []clientStep
	}{
		{"local edit sends, ack synchronizes", []clientStep{
			{name: "local", local: Op{Retain(3), Insert("d")},
				wantSend: &Pending{Rev: 4, Seq: 3, Op: Op{Retain(3), Insert("d")}}, wantState: AwaitingAck, wantRev: 4},
			{name: "ack", ack: true, rev: 5, seq: 3, wantState: Synchronized, wantRev: 5},
		}},
		{"edits while awaiting are buffered and composed", []clientStep{
			{name: "local 1", local: Op{Retain(3), Insert("d")},
				wantSend: &Pending{Rev: 4, Seq: 3, Op: Op{Retain(3), Insert("d")}}, wantState: AwaitingAck, wantRev: 4},
			{name: "local 2", local: Op{Retain(4), Insert("e")}, wantState: AwaitingWithBuffer, wantRev: 4},
			{name: "local 3", local: Op{Delete(1), Retain(4)}, wantState: AwaitingWithBuffer, wantRev: 4},
			{name: "ack sends buffer", ack: true, rev: 5, seq: 3,
				wantSend: &Pending{Rev: 5, Seq: 4, Op: Op{Delete(1), Retain(3), Insert("e")}}, wantState: AwaitingAck, wantRev: 5},
			{name: "ack", ack: true, rev: 6, seq: 4, wantState: Synchronized, wantRev: 6},
		}},
		{"server op while synchronized passes through", []clientStep{
			{name: "server", server: Op{Insert("x"), Retain(3)}, rev: 5,
				wantOp: Op{Insert("x"), Retain(3)}, wantState: Synchronized, wantRev: 5},
		}},
		{"server op transformed against inflight, server wins ties", []clientStep{
			{name: "local", local: Op{Retain(3), Insert("L")},
				wantSend: &Pending{Rev: 4, Seq: 3, Op: Op{Retain(3), Insert("L")}}, wantState: AwaitingAck, wantRev: 4},
			{name: "server inserts at the same place", server: Op{Retain(3), Insert("S")}, rev: 5,
				wantOp: Op{Retain(3), Insert("S"), Retain(1)}, wantState: AwaitingAck, wantRev: 5},
			{name: "ack", ack: true, rev: 6, seq: 3, wantState: Synchronized, wantRev: 6},
		}},
		{"server op transformed against inflight and buffer", []clientStep{
			{name: "local 1", local: Op{Insert("1"), Retain(3)},
				wantSend: &Pending{Rev: 4, Seq: 3, Op: Op{Insert("1"), Retain(3)}}, wantState: AwaitingAck, wantRev: 4},
			{name: "local 2", local: Op{Retain(4), Insert("2")}, wantState: AwaitingWithBuffer, wantRev: 4},
			{name: "server deletes b", server: Op{Retain(1), Delete(1), Retain(1)}, rev: 5,
				wantOp: Op{Retain(2), Delete(1), Retain(2)}, wantState: AwaitingWithBuffer, wantRev: 5},
			{name: "ack sends transformed buffer", ack: true, rev: 6, seq: 3,
				wantSend: &Pending{Rev: 6, Seq: 4, Op: Op{Retain(3), Insert("2")}}, wantState: AwaitingAck, wantRev: 6},
		}},
		{"no-op local edit is ignored", []clientStep{
			{name: "noop", local: Op{Retain(3)}, wantState: Synchronized, wantRev: 4},
		}},
		{"wrong server rev", []clientStep{
			{name: "server", server: Op{Retain(3)}, rev: 6, wantErr: ErrRevision, wantState: Synchronized, wantRev: 4},
			{name: "server old", server: Op{Retain(3)}, rev: 4, wantErr: ErrRevision, wantState: Synchronized, wantRev: 4},
		}},
		{"ack with nothing in flight", []clientStep{
			{name: "ack", ack: true, rev: 5, seq: 3, wantErr: ErrUnexpectedAck, wantState: Synchronized, wantRev: 4},
		}},
		{"ack errors leave the client unchanged", []clientStep{
			{name: "local", local: Op{Retain(3), Insert("d")},
				wantSend: &Pending{Rev: 4, Seq: 3, Op: Op{Retain(3), Insert("d")}}, wantState: AwaitingAck, wantRev: 4},
			{name: "wrong seq", ack: true, rev: 5, seq: 4, wantErr: ErrUnexpectedAck, wantState: AwaitingAck, wantRev: 4},
			{name: "wrong rev", ack: true, rev: 7, seq: 3, wantErr: ErrRevision, wantState: AwaitingAck, wantRev: 4},
			{name: "right", ack: true, rev: 5, seq: 3, wantState: Synchronized, wantRev: 5},
		}},
		{"bad local ops", []clientStep{
			{name: "invalid", local: Op{{N: 1, S: "x"}}, wantErr: ErrBadComponent, wantState: Synchronized, wantRev: 4},
			{name: "local", local: Op{Retain(3), Insert("d")},
				wantSend: &Pending{Rev: 4, Seq: 3, Op: Op{Retain(3), Insert("d")}}, wantState: AwaitingAck, wantRev: 4},
			{name: "wrong length vs inflight", local: Op{Retain(3), Insert("e")}, wantErr: ErrLengthMismatch, wantState: AwaitingAck, wantRev: 4},
			{name: "buffered", local: Op{Retain(4), Insert("e")}, wantState: AwaitingWithBuffer, wantRev: 4},
			{name: "wrong length vs buffer", local: Op{Retain(4), Insert("f")}, wantErr: ErrLengthMismatch, wantState: AwaitingWithBuffer, wantRev: 4},
			// A no-op is checked against the text after the buffer, as
			// any other op would be.
			{name: "no-op of wrong length vs buffer", local: Op{Retain(4)}, wantErr: ErrLengthMismatch, wantState: AwaitingWithBuffer, wantRev: 4},
			{name: "no-op of right length vs buffer", local: Op{Retain(5)}, wantState: AwaitingWithBuffer, wantRev: 4},
		}},
		{"no-op of wrong length while awaiting ack", []clientStep{
			{name: "local", local: Op{Retain(3), Insert("d")},
				wantSend: &Pending{Rev: 4, Seq: 3, Op: Op{Retain(3), Insert("d")}}, wantState: AwaitingAck, wantRev: 4},
			{name: "no-op of wrong length", local: Op{Retain(3)}, wantErr: ErrLengthMismatch, wantState: AwaitingAck, wantRev: 4},
			{name: "no-op of right length", local: Op{Retain(4)}, wantState: AwaitingAck, wantRev: 4},
		}},
		{"buffer that cancels out is dropped", []clientStep{
			{name: "type d", local: Op{Retain(3), Insert("d")},
				wantSend: &Pending{Rev: 4, Seq: 3, Op: Op{Retain(3), Insert("d")}}, wantState: AwaitingAck, wantRev: 4},
			{name: "type e", local: Op{Retain(4), Insert("e")}, wantState: AwaitingWithBuffer, wantRev: 4},
			{name: "backspace e", local: Op{Retain(4), Delete(1)}, wantState: AwaitingAck, wantRev: 4},
			{name: "ack sends nothing", ack: true, rev: 5, seq: 3, wantState: Synchronized, wantRev: 5},
		}},
		{"buffer that a server op makes a no-op is dropped", []clientStep{
			{name: "type d", local: Op{Retain(3), Insert("d")},
				wantSend: &Pending{Rev: 4, Seq: 3, Op: Op{Retain(3), Insert("d")}}, wantState: AwaitingAck, wantRev: 4},
			{name: "delete a", local: Op{Delete(1), Retain(3)}, wantState: AwaitingWithBuffer, wantRev: 4},
			{name: "server deletes a too", server: Op{Delete(1), Retain(2)}, rev: 5,
				wantOp: Op{Retain(3)}, wantState: AwaitingAck, wantRev: 5},
			{name: "ack sends nothing", ack: true, rev: 6, seq: 3, wantState: Synchronized, wantRev: 6},
		}},
		{"bad server ops", []clientStep{
			{name: "invalid while synchronized", server: Op{{}}, rev: 5, wantErr: ErrBadComponent, wantState: Synchronized, wantRev: 4},
			{name: "local", local: Op{Retain(3), Insert("d")},
				wantSend: &Pending{Rev: 4, Seq: 3, Op: Op{Retain(3), Insert("d")}}, wantState: AwaitingAck, wantRev: 4},
			{name: "wrong length", server: Op{Retain(2)}, rev: 5, wantErr: ErrLengthMismatch, wantState: AwaitingAck, wantRev: 4},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := hello()
			for _, st := range tt.steps {
				var send *Pending
				var op Op
				var err error
				switch {
				case st.local != nil:
					send, err = c.ApplyLocal(st.local)
				case st.server != nil:
					op, err = c.ApplyServer(st.rev, st.server)
				case st.ack:
					send, err = c.Ack(st.rev, st.seq)
				}
				if !errors.Is(err, st.wantErr) {
					t.Fatalf("%s: error got %v, want %v", st.name, err, st.wantErr)
				}
				if got, want := pendingString(send), pendingString(st.wantSend); got != want {
					t.Fatalf("%s: send got %s, want %s", st.name, got, want)
				}
				if got, want := op.String(), st.wantOp.String(); got != want {
					t.Fatalf("%s: op got %s, want %s", st.name, got, want)
				}
				if got := c.State(); got != st.wantState {
					t.Fatalf("%s: state got %v, want %v", st.name, got, st.wantState)
				}
				if got := c.Rev(); got != st.wantRev {
					t.Fatalf("%s: rev got %d, want %d", st.name, got, st.wantRev)
				}
			}
		})
	}
}

func pendingString(p *Pending) string {
	if p == nil {
		return "nil"
	}
	return "{rev " + itoa(p.Rev) + " seq " + itoa(p.Seq) + " " + p.Op.String() + "}"
}

func itoa(n int64) string { return string(Op{Retain(int(n))}.AppendJSON(nil)) }

func TestClientInflightAndOutstanding(t *testing.T) {
	c := NewClient(0, 0)
	if c.Inflight() != nil || c.Outstanding() != nil {
		t.Fatalf("new client: Inflight %v Outstanding %v, want nil", c.Inflight(), c.Outstanding())
	}
	if _, err := c.ApplyLocal(Op{Insert("ab")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ApplyLocal(Op{Retain(2), Insert("c")}); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Outstanding().String(), `["abc"]`; got != want {
		t.Fatalf("Outstanding got %s, want %s", got, want)
	}
	// A server op moves the in-flight op to the new revision.
	if _, err := c.ApplyServer(1, Op{Insert("X")}); err != nil {
		t.Fatal(err)
	}
	in := c.Inflight()
	if got, want := pendingString(in), `{rev [1] seq [1] [1,"ab"]}`; got != want {
		t.Fatalf("Inflight got %s, want %s", got, want)
	}
	// Inflight returns a copy: changing it must not touch the client.
	in.Seq = 99
	if got := c.Inflight().Seq; got != 1 {
		t.Fatalf("Inflight().Seq after caller's change got %d, want 1", got)
	}
	if got, want := c.LastSeq(), int64(1); got != want {
		t.Fatalf("LastSeq got %d, want %d", got, want)
	}
}

// TestClientNoopBufferNotSent types "a", then "b" and backspace while "a" is
// in flight: the buffer composes to a no-op, which must not be sent as a new
// op (it would only waste a revision), nor show in any accessor.
func TestClientNoopBufferNotSent(t *testing.T) {
	c := NewClient(0, 0)
	for _, op := range []Op{{Insert("a")}, {Retain(1), Insert("b")}, {Retain(1), Delete(1)}} {
		if _, err := c.ApplyLocal(op); err != nil {
			t.Fatalf("ApplyLocal(%v): %v", op, err)
		}
	}
	if got, want := c.State(), AwaitingAck; got != want {
		t.Errorf("state before ack got %v, want %v", got, want)
	}
	if got, want := pendingString(c.Inflight()), `{rev [0] seq [1] ["a"]}`; got != want {
		t.Errorf("Inflight before ack got %s, want %s", got, want)
	}
	if got, want := c.Outstanding().String(), `["a"]`; got != want {
		t.Errorf("Outstanding before ack got %s, want %s", got, want)
	}
	p, err := c.Ack(1, 1)
	if err != nil {
		t.Fatalf("Ack(1, 1): %v", err)
	}
	if p != nil {
		t.Errorf("Ack(1, 1) got %s, want nil", pendingString(p))
	}
	if got, want := c.State(), Synchronized; got != want {
		t.Errorf("state after ack got %v, want %v", got, want)
	}
	if c.Inflight() != nil || c.Outstanding() != nil {
		t.Errorf("after ack: Inflight %v Outstanding %v, want nil", c.Inflight(), c.Outstanding())
	}
	// The next edit gets the next seq: none was spent on the no-op.
	p, err = c.ApplyLocal(Op{Retain(1), Insert("c")})
	if err != nil {
		t.Fatalf("ApplyLocal after ack: %v", err)
	}
	if got, want := pendingString(p), `{rev [1] seq [2] [1,"c"]}`; got != want {
		t.Errorf("ApplyLocal after ack got %s, want %s", got, want)
	}
}

// TestClientSimulation runs random editing sessions of three clients against
// the in-memory server, with delays both ways and reconnects that lose
// messages, and checks that everyone converges.
func TestClientSimulation(t *testing.T) {
	for _, seed := range seeds(300) {
		r := rand.New(rand.NewPCG(seed, 8))
		n := newSimNet(3, "")
		n.delayUploads = true
		for step := range 200 {
			i := r.IntN(len(n.peers))
			p := n.peers[i]
			var err error
			switch k := r.IntN(20); {
			case k < 8:
				err = n.local(i, randOp(r, p.doc.Len()))
			case k < 13:
				if p.pending() > 0 {
					_, err = n.deliver(i)
				}
			case k < 19:
				err = n.uploadOne(i)
			default:
				err = n.reconnect(i)
			}
			if err != nil {
				t.Fatalf("seed %d step %d: %v", seed, step, err)
			}
		}
		if err := n.settle(); err != nil {
			t.Fatalf("seed %d: settle: %v", seed, err)
		}
		if err := n.converged(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}
