package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/collabd/collabd/ot"
)

func openTest(t testing.TB, opts Options) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "collab.db")
	db, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// token is the text op rev of a test document appends, so a document's
// expected text follows from its revision alone.
func token(rev int64) string { return fmt.Sprintf("<%d>", rev) }

// appendOp returns the op that appends s to a text of n code points.
func appendOp(n int, s string) ot.Op {
	if n == 0 {
		return ot.Op{{S: s}}
	}
	return ot.Op{{N: n}, {S: s}}
}

// textAt is the text of a test document at rev.
func textAt(rev int64) string {
	var b strings.Builder
	for r := int64(1); r <= rev; r++ {
		b.WriteString(token(r))
	}
	return b.String()
}

// tokenRecords returns the records from rev from to rev to of a test
// document.
func tokenRecords(from, to int64, client string) []Record {
	var recs []Record
	n := len(textAt(from - 1))
	for r := from; r <= to; r++ {
		recs = append(recs, Record{Rev: r, Op: appendOp(n, token(r)), Client: client, Seq: r})
		n += len(token(r))
	}
	return recs
}

// makeDoc creates document id with view id "view-"+id and appends revs
// ops to it, a few per call.
func makeDoc(t testing.TB, db *DB, id string, revs int64) {
	t.Helper()
	ctx := context.Background()
	if err := db.Create(ctx, Meta{ID: id, ViewID: "view-" + id}, nil); err != nil {
		t.Fatalf("Create(%s): %v", id, err)
	}
	for from := int64(1); from <= revs; from += 3 {
		if err := db.Append(ctx, id, tokenRecords(from, min(from+2, revs), "c-"+id)); err != nil {
			t.Fatalf("Append(%s, %d): %v", id, from, err)
		}
	}
}

func revsOf(recs []Record) []int64 {
	revs := []int64{}
	for _, r := range recs {
		revs = append(revs, r.Rev)
	}
	return revs
}

func TestCreateMetaAndViewIndex(t *testing.T) {
	db, _ := openTest(t, Options{})
	ctx := context.Background()
	created := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := db.Create(ctx, Meta{ID: "a", ViewID: "va", Created: created, Rev: 99}, nil); err != nil {
		t.Fatalf("Create(a): %v", err)
	}
	first := &Record{Rev: 1, Op: ot.Op{{S: "hello"}}, Client: "c1", Seq: 1}
	if err := db.Create(ctx, Meta{ID: "b", ViewID: "vb"}, first); err != nil {
		t.Fatalf("Create(b): %v", err)
	}

	m, err := db.Meta(ctx, "a")
	if err != nil {
		t.Fatalf("Meta(a): %v", err)
	}
	if want := (Meta{ID: "a", ViewID: "va", Created: created, Rev: 0}); !reflect.DeepEqual(m, want) {
		t.Errorf("Meta(a): got %+v, want %+v", m, want)
	}
	m, err = db.Meta(ctx, "b")
	if err != nil {
		t.Fatalf("Meta(b): %v", err)
	}
	if m.Rev != 1 || m.ViewID != "vb" || m.Created.IsZero() {
		t.Errorf("Meta(b): got %+v, want rev 1, view vb, a creation time", m)
	}
	for view, want := range map[string]string{"va": "a", "vb": "b"} {
		if got, err := db.ViewDoc(ctx, view); err != nil || got != want {
			t.Errorf("ViewDoc(%s): got %q, %v, want %q, nil", view, got, err, want)
		}
	}
	doc, err := db.Load(ctx, "b")
	if err != nil || doc.Text != "hello" || doc.Rev != 1 {
		t.Errorf("Load(b): got %+v, %v, want text hello at rev 1", doc, err)
	}
	if seq, rev, err := db.ClientSeq(ctx, "b", "c1"); err != nil || seq != 1 || rev != 1 {
		t.Errorf("ClientSeq(b, c1): got %d, %d, %v, want 1, 1, nil", seq, rev, err)
	}

	notFound := []struct {
		name string
		call func() error
	}{
		{"Meta", func() error { _, err := db.Meta(ctx, "nope"); return err }},
		{"ViewDoc", func() error { _, err := db.ViewDoc(ctx, "nope"); return err }},
		{"ViewDoc by edit id", func() error { _, err := db.ViewDoc(ctx, "a"); return err }},
		{"Load", func() error { _, err := db.Load(ctx, "nope"); return err }},
		{"Ops", func() error { _, err := db.Ops(ctx, "nope", 0, 0, 0); return err }},
		{"ClientSeq", func() error { _, _, err := db.ClientSeq(ctx, "nope", "c1"); return err }},
		{"Append", func() error { return db.Append(ctx, "nope", tokenRecords(1, 1, "c")) }},
		{"SaveSnapshot", func() error { return db.SaveSnapshot(ctx, "nope", Snapshot{Rev: 1, Text: "x"}) }},
	}
	for _, tt := range notFound {
		if err := tt.call(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of unknown id: got %v, want ErrNotFound", tt.name, err)
		}
	}
}

