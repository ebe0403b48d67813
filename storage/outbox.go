package storage

// The outbox bucket holds webhook events until their receiver has accepted
// them, so that neither a restart nor a receiver that is down for a while
// loses one. Keys are 8-byte big-endian sequence numbers from the bucket's
// own sequence, so a cursor walks the events in the order they were added;
// a value is sealed like every other (codec.go):
//
//	version | queued time (varint Unix nanoseconds) | body
//
// Writes go through the committer like any other, so an event shares the
// fsync of whatever ops are committed with it. The bucket is created by
// the first Add: files written before it existed need no migration.

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

var bucketOutbox = []byte("outbox")

// OutboxEvent is one queued event: Seq orders the queue, Queued is when Add
// stored it, Body is opaque to storage.
type OutboxEvent struct {
	Seq    uint64
	Queued time.Time
	Body   []byte
}

// OutboxAdd durably appends events to the outbox, in order, after every
// event already there. Their Seq is assigned here; a zero Queued is set to
// now.
func (db *DB) OutboxAdd(ctx context.Context, events []OutboxEvent) error {
	if len(events) == 0 {
		return nil
	}
	w := &outboxAddWrite{values: make([][]byte, len(events))}
	now := time.Now()
	for i, ev := range events {
		q := ev.Queued
		if q.IsZero() {
			q = now
		}
		v := []byte{valueVersion}
		v = binary.AppendVarint(v, q.UnixNano())
		v = append(v, ev.Body...)
		w.values[i] = seal(v, 0)
		w.bytes += len(w.values[i]) + 16
	}
	if err := db.submit(ctx, w); err != nil {
		return fmt.Errorf("outbox add: %w", err)
	}
	return nil
}

type outboxAddWrite struct {
	values [][]byte
	bytes  int
}

func (w *outboxAddWrite) size() int                { return w.bytes }
func (w *outboxAddWrite) check(tx *bbolt.Tx) error { return nil }

func (w *outboxAddWrite) apply(tx *bbolt.Tx) error {
	b, err := tx.CreateBucketIfNotExists(bucketOutbox)
	if err != nil {
		return err
	}
	for _, v := range w.values {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), v); err != nil {
			return err
		}
	}
	return nil
}

// OutboxPending returns up to limit events, oldest first (limit <= 0 means
// 1000). A damaged value is ErrCorrupt naming its seq.
func (db *DB) OutboxPending(ctx context.Context, limit int) ([]OutboxEvent, error) {
	if limit <= 0 {
		limit = defaultOpsLimit
	}
	var out []OutboxEvent
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			ev, err := decodeOutbox(k, v)
			if err != nil {
				return err
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// OutboxSize returns how many events the outbox holds and the bytes of
// their bodies. It walks the whole bucket, checking every value, so it
// is for start-up, not for every event.
func (db *DB) OutboxSize(ctx context.Context) (events int, bytes int64, err error) {
	err = db.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			p, err := unseal(v)
			if err != nil {
				return fmt.Errorf("outbox event %x: %v: %w", k, err, ErrCorrupt)
			}
			_, n := binary.Varint(p)
			if n <= 0 {
				return fmt.Errorf("outbox event %x: %v: %w", k, errBadValue, ErrCorrupt)
			}
			events++
			bytes += int64(len(p) - n)
			return nil
		})
	})
	return events, bytes, err
}

func decodeOutbox(k, v []byte) (OutboxEvent, error) {
	if len(k) != 8 {
		return OutboxEvent{}, fmt.Errorf("outbox key %x: %w", k, ErrCorrupt)
	}
	seq := binary.BigEndian.Uint64(k)
	p, err := unseal(v)
	if err == nil {
		nanos, n := binary.Varint(p)
		if n <= 0 {
			err = errBadValue
		} else {
			// Copied: bbolt's memory is only valid inside the transaction.
			return OutboxEvent{Seq: seq, Queued: time.Unix(0, nanos), Body: append([]byte(nil), p[n:]...)}, nil
		}
	}
	return OutboxEvent{}, fmt.Errorf("outbox event %d: %v: %w", seq, err, ErrCorrupt)
}

// OutboxRemove deletes delivered events; seqs not in the outbox are
// ignored.
func (db *DB) OutboxRemove(ctx context.Context, seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	if err := db.submit(ctx, outboxRemoveWrite(seqs)); err != nil {
		return fmt.Errorf("outbox remove: %w", err)
	}
	return nil
}

type outboxRemoveWrite []uint64

func (w outboxRemoveWrite) size() int                { return 8 * len(w) }
func (w outboxRemoveWrite) check(tx *bbolt.Tx) error { return nil }

func (w outboxRemoveWrite) apply(tx *bbolt.Tx) error {
	b := tx.Bucket(bucketOutbox)
	if b == nil {
		return nil
	}
	for _, seq := range w {
		if err := b.Delete(binary.BigEndian.AppendUint64(nil, seq)); err != nil {
			return err
		}
	}
	return nil
}
