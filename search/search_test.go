package search

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/collab"
)

func openTest(t *testing.T) (*Index, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "collab.db.search")
	x, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x, dir
}

func ids(hits []collab.SearchHit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.ID)
	}
	return out
}

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// corpus: a few documents of two owners.
func corpus() []collab.IndexEntry {
	return []collab.IndexEntry{
		{ID: "a", Title: "Roadmap", Text: "The roadmap for next quarter: search, tags and a trash.", Owner: "ann", Readers: []string{"u:ann"}, Updated: t0, Rev: 3},
		{ID: "b", Title: "Groceries", Text: "apples, bread, milk; the roadmap is elsewhere", Owner: "ann", Readers: []string{"u:ann", "g:eng"}, Updated: t0.Add(time.Hour), Rev: 7, Tags: []string{"home"}},
		{ID: "c", Title: "Quarter review", Text: "next to nothing about the quarter roads", Owner: "bob", Readers: []string{"u:bob"}, Updated: t0.Add(2 * time.Hour), Rev: 1},
		{ID: "d", Title: "Old notes", Text: "roadmap roadmap roadmap", Owner: "ann", Readers: []string{"u:ann"}, Updated: t0.Add(3 * time.Hour), Trashed: true},
		{ID: "e", Title: "Escaping", Text: "a <script>alert(1)</script> roadmap & more", Owner: "ann", Readers: []string{"u:ann"}, Updated: t0.Add(-time.Hour)},
	}
}

// TestSearch: words, phrases, prefixes while typing, ranking with a
// title match first, readers, tags and the trash as filters, snippets
// marked and escaped.
func TestSearch(t *testing.T) {
	x, _ := openTest(t)
	ctx := t.Context()
	if err := x.Index(ctx, corpus(), nil); err != nil {
		t.Fatal(err)
	}
	ann := []string{"u:ann"}
	all := []string{"u:ann", "u:bob"}
	for _, c := range []struct {
		name    string
		q       collab.SearchQuery
		want    []string
		ordered bool
	}{
		{"no text: most recent first", collab.SearchQuery{Readers: all}, []string{"c", "b", "a", "e"}, true},
		{"a word, title match ranks first", collab.SearchQuery{Text: "roadmap ", Readers: ann}, []string{"a"}, false},
		{"a word", collab.SearchQuery{Text: "roadmap ", Readers: ann}, []string{"a", "b", "e"}, false},
		{"prefix while typing", collab.SearchQuery{Text: "roadm", Readers: all}, []string{"a", "b", "e"}, false},
		{"prefix, shorter", collab.SearchQuery{Text: "road", Readers: all}, []string{"a", "b", "c", "e"}, false},
		{"two letters are no prefix", collab.SearchQuery{Text: "ro", Readers: all}, nil, false},
		{"a finished word is not a prefix", collab.SearchQuery{Text: "road ", Readers: all}, nil, false},
		{"phrase", collab.SearchQuery{Text: `"next quarter"`, Readers: all}, []string{"a"}, false},
		{"words in any order", collab.SearchQuery{Text: "quarter next ", Readers: all}, []string{"a", "c"}, false},
		{"all words must match", collab.SearchQuery{Text: "roadmap milk ", Readers: all}, []string{"b"}, false},
		{"case folded", collab.SearchQuery{Text: "APPLES", Readers: all}, []string{"b"}, false},
		{"readers filter", collab.SearchQuery{Text: "quarter", Readers: ann}, []string{"a"}, false},
		{"group reader", collab.SearchQuery{Text: "milk", Readers: []string{"u:zed", "g:eng"}}, []string{"b"}, false},
		{"nobody", collab.SearchQuery{Text: "roadmap", Readers: []string{"u:zed"}}, nil, false},
		{"tag", collab.SearchQuery{Tag: "home", Readers: all}, []string{"b"}, false},
		{"trash", collab.SearchQuery{Trashed: true, Readers: all}, []string{"d"}, false},
		{"trash is out of search", collab.SearchQuery{Text: "old", Readers: all}, nil, false},
		{"title words", collab.SearchQuery{Text: "groceries", Readers: all}, []string{"b"}, false},
	} {
		hits, err := x.Search(ctx, c.q)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := ids(hits)
		if c.name == "a word, title match ranks first" {
			if len(got) == 0 || got[0] != "a" {
				t.Errorf("%s: got %v, want a first", c.name, got)
			}
			continue
		}
		if !c.ordered {
			slices.Sort(got)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}

	hits, err := x.Search(ctx, collab.SearchQuery{Text: "roadmap ", Readers: ann})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hits {
		if !strings.Contains(h.Snippet, "<mark>roadmap</mark>") {
			t.Errorf("%s: snippet %q has no marked match", h.ID, h.Snippet)
		}
		if h.ID == "e" && (strings.Contains(h.Snippet, "<script>") || !strings.Contains(h.Snippet, "&lt;script&gt;")) {
			t.Errorf("snippet %q: the text is not escaped", h.Snippet)
		}
		if h.ID == "b" && (h.Rev != 7 || !slices.Equal(h.Tags, []string{"home"}) || h.Owner != "ann" || !h.Updated.Equal(t0.Add(time.Hour))) {
			t.Errorf("hit b: got %+v", h)
		}
	}
}

// TestIndexRevsAndRemove: Revs reports what was indexed, across a
// reopen, and a removed document is gone.
func TestIndexRevsAndRemove(t *testing.T) {
	x, dir := openTest(t)
	ctx := t.Context()
	if err := x.Index(ctx, corpus(), []string{"zz"}); err != nil {
		t.Fatal(err)
	}
	if err := x.Index(ctx, nil, []string{"c"}); err != nil {
		t.Fatal(err)
	}
	x.Close()
	x, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	revs, err := x.Revs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"a": 3, "b": 7, "d": 0, "e": 0}
	if len(revs) != len(want) {
		t.Errorf("got %v, want %v", revs, want)
	}
	for id, r := range want {
		if revs[id] != r {
			t.Errorf("rev of %s: got %d, want %d", id, revs[id], r)
		}
	}
}