func TestCreateRejects(t *testing.T) {
	db, _ := openTest(t, Options{})
	ctx := context.Background()
	if err := db.Create(ctx, Meta{ID: "a", ViewID: "va"}, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		meta  Meta
		first *Record
		want  error
	}{
		{"edit id taken", Meta{ID: "a", ViewID: "v-new"}, nil, ErrExists},
		{"view id taken", Meta{ID: "new", ViewID: "va"}, nil, ErrExists},
		{"first record not rev 1", Meta{ID: "new", ViewID: "v-new"}, &Record{Rev: 2, Op: ot.Op{{S: "x"}}}, ErrConflict},
		{"first record's op is bad", Meta{ID: "new", ViewID: "v-new"}, &Record{Rev: 1, Op: ot.Op{{}}}, ErrBadRecord},
		{"first op does not fit the empty text", Meta{ID: "new", ViewID: "v-new"}, &Record{Rev: 1, Op: ot.Op{{N: 5}, {S: "x"}}}, ErrBadRecord},
		{"empty id", Meta{ViewID: "v-new"}, nil, nil},
		{"empty view id", Meta{ID: "new"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := db.Create(ctx, tt.meta, tt.first)
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			// A rejected create leaves no trace: neither id is indexed.
			if _, err := db.ViewDoc(ctx, "v-new"); !errors.Is(err, ErrNotFound) {
				t.Errorf("ViewDoc(v-new) after rejected create: got %v, want ErrNotFound", err)
			}
			if _, err := db.Meta(ctx, "new"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Meta(new) after rejected create: got %v, want ErrNotFound", err)
			}
			if id, err := db.ViewDoc(ctx, "va"); err != nil || id != "a" {
				t.Errorf("ViewDoc(va): got %q, %v, want a, nil", id, err)
			}
		})
	}
}

