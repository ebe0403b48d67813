package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/collabd/collabd/ot"
)

// typist produces records that append text to a document, tracking what
// the text should be.
type typist struct {
	rev  int64
	text string
}

// next returns the record that appends s as client c's op seq.
func (ty *typist) next(s, c string, seq int64) Record {
	op := ot.Op{}.Retain(utf8.RuneCountInString(ty.text)).Insert(s)
	ty.rev++
	ty.text += s
	return Record{Rev: ty.rev, Op: op, Client: c, Seq: seq, Time: time.Unix(1700000000, ty.rev).UTC()}
}

// group returns n records, one character each, from client c starting at
// seq.
func (ty *typist) group(n int, c string, seq int64) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = ty.next(string(rune('a'+(ty.rev%26))), c, seq+int64(i))
	}
	return recs
}

func newMeta() DocMeta {
	return DocMeta{ID: uuid.NewString(), ViewID: uuid.NewString(), Created: time.Unix(1700000000, 0).UTC()}
}

// createDoc creates an empty document and returns its meta.
func createDoc(t *testing.T, s *Store) DocMeta {
	t.Helper()
	m := newMeta()
	if err := s.Create(testCtx(t), m, nil); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCreateLoadAppendOps(t *testing.T) {
	ns := startNATS(t)
	s := ns.newStore(t, Options{})
	ctx := testCtx(t)

	var ty typist
	m := newMeta()
	first := ty.next("hello", "c1", 1)
	if err := s.Create(ctx, m, &first); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ViewDoc(ctx, m.ViewID); err != nil || got != m.ID {
		t.Fatalf("ViewDoc = %q, %v; want %q", got, err, m.ID)
	}
	// Groups of several sizes, from two clients.
	for i, n := range []int{1, 3, 10, 1, 50} {
		c := []string{"c1", "c2"}[i%2]
		seq := int64(100 * (i + 1))
		if err := s.Append(ctx, m.ID, ty.group(n, c, seq)); err != nil {
			t.Fatalf("append group %d: %v", i, err)
		}
	}

	d, err := s.Load(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Text != ty.text || d.Rev != ty.rev {
		t.Fatalf("Load = rev %d %q, want rev %d %q", d.Rev, d.Text, ty.rev, ty.text)
	}
	if d.Meta != m {
		t.Fatalf("Load meta = %+v, want %+v", d.Meta, m)
	}
	// c2 sent groups 1 and 3: its last op is seq 400 (one record) at rev 16.
	wantClients := map[string]ClientState{"c1": {Seq: 549, Rev: 66}, "c2": {Seq: 400, Rev: 16}}
	for c, want := range wantClients {
		if got := d.Clients[c]; got != want {
			t.Errorf("client %s = %+v, want %+v", c, got, want)
		}
		seq, rev, err := s.ClientSeq(ctx, m.ID, c)
		if err != nil || seq != want.Seq || rev != want.Rev {
			t.Errorf("ClientSeq(%s) = %d, %d, %v; want %d, %d", c, seq, rev, err, want.Seq, want.Rev)
		}
	}
	if seq, rev, err := s.ClientSeq(ctx, m.ID, "nobody"); seq != 0 || rev != 0 || err != nil {
		t.Errorf("ClientSeq(nobody) = %d, %d, %v; want zeros", seq, rev, err)
	}

	all, err := s.Ops(ctx, m.ID, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(all)) != ty.rev {
		t.Fatalf("Ops(0) returned %d records, want %d", len(all), ty.rev)
	}
	text := ""
	for i, r := range all {
		if r.Rev != int64(i+1) {
			t.Fatalf("record %d has rev %d", i, r.Rev)
		}
		if text, err = ot.Apply(text, r.Op); err != nil {
			t.Fatal(err)
		}
	}
	if text != ty.text || all[0].Client != "c1" || all[0].Seq != 1 || !all[0].Time.Equal(first.Time) {
		t.Fatalf("Ops replays to %q (first %+v), want %q", text, all[0], ty.text)
	}

	cases := []struct {
		after           int64
		limit, maxBytes int
		want            []int64 // first and last rev, or nil for none
	}{
		{0, 5, 0, []int64{1, 5}},
		{3, 2, 0, []int64{4, 5}},
		{4, 1000, 0, []int64{5, 66}},
		{60, 0, 0, []int64{61, 66}},
		{65, 10, 0, []int64{66, 66}},
		{66, 10, 0, nil},
		{100, 10, 0, nil},
		{-5, 1, 0, []int64{1, 1}},
		{10, 1000, 17 * 3, []int64{11, 13}}, // 17 bytes a retain and one letter
		{10, 1000, 1, []int64{11, 11}},      // at least one record
	}
	for _, c := range cases {
		got, err := s.Ops(ctx, m.ID, c.after, c.limit, c.maxBytes)
		if err != nil {
			t.Fatalf("Ops(%d, %d, %d): %v", c.after, c.limit, c.maxBytes, err)
		}
		if c.want == nil {
			if got == nil || len(got) != 0 {
				t.Errorf("Ops(%d, %d, %d) = %d records, want an empty non-nil slice", c.after, c.limit, c.maxBytes, len(got))
			}
			continue
		}
		if len(got) == 0 || got[0].Rev != c.want[0] || got[len(got)-1].Rev != c.want[1] || int64(len(got)) != c.want[1]-c.want[0]+1 {
			t.Errorf("Ops(%d, %d, %d) = %d records %v, want revs %d..%d", c.after, c.limit, c.maxBytes, len(got), revs(got), c.want[0], c.want[1])
		}
	}
}

func revs(recs []Record) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.Rev
	}
	return out
}

