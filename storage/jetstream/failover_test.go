package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
)

// This file plays the design of docs/scaling.md through the package's API
// with stand-ins for hubs: owners that take the lease, transform, dedupe
// and append; editors on other nodes that forward ops and learn of their
// acks only from Follow. The owner is killed mid-typing; the test checks
// that nothing acknowledged is lost, nothing is applied twice, and that
// every node saw one order.

// miniOwner serves one document the way an owner hub would, one request
// at a time (Serve's subscription is sequential).
type miniOwner struct {
	s      *Store
	doc    string
	lease  *Lease
	sv     *Serving
	rev    int64
	text   string
	client map[string]ClientState
	// loadRev is the revision Load returned; read-only.
	loadRev int64
	// firstAppend is closed after the first successful append.
	firstAppend chan struct{}
	once        sync.Once
}

// becomeOwner acquires the lease (polling while another node holds it),
// loads the document and starts serving it.
func becomeOwner(ctx context.Context, s *Store, doc string) (*miniOwner, error) {
	var lease *Lease
	for {
		l, err := s.Acquire(ctx, doc)
		if err == nil {
			lease = l
			break
		}
		if !errors.Is(err, ErrHeld) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	d, err := s.Load(ctx, doc)
	if err != nil {
		lease.Close()
		return nil, err
	}
	o := &miniOwner{s: s, doc: doc, lease: lease, rev: d.Rev, loadRev: d.Rev, text: d.Text, client: d.Clients, firstAppend: make(chan struct{})}
	if o.sv, err = s.Serve(doc, o.handle); err != nil {
		lease.Close()
		return nil, err
	}
	return o, nil
}

func (o *miniOwner) handle(ctx context.Context, sub Submission) Reply {
	if !o.lease.Valid() {
		return Reply{Code: "not_owner"}
	}
	if sub.Seq <= o.client[sub.Client].Seq {
		return Reply{} // a resend of an op already committed: its ack is in the stream
	}
	op := sub.Op
	if sub.Rev < o.rev {
		recs, err := o.s.Ops(ctx, o.doc, sub.Rev, int(o.rev-sub.Rev), 0)
		if err != nil {
			return Reply{Code: "internal", Message: err.Error()}
		}
		for _, r := range recs {
			if _, op, err = ot.Transform(r.Op, op); err != nil {
				return Reply{Code: "bad_op", Message: err.Error()}
			}
		}
	}
	text, err := ot.Apply(o.text, op)
	if err != nil {
		return Reply{Code: "bad_op", Message: err.Error()}
	}
	rec := Record{Rev: o.rev + 1, Op: op, Client: sub.Client, Seq: sub.Seq, Time: time.Now()}
	if err := o.s.Append(ctx, o.doc, []Record{rec}); err != nil {
		// Not committed, or not known to be: the editor resends.
		return Reply{Code: "retry", Message: err.Error()}
	}
	o.once.Do(func() { close(o.firstAppend) })
	o.rev, o.text = rec.Rev, text
	o.client[sub.Client] = ClientState{Seq: sub.Seq, Rev: rec.Rev}
	return Reply{}
}

// miniEditor types letters at the end of the document through node s,
// one op in flight, and treats an op as acknowledged only when Follow
// delivers it.
type miniEditor struct {
	s      *Store
	doc    string
	id     string
	letter string
	f      *Follower
	rev    int64
	text   string
	seen   []Record // every record Follow delivered, in order
	acked  int      // ops acknowledged so far
}

// apply moves the editor's copy through one record from Follow, and says
// whether it was the editor's own op number seq.
func (e *miniEditor) apply(r Record, seq int64) (bool, error) {
	if r.Rev != e.rev+1 {
		return false, fmt.Errorf("editor %s: rev %d after %d", e.id, r.Rev, e.rev)
	}
	text, err := ot.Apply(e.text, r.Op)
	if err != nil {
		return false, err
	}
	e.rev, e.text = r.Rev, text
	e.seen = append(e.seen, r)
	return r.Client == e.id && r.Seq == seq, nil
}

// typeN sends n ops, each resent until its ack arrives.
func (e *miniEditor) typeN(ctx context.Context, n int) error {
	for seq := int64(1); seq <= int64(n); seq++ {
		op := ot.Op{}.Retain(len([]rune(e.text))).Insert(e.letter)
		sub := Submission{Client: e.id, Seq: seq, Rev: e.rev, Op: op}
		for acked := false; !acked; {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			rep, err := e.s.Forward(rctx, e.doc, sub)
			cancel()
			if err == nil && rep.Code != "" && rep.Code != "retry" && rep.Code != "not_owner" {
				return fmt.Errorf("editor %s seq %d: %s: %s", e.id, seq, rep.Code, rep.Message)
			}
			if err != nil && ctx.Err() != nil {
				return err
			}
			// Wait for the ack a while, then resend (also after an
			// error or an accepted op whose owner died before
			// committing it).
			wait := time.After(300 * time.Millisecond)
			if err != nil || rep.Code != "" {
				wait = time.After(50 * time.Millisecond)
			}
		read:
			for {
				select {
				case r, ok := <-e.f.C():
					if !ok {
						return fmt.Errorf("editor %s: follower stopped: %w", e.id, e.f.Err())
					}
					mine, err := e.apply(r, seq)
					if err != nil {
						return err
					}
					if mine {
						acked = true
						e.acked++
						break read
					}
				case <-wait:
					break read
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
	}
	return nil
}

func TestOwnerFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a 2s lease")
	}
	ns := startNATS(t)
	ctx := testCtx(t)
	nodes := make([]*Store, 4) // 0: first owner, 1: standby, 2 and 3: editors' nodes
	for i := range nodes {
		nodes[i] = ns.newStore(t, Options{NodeID: fmt.Sprintf("node%d", i)})
	}
	doc := createDoc(t, nodes[0]).ID

	first, err := becomeOwner(ctx, nodes[0], doc)
	if err != nil {
		t.Fatal(err)
	}
	const perEditor = 60
	editors := make([]*miniEditor, 2)
	for i := range editors {
		f, err := nodes[2+i].Follow(ctx, doc, 0, 64)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		editors[i] = &miniEditor{s: nodes[2+i], doc: doc, id: fmt.Sprintf("editor%d", i), letter: string(rune('a' + i)), f: f}
	}
	errs := make(chan error, len(editors))
	for _, e := range editors {
		go func() { errs <- e.typeN(ctx, perEditor) }()
	}

	// Kill the owner once a third of the ops are in: its connection goes,
	// so its lease stops being renewed and its subscription vanishes.
	for {
		if _, rev, err := nodes[1].Meta(ctx, doc); err != nil {
			t.Fatal(err)
		} else if rev >= 2*perEditor/3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	first.s.nc.Close()
	killed := time.Now()
	second, err := becomeOwner(ctx, nodes[1], doc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		second.sv.Close()
		second.lease.Close()
		first.lease.Close()
	})
	took := time.Since(killed)
	select {
	case <-second.firstAppend:
	case <-time.After(10 * time.Second):
		t.Fatal("new owner appended nothing within 10s")
	}
	t.Logf("failover: lease taken %v after the kill, first append on the new owner after %v (TTL %v, load at rev %d)",
		took, time.Since(killed), nodes[1].ttl, second.loadRev)

	for range editors {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	// Every op once, in each editor's order, and one history everywhere.
	d, err := ns.newStore(t, Options{}).Load(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range editors {
		if got := strings.Count(d.Text, e.letter); got != perEditor {
			t.Errorf("editor %d's letter appears %d times, want %d (text %q)", i, got, perEditor, d.Text)
		}
		if e.acked != perEditor {
			t.Errorf("editor %d got %d acks, want %d", i, e.acked, perEditor)
		}
		if d.Clients[e.id].Seq != perEditor {
			t.Errorf("editor %d's last seq = %d, want %d", i, d.Clients[e.id].Seq, perEditor)
		}
	}
	if d.Rev != 2*perEditor {
		t.Errorf("document at rev %d, want %d (an op applied twice or lost)", d.Rev, 2*perEditor)
	}
	// Drain both followers to the end and compare their histories.
	for _, e := range editors {
		for e.rev < d.Rev {
			r := <-e.f.C()
			if _, err := e.apply(r, -1); err != nil {
				t.Fatal(err)
			}
		}
		if e.text != d.Text {
			t.Errorf("editor %s's copy %q, stored %q", e.id, e.text, d.Text)
		}
	}
	for j := range editors[0].seen {
		a, b := editors[0].seen[j], editors[1].seen[j]
		if a.Client != b.Client || a.Seq != b.Seq || a.Op.String() != b.Op.String() {
			t.Fatalf("rev %d differs between nodes: %+v vs %+v", a.Rev, a, b)
		}
	}
}
