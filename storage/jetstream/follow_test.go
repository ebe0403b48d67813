package jetstream

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/collabd/collabd/ot"
)

// collect reads n records from f, failing after a timeout.
func collect(t *testing.T, f *Follower, n int) []Record {
	t.Helper()
	out := make([]Record, 0, n)
	timeout := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case r, ok := <-f.C():
			if !ok {
				t.Fatalf("follower stopped after %d of %d records: %v", len(out), n, f.Err())
			}
			out = append(out, r)
		case <-timeout:
			t.Fatalf("got %d of %d records within 20s", len(out), n)
		}
	}
	return out
}

// TestFollowFromRev: followers started at several revisions, while
// another node keeps appending, each get every later record once, in
// order, with the writer's content; nothing more arrives after the last.
func TestFollowFromRev(t *testing.T) {
	ns := startNATS(t)
	w := ns.newStore(t, Options{})
	r := ns.newStore(t, Options{})
	ctx := testCtx(t)
	m := createDoc(t, w)
	other := createDoc(t, w) // interleaved, so sequences are spread

	var ty, ty2 typist
	for i := range 20 {
		if err := w.Append(ctx, m.ID, ty.group(1+i%3, "c", int64(i*3+1))); err != nil {
			t.Fatal(err)
		}
		if err := w.Append(ctx, other.ID, ty2.group(1, "o", int64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	committed := ty.rev
	want, err := w.Ops(ctx, m.ID, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}

	froms := []int64{0, 1, committed / 2, committed - 1, committed}
	followers := make([]*Follower, len(froms))
	for i, from := range froms {
		if followers[i], err = r.Follow(ctx, m.ID, from, 4); err != nil {
			t.Fatal(err)
		}
		defer followers[i].Close()
	}
	// More records while the followers run.
	for i := range 15 {
		recs := ty.group(1+i%4, "d", int64(i*4+1))
		if err := w.Append(ctx, m.ID, recs); err != nil {
			t.Fatal(err)
		}
		want = append(want, recs...)
	}
	for i, f := range followers {
		got := collect(t, f, int(ty.rev-froms[i]))
		for j, rec := range got {
			w := want[froms[i]+int64(j)]
			if rec.Rev != w.Rev || rec.Client != w.Client || rec.Seq != w.Seq || rec.Op.String() != w.Op.String() {
				t.Fatalf("follower from %d: record %d = %+v, want %+v", froms[i], j, rec, w)
			}
		}
		select {
		case rec := <-f.C():
			t.Fatalf("follower from %d: extra record %+v", froms[i], rec)
		case <-time.After(50 * time.Millisecond):
		}
	}
	f := followers[0]
	f.Close()
	if _, ok := <-f.C(); ok {
		t.Fatal("C open after Close")
	}
	if !errors.Is(f.Err(), ErrClosed) {
		t.Fatalf("Err after Close = %v, want ErrClosed", f.Err())
	}
	if _, err := r.Follow(ctx, m.ID, ty.rev+1, 1); !errors.Is(err, ErrConflict) {
		t.Fatalf("Follow past the end = %v, want ErrConflict", err)
	}
	if _, err := r.Follow(ctx, uuid.NewString(), 0, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Follow of an unknown doc = %v, want ErrNotFound", err)
	}
}

// TestFollowAcrossServerRestart: a follower keeps its place when the NATS
// server restarts: records appended after the restart arrive, none twice.
func TestFollowAcrossServerRestart(t *testing.T) {
	ns := startNATS(t)
	w := ns.newStore(t, Options{})
	ctx := testCtx(t)
	m := createDoc(t, w)
	var ty typist
	if err := w.Append(ctx, m.ID, ty.group(3, "c", 1)); err != nil {
		t.Fatal(err)
	}
	r := ns.newStore(t, Options{})
	f, err := r.Follow(ctx, m.ID, 0, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	collect(t, f, 3)

	ns.restart()
	waitConnected(t, w)
	// The writer's first append after a restart may race JetStream's
	// recovery; retry only errors that say it is not ready.
	deadline := time.Now().Add(10 * time.Second)
	recs := ty.group(2, "c", 4)
	for {
		err := w.Append(ctx, m.ID, recs)
		if err == nil {
			break
		}
		if errors.Is(err, ErrConflict) || time.Now().After(deadline) {
			t.Fatalf("append after restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := collect(t, f, 2)
	if got[0].Rev != 4 || got[1].Rev != 5 {
		t.Fatalf("after the restart got revs %v, want [4 5]", revs(got))
	}
}

// TestForward: an op sent to a document's subject reaches the one node
// serving it, in the owners' queue group, and the reply comes back; with
// nobody serving, Forward says so.
func TestForward(t *testing.T) {
	ns := startNATS(t)
	owner := ns.newStore(t, Options{})
	editor := ns.newStore(t, Options{})
	ctx := testCtx(t)
	doc := createDoc(t, owner).ID

	sub := Submission{Client: uuid.NewString(), Seq: 7, Rev: 3, Op: ot.Op{ot.Retain(3), ot.Insert("é😀")}}
	if _, err := editor.Forward(ctx, doc, sub); !errors.Is(err, ErrNoOwner) {
		t.Fatalf("Forward with no owner = %v, want ErrNoOwner", err)
	}
	got := make(chan Submission, 10)
	sv, err := owner.Serve(doc, func(ctx context.Context, s Submission) Reply {
		got <- s
		if s.Seq == 8 {
			return Reply{Code: "bad_op", Message: "no"}
		}
		return Reply{}
	})
	if err != nil {
		t.Fatal(err)
	}
	// A second server in the queue group, as during a handover: each
	// request is answered once, by one of them.
	second, err := ns.newStore(t, Options{}).Serve(doc, func(ctx context.Context, s Submission) Reply {
		got <- s
		return Reply{}
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		s := sub
		s.Seq = int64(100 + i)
		if rep, err := editor.Forward(ctx, doc, s); err != nil || rep != (Reply{}) {
			t.Fatalf("Forward %d = %+v, %v", i, rep, err)
		}
		if g := <-got; g.Seq != s.Seq || g.Op.String() != sub.Op.String() || g.Client != sub.Client {
			t.Fatalf("served %+v, sent %+v", g, s)
		}
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	bad := sub
	bad.Seq = 8
	if rep, err := editor.Forward(ctx, doc, bad); err != nil || rep.Code != "bad_op" {
		t.Fatalf("Forward = %+v, %v; want code bad_op", rep, err)
	}
	select {
	case g := <-got:
		if g.Seq != 8 {
			t.Fatalf("served seq %d, want 8", g.Seq)
		}
	default:
		t.Fatal("owner's handler did not run")
	}
	if len(got) != 0 {
		t.Fatalf("%d requests served twice", len(got))
	}
	if err := sv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := editor.Forward(ctx, doc, sub); !errors.Is(err, ErrNoOwner) {
		t.Fatalf("Forward after Close = %v, want ErrNoOwner", err)
	}
}

// TestFollowStalledConsumer: a follower whose consumer delivers nothing
// (as an ordered consumer on three replicas now and then does for 10 s)
// still delivers every record, in order, once: after a second without
// any, it reads what the log holds past its revision.
func TestFollowStalledConsumer(t *testing.T) {
	ns := startNATS(t)
	w := ns.newStore(t, Options{})
	r := ns.newStore(t, Options{})
	r.followSkip = true
	ctx := testCtx(t)
	m := createDoc(t, w)
	var ty typist
	if err := w.Append(ctx, m.ID, ty.group(2, "c", 1)); err != nil {
		t.Fatal(err)
	}
	f, err := r.Follow(ctx, m.ID, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range 3 {
		if err := w.Append(ctx, m.ID, ty.group(1+i, "c", ty.rev+1)); err != nil {
			t.Fatal(err)
		}
	}
	got := collect(t, f, int(ty.rev-1))
	for i, rec := range got {
		if rec.Rev != int64(i)+2 || rec.Seq != rec.Rev {
			t.Fatalf("record %d: rev %d seq %d, want rev %d", i, rec.Rev, rec.Seq, i+2)
		}
	}
	// Then more, after an idle spell.
	if err := w.Append(ctx, m.ID, ty.group(2, "c", ty.rev+1)); err != nil {
		t.Fatal(err)
	}
	for i, rec := range collect(t, f, 2) {
		if want := ty.rev - 1 + int64(i); rec.Rev != want {
			t.Fatalf("after idling: rev %d, want %d", rec.Rev, want)
		}
	}
}
