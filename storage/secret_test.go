package storage

import (
	"bytes"
	"context"
	"testing"
)

// TestAuthorKey: the key is created once, is 32 bytes, and is the same
// after the file is closed and reopened.
func TestAuthorKey(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t, Options{})
	k1, err := db.AuthorKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != authorKeySize || bytes.Equal(k1, make([]byte, authorKeySize)) {
		t.Fatalf("got key %x, want %d random bytes", k1, authorKeySize)
	}
	k2, err := db.AuthorKey(ctx)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second call: got %x, %v; want %x", k2, err, k1)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	k3, err := db2.AuthorKey(ctx)
	if err != nil || !bytes.Equal(k1, k3) {
		t.Fatalf("after reopening: got %x, %v; want %x", k3, err, k1)
	}
	// Another file has another key.
	other, _ := openTest(t, Options{})
	if k4, err := other.AuthorKey(ctx); err != nil || bytes.Equal(k1, k4) {
		t.Fatalf("another file: got %x, %v; want a different key", k4, err)
	}
}
