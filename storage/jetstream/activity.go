package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// The activity index: cluster mode's counterpart of package storage's
// per-minute index, so that /activity reads a few small values rather
// than every record it summarises.
//
// The revisions of a document are cut into chunks of activityChunk (chunk
// k holds revisions (k-1)*activityChunk+1 .. k*activityChunk), and each
// complete chunk's summary by minute is one value of the bucket
// collab_activity, key "<doc>.<k>": per minute in which its revisions were
// committed, their range, the code points inserted and deleted, and the
// first 16 clients, as package storage files them. A minute that spans two
// chunks has a part in each; parts merge to the whole. Record times count
// as at least the time of every record before them (package storage
// raises them so when it stores them), so each chunk also keeps the latest
// time through its end, which seeds the next.
//
// The log is immutable, so a chunk never changes once complete: the
// snapshotter (snapshot.go) writes the chunks a document has completed
// after each snapshot, off every editor's path, reading each record once
// more; two nodes writing one chunk write the same value. Activity reads
// the chunks its page covers (one direct get per activityChunk revisions,
// however many records they hold) and the records after the last chunk
// written, which the snapshot interval bounds (about 1,000 plus one chunk)
// rather than the document's length. A chunk that is missing (not written
// yet, a replica that lags, a document older than the index: the next
// snapshot writes them) or too large for one message is read from the
// records instead: slower, never different.

// defaultActivityChunk is the chunk length in revisions. Fixed, so that
// every node reads every node's chunks. A chunk's value holds at most one
// entry per revision, each naming at most 16 clients.
const defaultActivityChunk = 500

// bucketActivity holds the activity index.
const bucketActivity = "collab_activity"

// wireActivity is a chunk's value.
type wireActivity struct {
	V int `json:"v"`
	// Clamp is the latest record time (Unix nanoseconds) through the
	// chunk's last revision.
	Clamp   int64        `json:"clamp"`
	Minutes []wireMinute `json:"minutes"`
}

// wireMinute is the part of one minute in a chunk.
type wireMinute struct {
	Minute  int64    `json:"m"`
	First   int64    `json:"first"`
	Last    int64    `json:"last"`
	Ins     int64    `json:"ins"`
	Del     int64    `json:"del"`
	Clients []string `json:"clients,omitempty"`
}

// activity accumulates one Bucket, or one minute.
type activity struct {
	start       int64 // Unix minute
	first, last int64
	ins, del    int64
	clients     []string
}

func (a *activity) add(r Revision) {
	a.merge(activity{first: r.Rev, last: r.Rev, ins: r.Inserted, del: r.Deleted, clients: []string{r.Client}})
}

