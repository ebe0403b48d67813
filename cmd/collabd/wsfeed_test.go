package main

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/search"
	"github.com/collabd/collabd/storage"
)

// failingIndex is the real index whose writes fail while fail is set, as
// a full disk would make them.
type failingIndex struct {
	idx  *search.Index
	fail atomic.Bool
}

func (f *failingIndex) Index(ctx context.Context, entries []collab.IndexEntry, remove []string) error {
	if f.fail.Load() {
		return errors.New("index write refused by the test")
	}
	return f.idx.Index(ctx, entries, remove)
}

func (f *failingIndex) Revs(ctx context.Context) (map[string]int64, error) { return f.idx.Revs(ctx) }

func (f *failingIndex) Search(ctx context.Context, q collab.SearchQuery) ([]collab.SearchHit, error) {
	return f.idx.Search(ctx, q)
}

// TestAfterIndexed: what a cluster node's feed records as indexed
// (AfterIndexed) is never ahead of the index. A change marked
// (IndexChanged) while the index refuses writes is not reported as
// indexed, flush after flush; once the index takes writes again it is
// indexed and reported, once.
func TestAfterIndexed(t *testing.T) {
	dir := t.TempDir()
	db, err := storage.Open(filepath.Join(dir, "collab.db"), storage.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	idx, err := search.Open(filepath.Join(dir, "collab.db.search"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	ctx := t.Context()
	id := "9a0d3d0e-0f4c-4a51-8f4e-2f6f5f1f7b10"
	acc := accessStore{boltKV{db}}
	if err := acc.SetAccess(ctx, id, collab.Access{Owner: "ann", Link: collab.LinkNone}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := db.Create(ctx, storage.Meta{ID: id, ViewID: "7c1b7f0a-3a8e-4d55-9b7e-6a1c2d3e4f50", Created: now},
		&storage.Record{Rev: 1, Op: ot.Op{ot.Insert("wombats burrow")}, Client: "c", Seq: 1, Time: now}); err != nil {
		t.Fatal(err)
	}
	fi := &failingIndex{idx: idx}
	fi.fail.Store(true)
	srv := collab.New(store{db}, collab.Options{
		SignIn: &collab.SignInOptions{Store: acc, Header: "X-User"},
		Workspace: &collab.WorkspaceOptions{Index: fi, Info: infoStore{boltKV{db}},
			// The catch-up at start finds nothing: what is indexed comes
			// from the change marked below alone.
			Heads:      func(context.Context) ([]collab.DocHead, error) { return nil, nil },
			FlushEvery: 10 * time.Millisecond},
	})
	defer srv.Close(context.Background())

	var reported atomic.Int32
	srv.IndexChanged(id, 1)
	srv.AfterIndexed(func() { reported.Add(1) })
	time.Sleep(300 * time.Millisecond) // thirty flushes, every one refused
	if n := reported.Load(); n != 0 {
		t.Fatalf("reported indexed %d times while the index refused every write", n)
	}
	fi.fail.Store(false)
	for deadline := time.Now().Add(10 * time.Second); reported.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("not reported indexed within 10 s of the index taking writes again")
		}
	}
	hits, err := idx.Search(ctx, collab.SearchQuery{Text: "wombats ", Readers: []string{"u:ann"}})
	if err != nil || len(hits) != 1 || hits[0].ID != id || hits[0].Rev != 1 {
		t.Errorf("after the report, search: %+v, %v; want the document at rev 1", hits, err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := reported.Load(); n != 1 {
		t.Errorf("reported %d times, want once", n)
	}
}
