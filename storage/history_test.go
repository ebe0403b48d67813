package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.etcd.io/bbolt"

	"github.com/collabd/collabd/ot"
)

// randomEdit returns a random op on text: an insert (now and then long, or
// of multi-byte characters) or a deletion, at a random place.
func randomEdit(rng *rand.Rand, text string) ot.Op {
	n := utf8.RuneCountInString(text)
	pos := rng.IntN(n + 1)
	var op ot.Op
	op = op.Retain(pos)
	if n > 0 && rng.IntN(3) == 0 {
		del := 1 + rng.IntN(min(n-pos, 20)+1)
		del = min(del, n-pos)
		if del > 0 {
			return op.Delete(del).Retain(n - pos - del)
		}
	}
	s := []string{"a", "bc", "é", "𝄞 ", "lorem ipsum dolor "}[rng.IntN(5)]
	if rng.IntN(200) == 0 {
		s = strings.Repeat(s, 100)
	}
	return op.Insert(s).Retain(n - pos)
}

// editDoc creates document id and appends revs random ops in batches of
// up to 5, returning the text at every revision.
func editDoc(t testing.TB, db *DB, id string, revs int, seed uint64, times func(rev int64) time.Time) []string {
	t.Helper()
	ctx := context.Background()
	if err := db.Create(ctx, Meta{ID: id, ViewID: "view-" + id}, nil); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	texts := make([]string, 1, revs+1)
	for rev := int64(1); rev <= int64(revs); {
		var recs []Record
		for k := 1 + rng.IntN(5); k > 0 && rev <= int64(revs); k-- {
			op := randomEdit(rng, texts[len(texts)-1])
			next, err := ot.Apply(texts[len(texts)-1], op)
			if err != nil {
				t.Fatal(err)
			}
			texts = append(texts, next)
			rec := Record{Rev: rev, Op: op, Client: fmt.Sprint("c", rng.IntN(3)), Seq: rev}
			if times != nil {
				rec.Time = times(rev)
			}
			recs = append(recs, rec)
			rev++
		}
		if err := db.Append(ctx, id, recs); err != nil {
			t.Fatal(err)
		}
	}
	return texts
}