func TestCreateErrors(t *testing.T) {
	ns := startNATS(t)
	s := ns.newStore(t, Options{})
	ctx := testCtx(t)
	m := createDoc(t, s)

	cases := []struct {
		name  string
		meta  DocMeta
		first *Record
		want  error
	}{
		{"same id", DocMeta{ID: m.ID, ViewID: uuid.NewString()}, nil, ErrExists},
		{"same view id", DocMeta{ID: uuid.NewString(), ViewID: m.ViewID}, nil, ErrExists},
		{"bad id", DocMeta{ID: "a.b", ViewID: uuid.NewString()}, nil, ErrBadRecord},
		{"first not rev 1", newMeta(), &Record{Rev: 2, Op: ot.Op{ot.Insert("x")}}, ErrBadRecord},
		{"first needs text", newMeta(), &Record{Rev: 1, Op: ot.Op{ot.Retain(3)}}, ErrBadRecord},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := s.Create(ctx, c.meta, c.first); !errors.Is(err, c.want) {
				t.Fatalf("Create = %v, want %v", err, c.want)
			}
		})
	}
	// A failed Create with a fresh view id gave it back.
	if _, err := s.ViewDoc(ctx, cases[0].meta.ViewID); !errors.Is(err, ErrNotFound) {
		t.Errorf("view id of a failed Create: %v, want ErrNotFound", err)
	}
	for _, id := range []string{uuid.NewString(), "", "a*b", strings.Repeat("x", 200)} {
		if _, err := s.Load(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Load(%q) = %v, want ErrNotFound", id, err)
		}
		if _, err := s.Ops(ctx, id, 0, 10, 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("Ops(%q) = %v, want ErrNotFound", id, err)
		}
		if _, _, err := s.ClientSeq(ctx, id, "c"); !errors.Is(err, ErrNotFound) {
			t.Errorf("ClientSeq(%q) = %v, want ErrNotFound", id, err)
		}
	}
	if err := s.Append(ctx, uuid.NewString(), []Record{{Rev: 1, Op: ot.Op{ot.Insert("x")}}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Append to an unknown doc = %v, want ErrNotFound", err)
	}
	// An empty document loads as empty.
	if d, err := s.Load(ctx, m.ID); err != nil || d.Rev != 0 || d.Text != "" {
		t.Errorf("Load(empty) = %+v, %v", d, err)
	}
}

