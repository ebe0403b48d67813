package jetstream

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/collabd/collabd/ot"
)

// history builds a document of random edits (inserts, some of multi-byte
// characters, and deletions) and remembers the text and client table at
// every revision.
type history struct {
	meta    DocMeta
	texts   []string // texts[rev]
	recs    []Record // recs[rev-1]
	clients []map[string]ClientState
	rng     *rand.Rand
}

func newHistory(seed uint64) *history {
	return &history{
		meta:    newMeta(),
		texts:   []string{""},
		clients: []map[string]ClientState{{}},
		rng:     rand.New(rand.NewPCG(seed, 9)),
	}
}

func (h *history) rev() int64 { return int64(len(h.recs)) }

// edit returns the next record, from client c at time at.
func (h *history) edit(c string, at time.Time) Record {
	text := h.texts[len(h.texts)-1]
	n := utf8.RuneCountInString(text)
	pos := h.rng.IntN(n + 1)
	op := ot.Op{}.Retain(pos)
	if del := min(1+h.rng.IntN(4), n-pos); del > 0 && h.rng.IntN(3) == 0 {
		op = op.Delete(del).Retain(n - pos - del)
	} else {
		op = op.Insert([]string{"a", "bc", "é", "𝄞 ", "lorem "}[h.rng.IntN(5)]).Retain(n - pos)
	}
	next, err := ot.Apply(text, op)
	if err != nil {
		panic(err)
	}
	seq := h.clients[len(h.clients)-1][c].Seq + 1
	r := Record{Rev: h.rev() + 1, Op: op, Client: c, Seq: seq, Time: at}
	cl := cloneClients(h.clients[len(h.clients)-1])
	cl[c] = ClientState{Seq: seq, Rev: r.Rev}
	h.texts = append(h.texts, next)
	h.recs = append(h.recs, r)
	h.clients = append(h.clients, cl)
	return r
}

