package jetstream

import (
	"container/list"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// The seek cache: where a document's revisions lie in the op stream.
//
// seek finds the message holding a revision by binary search over the
// stream's sequences, one read ("the subject's next message at or after
// n") a step: about 14 round trips in a stream of 16,000 messages. Every
// message this node reads or writes of a document tells where some of its
// revisions are (its sequence, its first and last revision), so the store
// keeps those points, per document, and seek starts from the tightest
// ones: the greatest known message whose last revision is at or before the
// one sought bounds the search from below, the least known one after it
// from above, and a known message holding it is the answer without a read.
//
// Points are learned from seek's probes and every other single read
// (nextMsg), from every message a range read hands on (scanOne), from the
// subject's last message (last) and from appends (advance).
//
// Memory is bounded: at most seekDocPoints points a document (past it the
// points closest to their neighbours are dropped, which keeps the rest
// spread over the stream), at most seekTotalPoints points and seekDocs
// documents in all, the least recently used document dropped first.
//
// It is only a cache; what makes it safe:
//   - Within one life of a document, a point is a fact: stream sequences
//     never change, and a subject's messages hold consecutive revisions in
//     sequence order.
//   - Delete drops the document's points on this node (Forget). Another
//     node may keep points of a document deleted and created again under
//     the same id; they are all at sequences before any message of the new
//     document (sequences only grow), so a bound or hit from them can only
//     make seek answer early: a sequence before the one sought, from which
//     the caller's read skips the records it does not want. The first
//     message of the new document this node then reads contradicts the
//     old points (a later sequence holding a revision they already hold),
//     and the document's points are dropped.
//   - Messages removed by stream limits (the op stream sets none, but an
//     operator could) go from the oldest, so a point of a removed message
//     also only makes seek answer early, and the next read from it finds
//     the first message that remains, as without the cache. A search whose
//     probe runs past a known message (it was removed) drops the points.
const (
	seekDocPoints   = 4096
	seekTotalPoints = 1 << 19 // 12 MiB of points
	seekDocs        = 16384
)

// seekPoint is a message of a document's subject: its stream sequence and
// the revisions it holds, first..last. first may be later than the
// message's real first revision (an append split in parts tells only the
// last part's last revision), never earlier.
type seekPoint struct {
	seq         uint64
	first, last int64
}

// seekDoc is one document's points, ordered by sequence (and so by
// revision).
type seekDoc struct {
	id   string
	pts  []seekPoint
	elem *list.Element // in seekCache.lru
}

// seekCache holds the points of the documents this node used last. The
// nil *seekCache is an empty cache that learns nothing.
type seekCache struct {
	// Limits, the constants above (tests lower them).
	docPoints, totalPoints, docs int

	mu    sync.Mutex
	byID  map[string]*seekDoc
	lru   list.List // of *seekDoc, most recently used first
	total int       // points in all documents

	// probes counts seek's reads, for tests and measurement.
	probes atomic.Int64
}

func newSeekCache() *seekCache {
	return &seekCache{docPoints: seekDocPoints, totalPoints: seekTotalPoints, docs: seekDocs,
		byID: make(map[string]*seekDoc)}
}

// seekCache returns s's cache of where documents' revisions are.
func (s *Store) seekCache() *seekCache { return s.seeks }

// seekNote records that the message at stream sequence seq of subj (a
// document's op subject) holds revisions first..last.
func (s *Store) seekNote(subj string, seq uint64, first, last int64) {
	id, ok := strings.CutPrefix(subj, subjectOps)
	if !ok || seq == 0 || first < 1 || last < first {
		return
	}
	s.seekCache().note(id, seekPoint{seq: seq, first: first, last: last})
}

// note adds p to document id's points. A point that contradicts one
// already held (the same sequence with other revisions, or revisions out
// of sequence order) means the document was deleted and made again, or
// lost messages: the old points go.
func (c *seekCache) note(id string, p seekPoint) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.use(id)
	i, found := slices.BinarySearchFunc(d.pts, p.seq, func(q seekPoint, seq uint64) int {
		switch {
		case q.seq < seq:
			return -1
		case q.seq > seq:
			return 1
		}
		return 0
	})
	switch {
	case found && d.pts[i].last == p.last:
		d.pts[i].first = min(d.pts[i].first, p.first)
		return
	case found,
		i > 0 && d.pts[i-1].last >= p.first,
		i < len(d.pts) && d.pts[i].first <= p.last:
		c.total -= len(d.pts)
		d.pts = append(d.pts[:0], p)
		c.total++
	default:
		d.pts = slices.Insert(d.pts, i, p)
		c.total++
		if len(d.pts) > c.docPoints {
			c.total -= len(d.pts)
			d.pts = thin(d.pts, c.docPoints*3/4)
			c.total += len(d.pts)
		}
	}
	c.evict(d)
}

// use returns document id's entry, made most recently used; c.mu held.
func (c *seekCache) use(id string) *seekDoc {
	if d, ok := c.byID[id]; ok {
		c.lru.MoveToFront(d.elem)
		return d
	}
	d := &seekDoc{id: id}
	d.elem = c.lru.PushFront(d)
	c.byID[id] = d
	return d
}

