package storage

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"
)

// The activity index summarises a document's history by minute, so that a
// timeline of weeks is drawn from a few thousand small values rather than
// from every record of the op log. Each entry covers the revisions
// committed in one minute (UTC, by the record's time): their range, the
// code points they inserted and deleted, and who made them. Because
// record times never decrease along the revisions (Record), the entries'
// revision ranges follow each other without overlap, in key order.
//
// Append maintains the index in the same transaction as the records, so
// the two always agree; the entry of the current minute is the document's
// last key, next to the meta every append rewrites anyway.

// maxActivityClients bounds the clients one entry (and so one bucket)
// names; further ones still count in its totals.
const maxActivityClients = 16

// activity is one entry of the index, or a bucket of several.
type activity struct {
	first, last int64 // revisions
	ins, del    int64
	clients     []string
}

func (a *activity) add(rev, ins, del int64, client string) {
	if a.first == 0 {
		a.first = rev
	}
	a.last = rev
	a.ins += ins
	a.del += del
	if len(a.clients) < maxActivityClients && !slices.Contains(a.clients, client) {
		a.clients = append(a.clients, client)
	}
}

func (a *activity) merge(b *activity) {
	if a.first == 0 {
		a.first = b.first
	}
	a.last = b.last
	a.ins += b.ins
	a.del += b.del
	for _, c := range b.clients {
		if len(a.clients) < maxActivityClients && !slices.Contains(a.clients, c) {
			a.clients = append(a.clients, c)
		}
	}
}

// activity payload: first uvarint | last uvarint | inserted uvarint |
// deleted uvarint | client count uvarint | clients, each a string.
func appendActivity(b []byte, a *activity) []byte {
	start := len(b)
	b = append(b, valueVersion)
	b = binary.AppendUvarint(b, uint64(a.first))
	b = binary.AppendUvarint(b, uint64(a.last))
	b = binary.AppendUvarint(b, uint64(a.ins))
	b = binary.AppendUvarint(b, uint64(a.del))
	b = binary.AppendUvarint(b, uint64(len(a.clients)))
	for _, c := range a.clients {
		b = appendString(b, c)
	}
	return seal(b, start)
}

func decodeActivity(v []byte) (activity, error) {
	p, err := unseal(v)
	if err != nil {
		return activity{}, err
	}
	r := reader{b: p}
	var a activity
	a.first = int64(r.uvarint())
	a.last = int64(r.uvarint())
	a.ins = int64(r.uvarint())
	a.del = int64(r.uvarint())
	n := r.uvarint()
	if r.err != nil || n > maxActivityClients || a.first > a.last || a.first <= 0 {
		return activity{}, errBadValue
	}
	a.clients = make([]string, n)
	for i := range a.clients {
		a.clients[i] = r.str()
	}
	return a, r.done()
}

// minuteOf returns t's minute since the Unix epoch; times before it (the
// zero time of a record stored without one) count as minute 0.
func minuteOf(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	return s / 60
}

// addActivity adds recs, whose times are already clamped, to the index of
// a document whose latest op was at last.
func addActivity(docs *bbolt.Bucket, keys docKeys, last time.Time, recs []encodedRecord) error {
	var (
		cur    activity
		minute int64 = -1
		dirty  bool
	)
	if !last.IsZero() {
		minute = minuteOf(last)
		if v := docs.Get(keys.activity(minute)); v != nil {
			// The index is derived from the op log: a damaged entry is
			// started afresh rather than failing every append after it.
			if a, err := decodeActivity(v); err == nil {
				cur = a
			}
		}
	}
	for _, r := range recs {
		if m := minuteOf(r.rec.Time); m != minute {
			if dirty {
				if err := docs.Put(keys.activity(minute), appendActivity(nil, &cur)); err != nil {
					return err
				}
			}
			cur, minute = activity{}, m
		}
		cur.add(r.rec.Rev, r.ins, r.del, r.rec.Client)
		dirty = true
	}
	if !dirty {
		return nil
	}
	return docs.Put(keys.activity(minute), appendActivity(nil, &cur))
}

// Bucket summarises the revisions a document made in one period.
type Bucket struct {
	Start             time.Time // the period's start, UTC
	FirstRev, LastRev int64
	Count             int64 // revisions, LastRev-FirstRev+1
	Inserted, Deleted int64 // code points
	Clients           []string
}

