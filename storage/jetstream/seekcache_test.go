package jetstream

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// points returns a copy of document id's points.
func (c *seekCache) points(id string) []seekPoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.byID[id]; ok {
		return slices.Clone(d.pts)
	}
	return nil
}

// checkSeekCache checks c's bookkeeping: points in sequence and revision
// order, totals and limits.
func checkSeekCache(t *testing.T, c *seekCache) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for id, d := range c.byID {
		total += len(d.pts)
		if len(d.pts) > c.docPoints {
			t.Errorf("doc %s: %d points, limit %d", id, len(d.pts), c.docPoints)
		}
		for i := 1; i < len(d.pts); i++ {
			if p, q := d.pts[i-1], d.pts[i]; p.seq >= q.seq || p.last >= q.first {
				t.Errorf("doc %s: point %+v before %+v", id, p, q)
			}
		}
	}
	if total != c.total || total > c.totalPoints || len(c.byID) > c.docs || c.lru.Len() != len(c.byID) {
		t.Errorf("%d points (counted %d, limit %d), %d docs (lru %d, limit %d)", total, c.total, c.totalPoints, len(c.byID), c.lru.Len(), c.docs)
	}
}

func TestSeekCacheBounds(t *testing.T) {
	c := newSeekCache()
	// Messages at 10 (revs 1-4), 20 (5-9), 35 (10), 50 (11-20); e at 90.
	for _, p := range []seekPoint{{50, 11, 20}, {10, 1, 4}, {35, 10, 10}, {20, 5, 9}} {
		c.note("d", p)
	}
	e := end{seq: 90, first: 100, rev: 100}
	for _, tc := range []struct {
		after int64
		want  seekBounds
	}{
		{0, seekBounds{lo: 1, hi: 10, exact: true, cached: true}},
		{3, seekBounds{lo: 1, hi: 10, exact: true, cached: true}},
		{4, seekBounds{lo: 11, hi: 20, exact: true, next: true, cached: true}},
		{9, seekBounds{lo: 21, hi: 35, exact: true, next: true, cached: true}},
		{12, seekBounds{lo: 36, hi: 50, exact: true, cached: true}},
		{20, seekBounds{lo: 51, hi: 90, next: true}},
		{30, seekBounds{lo: 51, hi: 90}},
	} {
		if got := c.bounds("d", tc.after, e); got != tc.want {
			t.Errorf("bounds(%d) = %+v, want %+v", tc.after, got, tc.want)
		}
	}
	if got, want := c.bounds("other", 3, e), (seekBounds{lo: 1, hi: 90}); got != want {
		t.Errorf("unknown doc: %+v, want %+v", got, want)
	}
	// An append's point: only its last revision is known to be there.
	c.note("d", seekPoint{70, 30, 30})
	if got, want := c.bounds("d", 28, e), (seekBounds{lo: 51, hi: 70, cached: true}); got != want {
		t.Errorf("bounds(28) = %+v, want %+v", got, want)
	}
	c.note("d", seekPoint{70, 25, 30}) // read whole later
	if got, want := c.bounds("d", 28, e), (seekBounds{lo: 51, hi: 70, exact: true, cached: true}); got != want {
		t.Errorf("bounds(28) after the read = %+v, want %+v", got, want)
	}
	// A point past e holding revisions before it: an older life.
	if got, want := c.bounds("d", 12, end{seq: 30, first: 50, rev: 60}), (seekBounds{lo: 1, hi: 30}); got != want {
		t.Errorf("stale points: %+v, want %+v", got, want)
	}
	if pts := c.points("d"); pts != nil {
		t.Errorf("stale points kept: %v", pts)
	}
	checkSeekCache(t, c)
	var nilCache *seekCache
	nilCache.note("d", seekPoint{1, 1, 1})
	nilCache.drop("d")
	if got, want := nilCache.bounds("d", 3, e), (seekBounds{lo: 1, hi: 90}); got != want {
		t.Errorf("nil cache: %+v, want %+v", got, want)
	}
}