func TestAppendOpsAndClientSeq(t *testing.T) {
	db, _ := openTest(t, Options{})
	ctx := context.Background()
	makeDoc(t, db, "d", 25)

	m, err := db.Meta(ctx, "d")
	if err != nil || m.Rev != 25 {
		t.Fatalf("Meta: got %+v, %v, want rev 25", m, err)
	}
	all, err := db.Ops(ctx, "d", 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := tokenRecords(1, 25, "c-d"); len(all) != len(want) {
		t.Fatalf("Ops: got %d records, want %d", len(all), len(want))
	} else {
		for i := range want {
			got := all[i]
			if got.Time.IsZero() {
				t.Errorf("op %d: zero time, want the append time", got.Rev)
			}
			got.Time = time.Time{}
			if !reflect.DeepEqual(got, want[i]) {
				t.Errorf("op %d: got %+v, want %+v", want[i].Rev, got, want[i])
			}
		}
	}

	pages := []struct {
		after int64
		limit int
		want  []int64
	}{
		{0, 3, []int64{1, 2, 3}},
		{3, 3, []int64{4, 5, 6}},
		{22, 10, []int64{23, 24, 25}},
		{24, 0, []int64{25}},
		{25, 5, []int64{}},
		{90, 5, []int64{}},
		{-4, 2, []int64{1, 2}},
	}
	for _, p := range pages {
		recs, err := db.Ops(ctx, "d", p.after, p.limit, 0)
		if err != nil {
			t.Errorf("Ops(after %d, limit %d): %v", p.after, p.limit, err)
			continue
		}
		if got := revsOf(recs); !reflect.DeepEqual(got, p.want) {
			t.Errorf("Ops(after %d, limit %d): got revs %v, want %v", p.after, p.limit, got, p.want)
		}
	}
	if recs, err := db.Ops(ctx, "d", 25, 0, 0); err != nil || recs == nil {
		t.Errorf("Ops past the end: got %#v, %v, want an empty, non-nil slice", recs, err)
	}
	// Paging through with the last rev seen.
	var revs []int64
	for after := int64(0); ; {
		recs, err := db.Ops(ctx, "d", after, 4, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		revs = append(revs, revsOf(recs)...)
		after = recs[len(recs)-1].Rev
	}
	if len(revs) != 25 || revs[0] != 1 || revs[24] != 25 {
		t.Errorf("paging by 4: got revs %v, want 1..25", revs)
	}

	// A second client interleaves; each keeps its own latest seq.
	if err := db.Append(ctx, "d", []Record{{Rev: 26, Op: appendOp(len(textAt(25)), "!"), Client: "other", Seq: 7}}); err != nil {
		t.Fatal(err)
	}
	seqs := []struct {
		client        string
		seq, rev      int64
		wantErrorless bool
	}{
		{"c-d", 25, 25, true},
		{"other", 7, 26, true},
		{"stranger", 0, 0, true},
		{"", 0, 0, true},
	}
	for _, s := range seqs {
		seq, rev, err := db.ClientSeq(ctx, "d", s.client)
		if err != nil || seq != s.seq || rev != s.rev {
			t.Errorf("ClientSeq(%q): got %d, %d, %v, want %d, %d, nil", s.client, seq, rev, err, s.seq, s.rev)
		}
	}
}

func TestAppendConflictWritesNothing(t *testing.T) {
	db, _ := openTest(t, Options{})
	ctx := context.Background()
	makeDoc(t, db, "d", 5)
	n := len(textAt(5))
	tests := []struct {
		name string
		recs []Record
	}{
		{"gap", tokenRecords(7, 7, "x")},
		{"duplicate", tokenRecords(5, 5, "x")},
		{"stale", tokenRecords(1, 2, "x")},
		{"batch with gap", []Record{{Rev: 6, Op: appendOp(n, "a"), Client: "x", Seq: 1}, {Rev: 8, Op: appendOp(n+1, "b"), Client: "x", Seq: 2}}},
		{"batch repeating a rev", []Record{{Rev: 6, Op: appendOp(n, "a"), Client: "x", Seq: 1}, {Rev: 6, Op: appendOp(n, "b"), Client: "x", Seq: 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := db.Append(ctx, "d", tt.recs); !errors.Is(err, ErrConflict) {
				t.Fatalf("got %v, want ErrConflict", err)
			}
			checkUntouched(t, db, "d", 5, "x")
		})
	}
	if err := db.Append(ctx, "d", nil); err != nil {
		t.Errorf("Append of no records: got %v, want nil", err)
	}
}

// checkUntouched checks that a refused append left test document id at
// rev, with its ops, text and client's dedupe entry as they were.
func checkUntouched(t *testing.T, db *DB, id string, rev int64, client string) {
	t.Helper()
	ctx := context.Background()
	if m, err := db.Meta(ctx, id); err != nil || m.Rev != rev {
		t.Errorf("Meta after refused append: got rev %d, %v, want %d", m.Rev, err, rev)
	}
	recs, err := db.Ops(ctx, id, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := revsOf(recs); int64(len(got)) != rev || len(got) > 0 && got[len(got)-1] != rev {
		t.Errorf("Ops after refused append: got revs %v, want 1..%d", got, rev)
	}
	if seq, r, err := db.ClientSeq(ctx, id, client); seq != 0 || r != 0 || err != nil {
		t.Errorf("ClientSeq(%s) after refused append: got %d, %d, %v, want 0, 0, nil", client, seq, r, err)
	}
	if doc, err := db.Load(ctx, id); err != nil || doc.Text != textAt(rev) {
		t.Errorf("Load after refused append: got %+v, %v, want %q", doc, err, textAt(rev))
	}
}

// TestAppendRejectsBadOp appends ops that fail ot.Op.Validate. Each must be
// refused before it reaches the committer, leaving the document as it was
// and loadable: stored, any of them would make every later Load fail.
func TestAppendRejectsBadOp(t *testing.T) {
	db, _ := openTest(t, Options{})
	ctx := context.Background()
	makeDoc(t, db, "d", 5)
	n := len(textAt(5))
	tests := []struct {
		name string
		recs []Record
		want error // besides ErrBadRecord
	}{
		{"empty component", []Record{{Rev: 6, Op: ot.Op{{}}, Client: "x", Seq: 1}}, ot.ErrBadComponent},
		{"mixed component", []Record{{Rev: 6, Op: ot.Op{{N: n, S: "x"}}, Client: "x", Seq: 1}}, ot.ErrBadComponent},
		{"invalid UTF-8", []Record{{Rev: 6, Op: appendOp(n, "\xff"), Client: "x", Seq: 1}}, ot.ErrInvalidUTF8},
		{"count overflow", []Record{{Rev: 6, Op: ot.Op{{N: math.MaxInt}, {N: 1}}, Client: "x", Seq: 1}}, ot.ErrOverflow},
		{"bad op after a good one", []Record{
			{Rev: 6, Op: appendOp(n, "a"), Client: "x", Seq: 1},
			{Rev: 7, Op: ot.Op{{N: n + 1}, {}}, Client: "x", Seq: 2},
		}, ot.ErrBadComponent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			commits := db.commits.Load()
			err := db.Append(ctx, "d", tt.recs)
			if !errors.Is(err, ErrBadRecord) || !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want ErrBadRecord wrapping %v", err, tt.want)
			}
			if got := db.commits.Load(); got != commits {
				t.Errorf("commits: got %d, want %d: the bad append reached the committer", got, commits)
			}
			checkUntouched(t, db, "d", 5, "x")
		})
	}
	// The document still takes its next op.
	if err := db.Append(ctx, "d", tokenRecords(6, 6, "x")); err != nil {
		t.Fatalf("Append after bad appends: %v", err)
	}
	if doc, err := db.Load(ctx, "d"); err != nil || doc.Text != textAt(6) {
		t.Errorf("Load: got %+v, %v, want %q", doc, err, textAt(6))
	}
}

// TestAppendRejectsOpOfWrongLength: an op that does not cover the text
// the previous one made is refused, alone in its group, so a caller's
// mistake cannot make the document unloadable.
func TestAppendRejectsOpOfWrongLength(t *testing.T) {
	db, _ := openTest(t, Options{})
	ctx := context.Background()
	makeDoc(t, db, "d", 5)
	makeDoc(t, db, "e", 0)
	n := len(textAt(5))
	if m, err := db.Meta(ctx, "d"); err != nil || m.Len != int64(n) {
		t.Fatalf("Meta: got Len %d, %v, want %d", m.Len, err, n)
	}
	for _, recs := range [][]Record{
		{{Rev: 6, Op: appendOp(n+1, "x"), Client: "x", Seq: 1}},
		{{Rev: 6, Op: appendOp(n-1, "x"), Client: "x", Seq: 1}},
		{{Rev: 6, Op: appendOp(n, "a"), Client: "x", Seq: 1}, {Rev: 7, Op: appendOp(n, "b"), Client: "x", Seq: 2}},
	} {
		var wg sync.WaitGroup
		var good error
		wg.Add(1)
		go func() { // shares the group, maybe
			defer wg.Done()
			good = db.Append(ctx, "e", []Record{{Rev: 1 + mustRev(t, db, "e"), Op: appendOp(int(mustLen(t, db, "e")), "y")}})
		}()
		err := db.Append(ctx, "d", recs)
		wg.Wait()
		if !errors.Is(err, ErrBadRecord) {
			t.Errorf("append %v: got %v, want ErrBadRecord", recs, err)
		}
		if good != nil {
			t.Errorf("the other document's append: %v", good)
		}
		checkUntouched(t, db, "d", 5, "x")
	}
	if doc, err := db.Load(ctx, "e"); err != nil || doc.Text != "yyy" {
		t.Errorf("Load(e): got %+v, %v, want \"yyy\"", doc, err)
	}
}

func mustRev(t *testing.T, db *DB, id string) int64 {
	m, err := db.Meta(context.Background(), id)
	if err != nil {
		t.Error(err)
	}
	return m.Rev
}

func mustLen(t *testing.T, db *DB, id string) int64 {
	m, err := db.Meta(context.Background(), id)
	if err != nil {
		t.Error(err)
	}
	return m.Len
}

// TestMetaWithoutLen: a meta value written before the length was kept
// decodes with Len -1, and appends to it are not length-checked.
func TestMetaWithoutLen(t *testing.T) {
	db, _ := openTest(t, Options{})
	ctx := context.Background()
	makeDoc(t, db, "d", 2)
	// Rewrite the meta in the old layout: no length after the view id.
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		b := append([]byte{valueVersion}, binary.AppendUvarint(nil, 2)...)
		b = binary.AppendVarint(b, 0)
		b = appendString(b, "view-d")
		return tx.Bucket(bucketDocs).Put(keysOf("d").meta(), seal(b, 0))
	})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := db.Meta(ctx, "d"); err != nil || m.Len != -1 || m.Rev != 2 {
		t.Fatalf("Meta: got %+v, %v, want rev 2 and Len -1", m, err)
	}
	if err := db.Append(ctx, "d", tokenRecords(3, 3, "c")); err != nil {
		t.Fatal(err)
	}
	if doc, err := db.Load(ctx, "d"); err != nil || doc.Text != textAt(3) {
		t.Errorf("Load: got %+v, %v, want %q", doc, err, textAt(3))
	}
}

