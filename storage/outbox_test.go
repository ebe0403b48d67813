package storage

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func TestOutbox(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "o.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// An empty outbox (no bucket yet) reads as empty.
	if evs, err := db.OutboxPending(ctx, 10); err != nil || len(evs) != 0 {
		t.Fatalf("empty outbox: got %v, %v; want nothing", evs, err)
	}
	queued := time.Unix(1700000000, 123).UTC()
	var add []OutboxEvent
	for i := range 5 {
		add = append(add, OutboxEvent{Queued: queued, Body: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	if err := db.OutboxAdd(ctx, add[:3]); err != nil {
		t.Fatal(err)
	}
	if err := db.OutboxAdd(ctx, add[3:]); err != nil {
		t.Fatal(err)
	}
	evs, err := db.OutboxPending(ctx, 2)
	if err != nil || len(evs) != 2 {
		t.Fatalf("pending(2): got %d events, %v; want 2", len(evs), err)
	}
	if err := db.OutboxRemove(ctx, []uint64{evs[0].Seq, evs[1].Seq, 999}); err != nil {
		t.Fatal(err)
	}
	// It survives a reopen, in order.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	evs, err = db.OutboxPending(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 {
		t.Fatalf("after reopen: got %d events, want 3", len(evs))
	}
	// Size counts the events left and their bodies' bytes.
	if n, b, err := db.OutboxSize(ctx); err != nil || n != 3 || b != int64(3*len(`{"n":0}`)) {
		t.Errorf("size: got %d events, %d bytes, %v; want 3, %d", n, b, err, 3*len(`{"n":0}`))
	}
	for i, ev := range evs {
		if want := fmt.Sprintf(`{"n":%d}`, i+2); string(ev.Body) != want {
			t.Errorf("event %d: got body %s, want %s", i, ev.Body, want)
		}
		if !ev.Queued.Equal(queued) {
			t.Errorf("event %d: got queued %v, want %v", i, ev.Queued, queued)
		}
		if i > 0 && ev.Seq <= evs[i-1].Seq {
			t.Errorf("event %d: seq %d after %d, want increasing", i, ev.Seq, evs[i-1].Seq)
		}
	}

	// A damaged value is reported, not decoded.
	if err := db.bolt.Update(func(tx *bbolt.Tx) error {
		k, v := tx.Bucket(bucketOutbox).Cursor().First()
		bad := append([]byte(nil), v...)
		bad[len(bad)-5] ^= 0xff
		return tx.Bucket(bucketOutbox).Put(append([]byte(nil), k...), bad)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.OutboxPending(ctx, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged value: got %v, want ErrCorrupt", err)
	}
	if _, _, err := db.OutboxSize(ctx); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("size with a damaged value: got %v, want ErrCorrupt", err)
	}
}
