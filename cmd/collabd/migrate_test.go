package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
	"github.com/collabd/collabd/storage/jetstream"
)

// migrateCmd runs `collabd migrate args...` as main would.
func migrateCmd(t *testing.T, args ...string) (stdout string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), append([]string{"migrate"}, args...), &out, &errOut)
	if errOut.Len() > 0 {
		t.Logf("migrate stderr: %s", errOut.String())
	}
	return out.String(), err
}

// fileDoc is a document built in a data file for migration.
type fileDoc struct {
	meta    storage.Meta
	text    string
	rev     int64
	clients []string
}

// buildDoc creates a document in db with revs random edits (inserts,
// multi-byte ones, deletions) from a few clients, appended in groups of
// up to 20, each record with its own time.
func buildDoc(t *testing.T, db *storage.DB, revs int, seed uint64) fileDoc {
	t.Helper()
	ctx := context.Background()
	d := fileDoc{meta: storage.Meta{
		ID: uuid.NewString(), ViewID: uuid.NewString(),
		Created: time.Date(2025, 12, 1, 9, 0, 0, int(seed), time.UTC),
	}, clients: []string{"ann-" + uuid.NewString(), "bob-" + uuid.NewString()}}
	if err := db.Create(ctx, d.meta, nil); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	seqs := map[string]int64{}
	at := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
	for d.rev < int64(revs) {
		var group []storage.Record
		for k := 1 + rng.IntN(20); k > 0 && d.rev < int64(revs); k-- {
			n := utf8.RuneCountInString(d.text)
			pos := rng.IntN(n + 1)
			op := ot.Op{}.Retain(pos)
			if del := min(1+rng.IntN(5), n-pos); del > 0 && rng.IntN(3) == 0 {
				op = op.Delete(del).Retain(n - pos - del)
			} else {
				op = op.Insert([]string{"a", "bc", "é", "𝄞 ", "lorem "}[rng.IntN(5)]).Retain(n - pos)
			}
			text, err := ot.Apply(d.text, op)
			if err != nil {
				t.Fatal(err)
			}
			c := d.clients[rng.IntN(2)]
			seqs[c]++
			d.rev++
			at = at.Add(time.Duration(rng.IntN(5000)) * time.Millisecond)
			group = append(group, storage.Record{Rev: d.rev, Op: op, Client: c, Seq: seqs[c], Time: at})
			d.text = text
		}
		if err := db.Append(ctx, d.meta.ID, group); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// openJS opens a jetstream store on its own connection to url.
func openJS(t *testing.T, url string) *jetstream.Store {
	t.Helper()
	nc, err := jetstream.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(ctx, nc, jetstream.Options{SnapshotEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(js.Close)
	return js
}

// checkMigrated compares every document of the data file at path with
// what js holds: meta, text, revision, every record and each client's
// last seq; and that Load found a snapshot at the latest revision.
func checkMigrated(t *testing.T, path string, js *jetstream.Store) {
	t.Helper()
	ctx := context.Background()
	db, err := openData(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ids, err := db.DocIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		want, err := db.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := js.Load(ctx, id)
		if err != nil {
			t.Fatalf("doc %s: jetstream Load: %v", id, err)
		}
		if got.Text != want.Text || got.Rev != want.Rev {
			t.Errorf("doc %s: jetstream has rev %d (%d code points), the file rev %d (%d)", id, got.Rev, utf8.RuneCountInString(got.Text), want.Rev, utf8.RuneCountInString(want.Text))
		}
		if got.Meta.ID != id || got.Meta.ViewID != want.Meta.ViewID || !got.Meta.Created.Equal(want.Meta.Created) {
			t.Errorf("doc %s: jetstream meta %+v, the file's %+v", id, got.Meta, want.Meta)
		}
		if got.Tail != 0 {
			t.Errorf("doc %s: Load replayed %d records after the snapshot, want a snapshot at the latest revision", id, got.Tail)
		}
		if edit, err := js.ViewDoc(ctx, want.Meta.ViewID); err != nil || edit != id {
			t.Errorf("doc %s: ViewDoc = %q, %v", id, edit, err)
		}
		clients := map[string]bool{}
		for after := int64(0); after < want.Rev; {
			ours, err := db.Ops(ctx, id, after, 500, 0)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := js.Ops(ctx, id, after, len(ours), 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(theirs) != len(ours) {
				t.Fatalf("doc %s after %d: jetstream has %d records, the file %d", id, after, len(theirs), len(ours))
			}
			for i, o := range ours {
				th := theirs[i]
				if th.Rev != o.Rev || th.Client != o.Client || th.Seq != o.Seq || !th.Time.Equal(o.Time) || !slices.Equal(th.Op, o.Op) {
					t.Fatalf("doc %s rev %d: jetstream %+v, the file %+v", id, o.Rev, th, o)
				}
				clients[o.Client] = true
			}
			after = ours[len(ours)-1].Rev
		}
		for c := range clients {
			ws, wr, err := db.ClientSeq(ctx, id, c)
			if err != nil {
				t.Fatal(err)
			}
			gs, gr, err := js.ClientSeq(ctx, id, c)
			if err != nil || gs != ws || gr != wr {
				t.Errorf("doc %s client %s: jetstream ClientSeq %d, %d, %v; the file %d, %d", id, c, gs, gr, err, ws, wr)
			}
		}
	}
	key, err := db.AuthorKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := js.SharedKey(ctx, authorKeyName, len(key)); err != nil || !bytes.Equal(got, key) {
		t.Errorf("the cluster's author key = %x, %v; want the file's %x", got, err, key)
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	url := startNATS(t)
	path := filepath.Join(t.TempDir(), "collab.db")
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var docs []fileDoc
	for i, revs := range []int{0, 1, 37, 2600} { // 2600: several pages of reads
		docs = append(docs, buildDoc(t, db, revs, uint64(i+1)))
	}
	// Ops too large to share one NATS message (1 MB by default): the
	// store splits the page into several.
	big := buildDoc(t, db, 0, 9)
	for rev := int64(1); rev <= 8; rev++ {
		op := ot.Op{}.Retain(int(rev-1) * 300_000).Insert(strings.Repeat(string(rune('a'+rev)), 300_000))
		if err := db.Append(ctx, big.meta.ID, []storage.Record{{Rev: rev, Op: op, Client: "big", Seq: rev}}); err != nil {
			t.Fatal(err)
		}
	}
	big.rev = 8
	docs = append(docs, big)
	// A snapshot in the file, and a deleted document, which is not copied.
	if err := db.SaveSnapshot(ctx, docs[2].meta.ID, storage.Snapshot{Rev: docs[2].rev, Text: docs[2].text}); err != nil {
		t.Fatal(err)
	}
	gone := buildDoc(t, db, 5, 10)
	if err := db.Delete(ctx, gone.meta.ID); err != nil {
		t.Fatal(err)
	}

	// While a server (here: the test) holds the file, migrate refuses.
	if _, err := migrateCmd(t, "-data", path, "-nats", url, "-lock-timeout", "100ms"); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("migrate of a held file: got %v, want an error about the lock", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	out, err := migrateCmd(t, "-data", path, "-nats", url)
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	t.Logf("first run:\n%s", out)
	for _, d := range docs {
		if want := fmt.Sprintf("%s: copied, %d revisions\n", d.meta.ID, d.rev); !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, gone.meta.ID) {
		t.Errorf("output names the deleted document")
	}
	if !strings.Contains(out, fmt.Sprintf("migrated %d documents", len(docs))) || !strings.Contains(out, "0 failed") {
		t.Errorf("summary missing or wrong in %q", out)
	}
	js := openJS(t, url)
	checkMigrated(t, path, js)
	if _, err := js.Load(ctx, gone.meta.ID); err == nil {
		t.Errorf("the deleted document was copied")
	}

	// Again: everything is there already.
	out, err = migrateCmd(t, "-data", path, "-nats", url)
	if err != nil {
		t.Fatalf("second migrate: %v\n%s", err, out)
	}
	t.Logf("second run:\n%s", out)
	if n := strings.Count(out, ", skipped\n"); n != len(docs) {
		t.Errorf("second run: %d documents already there, want %d:\n%s", n, len(docs), out)
	}
	if !strings.Contains(out, "0 copied, 0 continued") || !strings.Contains(out, "0 revisions copied") {
		t.Errorf("second run's summary: %q", out)
	}
	checkMigrated(t, path, js)

	// Flags.
	if _, err := migrateCmd(t, "-data", path); err == nil {
		t.Error("migrate without -nats: got no error")
	}
	if _, err := migrateCmd(t, "-nats", url); err == nil {
		t.Error("migrate without -data: got no error")
	}
	if _, err := migrateCmd(t, "-data", filepath.Join(t.TempDir(), "missing.db"), "-nats", url); err == nil {
		t.Error("migrate of a missing file: got no error")
	}
}

// opsOf returns every record of a document in the data file at path.
func opsOf(t *testing.T, path, id string) []storage.Record {
	t.Helper()
	db, err := openData(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var all []storage.Record
	for {
		recs, err := db.Ops(context.Background(), id, int64(len(all)), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return all
		}
		all = append(all, recs...)
	}
}

func fileToJS(recs []storage.Record) []jetstream.Record {
	out := make([]jetstream.Record, len(recs))
	for i, r := range recs {
		out[i] = jetstream.Record{Rev: r.Rev, Op: r.Op, Client: r.Client, Seq: r.Seq, Time: r.Time}
	}
	return out
}

// TestMigrateResume covers a migration that stopped part way (continued),
// a cluster whose copy disagrees with the file or is ahead of it
// (reported, the others still copied), and a document a node serves.
func TestMigrateResume(t *testing.T) {
	t.Parallel()
	url := startNATS(t)
	path := filepath.Join(t.TempDir(), "collab.db")
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	partial, diverged, ahead, served, fresh := buildDoc(t, db, 120, 1), buildDoc(t, db, 30, 2), buildDoc(t, db, 10, 3), buildDoc(t, db, 10, 4), buildDoc(t, db, 10, 5)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	js := openJS(t, url)
	seed := func(d fileDoc, recs []jetstream.Record) {
		t.Helper()
		m := jetstream.DocMeta{ID: d.meta.ID, ViewID: d.meta.ViewID, Created: d.meta.Created}
		if err := js.Create(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
		if err := js.Append(ctx, d.meta.ID, recs); err != nil {
			t.Fatal(err)
		}
	}
	// As a run stopped after 50 revisions of 120.
	seed(partial, fileToJS(opsOf(t, path, partial.meta.ID)[:50]))
	// The same ids, a different history.
	other := fileToJS(opsOf(t, path, diverged.meta.ID)[:10])
	other[9].Seq += 1000
	seed(diverged, other)
	// Edited in the cluster past the file's end.
	recs := fileToJS(opsOf(t, path, ahead.meta.ID))
	n := 0
	for _, r := range recs {
		n += r.Op.TargetLen() - r.Op.BaseLen()
	}
	recs = append(recs, jetstream.Record{Rev: 11, Op: ot.Op{}.Retain(n).Insert("!"), Client: "x", Seq: 1, Time: time.Now()})
	seed(ahead, recs)
	// Another node owns this one.
	lease, err := openJS(t, url).Acquire(ctx, served.meta.ID)
	if err != nil {
		t.Fatal(err)
	}

	for run := 1; run <= 2; run++ {
		out, err := migrateCmd(t, "-data", path, "-nats", url)
		t.Logf("run %d:\n%s", run, out)
		if err == nil || exitCode(err) != 1 {
			t.Errorf("run %d: got %v, want an error with exit status 1", run, err)
		}
		wantLines := map[string]string{
			partial.meta.ID:  "continued from revision 50 to 120",
			diverged.meta.ID: "error: revision 10 differs",
			ahead.meta.ID:    "error: the cluster has 11 revisions, the file 10",
			served.meta.ID:   "error: a cluster node serves it",
			fresh.meta.ID:    "copied, 10 revisions",
		}
		if run == 2 {
			wantLines[partial.meta.ID] = "already there at revision 120"
			wantLines[fresh.meta.ID] = "already there at revision 10"
		}
		for id, want := range wantLines {
			if !strings.Contains(out, id+": "+want) {
				t.Errorf("run %d: no line %q", run, id+": "+want)
			}
		}
		if !strings.Contains(out, "3 failed") {
			t.Errorf("run %d: summary does not count 3 failures", run)
		}
	}
	if d, err := js.Load(ctx, partial.meta.ID); err != nil || d.Rev != 120 || d.Text != partial.text {
		t.Errorf("the continued document: got %v, %v; want rev 120", d, err)
	}
	// The lease is released after the node stops: migrate then copies it.
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	out, _ := migrateCmd(t, "-data", path, "-nats", url)
	if !strings.Contains(out, served.meta.ID+": copied, 10 revisions") || !strings.Contains(out, "2 failed") {
		t.Errorf("after the lease was released: %s", out)
	}
}

// BenchmarkMigrate copies a file of 200 documents of 50 revisions each
// into a fresh JetStream server (sync_interval: always) per iteration and
// reports documents and revisions per second:
//
//	go test -run '^$' -bench Migrate -benchtime 3x ./cmd/collabd/
func BenchmarkMigrate(b *testing.B) {
	path := filepath.Join(b.TempDir(), "collab.db")
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	const docs, revs = 200, 50
	for i := range docs {
		id := uuid.NewString()
		if err := db.Create(context.Background(), storage.Meta{ID: id, ViewID: uuid.NewString()}, nil); err != nil {
			b.Fatal(err)
		}
		var recs []storage.Record
		for r := int64(1); r <= revs; r++ {
			recs = append(recs, storage.Record{Rev: r, Op: ot.Op{}.Retain(int(r - 1)).Insert("x"), Client: fmt.Sprint("c", i), Seq: r})
		}
		if err := db.Append(context.Background(), id, recs); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		url := startNATS(b)
		b.StartTimer()
		start := time.Now()
		var out, errOut bytes.Buffer
		if err := run(context.Background(), []string{"migrate", "-data", path, "-nats", url}, &out, &errOut); err != nil {
			b.Fatalf("%v\n%s%s", err, out.String(), errOut.String())
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(docs*b.N)/elapsed.Seconds(), "docs/s")
	b.ReportMetric(float64(docs*revs*b.N)/elapsed.Seconds(), "revs/s")
}
