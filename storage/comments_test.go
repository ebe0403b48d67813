package storage

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
)

// TestComments: records survive a reopen, replace and delete by key,
// stay apart from a neighbour's (ids "d" and "dd" share a byte), and go
// with their document.
func TestComments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "collab.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	makeDoc(t, db, "d", 3)
	makeDoc(t, db, "dd", 3)
	if err := db.PutComments(ctx, "d", map[string][]byte{"a": []byte("1"), "b": []byte("2"), "c": []byte("3")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.PutComments(ctx, "dd", map[string][]byte{"a": []byte("other")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.PutComments(ctx, "d", map[string][]byte{"a": []byte("1b")}, []string{"c"}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutComments(ctx, "nope", map[string][]byte{"a": nil}, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("PutComments on an unknown document: got %v, want ErrNotFound", err)
	}
	db.Close()
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Comments(ctx, "d")
	if want := map[string][]byte{"a": []byte("1b"), "b": []byte("2")}; err != nil || !maps.EqualFunc(got, want, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatalf("Comments after reopen: got %q, %v, want %q", got, err, want)
	}
	if err := db.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Comments(ctx, "d"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Comments of a deleted document: got %v, want ErrNotFound", err)
	}
	n := 0
	db.bolt.View(func(tx *bbolt.Tx) error { n = tx.Bucket(bucketComments).Stats().KeyN; return nil })
	if n != 1 {
		t.Errorf("comment records after Delete: got %d, want the neighbour's 1", n)
	}
	if got, _ := db.Comments(ctx, "dd"); string(got["a"]) != "other" || len(got) != 1 {
		t.Errorf("neighbour's comments after Delete: got %q, want its one record", got)
	}
}