func cloneClients(m map[string]ClientState) map[string]ClientState {
	out := make(map[string]ClientState, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// build creates the document in s and appends n edits in groups of 1 to
// 6, times from at(rev), clients alternating; after each group it calls
// between (if not nil), e.g. to append to another document.
func (h *history) build(t *testing.T, s *Store, n int, at func(rev int64) time.Time, between func()) {
	t.Helper()
	ctx := testCtx(t)
	if err := s.Create(ctx, h.meta, nil); err != nil {
		t.Fatal(err)
	}
	for h.rev() < int64(n) {
		var group []Record
		for k := 1 + h.rng.IntN(6); k > 0 && h.rev() < int64(n); k-- {
			c := []string{"ann", "bob", "cy"}[h.rng.IntN(3)]
			group = append(group, h.edit(c, at(h.rev()+1)))
		}
		if err := s.Append(ctx, h.meta.ID, group); err != nil {
			t.Fatal(err)
		}
		if between != nil {
			between()
		}
	}
}

func TestLoadAtAcrossSnapshot(t *testing.T) {
	ns := startNATS(t)
	s := ns.newStore(t, Options{SnapshotEvery: -1})
	ctx := testCtx(t)
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	at := func(rev int64) time.Time { return base.Add(time.Duration(rev) * time.Second) }

	other := newHistory(2)
	if err := s.Create(ctx, other.meta, nil); err != nil {
		t.Fatal(err)
	}
	h := newHistory(1)
	// Another document's messages between this one's, so that reads
	// filter by subject.
	h.build(t, s, 60, at, func() {
		if err := s.Append(ctx, other.meta.ID, []Record{other.edit("x", at(other.rev()+1))}); err != nil {
			t.Fatal(err)
		}
	})
	const snapRev = 40
	if err := s.SaveSnapshot(ctx, h.meta.ID, snapRev, h.texts[snapRev]); err != nil {
		t.Fatal(err)
	}
	for range 20 { // more edits after the snapshot
		if err := s.Append(ctx, h.meta.ID, []Record{h.edit("bob", at(h.rev()+1))}); err != nil {
			t.Fatal(err)
		}
	}

	for rev := int64(0); rev <= h.rev(); rev++ {
		d, err := s.LoadAt(ctx, h.meta.ID, rev)
		if err != nil {
			t.Fatalf("LoadAt(%d): %v", rev, err)
		}
		if d.Rev != rev || d.Text != h.texts[rev] {
			t.Fatalf("LoadAt(%d) = rev %d %q, want %q", rev, d.Rev, d.Text, h.texts[rev])
		}
		if d.Meta != h.meta {
			t.Fatalf("LoadAt(%d) meta = %+v, want %+v", rev, d.Meta, h.meta)
		}
		if !reflect.DeepEqual(d.Clients, h.clients[rev]) {
			t.Errorf("LoadAt(%d) clients = %v, want %v", rev, d.Clients, h.clients[rev])
		}
		// From the snapshot when it is at or before rev, else from the
		// start.
		wantTail := rev
		if rev >= snapRev {
			wantTail = rev - snapRev
		}
		if d.Tail != wantTail {
			t.Errorf("LoadAt(%d) replayed %d records, want %d", rev, d.Tail, wantTail)
		}
	}

	for _, rev := range []int64{-1, h.rev() + 1, 1 << 40} {
		if _, err := s.LoadAt(ctx, h.meta.ID, rev); !errors.Is(err, ErrNoRevision) {
			t.Errorf("LoadAt(%d): got %v, want ErrNoRevision", rev, err)
		}
	}
	if _, err := s.LoadAt(ctx, uuid.NewString(), 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("LoadAt of an unknown doc: got %v, want ErrNotFound", err)
	}
	empty := createDoc(t, s)
	if d, err := s.LoadAt(ctx, empty.ID, 0); err != nil || d.Text != "" || d.Rev != 0 {
		t.Errorf("LoadAt(empty, 0) = %+v, %v; want empty text at 0", d, err)
	}
	if _, err := s.LoadAt(ctx, empty.ID, 1); !errors.Is(err, ErrNoRevision) {
		t.Errorf("LoadAt(empty, 1): got %v, want ErrNoRevision", err)
	}
	// LoadAt of an old revision leaves Append's position alone.
	if err := s.Append(ctx, h.meta.ID, []Record{h.edit("cy", at(h.rev()+1))}); err != nil {
		t.Fatalf("append after LoadAt: %v", err)
	}
	if d, err := s.Load(ctx, h.meta.ID); err != nil || d.Text != h.texts[h.rev()] {
		t.Fatalf("Load after LoadAt and Append = %v, %v", d, err)
	}
}

func TestHistoryRevisions(t *testing.T) {
	ns := startNATS(t)
	s := ns.newStore(t, Options{})
	ctx := testCtx(t)
	m := newMeta()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	if err := s.Create(ctx, m, &Record{Rev: 1, Op: ot.Op{{S: "héllo"}}, Client: "a", Seq: 1, Time: t0}); err != nil {
		t.Fatal(err)
	}
	recs := []Record{
		{Rev: 2, Op: ot.Op{{N: 1}, {N: -2}, {S: "𝄞x"}, {N: 2}}, Client: "b", Seq: 1, Time: t0.Add(time.Second)},
		{Rev: 3, Op: ot.Op{{N: -5}}, Time: t0.Add(2 * time.Second)},
	}
	if err := s.Append(ctx, m.ID, recs); err != nil {
		t.Fatal(err)
	}
	got, err := s.Revisions(ctx, m.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Revision{
		{Rev: 1, Time: t0, Client: "a", Inserted: 5},
		{Rev: 2, Time: t0.Add(time.Second), Client: "b", Inserted: 2, Deleted: 2},
		{Rev: 3, Time: t0.Add(2 * time.Second), Deleted: 5},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Revisions: got %+v, want %+v", got, want)
	}
	// Pages of one, across the message boundary between 1 and 2..3.
	for after := int64(0); after < 3; after++ {
		if got, err := s.Revisions(ctx, m.ID, after, 1); err != nil || !reflect.DeepEqual(got, want[after:after+1]) {
			t.Errorf("Revisions(after %d, limit 1): got %+v, %v, want %+v", after, got, err, want[after:after+1])
		}
	}
	if got, err := s.Revisions(ctx, m.ID, 3, 0); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Revisions past the head: got %#v, %v, want an empty slice", got, err)
	}
	if got, err := s.Revisions(ctx, createDoc(t, s).ID, 0, 0); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Revisions of an empty doc: got %#v, %v, want an empty slice", got, err)
	}
	if _, err := s.Revisions(ctx, uuid.NewString(), 0, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("Revisions of an unknown doc: got %v, want ErrNotFound", err)
	}

	// A longer history paged by 7 agrees with the records, and a limit
	// over 1000 is capped.
	h := newHistory(3)
	h.build(t, s, 1300, func(rev int64) time.Time { return t0.Add(time.Duration(rev) * time.Millisecond) }, nil)
	var paged []Revision
	for after := int64(0); ; {
		page, err := s.Revisions(ctx, h.meta.ID, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 7 {
			t.Fatalf("page of %d, want at most 7", len(page))
		}
		paged = append(paged, page...)
		after = page[len(page)-1].Rev
		if after > 200 {
			break // enough pages; the rest is read in one below
		}
	}
	rest, err := s.Revisions(ctx, h.meta.ID, paged[len(paged)-1].Rev, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != historyLimit {
		t.Errorf("Revisions with limit 5000 returned %d, want the cap %d", len(rest), historyLimit)
	}
	paged = append(paged, rest...)
	for i, r := range paged {
		rec := h.recs[i]
		if want := describeByApply(t, h.texts[i], rec); r != want {
			t.Fatalf("revision %d: got %+v, want %+v", i+1, r, want)
		}
	}
}

// describeByApply computes what rec did from the texts before and after,
// independently of describe: deleted = before - (after - inserted).
func describeByApply(t *testing.T, before string, rec Record) Revision {
	t.Helper()
	after, err := ot.Apply(before, rec.Op)
	if err != nil {
		t.Fatal(err)
	}
	ins := 0
	for _, c := range rec.Op {
		if c.IsInsert() {
			ins += utf8.RuneCountInString(c.S)
		}
	}
	del := utf8.RuneCountInString(before) - (utf8.RuneCountInString(after) - ins)
	return Revision{Rev: rec.Rev, Time: rec.Time, Client: rec.Client, Inserted: int64(ins), Deleted: int64(del)}
}

func TestRevAt(t *testing.T) {
	ns := startNATS(t)
	s := ns.newStore(t, Options{})
	ctx := testCtx(t)
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	// Times by revision; the groups below put 4 and 5 in one message, so
	// 5's step back is raised to 4's, as package storage stores it.
	offs := []time.Duration{
		0,                             // 1
		10 * time.Second,              // 2
		10 * time.Second,              // 3: same time as 2
		70 * time.Second,              // 4
		50 * time.Second,              // 5: the clock stepped back
		2 * time.Hour,                 // 6
		2*time.Hour + time.Nanosecond, // 7
		3 * time.Hour,                 // 8
	}
	groups := [][2]int{{1, 1}, {2, 2}, {3, 5}, {6, 6}, {7, 8}}
	m := createDoc(t, s)
	other := createDoc(t, s)
	var ty, oty typist
	for _, g := range groups {
		var recs []Record
		for rev := g[0]; rev <= g[1]; rev++ {
			r := ty.next("x", "c", int64(rev))
			r.Time = base.Add(offs[rev-1])
			recs = append(recs, r)
		}
		if err := s.Append(ctx, m.ID, recs); err != nil {
			t.Fatal(err)
		}
		if err := s.Append(ctx, other.ID, oty.group(2, "o", oty.rev+1)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		at   time.Duration
		want int64
	}{
		{-time.Hour, 0},
		{-time.Nanosecond, 0},
		{0, 1},
		{time.Second, 1},
		{10*time.Second - 1, 1},
		{10 * time.Second, 3},
		{50 * time.Second, 3}, // 5 counts at 70s, not 50s
		{69 * time.Second, 3},
		{70 * time.Second, 5},
		{time.Hour, 5},
		{2 * time.Hour, 6},
		{2*time.Hour + time.Nanosecond, 7},
		{3*time.Hour - 1, 7},
		{3 * time.Hour, 8},
		{100 * time.Hour, 8},
	}
	for _, tt := range tests {
		if got, err := s.RevAt(ctx, m.ID, base.Add(tt.at)); err != nil || got != tt.want {
			t.Errorf("RevAt(base%+v): got %d, %v, want %d", tt.at, got, err, tt.want)
		}
	}
	if _, err := s.RevAt(ctx, uuid.NewString(), base); !errors.Is(err, ErrNotFound) {
		t.Errorf("RevAt of an unknown doc: got %v, want ErrNotFound", err)
	}
	if got, err := s.RevAt(ctx, createDoc(t, s).ID, base); err != nil || got != 0 {
		t.Errorf("RevAt of an empty doc: got %d, %v, want 0", got, err)
	}

	// A long history in random groups: the binary search agrees with a
	// walk over the records at every record's time and just around it.
	h := newHistory(4)
	rng := rand.New(rand.NewPCG(5, 5))
	times := make([]time.Time, 0, 400)
	tm := base
	h.build(t, s, 400, func(rev int64) time.Time {
		if rng.IntN(4) > 0 { // now and then two ops at one time
			tm = tm.Add(time.Duration(1+rng.IntN(90)) * time.Second)
		}
		times = append(times, tm)
		return tm
	}, func() {
		if rng.IntN(2) == 0 {
			if err := s.Append(ctx, other.ID, oty.group(1+rng.IntN(3), "o", oty.rev+1)); err != nil {
				t.Fatal(err)
			}
		}
	})
	walk := func(at time.Time) int64 {
		var rev int64
		for i, ti := range times {
			if !ti.After(at) {
				rev = int64(i + 1)
			}
		}
		return rev
	}
	for i := 0; i < len(times); i += 3 {
		for _, at := range []time.Time{times[i].Add(-time.Nanosecond), times[i], times[i].Add(time.Nanosecond)} {
			if got, err := s.RevAt(ctx, h.meta.ID, at); err != nil || got != walk(at) {
				t.Fatalf("RevAt(%v) = %d, %v; want %d", at, got, err, walk(at))
			}
		}
	}
}

func TestHistoryActivity(t *testing.T) {
	ns := startNATS(t)
	s := ns.newStore(t, Options{})
	ctx := testCtx(t)
	base := time.Date(2026, 3, 1, 23, 58, 30, 0, time.UTC)
	// 300 ops, 20 s apart: from 23:58:30 on March 1 to 01:38:10 on March 2.
	h := newHistory(6)
	other := createDoc(t, s)
	var oty typist
	h.build(t, s, 300, func(rev int64) time.Time { return base.Add(time.Duration(rev-1) * 20 * time.Second) }, func() {
		if err := s.Append(ctx, other.ID, oty.group(1, "o", oty.rev+1)); err != nil {
			t.Fatal(err)
		}
	})
	revs, err := s.Revisions(ctx, h.meta.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The buckets must agree with the revisions they cover.
	expect := func(after int64, unit time.Duration) []Bucket {
		var out []Bucket
		for _, r := range revs[after:] {
			start := r.Time.Truncate(unit)
			if len(out) == 0 || !out[len(out)-1].Start.Equal(start) {
				out = append(out, Bucket{Start: start, FirstRev: r.Rev})
			}
			b := &out[len(out)-1]
			b.LastRev, b.Count = r.Rev, b.Count+1
			b.Inserted += r.Inserted
			b.Deleted += r.Deleted
			if !slices.Contains(b.Clients, r.Client) {
				b.Clients = append(b.Clients, r.Client)
			}
		}
		return out
	}
	for _, unit := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour} {
		for _, after := range []int64{0, 1, 2, 3, 150, 299} {
			for _, limit := range []int{0, 1, 7} {
				name := fmt.Sprintf("%v after %d limit %d", unit, after, limit)
				got, err := s.Activity(ctx, h.meta.ID, after, unit, limit)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				want := expect(after, unit)
				if limit > 0 && len(want) > limit {
					want = want[:limit]
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: got %d buckets %+v, want %d %+v", name, len(got), got, len(want), want)
				}
			}
		}
		// Paging with after = the last bucket's LastRev covers it all once.
		var paged []Bucket
		for after := int64(0); ; {
			page, err := s.Activity(ctx, h.meta.ID, after, unit, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			after = page[len(page)-1].LastRev
		}
		if want := expect(0, unit); !reflect.DeepEqual(paged, want) {
			t.Errorf("%v paged by 3: got %d buckets, want %d", unit, len(paged), len(want))
		}
	}
	if got, err := s.Activity(ctx, h.meta.ID, 300, time.Hour, 0); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Activity past the head: got %#v, %v, want an empty slice", got, err)
	}
	for _, unit := range []time.Duration{0, time.Second, 7 * time.Minute, 48 * time.Hour} {
		if _, err := s.Activity(ctx, h.meta.ID, 0, unit, 0); !errors.Is(err, ErrInvalid) {
			t.Errorf("Activity by %v: got %v, want ErrInvalid", unit, err)
		}
	}
	if _, err := s.Activity(ctx, uuid.NewString(), 0, time.Hour, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("Activity of an unknown doc: got %v, want ErrNotFound", err)
	}

	// At most 16 clients per bucket; the totals still count all.
	m := createDoc(t, s)
	var ty typist
	for i := range 40 {
		if err := s.Append(ctx, m.ID, []Record{ty.next("x", fmt.Sprint("client-", i), 1)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Activity(ctx, m.ID, 0, 24*time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Count != 40 || got[0].Inserted != 40 || len(got[0].Clients) != maxActivityClients {
		t.Errorf("40 clients in a day: got %+v, want one bucket of 40 naming %d clients", got, maxActivityClients)
	}
}

func TestHistoryDelete(t *testing.T) {
	ns := startNATS(t)
	s := ns.newStore(t, Options{SnapshotEvery: -1})
	s2 := ns.newStore(t, Options{SnapshotEvery: -1}) // another node
	ctx := testCtx(t)

	var ty, kty typist
	m, keep := newMeta(), newMeta()
	first, kfirst := ty.next("doomed "+strings.Repeat("z", 10_000), "c", 1), kty.next("kept ", "c", 1)
	if err := s.Create(ctx, m, &first); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, keep, &kfirst); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := s.Append(ctx, m.ID, ty.group(3, "c", ty.rev+1)); err != nil {
			t.Fatal(err)
		}
		if err := s.Append(ctx, keep.ID, kty.group(2, "c", kty.rev+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveSnapshot(ctx, m.ID, ty.rev, ty.text); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Load(ctx, m.ID); err != nil { // s2 caches it
		t.Fatal(err)
	}
	before, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}

	if err := s.Delete(ctx, m.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for name, s := range map[string]*Store{"deleting node": s, "other node": s2} {
		if _, err := s.Load(ctx, m.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: Load after Delete: got %v, want ErrNotFound", name, err)
		}
		if _, _, err := s.Meta(ctx, m.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: Meta after Delete: got %v, want ErrNotFound", name, err)
		}
		if _, err := s.Ops(ctx, m.ID, 0, 0, 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: Ops after Delete: got %v, want ErrNotFound", name, err)
		}
		if _, err := s.ViewDoc(ctx, m.ViewID); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: ViewDoc after Delete: got %v, want ErrNotFound", name, err)
		}
		if _, err := s.LoadAt(ctx, m.ID, 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: LoadAt after Delete: got %v, want ErrNotFound", name, err)
		}
	}
	if e, err := s.last(ctx, m.ID); err != nil || e.seq != 0 {
		t.Errorf("the op subject after Delete ends at seq %d (%v), want purged", e.seq, err)
	}
	if _, err := s.snaps.GetInfo(ctx, m.ID); !errors.Is(err, natsjs.ErrObjectNotFound) {
		t.Errorf("snapshot after Delete: got %v, want ErrObjectNotFound", err)
	}
	if err := s.Delete(ctx, m.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: got %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, uuid.NewString()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete of an unknown doc: got %v, want ErrNotFound", err)
	}
	after, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after >= before {
		t.Errorf("Usage after Delete = %d bytes, before %d: want less", after, before)
	}

	// The other document is untouched.
	if d, err := s2.Load(ctx, keep.ID); err != nil || d.Text != kty.text || d.Rev != kty.rev {
		t.Errorf("the kept doc: got %+v, %v, want rev %d %q", d, err, kty.rev, kty.text)
	}
	// Nothing is left of the deleted one: its ids can be created afresh
	// (Create refuses a subject that has records, and a stale snapshot
	// would make Load fail).
	var nty typist
	nfirst := nty.next("reborn", "c", 1)
	if err := s2.Create(ctx, m, &nfirst); err != nil {
		t.Fatalf("Create after Delete: %v", err)
	}
	if d, err := s.Load(ctx, m.ID); err != nil || d.Text != "reborn" || d.Rev != 1 {
		t.Errorf("Load of the recreated doc: got %+v, %v", d, err)
	}
}

func TestUsage(t *testing.T) {
	ns := startNATS(t)
	s := ns.newStore(t, Options{})
	ctx := testCtx(t)
	u0, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := newMeta()
	big := strings.Repeat("x", 100_000)
	first := Record{Rev: 1, Op: ot.Op{{S: big}}, Client: "c", Seq: 1}
	if err := s.Create(ctx, m, &first); err != nil {
		t.Fatal(err)
	}
	u1, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u1-u0 < int64(len(big)) {
		t.Errorf("Usage grew by %d bytes for a %d-byte op", u1-u0, len(big))
	}
	if err := s.SaveSnapshot(ctx, m.ID, 1, big); err != nil {
		t.Fatal(err)
	}
	u2, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u2-u1 < int64(len(big)) {
		t.Errorf("Usage grew by %d bytes for a %d-byte snapshot", u2-u1, len(big))
	}
	ns.stop()
	if _, err := s.Usage(ctx); err == nil {
		t.Error("Usage with the server down: got no error")
	}
}

func TestSharedKey(t *testing.T) {
	ns := startNATS(t)
	ctx := testCtx(t)
	nodes := []*Store{ns.newStore(t, Options{}), ns.newStore(t, Options{}), ns.newStore(t, Options{})}

	// Three nodes ask at once: one key wins and all get it.
	keys := make([][]byte, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, s := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], errs[i] = s.SharedKey(ctx, "author", 32)
		}()
	}
	wg.Wait()
	for i := range nodes {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		if len(keys[i]) != 32 || string(keys[i]) != string(keys[0]) {
			t.Fatalf("node %d got key %x, node 0 %x", i, keys[i], keys[0])
		}
	}
	if string(keys[0]) == string(make([]byte, 32)) {
		t.Fatal("the key is all zeros")
	}
	// Again later, and from a node started afterwards: the same key.
	late := ns.newStore(t, Options{})
	if k, err := late.SharedKey(ctx, "author", 32); err != nil || string(k) != string(keys[0]) {
		t.Errorf("a later node got %x, %v; want %x", k, err, keys[0])
	}
	// Another name is another key.
	if k, err := late.SharedKey(ctx, "other", 32); err != nil || string(k) == string(keys[0]) {
		t.Errorf("key other = %x, %v; want a different key", k, err)
	}
	if _, err := late.SharedKey(ctx, "author", 16); !errors.Is(err, ErrCorrupt) {
		t.Errorf("key of another size: got %v, want ErrCorrupt", err)
	}
	for _, bad := range []struct {
		name string
		size int
	}{{"", 32}, {"a.b", 32}, {"a b", 32}, {"ok", 0}, {"ok", maxSharedKey + 1}} {
		if _, err := late.SharedKey(ctx, bad.name, bad.size); !errors.Is(err, ErrInvalid) {
			t.Errorf("SharedKey(%q, %d): got %v, want ErrInvalid", bad.name, bad.size, err)
		}
	}
	// Seeding: a new name takes the given key, an existing one keeps its.
	seed := []byte("0123456789abcdef0123456789abcdef")
	if k, err := late.SeedSharedKey(ctx, "seeded", seed); err != nil || string(k) != string(seed) {
		t.Errorf("SeedSharedKey(seeded) = %q, %v; want the seed", k, err)
	}
	if k, err := nodes[0].SharedKey(ctx, "seeded", 32); err != nil || string(k) != string(seed) {
		t.Errorf("SharedKey(seeded) = %q, %v; want the seed", k, err)
	}
	if k, err := late.SeedSharedKey(ctx, "author", seed); err != nil || string(k) != string(keys[0]) {
		t.Errorf("SeedSharedKey(author) = %x, %v; want the existing %x", k, err, keys[0])
	}
	if _, err := late.SeedSharedKey(ctx, "empty", nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("SeedSharedKey with no bytes: got %v, want ErrInvalid", err)
	}
	// The key's entry is not a document.
	if _, _, err := late.Meta(ctx, "key.author"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Meta(key.author): got %v, want ErrNotFound", err)
	}
}
