package storage

import (
	"errors"
	"strings"
	"testing"
)

// TestKV: records survive a reopen, deletes stick, names and sizes are
// checked, and a sweep drops what it is told to.
func TestKV(t *testing.T) {
	db, path := openTest(t, Options{})
	ctx := t.Context()
	if _, err := db.KVGet(ctx, KVAccess, "doc"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get before any put: got %v, want ErrNotFound", err)
	}
	for k, v := range map[string]string{"a": "1", "b": "2", "c": "3"} {
		if err := db.KVPut(ctx, KVSessions, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.KVPut(ctx, KVAccess, "doc", []byte(`{"link":"none"}`)); err != nil {
		t.Fatal(err)
	}
	if err := db.KVPut(ctx, "docs", "x", []byte("y")); !errors.Is(err, ErrInvalid) {
		t.Errorf("put to another bucket: got %v, want ErrInvalid", err)
	}
	if err := db.KVPut(ctx, KVAccess, strings.Repeat("k", maxKVKey+1), []byte("y")); !errors.Is(err, ErrInvalid) {
		t.Errorf("put of a long key: got %v, want ErrInvalid", err)
	}
	if err := db.KVPut(ctx, KVAccess, "big", make([]byte, maxKVValue+1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("put of a large value: got %v, want ErrInvalid", err)
	}
	if err := db.KVDelete(ctx, KVSessions, "b"); err != nil {
		t.Fatal(err)
	}
	n, err := db.KVDeleteIf(ctx, KVSessions, func(k, v []byte) bool { return string(v) == "3" })
	if err != nil || n != 1 {
		t.Fatalf("sweep: got %d, %v, want 1", n, err)
	}
	db.Close()
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.KVGet(ctx, KVAccess, "doc"); err != nil || string(v) != `{"link":"none"}` {
		t.Errorf("access after reopen: got %q, %v", v, err)
	}
	if v, err := db.KVGet(ctx, KVSessions, "a"); err != nil || string(v) != "1" {
		t.Errorf("session a after reopen: got %q, %v", v, err)
	}
	for _, k := range []string{"b", "c"} {
		if _, err := db.KVGet(ctx, KVSessions, k); !errors.Is(err, ErrNotFound) {
			t.Errorf("session %s after delete: got %v, want ErrNotFound", k, err)
		}
	}
	if err := db.Check(ctx); err != nil {
		t.Errorf("check with kv buckets: %v", err)
	}
}