// evict drops the least recently used documents other than keep until
// the cache is within its limits; c.mu held.
func (c *seekCache) evict(keep *seekDoc) {
	for c.total > c.totalPoints || len(c.byID) > c.docs {
		d := c.lru.Back().Value.(*seekDoc)
		if d == keep {
			return
		}
		c.remove(d)
	}
}

func (c *seekCache) remove(d *seekDoc) {
	c.lru.Remove(d.elem)
	delete(c.byID, d.id)
	c.total -= len(d.pts)
}

// drop forgets document id's points.
func (c *seekCache) drop(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.byID[id]; ok {
		c.remove(d)
	}
}

// thin returns pts cut down to about n points, keeping the first and the
// last: it drops, pass by pass, the points whose neighbours lie closest
// together, so that the points kept stay spread over the stream (a
// range read learns runs of adjacent messages, which narrow a search
// little more than their ends do).
func thin(pts []seekPoint, n int) []seekPoint {
	n = max(n, 2)
	for pass := 0; len(pts) > n && pass < 8; pass++ {
		spans := make([]uint64, 0, len(pts)-2)
		for i := 1; i+1 < len(pts); i++ {
			spans = append(spans, pts[i+1].seq-pts[i-1].seq)
		}
		slices.Sort(spans)
		drop := len(pts) - n
		cut := spans[min(drop, len(spans))-1]
		out := pts[:1]
		for i := 1; i+1 < len(pts); i++ {
			if drop > 0 && pts[i+1].seq-out[len(out)-1].seq <= cut {
				drop--
				continue
			}
			out = append(out, pts[i])
		}
		pts = append(out, pts[len(pts)-1])
	}
	for len(pts) > n {
		// Whatever the spans: every other point.
		out := pts[:0]
		for i, p := range pts {
			if i%2 == 0 || i == len(pts)-1 {
				out = append(out, p)
			}
		}
		pts = out
	}
	return slices.Clip(pts)
}

// seekBounds is where the message holding a revision lies: at hi if
// exact, else in lo..hi, the first message of the subject there whose last
// revision is past the one before the one sought. next says that the
// message before lo holds that one, so the answer is the subject's first
// message from lo on (one read).
type seekBounds struct {
	lo, hi uint64
	exact  bool
	next   bool
	// cached says that hi is a point held, not the subject's last
	// message.
	cached bool
}

// bounds returns where the message holding revision after+1 of document
// id lies, given its last message e (after < e.first-1): from the points
// held, else anywhere up to e.
func (c *seekCache) bounds(id string, after int64, e end) seekBounds {
	b := seekBounds{lo: 1, hi: e.seq}
	if c == nil {
		return b
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.byID[id]
	if !ok {
		return b
	}
	c.lru.MoveToFront(d.elem)
	// The first point whose last revision is past after.
	i, _ := slices.BinarySearchFunc(d.pts, after, func(q seekPoint, after int64) int {
		if q.last <= after {
			return -1
		}
		return 1
	})
	if i > 0 {
		p := d.pts[i-1]
		if p.seq >= e.seq {
			// Revisions at or before after past e: points of an
			// older life of the document.
			c.remove(d)
			return seekBounds{lo: 1, hi: e.seq}
		}
		b.lo, b.next = p.seq+1, p.last == after
	}
	if i < len(d.pts) && d.pts[i].seq <= e.seq {
		p := d.pts[i]
		b.hi, b.exact, b.cached = p.seq, p.first <= after+1, true
	}
	return b
}

// search finds the first message of document id's subject in b.lo..b.hi
// whose last revision is past after, b.hi if none before it is (b.hi is a
// message of the subject: the answer when the bounds are right). Each
// probe reads "the subject's next message at or after n". ok is false if
// a probe found no message of the subject where one was known: the bounds
// came from points of messages no longer stored.
func (s *Store) search(ctx context.Context, id string, after int64, b seekBounds) (seq uint64, ok bool, err error) {
	if b.exact {
		return b.hi, true, nil
	}
	c := s.seekCache()
	subj := opsSubject(id)
	lo, hi, best := b.lo, b.hi-1, b.hi
	first := true
	for lo <= hi {
		mid := lo + (hi-lo)/2
		if first && b.next {
			mid = lo // the answer, unless the points are stale
		}
		first = false
		if c != nil {
			c.probes.Add(1)
		}
		m, err := s.nextMsg(ctx, mid, subj)
		if err != nil {
			return 0, false, fmt.Errorf("doc %s: seek rev %d: %w", id, after+1, err)
		}
		if m.Sequence > best && b.cached {
			return 0, false, nil
		}
		_, last, err := revRange(m.Header)
		if err != nil {
			return 0, false, fmt.Errorf("doc %s seq %d: %v: %w", id, m.Sequence, err, ErrCorrupt)
		}
		if last > after {
			// Nothing of the subject lies in [mid, m.Sequence).
			best = m.Sequence
			if mid == 1 {
				break
			}
			hi = mid - 1
		} else {
			lo = m.Sequence + 1
		}
	}
	return best, true, nil
}