// merge adds b, which follows a's revisions.
func (a *activity) merge(b activity) {
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

func (a *activity) bucket() Bucket {
	return Bucket{
		Start:    time.Unix(a.start*60, 0).UTC(),
		FirstRev: a.first, LastRev: a.last, Count: a.last - a.first + 1,
		Inserted: a.ins, Deleted: a.del, Clients: a.clients,
	}
}

// activityPage gathers minutes into the buckets of one Activity page.
type activityPage struct {
	step  int64 // the bucket's length in minutes
	limit int
	out   []Bucket
	cur   *activity
}

// add merges minute's part a into the page; false once the page is full
// (a is then not in it).
func (p *activityPage) add(minute int64, a activity) bool {
	start := minute - minute%p.step
	if p.cur == nil || start != p.cur.start {
		if p.cur != nil {
			p.out = append(p.out, p.cur.bucket())
			if len(p.out) == p.limit {
				p.cur = nil
				return false
			}
		}
		p.cur = &activity{start: start}
	}
	p.cur.merge(a)
	return true
}

func (p *activityPage) buckets() []Bucket {
	if p.cur != nil {
		p.out = append(p.out, p.cur.bucket())
		p.cur = nil
	}
	return p.out
}

// Activity returns, oldest first, the periods of length unit (a whole
// number of minutes dividing a day: a minute, an hour, a day; aligned in
// UTC) in which document id made revisions after after, with what they
// did: at most limit of them (limit <= 0 or over 1000 means 1000). A
// further page starts after the last bucket's LastRev. Each bucket names
// at most 16 clients. A record's time counts as at least the time of every
// record before it (see the file comment of history.go; where the index
// does not reach back, of every record before it in the page).
//
// Cost: the index's chunks the page covers, one direct get per 500
// revisions, plus the records of the minute the page starts in and those
// after the last chunk written (see the activity index above); without
// an index (a document younger than its first snapshot), every record
// after after.
func (s *Store) Activity(ctx context.Context, id string, after int64, unit time.Duration, limit int) ([]Bucket, error) {
	if unit < time.Minute || unit%time.Minute != 0 || (24*time.Hour)%unit != 0 {
		return nil, fmt.Errorf("activity of doc %s: bucket of %v: %w", id, unit, ErrInvalid)
	}
	if limit <= 0 || limit > historyLimit {
		limit = historyLimit
	}
	if _, err := s.meta(ctx, id); err != nil {
		return nil, err
	}
	e, err := s.last(ctx, id)
	if err != nil {
		return nil, err
	}
	after = max(after, 0)
	p := &activityPage{step: int64(unit / time.Minute), limit: limit, out: []Bucket{}}
	if after >= e.rev {
		return p.out, nil
	}
	size := s.actChunk
	// pos: revisions through pos are summarised; clamp: the latest
	// record time through pos, when known.
	pos, known := after, false
	var clamp time.Time
	if k := after / size; k == 0 {
		pos = 0 // chunk 1 holds after+1, and no time comes before it
	} else {
		// The chunk before the page's first: the clamp at its end.
		if w := s.readChunk(ctx, id, k); w != nil {
			// Chunk k+1 holds after+1; if it cannot be read, the scan
			// below starts at k's end.
			pos, known, clamp = k*size, true, time.Unix(0, w.Clamp).UTC()
		}
	}
	for k := pos/size + 1; pos%size == 0 && k*size <= e.rev; k++ {
		w := s.readChunk(ctx, id, k)
		if w == nil {
			break
		}
		for _, m := range w.Minutes {
			if m.Last <= after {
				continue
			}
			a := activity{first: m.First, last: m.Last, ins: m.Ins, del: m.Del, clients: m.Clients}
			if m.First <= after {
				// The page starts inside this minute: count its part.
				var part activity
				err := s.records(ctx, id, after, func(_ uint64, r Record) error {
					part.add(describe(r))
					if r.Rev == m.Last {
						return errStop
					}
					return nil
				})
				if err != nil {
					return nil, err
				}
				a = part
			}
			if !p.add(m.Minute, a) {
				return p.out, nil
			}
		}
		pos, known, clamp = k*size, true, time.Unix(0, w.Clamp).UTC()
	}
	// The records after the index; without one, from after with the
	// times of the page only.
	if !known {
		pos, clamp = after, time.Time{}
	}
	err = s.records(ctx, id, pos, func(_ uint64, r Record) error {
		if r.Time.After(clamp) {
			clamp = r.Time
		}
		if r.Rev <= after {
			return nil
		}
		d := describe(r)
		if !p.add(minuteOf(clamp), activity{first: r.Rev, last: r.Rev, ins: d.Inserted, del: d.Deleted, clients: []string{r.Client}}) {
			return errStop
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p.buckets(), nil
}

// activityKey names chunk k of document id's activity index.
func activityKey(id string, k int64) string { return id + "." + strconv.FormatInt(k, 10) }

// readChunk returns chunk k of document id's activity index, or nil when
// it cannot be read (missing, or any failure: the caller reads the
// records instead).
func (s *Store) readChunk(ctx context.Context, id string, k int64) *wireActivity {
	e, err := s.activity.Get(ctx, activityKey(id, k))
	if err != nil {
		if !errors.Is(err, natsjs.ErrKeyNotFound) {
			s.log.Debug("jetstream: activity index", "doc", id, "chunk", k, "err", err)
		}
		return nil
	}
	var w wireActivity
	if err := json.Unmarshal(e.Value(), &w); err != nil || w.V != 1 {
		s.log.Warn("jetstream: activity index: undecodable chunk; reading the records", "doc", id, "chunk", k, "err", err)
		return nil
	}
	return &w
}

// indexActivity writes the chunks of document id's activity index that
// revisions through rev complete and that are not written yet, oldest
// first. The snapshotter calls it after each snapshot.
func (s *Store) indexActivity(ctx context.Context, id string, rev int64) error {
	size := s.actChunk
	top := rev / size
	if top < 1 {
		return nil
	}
	// The first missing chunk: usually top, or none.
	k := top
	var prev *wireActivity
	for ; k >= 1; k-- {
		if w := s.readChunk(ctx, id, k); w != nil {
			prev = w
			break
		}
	}
	if k == top {
		return nil
	}
	var clamp time.Time
	if prev != nil {
		clamp = time.Unix(0, prev.Clamp).UTC()
	}
	from := k + 1 // the chunk being built
	w := &wireActivity{V: 1}
	var cur *wireMinute
	limit := s.nc.MaxPayload() - 1024
	err := s.records(ctx, id, k*size, func(_ uint64, r Record) error {
		if r.Time.After(clamp) {
			clamp = r.Time
		}
		m := minuteOf(clamp)
		if cur == nil || cur.Minute != m {
			w.Minutes = append(w.Minutes, wireMinute{Minute: m, First: r.Rev})
			cur = &w.Minutes[len(w.Minutes)-1]
		}
		d := describe(r)
		cur.Last = r.Rev
		cur.Ins += d.Inserted
		cur.Del += d.Deleted
		if len(cur.Clients) < maxActivityClients && !slices.Contains(cur.Clients, r.Client) {
			cur.Clients = append(cur.Clients, r.Client)
		}
		if r.Rev < from*size {
			return nil
		}
		// Chunk from is complete.
		w.Clamp = clamp.UnixNano()
		if clamp.IsZero() {
			w.Clamp = 0
		}
		data, err := json.Marshal(w)
		if err != nil {
			return err
		}
		if int64(len(data)) > limit {
			// Too large for one message: left out, and read from the
			// records. Later chunks then have no clamp to start from,
			// so none is written after it.
			s.log.Warn("jetstream: activity index: chunk too large; its records are read instead", "doc", id, "chunk", from, "bytes", len(data))
			return errStop
		}
		if _, err := s.activity.Put(ctx, activityKey(id, from), data); err != nil {
			return err
		}
		if from == top {
			return errStop
		}
		from++
		w, cur = &wireActivity{V: 1}, nil
		return nil
	})
	if err != nil {
		return fmt.Errorf("doc %s: activity index: %w", id, err)
	}
	return nil
}

// deleteActivity deletes document id's activity index through revision
// rev.
func (s *Store) deleteActivity(ctx context.Context, id string, rev int64) error {
	var errs []error
	for k := int64(1); k <= rev/s.actChunk; k++ {
		if err := s.activity.Delete(ctx, activityKey(id, k)); err != nil && !errors.Is(err, natsjs.ErrKeyNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