func TestAppendRejects(t *testing.T) {
	ns := startNATS(t)
	s := ns.newStore(t, Options{})
	ctx := testCtx(t)
	m := createDoc(t, s)
	var ty typist
	if err := s.Append(ctx, m.ID, ty.group(3, "c", 1)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		recs []Record
		want error
	}{
		{"none", nil, ErrBadRecord},
		{"gap inside", []Record{{Rev: 4, Op: ot.Op{ot.Retain(3), ot.Insert("x")}}, {Rev: 6, Op: ot.Op{ot.Retain(4), ot.Insert("x")}}}, ErrBadRecord},
		{"bad op", []Record{{Rev: 4, Op: ot.Op{ot.Retain(0)}}}, ErrBadRecord},
		{"rev taken", []Record{{Rev: 3, Op: ot.Op{ot.Retain(2), ot.Insert("x")}}}, ErrConflict},
		{"rev ahead", []Record{{Rev: 5, Op: ot.Op{ot.Retain(3), ot.Insert("x")}}}, ErrConflict},
		{"op too short", []Record{{Rev: 4, Op: ot.Op{ot.Retain(2), ot.Insert("x")}}}, ErrBadRecord},
		{"second op does not fit", []Record{{Rev: 4, Op: ot.Op{ot.Retain(3), ot.Insert("x")}}, {Rev: 5, Op: ot.Op{ot.Retain(3), ot.Insert("x")}}}, ErrBadRecord},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := s.Append(ctx, m.ID, c.recs); !errors.Is(err, c.want) {
				t.Fatalf("Append = %v, want %v", err, c.want)
			}
			// A node with nothing cached learns the length from the
			// subject's last message.
			if err := ns.newStore(t, Options{}).Append(ctx, m.ID, c.recs); !errors.Is(err, c.want) {
				t.Fatalf("Append from a cold node = %v, want %v", err, c.want)
			}
		})
	}
	if err := s.Append(ctx, m.ID, ty.group(1, "c", 4)); err != nil {
		t.Fatalf("Append after refusals: %v", err)
	}
}