// TestQueryLimits: a query of many words is cut to MaxTerms, and odd
// input (quotes left open, punctuation alone) is no error.
func TestQueryLimits(t *testing.T) {
	x, _ := openTest(t)
	if err := x.Index(t.Context(), corpus(), nil); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{strings.Repeat("roadmap ", 500), `"next quarter`, `"" - , ;`, "r", `"`} {
		if _, err := x.Search(t.Context(), collab.SearchQuery{Text: q, Readers: []string{"u:ann"}}); err != nil {
			t.Errorf("%.30q: %v", q, err)
		}
	}
	w, p := split(strings.Repeat("a ", 100) + `"b c"`)
	if len(w)+len(p) != MaxTerms || len(p) != 1 {
		t.Errorf("split: got %d words and %d phrases, want %d terms with the phrase", len(w), len(p), MaxTerms)
	}
}

// TestMarks: a mark is kept across a reopen, and is not a document.
func TestMarks(t *testing.T) {
	x, dir := openTest(t)
	if v, err := x.Mark("feed"); err != nil || v != nil {
		t.Fatalf("mark before any: %q, %v; want nil", v, err)
	}
	if err := x.SetMark("feed", []byte(`{"ops":7}`)); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	y, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	if v, err := y.Mark("feed"); err != nil || string(v) != `{"ops":7}` {
		t.Errorf("mark after reopen: got %q, %v; want {\"ops\":7}", v, err)
	}
	if n, err := y.Count(); err != nil || n != 0 {
		t.Errorf("documents: got %d, %v; want 0", n, err)
	}
}

// TestCloseKeepsBatches: batches return before they are on disk, and
// Close waits until they are: a reopened index has them all.
func TestCloseKeepsBatches(t *testing.T) {
	x, dir := openTest(t)
	for i := range 20 {
		e := corpus()[0]
		e.ID = fmt.Sprint("doc", i)
		if err := x.Index(t.Context(), []collab.IndexEntry{e}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.SetMark("feed", []byte("20")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("closed in %v", time.Since(start))
	y, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	if n, err := y.Count(); err != nil || n != 20 {
		t.Errorf("documents after reopen: got %d, %v; want 20", n, err)
	}
	if v, err := y.Mark("feed"); err != nil || string(v) != "20" {
		t.Errorf("mark after reopen: got %q, %v; want 20", v, err)
	}
}
