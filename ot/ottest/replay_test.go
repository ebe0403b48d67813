package ottest_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/ot/ottest"
)

// spliceOp turns splices on a text of n code points into one op.
func spliceOp(n int, ss []ottest.Splice) (ot.Op, error) {
	op := ot.Op{}.Retain(n)
	for _, s := range ss {
		if s.Pos+s.Del > n {
			return nil, fmt.Errorf("splice %+v past the end of %d code points", s, n)
		}
		next := ot.Op{}.Retain(s.Pos).Insert(s.Ins).Delete(s.Del).Retain(n - s.Pos - s.Del)
		var err error
		if op, err = ot.Compose(op, next); err != nil {
			return nil, err
		}
		n = next.TargetLen()
	}
	return op, nil
}

func TestReplaySmall(t *testing.T) {
	tr := &ottest.Trace{Kind: "concurrent", NumAgents: 2, EndContent: "Hello world", Txns: []ottest.Txn{
		{Agent: 0, Patches: []ottest.Patch{{Pos: 0, Ins: "hello"}}},
		{Agent: 1, Parents: []int{0}, Patches: []ottest.Patch{{Pos: 5, Ins: " world"}}},
		// Concurrent with txn 1: made on "hello".
		{Agent: 0, Parents: []int{0}, Patches: []ottest.Patch{{Pos: 0, Del: 1, Ins: "H"}}},
	}}
	r, err := ottest.NewReplay(tr)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(txn int, want []ottest.Splice) {
		t.Helper()
		got, err := r.Edit(txn)
		if err != nil {
			t.Fatalf("Edit(%d): %v", txn, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Edit(%d) got %+v, want %+v", txn, got, want)
		}
	}
	edit(0, []ottest.Splice{{Pos: 0, Ins: "hello"}})
	r.Carry(0, 1)
	if r.Ready(1) {
		t.Fatal("Ready(1) before agent 1 received txn 0: got true, want false")
	}
	if _, err := r.Edit(1); err == nil {
		t.Fatal("Edit(1) before Ready: got nil error, want one")
	}
	if err := r.Receive(1, 0, 2); err == nil {
		t.Fatal("Receive of a seq never carried: got nil error, want one")
	}
	if err := r.Receive(1, 0, 1); err != nil {
		t.Fatal(err)
	}
	if !r.Ready(1) {
		t.Fatalf("Ready(1) got false, want true: %s", r.Waiting(1))
	}
	edit(1, []ottest.Splice{{Pos: 5, Ins: " world"}})
	r.Carry(1, 1)
	if err := r.Receive(0, 1, 1); err != nil {
		t.Fatal(err)
	}
	// Agent 0 already has " world", which its txn 2 did not know of.
	edit(2, []ottest.Splice{{Pos: 0, Del: 1}, {Pos: 0, Ins: "H"}})
	if got := r.LocalText(0); got != "Hello world" {
		t.Errorf("LocalText(0) got %q, want %q", got, "Hello world")
	}
	if got := r.LocalText(1); got != "hello world" {
		t.Errorf("LocalText(1) got %q, want %q", got, "hello world")
	}
	if got := r.Text(); got != tr.EndContent {
		t.Errorf("Text got %q, want %q", got, tr.EndContent)
	}
}

// TestReplayCancelledEdits covers edits that no op carries because they
// cancel out: agent 0 types "x" and deletes it again, and agent 1's next
// txn has both in its causal past. Agent 1 can go ahead without them only
// if its text would not change had it received them.
func TestReplayCancelledEdits(t *testing.T) {
	tests := []struct {
		name      string
		second    ottest.Patch // agent 0's txn 2, after typing "x" into "ab"
		sentFirst bool         // agent 0 sent txn 1 alone; agent 1 will get it
		wantReady bool
	}{
		{"typed and deleted, nothing sent", ottest.Patch{Pos: 1, Del: 1}, false, true},
		{"deletes text agent 1 has", ottest.Patch{Pos: 0, Del: 1}, false, false},
		{"the insert was sent", ottest.Patch{Pos: 1, Del: 1}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &ottest.Trace{Kind: "concurrent", NumAgents: 2, Txns: []ottest.Txn{
				{Agent: 0, Patches: []ottest.Patch{{Pos: 0, Ins: "ab"}}},
				{Agent: 0, Parents: []int{0}, Patches: []ottest.Patch{{Pos: 1, Ins: "x"}}},
				{Agent: 0, Parents: []int{1}, Patches: []ottest.Patch{tt.second}},
				{Agent: 1, Parents: []int{2}, Patches: []ottest.Patch{{Pos: 0, Ins: "!"}}},
			}}
			r, err := ottest.NewReplay(tr)
			if err != nil {
				t.Fatal(err)
			}
			for txn := range 3 {
				if _, err := r.Edit(txn); err != nil {
					t.Fatalf("Edit(%d): %v", txn, err)
				}
				if txn == 0 || txn == 1 && tt.sentFirst {
					r.Carry(0, int64(txn+1))
				}
			}
			if err := r.Receive(1, 0, 1); err != nil {
				t.Fatal(err)
			}
			if got := r.Ready(3); got != tt.wantReady {
				t.Fatalf("Ready(3) got %v, want %v: %s", got, tt.wantReady, r.Waiting(3))
			}
			if !tt.wantReady {
				return
			}
			ss, err := r.Edit(3)
			if err != nil {
				t.Fatal(err)
			}
			if want := []ottest.Splice{{Pos: 0, Ins: "!"}}; !reflect.DeepEqual(ss, want) {
				t.Errorf("Edit(3) got %+v, want %+v", ss, want)
			}
			if got, want := r.LocalText(1), "!ab"; got != want {
				t.Errorf("LocalText(1) got %q, want %q", got, want)
			}
		})
	}
}

