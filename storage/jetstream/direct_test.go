package jetstream

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestDirectReadsR3: on three NATS servers with three replicas, loads,
// catch-up pages, history reads and a fresh node's client table are read
// without creating a single consumer (each used to open an ordered
// consumer, which on R3 now and then delivered nothing for 10 s), and they
// read what was written, across several direct-get batches of a subject
// interleaved with another's. They stay right when no replica serves
// direct gets (the stream set back by a node of an older version): the
// reads fall back to the leader.
func TestDirectReadsR3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-server NATS cluster")
	}
	servers := startCluster(t)
	var urls []string
	for _, srv := range servers {
		urls = append(urls, srv.ClientURL())
	}
	ctx := testCtx(t)
	newStore := func(node string) *Store {
		nc, err := Connect(strings.Join(urls, ","))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		var s *Store
		for {
			if s, err = New(ctx, nc, Options{Replicas: 3, NodeID: node, SnapshotEvery: -1}); err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("New: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Cleanup(s.Close)
		return s
	}
	w := newStore("writer")
	m, other := createDoc(t, w), createDoc(t, w)
	// More messages than one batch, each subject's interleaved with the
	// other's, so that "next of the subject" skips sequences.
	const groups = directBatch + 60
	var ty, ty2 typist
	appendTo := func(id string, ty *typist, recs []Record) {
		t.Helper()
		for range 5 {
			err := w.Append(ctx, id, recs)
			if err == nil {
				return
			}
			// On R3 an append is now and then refused, or its outcome
			// unknown: reload, as a hub would, and write again if it
			// did not land.
			d, lerr := w.Load(ctx, id)
			switch {
			case lerr == nil && d.Rev == ty.rev && d.Text == ty.text:
				t.Logf("append: %v, but it landed", err)
				return
			case lerr == nil && d.Rev == recs[0].Rev-1:
				t.Logf("append: %v; again", err)
			default:
				t.Fatalf("append: %v; then at rev %d, %v", err, d.Rev, lerr)
			}
		}
		t.Fatal("append refused five times")
	}
	for i := range groups {
		appendTo(m.ID, &ty, ty.group(1+i%3, "c", ty.rev+1))
		if i%2 == 0 {
			appendTo(other.ID, &ty2, ty2.group(1, "d", ty2.rev+1))
		}
	}
	info, err := w.ops.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Config.AllowDirect {
		t.Fatal("stream does not allow direct gets")
	}

	// Each phase reads through a store of its own, with nothing cached.
	check := func(phase string, r *Store) {
		t.Helper()
		before := consumers(t, ctx, r)
		d, err := r.Load(ctx, m.ID)
		if err != nil || d.Rev != ty.rev || d.Text != ty.text {
			t.Fatalf("%s: Load: rev %d, %d runes, %v; want rev %d, %d runes", phase, d.Rev, len(d.Text), err, ty.rev, len(ty.text))
		}
		if seq, rev, err := r.ClientSeq(ctx, m.ID, "c"); err != nil || seq != ty.rev || rev != ty.rev {
			t.Fatalf("%s: ClientSeq = %d, %d, %v; want %d, %d", phase, seq, rev, err, ty.rev, ty.rev)
		}
		all, err := r.Ops(ctx, m.ID, 0, 10_000, 0)
		if err != nil || int64(len(all)) != ty.rev {
			t.Fatalf("%s: Ops from 0: %d records, %v; want %d", phase, len(all), err, ty.rev)
		}
		for i, rec := range all {
			if rec.Rev != int64(i)+1 || rec.Seq != rec.Rev || rec.Client != "c" {
				t.Fatalf("%s: Ops record %d: rev %d seq %d client %q", phase, i, rec.Rev, rec.Seq, rec.Client)
			}
		}
		page, err := r.Ops(ctx, m.ID, ty.rev-100, 10, 0)
		if err != nil || len(page) != 10 || page[0].Rev != ty.rev-99 {
			t.Fatalf("%s: Ops after %d: %d records from %v, %v", phase, ty.rev-100, len(page), page, err)
		}
		at, err := r.LoadAt(ctx, m.ID, ty.rev/2)
		if err != nil || at.Text != string([]rune(ty.text)[:len([]rune(at.Text))]) || at.Rev != ty.rev/2 {
			t.Fatalf("%s: LoadAt %d: rev %d, %v", phase, ty.rev/2, at.Rev, err)
		}
		revs, err := r.Revisions(ctx, other.ID, 0, 1000)
		if err != nil || int64(len(revs)) != ty2.rev {
			t.Fatalf("%s: Revisions of the other: %d, %v; want %d", phase, len(revs), err, ty2.rev)
		}
		if after := consumers(t, ctx, r); after != before {
			t.Fatalf("%s: the reads made %d consumers", phase, after-before)
		}
	}
	check("direct", newStore("reader1"))

	// A node of an older version updates the stream without direct gets.
	r2 := newStore("reader2")
	cfg := info.Config
	cfg.AllowDirect = false
	if _, err := w.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	check("leader", r2)
}

// consumers counts the op stream's consumers.
func consumers(t *testing.T, ctx context.Context, s *Store) int {
	t.Helper()
	st, err := s.js.Stream(ctx, streamOps)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Consumers
}