// TestSeekCacheContradiction: a document deleted and made again under the
// same id has its messages after every old one, holding revisions the old
// ones held; the first such point drops the old ones.
func TestSeekCacheContradiction(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    seekPoint
	}{
		{"later seq, same revs", seekPoint{500, 1, 3}},
		{"same seq, other revs", seekPoint{20, 6, 7}},
		{"earlier seq, later revs", seekPoint{15, 40, 41}},
	} {
		c := newSeekCache()
		c.note("d", seekPoint{10, 1, 4})
		c.note("d", seekPoint{20, 5, 9})
		c.note("x", seekPoint{30, 1, 9})
		c.note("d", tc.p)
		if got := c.points("d"); !slices.Equal(got, []seekPoint{tc.p}) {
			t.Errorf("%s: points %v, want only %v", tc.name, got, tc.p)
		}
		if got := c.points("x"); len(got) != 1 {
			t.Errorf("%s: other doc's points %v", tc.name, got)
		}
		checkSeekCache(t, c)
	}
	c := newSeekCache()
	c.note("d", seekPoint{10, 1, 4})
	c.note("d", seekPoint{10, 1, 4}) // again: nothing new
	c.drop("d")
	c.drop("never")
	if c.points("d") != nil || c.total != 0 {
		t.Errorf("after drop: %v, total %d", c.points("d"), c.total)
	}
	checkSeekCache(t, c)
}

func TestSeekCacheLimits(t *testing.T) {
	c := newSeekCache()
	c.docPoints, c.totalPoints, c.docs = 64, 100, 3
	// One document: a dense run of adjacent messages (a range read) and
	// sparse ones around it. Thinning keeps the ends and the sparse ones.
	for seq := uint64(1000); seq < 1100; seq++ {
		c.note("a", seekPoint{seq, int64(seq), int64(seq)})
	}
	for seq := uint64(10); seq < 1000; seq += 100 {
		c.note("a", seekPoint{seq, int64(seq), int64(seq)})
	}
	for seq := uint64(2000); seq < 20000; seq += 2000 {
		c.note("a", seekPoint{seq, int64(seq), int64(seq)})
	}
	pts := c.points("a")
	if len(pts) > 64 {
		t.Fatalf("%d points, limit 64", len(pts))
	}
	for _, seq := range []uint64{10, 110, 510, 910, 2000, 10000, 18000} {
		if _, ok := slices.BinarySearchFunc(pts, seq, func(p seekPoint, s uint64) int { return int(p.seq) - int(s) }); !ok {
			t.Errorf("sparse point %d dropped: %v", seq, pts)
		}
	}
	checkSeekCache(t, c)
	// Documents: the least recently used goes first, by count and by
	// points in all.
	for _, id := range []string{"b", "c"} {
		for seq := uint64(1); seq <= 10; seq++ {
			c.note(id, seekPoint{seq, int64(seq), int64(seq)})
		}
	}
	c.bounds("a", 5, end{seq: 30000, first: 30000, rev: 30000}) // a is used
	c.note("d", seekPoint{1, 1, 1})
	if c.points("b") != nil || c.points("a") == nil || c.points("c") == nil || c.points("d") == nil {
		t.Errorf("after a fourth doc: a %d b %d c %d d %d points", len(c.points("a")), len(c.points("b")), len(c.points("c")), len(c.points("d")))
	}
	checkSeekCache(t, c)
	for seq := uint64(1); seq <= 150; seq++ {
		c.note("e", seekPoint{seq, int64(seq), int64(seq)})
	}
	checkSeekCache(t, c)
	if c.points("e") == nil {
		t.Errorf("the doc in use was evicted")
	}
	// Thinning to any size keeps the order and the ends.
	for n := 0; n < 10; n++ {
		var pts []seekPoint
		for i := range 50 {
			pts = append(pts, seekPoint{uint64(i * i), int64(i + 1), int64(i + 1)})
		}
		got := thin(pts, n)
		if len(got) > max(n, 2) || got[0] != (seekPoint{0, 1, 1}) || got[len(got)-1] != (seekPoint{49 * 49, 50, 50}) {
			t.Errorf("thin to %d: %v", n, got)
		}
	}
}