// Activity returns, oldest first, the periods of length unit (a whole
// number of minutes dividing a day, e.g. a minute, an hour or a day,
// aligned in UTC) in which document id made revisions after rev after,
// with what they did: at most limit of them (limit <= 0 means 1000). A
// further page starts after the LastRev of the last bucket. Each bucket
// names at most 16 clients.
func (db *DB) Activity(ctx context.Context, id string, after int64, unit time.Duration, limit int) ([]Bucket, error) {
	if unit < time.Minute || unit%time.Minute != 0 || (24*time.Hour)%unit != 0 {
		return nil, fmt.Errorf("activity of doc %s: bucket of %v: %w", id, unit, ErrInvalid)
	}
	if limit <= 0 || limit > defaultOpsLimit {
		limit = defaultOpsLimit
	}
	after = max(after, 0)
	step := int64(unit / time.Minute)
	out := []Bucket{}
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		m, keys, err := readMeta(tx, id)
		if err != nil || after >= m.Rev {
			return err
		}
		// The record after `after` tells where to start: its minute is at
		// most that of its entry (raw times are at most the clamped ones
		// the index files by).
		var startMin int64
		if err := scanOps(tx, keys, id, after+1, after+1, func(rec Record) bool {
			startMin = minuteOf(rec.Time)
			return false
		}); err != nil {
			return err
		}
		var (
			cur      activity
			curStart int64 = -1
		)
		emit := func() {
			out = append(out, Bucket{
				Start:    time.Unix(curStart*60, 0).UTC(),
				FirstRev: cur.first, LastRev: cur.last, Count: cur.last - cur.first + 1,
				Inserted: cur.ins, Deleted: cur.del, Clients: cur.clients,
			})
		}
		c := tx.Bucket(bucketDocs).Cursor()
		for k, v := c.Seek(keys.activity(startMin)); k != nil; k, v = c.Next() {
			minute, ok := keys.activityMinute(k)
			if !ok {
				break
			}
			a, err := decodeActivity(v)
			if err != nil {
				return fmt.Errorf("doc %s activity of minute %d: %v: %w", id, minute, err, ErrCorrupt)
			}
			if a.last <= after {
				continue
			}
			if a.first <= after {
				// The page starts inside this minute: count its part.
				var part activity
				if err := scanRevisions(tx, keys, id, after+1, a.last, func(r Revision) bool {
					part.add(r.Rev, r.Inserted, r.Deleted, r.Client)
					return true
				}); err != nil {
					return err
				}
				a = part
			}
			start := minute - minute%step
			if start != curStart {
				if curStart >= 0 {
					emit()
					if len(out) == limit {
						return nil
					}
				}
				cur, curStart = activity{}, start
			}
			cur.merge(&a)
		}
		if curStart >= 0 {
			emit()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RevAt returns the latest revision of document id committed at or
// before t: 0 if t is before its first op, its head if t is after its
// latest.
func (db *DB) RevAt(ctx context.Context, id string, t time.Time) (int64, error) {
	var rev int64
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		m, keys, err := readMeta(tx, id)
		if err != nil || m.Rev == 0 {
			return err
		}
		if !m.Updated.IsZero() && !t.Before(m.Updated) {
			rev = m.Rev
			return nil
		}
		if t.Unix() < 0 {
			return nil
		}
		want := minuteOf(t)
		c := tx.Bucket(bucketDocs).Cursor()
		var k, v []byte
		if k, _ = c.Seek(keys.activity(want + 1)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		minute, ok := keys.activityMinute(k)
		if !ok {
			return nil // no entry at or before t's minute
		}
		a, err := decodeActivity(v)
		if err != nil {
			return fmt.Errorf("doc %s activity of minute %d: %v: %w", id, minute, err, ErrCorrupt)
		}
		if minute < want {
			rev = a.last
			return nil
		}
		// Within t's own minute, walk its records with the times the index
		// filed them by: never before the minute, never decreasing.
		rev = a.first - 1
		clamp := time.Unix(minute*60, 0)
		return scanRevisions(tx, keys, id, a.first, a.last, func(r Revision) bool {
			if r.Time.After(clamp) {
				clamp = r.Time
			}
			if clamp.After(t) {
				return false
			}
			rev = r.Rev
			return true
		})
	})
	return rev, err
}
