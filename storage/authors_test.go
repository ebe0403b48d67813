package storage

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"go.etcd.io/bbolt"
)

// TestAuthorsCheckpoints: the latest checkpoint at or before a revision,
// none before the first, none of a neighbour, none past the document's
// revision, and none once the document is deleted.
func TestAuthorsCheckpoints(t *testing.T) {
	db, _ := openTest(t, Options{})
	ctx := context.Background()
	makeDoc(t, db, "b", 30)
	makeDoc(t, db, "c", 30)
	makeDoc(t, db, "d", 30)
	if cp, err := db.AuthorsBefore(ctx, "c", 30); err != nil || cp.Data != nil {
		t.Fatalf("before any: got %+v, %v, want none", cp, err)
	}
	if err := db.SaveAuthors(ctx, "c", []Checkpoint{{Rev: 10, Data: []byte("ten")}, {Rev: 20, Data: []byte("twenty")}}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveAuthors(ctx, "b", []Checkpoint{{Rev: 5, Data: []byte("b5")}}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveAuthors(ctx, "c", []Checkpoint{{Rev: 31, Data: []byte("x")}}); !errors.Is(err, ErrConflict) {
		t.Errorf("past the head: got %v, want ErrConflict", err)
	}
	for _, c := range []struct {
		rev  int64
		want string
		at   int64
	}{{9, "", 0}, {10, "ten", 10}, {19, "ten", 10}, {20, "twenty", 20}, {30, "twenty", 20}} {
		cp, err := db.AuthorsBefore(ctx, "c", c.rev)
		if err != nil || string(cp.Data) != c.want || cp.Rev != c.at {
			t.Errorf("AuthorsBefore(c, %d): got %+v %q, %v; want %q at %d", c.rev, cp, cp.Data, err, c.want, c.at)
		}
	}
	if cp, _ := db.AuthorsBefore(ctx, "d", 30); cp.Data != nil {
		t.Errorf("neighbour d: got %q, want none", cp.Data)
	}
	if err := db.Delete(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AuthorsBefore(ctx, "c", 30); !errors.Is(err, ErrNotFound) {
		t.Errorf("after delete: got %v, want ErrNotFound", err)
	}
	if cp, err := db.AuthorsBefore(ctx, "b", 30); err != nil || string(cp.Data) != "b5" {
		t.Errorf("b after c's delete: got %q, %v", cp.Data, err)
	}
	makeDoc(t, db, "c", 30)
	if cp, err := db.AuthorsBefore(ctx, "c", 30); err != nil || cp.Data != nil {
		t.Errorf("c made again: got %q, %v; want none", cp.Data, err)
	}
	// A damaged value is ErrCorrupt, not wrong authors.
	db.bolt.Update(func(tx *bbolt.Tx) error {
		k := keysOf("b").snap(5)
		v := bytes.Clone(tx.Bucket(bucketAuthors).Get(k))
		v[1] ^= 0xff
		return tx.Bucket(bucketAuthors).Put(k, v)
	})
	if _, err := db.AuthorsBefore(ctx, "b", 30); !errors.Is(err, ErrCorrupt) {
		t.Errorf("damaged checkpoint: got %v, want ErrCorrupt", err)
	}
}