// TestFencing runs two nodes that both believe they own a document and
// append at the same position at the same moment, many times: exactly one
// wins each round, and the stream holds only the winners.
func TestFencing(t *testing.T) {
	ns := startNATS(t)
	a := ns.newStore(t, Options{NodeID: "a"})
	b := ns.newStore(t, Options{NodeID: "b"})
	ctx := testCtx(t)
	m := createDoc(t, a)

	want := ""
	for round := range 30 {
		var errs [2]error
		var texts [2]string
		var groups [2][]Record
		nodes := []*Store{a, b}
		// Each node loads (as a new owner does), then both race.
		for i, s := range nodes {
			d, err := s.Load(ctx, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			ty := typist{rev: d.Rev, text: d.Text}
			groups[i] = ty.group(1+i, s.NodeID(), int64(round+1))
			texts[i] = ty.text
		}
		var wg sync.WaitGroup
		for i, s := range nodes {
			wg.Go(func() { errs[i] = s.Append(ctx, m.ID, groups[i]) })
		}
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if won >= 0 {
					t.Fatalf("round %d: both appends succeeded", round)
				}
				won = i
			case !errors.Is(err, ErrConflict):
				t.Fatalf("round %d: node %d: %v, want nil or ErrConflict", round, i, err)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: neither append succeeded: %v", round, errs)
		}
		want = texts[won]
	}
	d, err := b.Load(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Text != want {
		t.Fatalf("after the races the text is %q, want the winners' %q", d.Text, want)
	}
}

// TestStaleWriterAfterTakeover: node a appended, node b loaded and
// appended after it; a's cached position is stale, so its next append is
// refused even though the revision it names looks right to a.
func TestStaleWriterAfterTakeover(t *testing.T) {
	ns := startNATS(t)
	a := ns.newStore(t, Options{})
	b := ns.newStore(t, Options{})
	ctx := testCtx(t)
	m := createDoc(t, a)
	var ty typist
	if err := a.Append(ctx, m.ID, ty.group(2, "x", 1)); err != nil {
		t.Fatal(err)
	}
	stale := ty // a's view of the document
	if _, err := b.Load(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.Append(ctx, m.ID, ty.group(1, "y", 1)); err != nil {
		t.Fatal(err)
	}
	if err := a.Append(ctx, m.ID, stale.group(1, "x", 3)); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale append = %v, want ErrConflict", err)
	}
	// After a reload a writes again.
	d, err := a.Load(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Text != ty.text {
		t.Fatalf("a reloads %q, want %q", d.Text, ty.text)
	}
	if err := a.Append(ctx, m.ID, ty.group(1, "x", 3)); err != nil {
		t.Fatal(err)
	}
}

// TestNewOwnerRebuilds: an owner appends from several clients, snapshots
// midway and appends more; a fresh node loads the same text and client
// table from the snapshot and the tail, and ClientSeq agrees on both.
func TestNewOwnerRebuilds(t *testing.T) {
	ns := startNATS(t)
	a := ns.newStore(t, Options{})
	ctx := testCtx(t)
	m := createDoc(t, a)
	var ty typist
	seqs := map[string]int64{}
	want := map[string]ClientState{}
	appendN := func(n int) {
		for i := range n {
			c := fmt.Sprintf("client-%d", i%7)
			seqs[c]++
			recs := ty.group(1+i%3, c, seqs[c])
			seqs[c] += int64(len(recs) - 1)
			if err := a.Append(ctx, m.ID, recs); err != nil {
				t.Fatal(err)
			}
			want[c] = ClientState{Seq: seqs[c], Rev: ty.rev}
		}
	}
	appendN(40)
	if err := a.SaveSnapshot(ctx, m.ID, ty.rev, ty.text); err != nil {
		t.Fatal(err)
	}
	snapRev := ty.rev
	appendN(25)

	b := ns.newStore(t, Options{})
	d, err := b.Load(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Text != ty.text || d.Rev != ty.rev {
		t.Fatalf("new owner loads rev %d %q, want rev %d %q", d.Rev, d.Text, ty.rev, ty.text)
	}
	if d.Tail != ty.rev-snapRev {
		t.Errorf("replayed %d records after the snapshot, want %d", d.Tail, ty.rev-snapRev)
	}
	if len(d.Clients) != len(want) {
		t.Errorf("client table has %d entries, want %d", len(d.Clients), len(want))
	}
	for c, w := range want {
		if d.Clients[c] != w {
			t.Errorf("client %s = %+v, want %+v", c, d.Clients[c], w)
		}
		for _, s := range []*Store{a, b} {
			if seq, rev, err := s.ClientSeq(ctx, m.ID, c); err != nil || seq != w.Seq || rev != w.Rev {
				t.Errorf("ClientSeq(%s) = %d, %d, %v; want %+v", c, seq, rev, err, w)
			}
		}
	}
	// b now writes; a's ClientSeq catches up from the stream.
	if err := b.Append(ctx, m.ID, ty.group(2, "client-0", seqs["client-0"]+1)); err != nil {
		t.Fatal(err)
	}
	if seq, rev, err := a.ClientSeq(ctx, m.ID, "client-0"); err != nil || seq != seqs["client-0"]+2 || rev != ty.rev {
		t.Errorf("a's ClientSeq after b wrote = %d, %d, %v; want %d, %d", seq, rev, err, seqs["client-0"]+2, ty.rev)
	}
	// A snapshot not newer than the stored one is skipped; a wrong one
	// is refused.
	if err := b.SaveSnapshot(ctx, m.ID, snapRev-1, "whatever"); err != nil {
		t.Errorf("older snapshot: %v, want nil (skipped)", err)
	}
	if err := b.SaveSnapshot(ctx, m.ID, ty.rev, ty.text+"x"); !errors.Is(err, ErrConflict) {
		t.Errorf("snapshot of the wrong length: %v, want ErrConflict", err)
	}
	c := ns.newStore(t, Options{}) // no cached state: reads the stream
	if err := c.SaveSnapshot(ctx, m.ID, ty.rev-1, ty.text[:len(ty.text)-1]); err != nil {
		t.Fatal(err)
	}
	d, err = ns.newStore(t, Options{}).Load(ctx, m.ID)
	if err != nil || d.Text != ty.text || d.Tail != 1 {
		t.Fatalf("load after a cold snapshot = %+v, %v; want the text with a tail of 1", d, err)
	}
}

// TestSeekAcrossDocs interleaves several documents in the stream so that
// their messages' sequences are spread out, then reads every document from
// every revision.
func TestSeekAcrossDocs(t *testing.T) {
	ns := startNATS(t)
	s := ns.newStore(t, Options{})
	ctx := testCtx(t)
	const docs, groups = 4, 25
	ids := make([]string, docs)
	tys := make([]typist, docs)
	for i := range ids {
		ids[i] = createDoc(t, s).ID
	}
	for g := range groups {
		for i := range ids {
			if (g+i)%3 == 0 && i > 0 {
				continue // uneven spacing
			}
			if err := s.Append(ctx, ids[i], tys[i].group(1+g%4, "c", int64(g*10+1))); err != nil {
				t.Fatal(err)
			}
		}
	}
	fresh := ns.newStore(t, Options{})
	for i, id := range ids {
		for after := int64(0); after <= tys[i].rev; after++ {
			got, err := fresh.Ops(ctx, id, after, 3, 0)
			if err != nil {
				t.Fatal(err)
			}
			wantN := min(3, tys[i].rev-after)
			if int64(len(got)) != wantN || (wantN > 0 && got[0].Rev != after+1) {
				t.Fatalf("doc %d Ops(%d) = revs %v, want %d from %d", i, after, revs(got), wantN, after+1)
			}
		}
	}
}

// TestLargeGroupsAndSnapshots runs a server with a small max payload: a
// group larger than one message is split, a record larger than one is
// refused, and a snapshot far larger than a message is stored in the
// object store and loads back.
func TestLargeGroupsAndSnapshots(t *testing.T) {
	ns := &natsServer{t: t, dir: t.TempDir(), port: -1, tweak: func(o *server.Options) { o.MaxPayload = 16 << 10 }}
	ns.start()
	t.Cleanup(ns.stop)
	s := ns.newStore(t, Options{})
	ctx := testCtx(t)
	m := createDoc(t, s)
	var ty typist
	big := make([]Record, 0, 40)
	for i := range 40 {
		big = append(big, ty.next(strings.Repeat("é", 500), "c", int64(i+1)))
	}
	if err := s.Append(ctx, m.ID, big); err != nil {
		t.Fatalf("append of a group over max payload: %v", err)
	}
	huge := ty
	if err := s.Append(ctx, m.ID, []Record{huge.next(strings.Repeat("x", 20<<10), "c", 41)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("append of a record over max payload: %v, want ErrTooLarge", err)
	}
	if err := s.Append(ctx, m.ID, ty.group(1, "c", 41)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx, m.ID, ty.rev, ty.text); err != nil {
		t.Fatal(err)
	}
	d, err := ns.newStore(t, Options{}).Load(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Text != ty.text || d.Tail != 0 || d.Clients["c"] != (ClientState{Seq: 41, Rev: 41}) {
		t.Fatalf("load = rev %d tail %d clients %v (text ok: %v)", d.Rev, d.Tail, d.Clients, d.Text == ty.text)
	}
}

// TestCorruptMessage: a message on a document's subject that is not a
// valid group makes Load fail with ErrCorrupt rather than return text.
func TestCorruptMessage(t *testing.T) {
	ns := startNATS(t)
	s := ns.newStore(t, Options{})
	ctx := testCtx(t)
	m := createDoc(t, s)
	var ty typist
	if err := s.Append(ctx, m.ID, ty.group(2, "c", 1)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		rec  Record
		hdr  [2]string
	}{
		{"headers disagree", ty.next("x", "c", 3), [2]string{"3", "4"}},
		{"op does not fit", Record{Rev: 3, Op: ot.Op{ot.Retain(10), ot.Insert("x")}}, [2]string{"3", "3"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			other := ns.newStore(t, Options{})
			doc := createDoc(t, other)
			var ty typist
			if err := other.Append(ctx, doc.ID, ty.group(2, "c", 1)); err != nil {
				t.Fatal(err)
			}
			msg := encodeGroup(doc.ID, []Record{c.rec})
			msg.Header.Set(hdrFirst, c.hdr[0])
			msg.Header.Set(hdrLast, c.hdr[1])
			if _, err := other.js.PublishMsg(ctx, msg); err != nil {
				t.Fatal(err)
			}
			if _, err := ns.newStore(t, Options{}).Load(ctx, doc.ID); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Load = %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestDisconnectedNodeCannotAppend: a node whose connection is closed, or
// whose server is down, fails its appends at once (no reconnect buffer
// holds them for later); after the server restarts, everything
// acknowledged before is there and the node appends again.
func TestDisconnectedNodeCannotAppend(t *testing.T) {
	ns := startNATS(t)
	a := ns.newStore(t, Options{})
	ctx := testCtx(t)
	m := createDoc(t, a)
	var ty typist
	if err := a.Append(ctx, m.ID, ty.group(5, "c", 1)); err != nil {
		t.Fatal(err)
	}

	// A closed connection.
	closed := ns.newStore(t, Options{})
	if _, err := closed.Load(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	closed.nc.Close()
	if err := closed.Ping(ctx); err == nil {
		t.Fatal("Ping on a closed connection succeeded")
	}
	lost := ty
	if err := closed.Append(ctx, m.ID, lost.group(1, "z", 1)); err == nil || errors.Is(err, ErrConflict) {
		t.Fatalf("append on a closed connection = %v, want a connection error", err)
	}

	// A server that went away.
	ns.stop()
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := a.Append(short, m.ID, lost.group(1, "z", 2))
	cancel()
	if err == nil {
		t.Fatal("append with the server down succeeded")
	}
	ns.start()
	waitConnected(t, a)
	if err := a.Ping(ctx); err != nil {
		t.Fatalf("Ping after the restart: %v", err)
	}
	d, err := a.Load(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Text != ty.text {
		t.Fatalf("after the restart the text is %q, want %q (nothing refused may appear)", d.Text, ty.text)
	}
	if err := a.Append(ctx, m.ID, ty.group(1, "c", 6)); err != nil {
		t.Fatalf("append after the restart: %v", err)
	}
}

func waitConnected(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !s.nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("not reconnected after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBackgroundSnapshots: a node snapshots a document after every
// SnapshotEvery records it appended, and after a Load that replayed that
// many, so a new owner's replay stays short.
func TestBackgroundSnapshots(t *testing.T) {
	ns := startNATS(t)
	ctx := testCtx(t)
	tailOf := func(id string) int64 {
		d, err := ns.newStore(t, Options{SnapshotEvery: -1}).Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return d.Tail
	}
	waitTail := func(id string, below int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			tail := tailOf(id)
			if tail < below {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("replay tail still %d after 10s, want < %d", tail, below)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	w := ns.newStore(t, Options{SnapshotEvery: 10})
	m := createDoc(t, w)
	var ty typist
	for i := range 12 {
		if err := w.Append(ctx, m.ID, ty.group(3, "c", int64(3*i+1))); err != nil {
			t.Fatal(err)
		}
	}
	waitTail(m.ID, 10)

	// Written by a node that never snapshots; loaded by one that does.
	quiet := ns.newStore(t, Options{SnapshotEvery: -1})
	m2 := createDoc(t, quiet)
	ty = typist{}
	if err := quiet.Append(ctx, m2.ID, ty.group(50, "c", 1)); err != nil {
		t.Fatal(err)
	}
	if tail := tailOf(m2.ID); tail != 50 {
		t.Fatalf("tail %d before any snapshot, want 50", tail)
	}
	if _, err := ns.newStore(t, Options{SnapshotEvery: 10}).Load(ctx, m2.ID); err != nil {
		t.Fatal(err)
	}
	waitTail(m2.ID, 1)
	d, err := ns.newStore(t, Options{}).Load(ctx, m2.ID)
	if err != nil || d.Text != ty.text || d.Clients["c"].Seq != 50 {
		t.Fatalf("load from the background snapshot = %+v, %v", d, err)
	}
}