// snapshotKinds lists a document's snapshots as "rev:m" (milestone) or
// "rev:l" (latest).
func snapshotKinds(t testing.TB, db *DB, id string) []string {
	t.Helper()
	out := []string{}
	keys := keysOf(id)
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketSnaps).Cursor()
		for k, _ := c.Seek(keys); k != nil && bytes.HasPrefix(k, keys); k, _ = c.Next() {
			rev, kind, _ := keys.snapInfo(k)
			out = append(out, fmt.Sprintf("%d:%c", rev, "lm"[kind]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitMilestone waits until document id has a milestone at or after rev.
func waitMilestone(t testing.TB, db *DB, id string, rev int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var last int64
		_ = db.bolt.View(func(tx *bbolt.Tx) error {
			m, keys, err := readMeta(tx, id)
			if err != nil {
				return err
			}
			s, _, err := snapshotBefore(tx, keys, m, keys.snap(-1), true)
			last = s.Rev
			return err
		})
		if last >= rev {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("doc %s: no milestone at or after rev %d: snapshots %v", id, rev, snapshotKinds(t, db, id))
}

func TestTextAtEveryRevision(t *testing.T) {
	path := filepath.Join(t.TempDir(), "collab.db")
	opts := Options{SnapshotEvery: 50, SnapshotBytes: -1}
	db, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const revs = 1520
	texts := editDoc(t, db, "d", revs, 1, nil)
	waitMilestone(t, db, "d", revs/50*50)
	// A latest snapshot between the milestones, as an unloading hub saves.
	if err := db.SaveSnapshot(ctx, "d", Snapshot{Rev: revs - 7, Text: texts[revs-7]}); err != nil {
		t.Fatal(err)
	}
	kinds := snapshotKinds(t, db, "d")
	if len(kinds) != revs/50+1 || kinds[0] != "50:m" || kinds[len(kinds)-1] != fmt.Sprintf("%d:l", revs-7) {
		t.Errorf("snapshots: got %v, want a milestone every 50 revs and the latest", kinds)
	}
	check := func(when string) {
		t.Helper()
		for rev := range int64(revs + 1) {
			got, err := db.TextAt(ctx, "d", rev)
			if err != nil || got != texts[rev] {
				t.Fatalf("%s: TextAt(%d): got %d bytes, %v, want %d bytes", when, rev, len(got), err, len(texts[rev]))
			}
		}
	}
	check("before restart")
	// The replay of the op log agrees too (what collab's tests compare
	// with over HTTP).
	var all []Record
	for after := int64(0); after < revs; {
		recs, err := db.Ops(ctx, "d", after, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
		after = recs[len(recs)-1].Rev
	}
	text := ""
	for _, rec := range all {
		if text, err = ot.Apply(text, rec.Op); err != nil {
			t.Fatal(err)
		}
		if text != texts[rec.Rev] {
			t.Fatalf("replay of Ops to rev %d differs from the text appended", rec.Rev)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check("after restart")
	if doc, err := db.Load(ctx, "d"); err != nil || doc.Text != texts[revs] {
		t.Errorf("Load: got %v, %v", doc, err)
	}

	for _, rev := range []int64{-1, revs + 1} {
		if _, err := db.TextAt(ctx, "d", rev); !errors.Is(err, ErrNoRevision) {
			t.Errorf("TextAt(%d): got %v, want ErrNoRevision", rev, err)
		}
	}
	if _, err := db.TextAt(ctx, "nope", 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("TextAt of an unknown doc: got %v, want ErrNotFound", err)
	}
}

func TestMilestonePlaces(t *testing.T) {
	ctx := context.Background()
	big := strings.Repeat("x", 1000)
	tests := []struct {
		name  string
		opts  Options
		ops   []string // inserted, one op each, appended to the text
		want  []string
		until int64
	}{
		{"by count", Options{SnapshotEvery: 4, SnapshotBytes: -1}, strings.Split("abcdefghij", ""), []string{"4:m", "8:m"}, 8},
		// Records of a little over 1 KB: the byte limit (2 KB) comes
		// first, until the text is longer than that (4 KB at rev 4),
		// which then raises it.
		{"by bytes, raised to the text's length", Options{SnapshotEvery: 100, SnapshotBytes: 2000},
			[]string{big, big, big, big, big, big, big, big, big, big},
			[]string{"2:m", "4:m", "8:m"}, 8},
		{"off", Options{SnapshotEvery: -1}, strings.Split("abcdefghij", ""), []string{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openTest(t, tt.opts)
			if err := db.Create(ctx, Meta{ID: "d", ViewID: "v"}, nil); err != nil {
				t.Fatal(err)
			}
			n := 0
			for i, s := range tt.ops {
				if err := db.Append(ctx, "d", []Record{{Rev: int64(i + 1), Op: appendOp(n, s)}}); err != nil {
					t.Fatal(err)
				}
				n += len(s)
			}
			if tt.until > 0 {
				waitMilestone(t, db, "d", tt.until)
			}
			// Give a wrong extra milestone time to appear.
			time.Sleep(20 * time.Millisecond)
			if got := snapshotKinds(t, db, "d"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("snapshots: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSnapshotCompressed(t *testing.T) {
	db, _ := openTest(t, Options{SnapshotEvery: -1})
	ctx := context.Background()
	text := strings.Repeat("All work and no play makes Jack a dull boy. ", 500)
	if err := db.Create(ctx, Meta{ID: "d", ViewID: "v"}, &Record{Rev: 1, Op: ot.Op{{S: text}}}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveSnapshot(ctx, "d", Snapshot{Rev: 1, Text: text}); err != nil {
		t.Fatal(err)
	}
	var size int
	_ = db.bolt.View(func(tx *bbolt.Tx) error {
		size = len(tx.Bucket(bucketSnaps).Get(keysOf("d").snapKind(1, snapLatest)))
		return nil
	})
	if size == 0 || size > len(text)/4 {
		t.Errorf("stored snapshot of %d bytes of text: got %d bytes, want under a quarter", len(text), size)
	}
	if doc, err := db.Load(ctx, "d"); err != nil || doc.Text != text {
		t.Errorf("Load: got %v", err)
	}
	// What does not compress is stored as it is.
	rng := rand.New(rand.NewPCG(3, 4))
	noise := make([]byte, 5000)
	for i := range noise {
		noise[i] = byte(' ' + rng.IntN(90))
	}
	v := (&compressor{}).encode(&Snapshot{Rev: 1, Text: string(noise)}, len(noise))
	if got, _, err := decodeSnapshot(v); err != nil || got.Text != string(noise) {
		t.Errorf("incompressible text: got %v", err)
	}
}

// timed returns record times: rev r at base plus offsets[r-1].
func timed(base time.Time, offsets []time.Duration) func(int64) time.Time {
	return func(rev int64) time.Time { return base.Add(offsets[rev-1]) }
}

func TestRevAt(t *testing.T) {
	db, _ := openTest(t, Options{})
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	offs := []time.Duration{
		0,                             // 1
		10 * time.Second,              // 2
		10 * time.Second,              // 3: same time as 2
		70 * time.Second,              // 4: next minute
		50 * time.Second,              // 5: the clock stepped back: stored as 4's
		2 * time.Hour,                 // 6
		2*time.Hour + time.Nanosecond, // 7
	}
	editDoc(t, db, "d", len(offs), 1, timed(base, offs))
	recs, err := db.Ops(ctx, "d", 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := recs[4].Time, base.Add(70*time.Second); !got.Equal(want) {
		t.Errorf("time of op 5 made after op 4 by a clock stepping back: got %v, want %v (op 4's)", got, want)
	}
	tests := []struct {
		at   time.Duration
		want int64
	}{
		{-time.Nanosecond, 0},
		{-time.Hour, 0},
		{0, 1},
		{time.Second, 1},
		{10*time.Second - 1, 1},
		{10 * time.Second, 3},
		{69 * time.Second, 3},
		{70 * time.Second, 5},
		{time.Hour, 5},
		{2 * time.Hour, 6},
		{2*time.Hour + time.Nanosecond, 7},
		{100 * time.Hour, 7},
	}
	for _, tt := range tests {
		if got, err := db.RevAt(ctx, "d", base.Add(tt.at)); err != nil || got != tt.want {
			t.Errorf("RevAt(base%+v): got %d, %v, want %d", tt.at, got, err, tt.want)
		}
	}
	if _, err := db.RevAt(ctx, "nope", base); !errors.Is(err, ErrNotFound) {
		t.Errorf("RevAt of an unknown doc: got %v, want ErrNotFound", err)
	}
	makeDoc(t, db, "empty", 0)
	if got, err := db.RevAt(ctx, "empty", base); err != nil || got != 0 {
		t.Errorf("RevAt of an empty doc: got %d, %v, want 0", got, err)
	}
}

func TestRevisions(t *testing.T) {
	db, _ := openTest(t, Options{})
	ctx := context.Background()
	if err := db.Create(ctx, Meta{ID: "d", ViewID: "v"}, &Record{Rev: 1, Op: ot.Op{{S: "héllo"}}, Client: "a"}); err != nil {
		t.Fatal(err)
	}
	recs := []Record{
		{Rev: 2, Op: ot.Op{{N: 1}, {N: -2}, {S: "𝄞x"}, {N: 2}}, Client: "b", Seq: 1},
		{Rev: 3, Op: ot.Op{{N: -5}}},
	}
	if err := db.Append(ctx, "d", recs); err != nil {
		t.Fatal(err)
	}
	got, err := db.Revisions(ctx, "d", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Revision{{Rev: 1, Client: "a", Inserted: 5}, {Rev: 2, Client: "b", Inserted: 2, Deleted: 2}, {Rev: 3, Deleted: 5}}
	for i := range got {
		if got[i].Time.IsZero() {
			t.Errorf("revision %d: zero time", got[i].Rev)
		}
		got[i].Time = time.Time{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Revisions: got %+v, want %+v", got, want)
	}
	if got, err := db.Revisions(ctx, "d", 1, 1); err != nil || len(got) != 1 || got[0].Rev != 2 {
		t.Errorf("Revisions(after 1, limit 1): got %+v, %v", got, err)
	}
	if got, err := db.Revisions(ctx, "d", 3, 0); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Revisions past the head: got %#v, %v, want an empty slice", got, err)
	}
}

func TestActivity(t *testing.T) {
	db, _ := openTest(t, Options{})
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 23, 58, 30, 0, time.UTC)
	// 300 ops, 20 s apart: from 23:58:30 on March 1 to 01:38:10 on March 2.
	offs := make([]time.Duration, 300)
	for i := range offs {
		offs[i] = time.Duration(i) * 20 * time.Second
	}
	editDoc(t, db, "d", len(offs), 2, timed(base, offs))
	revs, err := db.Revisions(ctx, "d", 0, 0)
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
			found := false
			for _, c := range b.Clients {
				found = found || c == r.Client
			}
			if !found {
				b.Clients = append(b.Clients, r.Client)
			}
		}
		return out
	}
	for _, unit := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour} {
		for _, after := range []int64{0, 1, 2, 3, 150, 299} {
			for _, limit := range []int{0, 1, 7} {
				name := fmt.Sprintf("%v after %d limit %d", unit, after, limit)
				got, err := db.Activity(ctx, "d", after, unit, limit)
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
		// Paging with from = the last bucket's LastRev covers it all once.
		var paged []Bucket
		for after := int64(0); ; {
			page, err := db.Activity(ctx, "d", after, unit, 3)
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
	if got, err := db.Activity(ctx, "d", 300, time.Hour, 0); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Activity past the head: got %#v, %v, want an empty slice", got, err)
	}
	for _, unit := range []time.Duration{0, time.Second, 7 * time.Minute, 48 * time.Hour} {
		if _, err := db.Activity(ctx, "d", 0, unit, 0); !errors.Is(err, ErrInvalid) {
			t.Errorf("Activity by %v: got %v, want ErrInvalid", unit, err)
		}
	}
}

func TestActivityClientsBounded(t *testing.T) {
	db, _ := openTest(t, Options{})
	ctx := context.Background()
	makeDoc(t, db, "d", 0)
	n := 0
	for rev := int64(1); rev <= 40; rev++ {
		rec := Record{Rev: rev, Op: appendOp(n, "x"), Client: fmt.Sprint("client-", rev), Seq: 1}
		if err := db.Append(ctx, "d", []Record{rec}); err != nil {
			t.Fatal(err)
		}
		n++
	}
	got, err := db.Activity(ctx, "d", 0, 24*time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	for _, b := range got {
		total += b.Count
		if len(b.Clients) > maxActivityClients {
			t.Errorf("bucket names %d clients, want at most %d", len(b.Clients), maxActivityClients)
		}
	}
	if total != 40 {
		t.Errorf("buckets count %d revisions, want 40", total)
	}
}

func TestDelete(t *testing.T) {
	path := filepath.Join(t.TempDir(), "collab.db")
	db, err := Open(path, Options{SnapshotEvery: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	// Neighbours on each side must be untouched.
	makeDoc(t, db, "c", 30)
	makeDoc(t, db, "e", 30)
	count := func() (docs, snaps int) {
		_ = db.bolt.View(func(tx *bbolt.Tx) error {
			docs = tx.Bucket(bucketDocs).Stats().KeyN
			snaps = tx.Bucket(bucketSnaps).Stats().KeyN
			return nil
		})
		return docs, snaps
	}
	waitMilestone(t, db, "c", 20)
	waitMilestone(t, db, "e", 20)
	docs0, snaps0 := count()
	editDoc(t, db, "d", 3000, 5, nil)
	waitMilestone(t, db, "d", 3000)
	if err := db.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if docs, snaps := count(); docs != docs0 || snaps != snaps0 {
		t.Errorf("keys after Delete: got %d in docs, %d in snaps, want %d, %d as before", docs, snaps, docs0, snaps0)
	}
	if _, err := db.Meta(ctx, "d"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Meta after Delete: got %v, want ErrNotFound", err)
	}
	if _, err := db.ViewDoc(ctx, "view-d"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ViewDoc after Delete: got %v, want ErrNotFound", err)
	}
	if err := db.Delete(ctx, "d"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete again: got %v, want ErrNotFound", err)
	}
	for _, id := range []string{"c", "e"} {
		if doc, err := db.Load(ctx, id); err != nil || doc.Text != textAt(30) {
			t.Errorf("Load(%s) next to the deleted doc: got %v", id, err)
		}
	}
	// The ids are free again, and the new document starts clean.
	makeDoc(t, db, "d", 2)
	if doc, err := db.Load(ctx, "d"); err != nil || doc.Text != textAt(2) {
		t.Errorf("Load of a new doc under the deleted id: got %+v, %v", doc, err)
	}
	if got, err := db.Activity(ctx, "d", 0, time.Hour, 0); err != nil || len(got) != 1 || got[0].Count != 2 {
		t.Errorf("Activity of the new doc: got %+v, %v", got, err)
	}
	// The space is reused: deleting and writing the same again does not
	// grow the file much.
	if err := db.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	before := fileSize(t, path)
	for range 2 {
		editDoc(t, db, "d", 3000, 5, nil)
		waitMilestone(t, db, "d", 3000)
		if err := db.Delete(ctx, "d"); err != nil {
			t.Fatal(err)
		}
	}
	if after := fileSize(t, path); after > before*3/2 {
		t.Errorf("file grew from %d to %d bytes over deletes and rewrites of the same document", before, after)
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestUpgradeFormat1 turns a file into what format 1 wrote (no activity
// index, short metas, snapshot keys without a kind, version 1 snapshot
// values) and opens it: history must work as if it had been written now.
func TestUpgradeFormat1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "collab.db")
	opts := Options{SnapshotEvery: -1}
	db, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	texts := editDoc(t, db, "d", 400, 9, func(rev int64) time.Time { return base.Add(time.Duration(rev) * 7 * time.Second) })
	makeDoc(t, db, "e", 5)
	wantAct, err := db.Activity(ctx, "d", 0, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bbolt.Tx) error {
		docs, snaps := tx.Bucket(bucketDocs), tx.Bucket(bucketSnaps)
		for _, id := range []string{"d", "e"} {
			keys := keysOf(id)
			if err := deletePrefix(docs, append(keys.key(1), kindActivity)); err != nil {
				return err
			}
			m, _, err := readMeta(tx, id)
			if err != nil {
				return err
			}
			// The format 1 meta: rev, created, view id, len+1.
			v := []byte{1}
			v = binary.AppendUvarint(v, uint64(m.Rev))
			v = binary.AppendVarint(v, m.Created.UnixNano())
			v = appendString(v, m.ViewID)
			v = binary.AppendUvarint(v, uint64(m.Len+1))
			if err := docs.Put(keys.meta(), seal(v, 0)); err != nil {
				return err
			}
		}
		// A format 1 snapshot of d at rev 350.
		v := []byte{1}
		v = binary.AppendUvarint(v, 350)
		v = binary.AppendUvarint(v, uint64(utf8.RuneCountInString(texts[350])))
		v = appendString(v, texts[350])
		if err := snaps.Put(keysOf("d").snap(350), seal(v, 0)); err != nil {
			return err
		}
		return tx.Bucket(bucketSys).Put(keyFormat, []byte{1})
	})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()

	db, err = Open(path, Options{SnapshotEvery: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	gotAct, err := db.Activity(ctx, "d", 0, time.Minute, 0)
	if err != nil || !reflect.DeepEqual(gotAct, wantAct) {
		t.Errorf("Activity after the upgrade: got %+v, %v, want %+v", gotAct, err, wantAct)
	}
	if got, err := db.RevAt(ctx, "d", base.Add(100*7*time.Second)); err != nil || got != 100 {
		t.Errorf("RevAt after the upgrade: got %d, %v, want 100", got, err)
	}
	for _, rev := range []int64{0, 1, 349, 350, 351, 400} {
		if got, err := db.TextAt(ctx, "d", rev); err != nil || got != texts[rev] {
			t.Errorf("TextAt(%d) after the upgrade: %v", rev, err)
		}
	}
	m, err := db.Meta(ctx, "d")
	if err != nil || m.Len != int64(utf8.RuneCountInString(texts[400])) || !m.Updated.Equal(base.Add(400*7*time.Second)) {
		t.Errorf("Meta after the upgrade: got %+v, %v", m, err)
	}
	// Appends continue the index; Load has the milestones built from 0.
	if err := db.Append(ctx, "d", []Record{{Rev: 401, Op: ot.Op{{N: int(m.Len)}, {S: "!"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Load(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	waitMilestone(t, db, "d", 400)
	if got := snapshotKinds(t, db, "d"); !reflect.DeepEqual(got, []string{"100:m", "200:m", "300:m", "400:m"}) {
		t.Errorf("snapshots after the upgrade: got %v, want milestones replacing the old snapshot", got)
	}
	var format []byte
	_ = db.bolt.View(func(tx *bbolt.Tx) error { format = bytes.Clone(tx.Bucket(bucketSys).Get(keyFormat)); return nil })
	if !bytes.Equal(format, []byte{formatVersion}) {
		t.Errorf("format after the upgrade: got %v, want %d", format, formatVersion)
	}
}