// buildSeekDocs builds docs documents of groups messages each, interleaved
// unevenly in the stream, and returns their ids and last revisions.
func buildSeekDocs(t *testing.T, s *Store, docs, groups int) ([]string, []int64) {
	t.Helper()
	ctx := testCtx(t)
	ids := make([]string, docs)
	tys := make([]typist, docs)
	for i := range ids {
		ids[i] = createDoc(t, s).ID
	}
	r := rand.New(rand.NewPCG(7, 7))
	for g := range groups {
		for i := range ids {
			if r.IntN(3) == 0 && i > 0 {
				continue
			}
			if err := s.Append(ctx, ids[i], tys[i].group(1+r.IntN(4), "c", int64(g*10+1))); err != nil {
				t.Fatal(err)
			}
		}
	}
	revs := make([]int64, docs)
	for i := range tys {
		revs[i] = tys[i].rev
	}
	return ids, revs
}

// TestSeekCacheSameAnswer: seek with the points a node learns gives the
// sequence the plain binary search gives, at random revisions, with far
// fewer reads; a revision sought before costs none.
func TestSeekCacheSameAnswer(t *testing.T) {
	ns := startNATS(t)
	w := ns.newStore(t, Options{SnapshotEvery: -1})
	ids, heads := buildSeekDocs(t, w, 3, 400)
	ctx := testCtx(t)
	ref := ns.newStore(t, Options{SnapshotEvery: -1})
	s := ns.newStore(t, Options{SnapshotEvery: -1})
	r := rand.New(rand.NewPCG(1, 2))
	const n = 300
	for i, id := range ids {
		e, err := s.last(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		refBefore, before := ref.seekCache().probes.Load(), s.seekCache().probes.Load()
		for range n {
			after := r.Int64N(heads[i])
			want, _, err := ref.search(ctx, id, after, seekBounds{lo: 1, hi: e.seq})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.seek(ctx, id, after, e)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("doc %d seek(%d) = seq %d, want %d", i, after, got, want)
			}
			before := s.seekCache().probes.Load()
			if again, err := s.seek(ctx, id, after, e); err != nil || again != want {
				t.Fatalf("doc %d seek(%d) again = %d, %v", i, after, again, err)
			}
			if p := s.seekCache().probes.Load() - before; p != 0 {
				t.Fatalf("doc %d seek(%d) again read %d messages", i, after, p)
			}
		}
		plain, cached := ref.seekCache().probes.Load()-refBefore, s.seekCache().probes.Load()-before
		t.Logf("doc %d (%d revs): %d seeks read %d messages plain, %d with the cache", i, heads[i], n, plain, cached)
		if cached*3 > plain {
			t.Errorf("doc %d: %d reads with the cache, %d without", i, cached, plain)
		}
	}
	checkSeekCache(t, s.seekCache())
}