// TestBadAppendsFailAlone sends bad appends at the same moment as good ones
// to the same documents, so that they would share commit groups: the bad
// ones fail, without ever reaching the committer, and every good one
// commits.
func TestBadAppendsFailAlone(t *testing.T) {
	db, _ := openTest(t, Options{SnapshotEvery: -1})
	ctx := context.Background()
	const (
		docs = 4
		revs = 20
	)
	for d := range docs {
		makeDoc(t, db, fmt.Sprint("d", d), 0)
	}
	committed := db.committed.Load()
	start := make(chan struct{})
	errs := make(chan error, 2*docs)
	var wg sync.WaitGroup
	for d := range docs {
		id := fmt.Sprint("d", d)
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			for rev := int64(1); rev <= revs; rev++ {
				if err := db.Append(ctx, id, tokenRecords(rev, rev, "good")); err != nil {
					errs <- fmt.Errorf("good append %s rev %d: %w", id, rev, err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			<-start
			for i := range revs {
				// Revision 1 would conflict after the first good append;
				// the op must be refused before that is ever checked.
				err := db.Append(ctx, id, []Record{{Rev: 1, Op: ot.Op{{N: 1}, {}}, Client: "bad", Seq: int64(i + 1)}})
				if !errors.Is(err, ErrBadRecord) {
					errs <- fmt.Errorf("bad append %s #%d: got %v, want ErrBadRecord", id, i, err)
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, want := db.committed.Load()-committed, int64(docs*revs); got != want {
		t.Errorf("requests committed: got %d, want %d, the good appends only", got, want)
	}
	for d := range docs {
		id := fmt.Sprint("d", d)
		if doc, err := db.Load(ctx, id); err != nil || doc.Rev != revs || doc.Text != textAt(revs) {
			t.Errorf("Load(%s): got %+v, %v, want text at rev %d", id, doc, err, revs)
		}
		if seq, _, err := db.ClientSeq(ctx, id, "bad"); err != nil || seq != 0 {
			t.Errorf("ClientSeq(%s, bad): got %d, %v, want 0", id, seq, err)
		}
	}
}

// TestGroupFailsAlone commits one hand-made group in which some requests
// conflict: they fail alone, and the others, including a later append that
// depends on an earlier one in the same group, commit.
func TestGroupFailsAlone(t *testing.T) {
	db, _ := openTest(t, Options{})
	ctx := context.Background()
	makeDoc(t, db, "a", 2)
	makeDoc(t, db, "b", 2)

	req := func(id string, from, to int64) *request {
		enc, size, err := encodeRecords(tokenRecords(from, to, "g"))
		if err != nil {
			t.Fatal(err)
		}
		return &request{ctx: ctx, w: &appendWrite{id: id, recs: enc, first: from, bytes: size}, done: make(chan error, 1)}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	skipped := req("b", 3, 3)
	skipped.ctx = cancelled
	group := []*request{
		req("a", 3, 4),    // ok
		req("b", 5, 5),    // gap
		req("a", 5, 5),    // ok: follows the first request
		skipped,           // caller gave up: not written
		req("a", 5, 5),    // duplicate of the third
		req("nope", 1, 1), // unknown doc
		req("b", 3, 3),    // ok
		{ctx: ctx, w: &createWrite{id: "a", viewID: "v-dup", keys: keysOf("a"), meta: Meta{ViewID: "v-dup"}}, done: make(chan error, 1)}, // exists
	}
	db.commit(group)
	want := []error{nil, ErrConflict, nil, context.Canceled, ErrConflict, ErrNotFound, nil, ErrExists}
	for i, r := range group {
		got := <-r.done
		if want[i] == nil && got != nil || want[i] != nil && !errors.Is(got, want[i]) {
			t.Errorf("request %d: got %v, want %v", i, got, want[i])
		}
	}
	for id, rev := range map[string]int64{"a": 5, "b": 3} {
		doc, err := db.Load(ctx, id)
		if err != nil || doc.Rev != rev || doc.Text != textAt(rev) {
			t.Errorf("Load(%s): got %+v, %v, want text at rev %d", id, doc, err, rev)
		}
	}
	if _, err := db.ViewDoc(ctx, "v-dup"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ViewDoc(v-dup): got %v, want ErrNotFound", err)
	}
}

// snapshotRevs lists the revisions of a document's stored snapshots.
func snapshotRevs(t testing.TB, db *DB, id string) []int64 {
	t.Helper()
	revs := []int64{}
	keys := keysOf(id)
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketSnaps).Cursor()
		for k, _ := c.Seek(keys); k != nil && bytes.HasPrefix(k, keys); k, _ = c.Next() {
			rev, _ := keys.snapRev(k)
			revs = append(revs, rev)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return revs
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name      string
		every     int
		revs      int64
		wantSnaps bool
	}{
		{"no snapshots", -1, 37, false},
		{"snapshot and tail", 10, 37, true},
		{"empty doc", 10, 0, false},
		{"snapshot at head", 10, 30, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openTest(t, Options{SnapshotEvery: tt.every})
			ctx := context.Background()
			makeDoc(t, db, "d", tt.revs)
			if tt.wantSnaps {
				// The snapshotter runs in the background; give it time.
				deadline := time.Now().Add(5 * time.Second)
				for time.Now().Before(deadline) {
					if revs := snapshotRevs(t, db, "d"); len(revs) > 0 && revs[len(revs)-1] >= tt.revs/10*10 {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			snaps := snapshotRevs(t, db, "d")
			if got := len(snaps) > 0; got != tt.wantSnaps {
				t.Errorf("snapshots: got %v, want some: %v", snaps, tt.wantSnaps)
			}
			doc, err := db.Load(ctx, "d")
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if doc.Rev != tt.revs || doc.Meta.Rev != tt.revs || doc.Text != textAt(tt.revs) {
				t.Errorf("Load: got rev %d (meta %d) text %q, want rev %d text %q",
					doc.Rev, doc.Meta.Rev, doc.Text, tt.revs, textAt(tt.revs))
			}
			if doc.Meta.ViewID != "view-d" {
				t.Errorf("Load: got view id %q, want view-d", doc.Meta.ViewID)
			}
		})
	}
}

func TestSaveSnapshot(t *testing.T) {
	db, _ := openTest(t, Options{SnapshotEvery: -1})
	ctx := context.Background()
	makeDoc(t, db, "d", 12)
	makeDoc(t, db, "e", 12) // its snapshots must survive d's pruning
	for _, rev := range []int64{3, 6} {
		if err := db.SaveSnapshot(ctx, "e", Snapshot{Rev: rev, Text: textAt(rev)}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		snap      Snapshot
		want      error
		wantSnaps []int64
	}{
		{"first", Snapshot{Rev: 8, Text: textAt(8)}, nil, []int64{8}},
		{"older is ignored", Snapshot{Rev: 5, Text: textAt(5)}, nil, []int64{8}},
		{"same is ignored", Snapshot{Rev: 8, Text: "whatever"}, nil, []int64{8}},
		{"ahead of doc", Snapshot{Rev: 13, Text: textAt(13)}, ErrConflict, []int64{8}},
		{"wrong length", Snapshot{Rev: 10, Text: textAt(9)}, ErrConflict, []int64{8}},
		{"rev zero", Snapshot{Rev: 0}, nil, []int64{8}},
		{"a newer one replaces it", Snapshot{Rev: 10, Text: textAt(10)}, nil, []int64{10}},
		{"head", Snapshot{Rev: 12, Text: textAt(12)}, nil, []int64{12}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := db.SaveSnapshot(ctx, "d", tt.snap)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if got := snapshotRevs(t, db, "d"); !reflect.DeepEqual(got, tt.wantSnaps) {
				t.Errorf("snapshots: got %v, want %v", got, tt.wantSnaps)
			}
			if doc, err := db.Load(ctx, "d"); err != nil || doc.Text != textAt(12) {
				t.Errorf("Load: got %+v, %v, want %q", doc, err, textAt(12))
			}
			if got := snapshotRevs(t, db, "e"); !reflect.DeepEqual(got, []int64{6}) {
				t.Errorf("another document's snapshots: got %v, want [6]", got)
			}
		})
	}
}

// TestLoadSchedulesMissedSnapshot covers a process that died before its
// snapshotter ran (or a file whose milestones are off): the first Load
// has the milestones built.
func TestLoadSchedulesMissedSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "collab.db")
	db, err := Open(path, Options{SnapshotEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	makeDoc(t, db, "d", 25)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{SnapshotEvery: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Load(context.Background(), "d"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(snapshotRevs(t, db, "d")) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := snapshotRevs(t, db, "d"); !reflect.DeepEqual(got, []int64{10, 20}) {
		t.Errorf("snapshots after Load: got %v, want [10 20]", got)
	}
}

func TestCorruptionReported(t *testing.T) {
	// A damage gets the docs and snaps buckets and the keys of document d.
	type damage func(docs, snaps *bbolt.Bucket, k docKeys) error
	// Ops are damaged inside their chunks (editRecord, chunk_test.go).
	put := func(rev int64, v []byte) damage {
		return func(docs, _ *bbolt.Bucket, k docKeys) error {
			return editRecord(docs, k, rev, func([]byte) []byte { return v })
		}
	}
	flip := func(rev int64, i int) damage {
		return func(docs, _ *bbolt.Bucket, k docKeys) error {
			return editRecord(docs, k, rev, func(v []byte) []byte { v[i] ^= 0x01; return v })
		}
	}
	del := func(rev int64) damage {
		return func(docs, _ *bbolt.Bucket, k docKeys) error {
			return editRecord(docs, k, rev, func([]byte) []byte { return nil })
		}
	}
	putRec := func(rev int64, rec Record) damage { return put(rev, appendRecord(nil, &rec)) }
	tests := []struct {
		name    string
		damage  damage
		wantMsg string // the error must name the doc and revision
		inOps   bool   // Ops from 0 must report it too
	}{
		{"missing op", del(5), "doc d rev 5", true},
		{"missing last op", del(14), "doc d rev 14", true},
		{"flipped byte", flip(7, 6), "doc d rev 7", true},
		{"truncated", put(11, []byte{1, 2}), "doc d rev 11", true},
		{"op of wrong length", putRec(9, Record{Rev: 9, Op: ot.Op{{N: 1}, {S: "x"}}}), "doc d rev 9", false},
		{"record under wrong key", putRec(12, tokenRecords(13, 13, "c")[0]), "doc d rev 12", true},
		{"damaged chunk framing", func(docs, _ *bbolt.Bucket, k docKeys) error {
			// Revisions 1 to 5, then a record length running past the
			// chunk's end.
			_, recs, err := chunkOf(docs, k, 1)
			if err != nil {
				return err
			}
			return docs.Put(k.op(1), append(chunkValue(recs[:5]), 0x7f, 1, 2, 3))
		}, "doc d rev 6", true},
		{"damaged meta", func(docs, _ *bbolt.Bucket, k docKeys) error { return docs.Put(k.meta(), []byte("garbage")) }, "doc d meta", true},
		{"damaged snapshot", func(_, snaps *bbolt.Bucket, k docKeys) error {
			return snaps.Put(k.snap(6), []byte("garbage"))
		}, "doc d snapshot rev 6", false},
		{"snapshot of wrong text", func(_, snaps *bbolt.Bucket, k docKeys) error {
			return snaps.Put(k.snap(6), appendSnapshot(nil, &Snapshot{Rev: 6, Text: textAt(5)}, len(textAt(5))))
		}, "doc d snapshot rev 6", false},
		{"snapshot ahead of doc", func(_, snaps *bbolt.Bucket, k docKeys) error {
			return snaps.Put(k.snap(15), appendSnapshot(nil, &Snapshot{Rev: 15, Text: textAt(15)}, len(textAt(15))))
		}, "doc d snapshot rev 15", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openTest(t, Options{SnapshotEvery: -1})
			ctx := context.Background()
			makeDoc(t, db, "d", 14)
			// A neighbour on each side, whose keys must not be mistaken for d's.
			makeDoc(t, db, "c", 3)
			makeDoc(t, db, "e", 3)
			if err := db.SaveSnapshot(ctx, "d", Snapshot{Rev: 3, Text: textAt(3)}); err != nil {
				t.Fatal(err)
			}
			err := db.bolt.Update(func(tx *bbolt.Tx) error {
				return tt.damage(tx.Bucket(bucketDocs), tx.Bucket(bucketSnaps), keysOf("d"))
			})
			if err != nil {
				t.Fatal(err)
			}
			doc, err := db.Load(ctx, "d")
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Load: got %+v, %v, want an error containing %q wrapping ErrCorrupt", doc, err, tt.wantMsg)
			}
			_, err = db.Ops(ctx, "d", 0, 0, 0)
			if tt.inOps && (!errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.wantMsg)) {
				t.Errorf("Ops: got %v, want an error containing %q wrapping ErrCorrupt", err, tt.wantMsg)
			}
			for _, id := range []string{"c", "e"} {
				if doc, err := db.Load(ctx, id); err != nil || doc.Text != textAt(3) {
					t.Errorf("Load(%s) next to the damage: got %+v, %v, want rev 3", id, doc, err)
				}
			}
		})
	}
}

func TestBackup(t *testing.T) {
	db, _ := openTest(t, Options{SnapshotEvery: 10})
	ctx := context.Background()
	docs := map[string]int64{"a": 0, "b": 1, "c": 33, "d": 120}
	for id, revs := range docs {
		makeDoc(t, db, id, revs)
	}
	var buf bytes.Buffer
	size := int64(-1)
	n, err := db.Backup(&buf, func(n int64) { size = n })
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) || n == 0 || size != n {
		t.Errorf("Backup: reported %d bytes, announced %d, wrote %d", n, size, buf.Len())
	}
	// Writes after the backup must not show up in it.
	if err := db.Append(ctx, "c", tokenRecords(34, 34, "late")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	restored, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open backup: %v", err)
	}
	defer restored.Close()
	if err := restored.Check(ctx); err != nil {
		t.Errorf("Check of the backup: %v", err)
	}
	for id, revs := range docs {
		doc, err := restored.Load(ctx, id)
		if err != nil || doc.Rev != revs || doc.Text != textAt(revs) {
			t.Errorf("backup Load(%s): got %+v, %v, want rev %d", id, doc, err, revs)
		}
		if got, err := restored.ViewDoc(ctx, "view-"+id); err != nil || got != id {
			t.Errorf("backup ViewDoc(view-%s): got %q, %v, want %q", id, got, err, id)
		}
	}
	if err := restored.Append(ctx, "d", tokenRecords(121, 121, "c")); err != nil {
		t.Errorf("Append to backup: %v", err)
	}
}

// TestBackupWhileAppending takes backups while several goroutines append
// to several documents. Each backup must be a storage file that opens, in
// which every document loads, with the text of its revision, at no less
// than what had been acknowledged when the backup began. The upper bound
// is what had been submitted when it finished, not what was acknowledged:
// an append may commit before the backup's read transaction starts and
// still be on its way back to its caller when the backup returns.
func TestBackupWhileAppending(t *testing.T) {
	db, _ := openTest(t, Options{SnapshotEvery: 16})
	ctx := context.Background()
	const (
		docs    = 6
		revs    = 200
		backups = 4
	)
	// submitted[d] is stored before the append of that revision starts,
	// acked[d] after it returns.
	var submitted, acked [docs]atomic.Int64
	for d := range docs {
		makeDoc(t, db, fmt.Sprint("d", d), 0)
	}
	errs := make(chan error, docs)
	var wg sync.WaitGroup
	for d := range docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("d", d)
			for rev := int64(1); rev <= revs; rev++ {
				submitted[d].Store(rev)
				if err := db.Append(ctx, id, tokenRecords(rev, rev, "c-"+id)); err != nil {
					errs <- fmt.Errorf("append %s rev %d: %w", id, rev, err)
					return
				}
				acked[d].Store(rev)
			}
		}()
	}
	writersDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(writersDone)
	}()
	total := func() int64 {
		var n int64
		for d := range docs {
			n += acked[d].Load()
		}
		return n
	}

	dir := t.TempDir()
	type bounds struct{ low, high [docs]int64 }
	taken := make([]bounds, backups)
	for i := range backups {
		// Spread the backups over the run by progress, not by time: the
		// i-th waits for a share of all appends to be acknowledged.
		for want := int64(docs*revs) * int64(i+1) / (backups + 2); total() < want; {
			select {
			case <-writersDone:
				want = 0
			case <-time.After(time.Millisecond):
			}
		}
		b := &taken[i]
		for d := range docs {
			b.low[d] = acked[d].Load()
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("backup-%d.db", i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Backup(f, nil); err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
		for d := range docs {
			b.high[d] = submitted[d].Load()
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("backup %d: revisions within %v..%v", i, b.low, b.high)
	}
	<-writersDone
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	for i, b := range taken {
		restored, err := Open(filepath.Join(dir, fmt.Sprintf("backup-%d.db", i)), Options{SnapshotEvery: -1})
		if err != nil {
			t.Errorf("Open backup %d: %v", i, err)
			continue
		}
		for d := range docs {
			id := fmt.Sprint("d", d)
			doc, err := restored.Load(ctx, id)
			if err != nil {
				t.Errorf("backup %d: Load(%s): %v", i, id, err)
				continue
			}
			if doc.Rev < b.low[d] || doc.Rev > b.high[d] {
				t.Errorf("backup %d: Load(%s) got rev %d, want within [%d, %d]", i, id, doc.Rev, b.low[d], b.high[d])
			}
			if doc.Text != textAt(doc.Rev) {
				t.Errorf("backup %d: Load(%s) got text %q, want %q", i, id, doc.Text, textAt(doc.Rev))
			}
			// The client entry is written in the op's transaction, so it
			// agrees with the revision in any consistent copy.
			if seq, rev, err := restored.ClientSeq(ctx, id, "c-"+id); err != nil || seq != doc.Rev || rev != doc.Rev {
				t.Errorf("backup %d: ClientSeq(%s): got %d, %d, %v, want %d, %d, nil", i, id, seq, rev, err, doc.Rev, doc.Rev)
			}
		}
		if err := restored.Close(); err != nil {
			t.Errorf("Close backup %d: %v", i, err)
		}
	}
}

func TestCloseIdempotentAndErrClosed(t *testing.T) {
	db, _ := openTest(t, Options{})
	ctx := context.Background()
	makeDoc(t, db, "d", 3)
	for i := range 2 {
		if err := db.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"Create", func() error { return db.Create(ctx, Meta{ID: "x", ViewID: "vx"}, nil) }},
		{"Meta", func() error { _, err := db.Meta(ctx, "d"); return err }},
		{"ViewDoc", func() error { _, err := db.ViewDoc(ctx, "view-d"); return err }},
		{"Append", func() error { return db.Append(ctx, "d", tokenRecords(4, 4, "c")) }},
		{"Load", func() error { _, err := db.Load(ctx, "d"); return err }},
		{"Ops", func() error { _, err := db.Ops(ctx, "d", 0, 0, 0); return err }},
		{"ClientSeq", func() error { _, _, err := db.ClientSeq(ctx, "d", "c"); return err }},
		{"SaveSnapshot", func() error { return db.SaveSnapshot(ctx, "d", Snapshot{Rev: 3, Text: textAt(3)}) }},
		{"Backup", func() error { _, err := db.Backup(&bytes.Buffer{}, nil); return err }},
		{"Check", func() error { return db.Check(ctx) }},
		{"Ping", func() error { return db.Ping(ctx) }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: got %v, want ErrClosed", c.name, err)
		}
	}
}

// TestCloseWhileWriting closes the DB under concurrent appends: every call
// returns, each with nil or ErrClosed, and what was acknowledged is on disk.
func TestCloseWhileWriting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "collab.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const writers = 8
	for i := range writers {
		makeDoc(t, db, fmt.Sprint("d", i), 0)
	}
	acked := make([]int64, writers)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("d", i)
			for rev := int64(1); ; rev++ {
				err := db.Append(ctx, id, tokenRecords(rev, rev, "c"))
				if errors.Is(err, ErrClosed) {
					errs <- nil
					return
				}
				if err != nil {
					errs <- err
					return
				}
				acked[i] = rev
			}
		}()
	}
	time.Sleep(30 * time.Millisecond)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Append during Close: got %v, want nil or ErrClosed", err)
		}
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := range writers {
		m, err := db.Meta(ctx, fmt.Sprint("d", i))
		if err != nil || m.Rev < acked[i] {
			t.Errorf("d%d: got rev %d, %v, want at least acknowledged rev %d", i, m.Rev, err, acked[i])
		}
	}
}

// TestConcurrentAppends has several goroutines per document race for each
// revision, retrying on ErrConflict as a document hub would after losing.
// Every op must land exactly once, in one gapless history per document.
func TestConcurrentAppends(t *testing.T) {
	db, _ := openTest(t, Options{SnapshotEvery: 16})
	ctx := context.Background()
	const (
		docs      = 12
		perDoc    = 4
		opsPerGor = 25
	)
	for d := range docs {
		makeDoc(t, db, fmt.Sprint("d", d), 0)
	}
	errs := make(chan error, docs*perDoc)
	var wg sync.WaitGroup
	for d := range docs {
		for g := range perDoc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id, client := fmt.Sprint("d", d), fmt.Sprint("client", g)
				for seq := int64(1); seq <= opsPerGor; {
					m, err := db.Meta(ctx, id)
					if err != nil {
						errs <- err
						return
					}
					// Every op inserts one code point at the front, so the
					// text's length is the revision.
					op := ot.Op{{S: string(rune('a' + g))}}
					if m.Rev > 0 {
						op = append(op, ot.Component{N: int(m.Rev)})
					}
					err = db.Append(ctx, id, []Record{{Rev: m.Rev + 1, Op: op, Client: client, Seq: seq}})
					switch {
					case err == nil:
						seq++
					case !errors.Is(err, ErrConflict):
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("append: %v", err)
	}
	for d := range docs {
		id := fmt.Sprint("d", d)
		doc, err := db.Load(ctx, id)
		if err != nil {
			t.Errorf("Load(%s): %v", id, err)
			continue
		}
		if want := int64(perDoc * opsPerGor); doc.Rev != want || int64(len(doc.Text)) != want {
			t.Errorf("Load(%s): got rev %d and %d code points, want %d", id, doc.Rev, len(doc.Text), want)
		}
		for g := range perDoc {
			if n := strings.Count(doc.Text, string(rune('a'+g))); n != opsPerGor {
				t.Errorf("%s: client%d's letter appears %d times, want %d", id, g, n, opsPerGor)
			}
			seq, _, err := db.ClientSeq(ctx, id, fmt.Sprint("client", g))
			if err != nil || seq != opsPerGor {
				t.Errorf("%s: ClientSeq(client%d): got %d, %v, want %d", id, g, seq, err, opsPerGor)
			}
		}
	}
}

func TestPingAndContext(t *testing.T) {
	db, _ := openTest(t, Options{})
	if err := db.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := db.Ping(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Ping with cancelled context: got %v, want context.Canceled", err)
	}
	if err := db.Create(ctx, Meta{ID: "x", ViewID: "vx"}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with cancelled context: got %v, want context.Canceled", err)
	}
	if _, err := db.Meta(context.Background(), "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Meta after cancelled Create: got %v, want ErrNotFound", err)
	}
}

func TestOpenLockTimeout(t *testing.T) {
	_, path := openTest(t, Options{})
	db, err := Open(path, Options{LockTimeout: 50 * time.Millisecond})
	if err == nil {
		db.Close()
		t.Fatal("second Open of a locked file: got nil error, want a timeout")
	}
	if !errors.Is(err, ErrLocked) {
		t.Errorf("second Open: got %v, want ErrLocked", err)
	}
}