// simPeer is one agent's client in a minimal in-memory network: its text,
// its state machine and its queue of server messages.
type simPeer struct {
	c   *ot.Client
	doc *ot.Doc
	in  []simMsg
}

type simMsg struct {
	rev, seq int64
	op       ot.Op
	from     int
	ack      bool
}

type simServer struct {
	doc   *ot.Doc
	ops   []ot.Op
	peers []*simPeer
}

func (s *simServer) receive(from int, p *ot.Pending) error {
	op := p.Op
	for _, h := range s.ops[p.Rev:] {
		var err error
		if _, op, err = ot.Transform(h, op); err != nil {
			return err
		}
	}
	if err := s.doc.Apply(op); err != nil {
		return err
	}
	s.ops = append(s.ops, op)
	rev := int64(len(s.ops))
	for i, peer := range s.peers {
		peer.in = append(peer.in, simMsg{rev: rev, seq: p.Seq, op: op, from: from, ack: i == from})
	}
	return nil
}

// TestReplayFriendsForever replays the shared concurrent trace through
// in-memory clients, reading messages lazily (only when an agent must) and
// eagerly (a random share of what has arrived before each edit), and
// checks the clients' texts against the Replay's as it goes.
func TestReplayFriendsForever(t *testing.T) {
	tr := ottest.Open(t, filepath.Join("..", "..", "..", "shared", "traces"), "friendsforever.json.gz")
	for _, eager := range []bool{false, true} {
		t.Run(fmt.Sprintf("eager=%v", eager), func(t *testing.T) {
			if err := replayInMemory(tr, eager); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func replayInMemory(tr *ottest.Trace, eager bool) error {
	r, err := ottest.NewReplay(tr)
	if err != nil {
		return err
	}
	// Not every schedule of eager reads ends at endContent: see eagerSeed
	// in ot's trace_test.go. Seed 2 does.
	rng := rand.New(rand.NewPCG(2, 2))
	s := &simServer{doc: ot.NewDoc("")}
	for range tr.NumAgents {
		s.peers = append(s.peers, &simPeer{c: ot.NewClient(0, 0), doc: ot.NewDoc("")})
	}
	send := func(a int, p *ot.Pending) error {
		if p == nil {
			return nil
		}
		r.Carry(a, p.Seq)
		return s.receive(a, p)
	}
	deliver := func(a int) error {
		p := s.peers[a]
		m := p.in[0]
		p.in = p.in[1:]
		if m.ack {
			next, err := p.c.Ack(m.rev, m.seq)
			if err != nil {
				return err
			}
			return send(a, next)
		}
		op, err := p.c.ApplyServer(m.rev, m.op)
		if err != nil {
			return err
		}
		if err := p.doc.Apply(op); err != nil {
			return err
		}
		return r.Receive(a, m.from, m.seq)
	}
	for t := range r.Len() {
		a := r.Agent(t)
		if eager {
			for k := rng.IntN(len(s.peers[a].in) + 1); k > 0; k-- {
				if err := deliver(a); err != nil {
					return fmt.Errorf("txn %d: %w", t, err)
				}
			}
		}
		for !r.Ready(t) {
			// Read what a has; if nothing, let another agent read: its
			// ack may release the buffered edit a waits for.
			b := a
			for x := 0; len(s.peers[b].in) == 0; x++ {
				if x == len(s.peers) {
					return fmt.Errorf("txn %d: deadlock: %s", t, r.Waiting(t))
				}
				b = x
			}
			if err := deliver(b); err != nil {
				return fmt.Errorf("txn %d: %w", t, err)
			}
		}
		p := s.peers[a]
		if t%499 == 0 {
			if got, want := p.doc.String(), r.LocalText(a); got != want {
				return fmt.Errorf("before txn %d agent %d text got %q, want %q", t, a, got, want)
			}
		}
		ss, err := r.Edit(t)
		if err != nil {
			return err
		}
		if ss == nil {
			continue
		}
		op, err := spliceOp(p.doc.Len(), ss)
		if err != nil {
			return fmt.Errorf("txn %d: %w", t, err)
		}
		if err := p.doc.Apply(op); err != nil {
			return fmt.Errorf("txn %d: %w", t, err)
		}
		next, err := p.c.ApplyLocal(op)
		if err != nil {
			return fmt.Errorf("txn %d: %w", t, err)
		}
		if err := send(a, next); err != nil {
			return fmt.Errorf("txn %d: %w", t, err)
		}
	}
	for busy := true; busy; {
		busy = false
		for a, p := range s.peers {
			for len(p.in) > 0 {
				busy = true
				if err := deliver(a); err != nil {
					return err
				}
			}
		}
	}
	if got := r.Text(); got != tr.EndContent {
		return fmt.Errorf("Replay text: got %d code points, want %d", utf8.RuneCountInString(got), utf8.RuneCountInString(tr.EndContent))
	}
	if got := s.doc.String(); got != tr.EndContent {
		return fmt.Errorf("server text: got %d code points, want %d", s.doc.Len(), utf8.RuneCountInString(tr.EndContent))
	}
	for a, p := range s.peers {
		if got := p.doc.String(); got != tr.EndContent {
			return fmt.Errorf("agent %d text: got %d code points, want %d", a, p.doc.Len(), utf8.RuneCountInString(tr.EndContent))
		}
	}
	return nil
}