// TestSeekCacheDeleteRecreate: a node that learned where a document's
// revisions were still reads the right records after another node
// deleted it and created it again under the same id, and the node that
// deleted it drops its points.
func TestSeekCacheDeleteRecreate(t *testing.T) {
	ns := startNATS(t)
	a := ns.newStore(t, Options{SnapshotEvery: -1})
	b := ns.newStore(t, Options{SnapshotEvery: -1})
	ctx := testCtx(t)
	m := newMeta()
	other := createDoc(t, a).ID
	var ty, oty typist
	build := func(groups int) {
		for g := range groups {
			if err := a.Append(ctx, m.ID, ty.group(1+g%5, "c", int64(g*10+1))); err != nil {
				t.Fatal(err)
			}
			if err := a.Append(ctx, other, oty.group(1+g%3, "c", int64(g*10+1))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := a.Create(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	build(150)
	for after := int64(0); after < ty.rev; after += 7 {
		if _, err := b.Ops(ctx, m.ID, after, 2, 0); err != nil {
			t.Fatal(err)
		}
	}
	if len(b.seekCache().points(m.ID)) < 50 {
		t.Fatalf("b learned %d points", len(b.seekCache().points(m.ID)))
	}
	if err := a.Delete(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if pts := a.seekCache().points(m.ID); pts != nil {
		t.Fatalf("deleting node kept %d points", len(pts))
	}
	if err := a.Create(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	ty = typist{}
	build(200)
	first, err := a.nextMsg(ctx, 1, opsSubject(m.ID))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		after := r.Int64N(ty.rev)
		if i == 0 {
			after = 3 // one the old points hold
		}
		got, err := b.Ops(ctx, m.ID, after, 3, 0)
		if err != nil {
			t.Fatalf("Ops(%d): %v", after, err)
		}
		if len(got) == 0 || got[0].Rev != after+1 {
			t.Fatalf("Ops(%d) = revs %v", after, revs(got))
		}
		if i == 0 {
			for _, p := range b.seekCache().points(m.ID) {
				if p.seq < first.Sequence {
					t.Fatalf("after a read of the new document, b keeps old point %+v (first message %d)", p, first.Sequence)
				}
			}
		}
	}
	checkSeekCache(t, b.seekCache())
}

// TestSeekCacheStreamLimits: when stream limits remove a document's
// oldest messages, a node that knew where they were answers as a node
// that never did.
func TestSeekCacheStreamLimits(t *testing.T) {
	ns := startNATS(t)
	a := ns.newStore(t, Options{SnapshotEvery: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ids, heads := buildSeekDocs(t, a, 2, 200)
	for i, id := range ids {
		for after := int64(0); after < heads[i]; after += 3 {
			if _, err := a.Ops(ctx, id, after, 1, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	info, err := a.ops.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	cfg.MaxMsgs = int64(info.State.Msgs / 2)
	if _, err := a.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	fresh := ns.newStore(t, Options{SnapshotEvery: -1})
	// fresh's New set the stream back to no limit; what is gone is gone.
	if info, err := a.ops.Info(ctx); err != nil || info.State.FirstSeq < 2 {
		t.Fatalf("stream %+v, %v: nothing removed", info.State, err)
	}
	for i, id := range ids {
		for after := int64(0); after < heads[i]; after += 2 {
			got, err1 := a.Ops(ctx, id, after, 2, 0)
			want, err2 := fresh.Ops(ctx, id, after, 2, 0)
			if (err1 != nil) != (err2 != nil) || !slices.Equal(revs(got), revs(want)) {
				t.Fatalf("doc %d Ops(%d) = %v, %v; a fresh node: %v, %v", i, after, revs(got), err1, revs(want), err2)
			}
		}
	}
	checkSeekCache(t, a.seekCache())
}

// BenchmarkSeek seeks revisions of one document of 16,000 messages of 16
// records (automerge-paper's shape in BenchmarkAuthorsPaperCluster) at
// random multiples of 250 (where authorship checkpoints are), as a node
// that just started: "plain" is the binary search over the whole stream,
// "cached" is seek with the points the node learns as it goes. reads/op
// is the messages each seek reads.
//
//	go test -run '^$' -bench BenchmarkSeek -benchtime 2000x ./storage/jetstream
func BenchmarkSeek(b *testing.B) {
	const msgs, group, every = 16000, 16, 250
	ns := startNATS(b)
	w := ns.newStore(b, Options{SnapshotEvery: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	m := newMeta()
	if err := w.Create(ctx, m, nil); err != nil {
		b.Fatal(err)
	}
	var ty typist
	for i := range msgs {
		if err := w.Append(ctx, m.ID, ty.group(group, "c", int64(i*group+1))); err != nil {
			b.Fatal(err)
		}
	}
	for _, cached := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "cached"}[cached]
		b.Run(name, func(b *testing.B) {
			s := ns.newStore(b, Options{SnapshotEvery: -1})
			e, err := s.last(ctx, m.ID)
			if err != nil {
				b.Fatal(err)
			}
			r := rand.New(rand.NewPCG(1, 1))
			before := s.seekCache().probes.Load()
			b.ResetTimer()
			for range b.N {
				after := every * r.Int64N(ty.rev/every)
				if cached {
					_, err = s.seek(ctx, m.ID, after, e)
				} else {
					_, _, err = s.search(ctx, m.ID, after, seekBounds{lo: 1, hi: e.seq})
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(s.seekCache().probes.Load()-before)/float64(b.N), "reads/op")
		})
	}
}
