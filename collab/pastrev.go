package collab

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"sync"
	"time"
	"unsafe"
)

// A document's text at a past revision (GET ...?rev= or ?at=) is shared
// the way its head is (snapshot.go): requests for the same document and
// revision get one copy, rebuilt from the store once while they wait for
// it, and its JSON encoding is made once too. Once no request uses it, it
// stays for reuse among the most recently used, up to pastCacheBytes in
// all. Rebuilding holds a reservation under the server's budget of held
// bytes (held.go) for as long as it runs, and the writes of the text hold
// the text, so that requests for many different revisions cannot add up
// past the budget either: past it they are answered 503.

// pastCacheBytes bounds the past revisions' texts (and JSON) kept once no
// request uses them.
const pastCacheBytes = 32 << 20

// pastRebuildPerChar is the reservation for rebuilding one past revision,
// per code point of the largest document allowed (MaxDocChars), whose
// length at that revision is not known before: package storage allocated
// 44 MB to rebuild a revision of 2,000,000 three-byte code points (its
// snapshot, the runes, the text), so at the default MaxDocChars at most
// five rebuilds fit in the default budget at once.
const pastRebuildPerChar = 24

// pastRebuildWait is how long a rebuild waits for room under the budget
// before its requests are refused.
const pastRebuildWait = 2 * time.Second

// errHeldFull is returned when the budget of held bytes has no room.
var errHeldFull = errors.New("no room under the budget of held response bytes")

type pastKey struct {
	id  string
	rev int64
}

// pastText is a document's text at one revision, shared by the requests
// for it. Its fields other than those pastTexts guards are set before
// ready is closed and never changed after, but for json.
type pastText struct {
	key   pastKey
	ready chan struct{}

	text   string
	viewID string
	err    error // why it could not be rebuilt; the entry left the cache

	// jsonMu guards json: text as a JSON string, quotes included; nil
	// until a request needs it.
	jsonMu sync.Mutex
	json   []byte

	// Guarded by pastTexts.mu.
	refs     int    // requests using it
	used     uint64 // pastTexts.tick when it was last let go of
	idleSize int64  // its size, while refs is 0
}

// pastTexts holds the pastText in use and the recently used. It is safe
// for concurrent use.
type pastTexts struct {
	max int64 // bytes of idle entries kept

	mu   sync.Mutex
	m    map[pastKey]*pastText
	idle int64 // bytes of the entries with no request using them
	tick uint64
}

func newPastTexts(max int64) *pastTexts {
	return &pastTexts{max: max, m: make(map[pastKey]*pastText)}
}

// get returns the entry for k, with a reference the caller gives back
// through put. first reports that the entry is new: the caller must
// rebuild it (or fail it) and then close its ready.
func (c *pastTexts) get(k pastKey) (e *pastText, first bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e = c.m[k]; e != nil {
		if e.refs == 0 {
			c.idle -= e.idleSize
		}
		e.refs++
		return e, false
	}
	e = &pastText{key: k, ready: make(chan struct{}), refs: 1}
	c.m[k] = e
	return e, true
}

// put gives back a reference from get. The last one makes the entry
// idle, and the least recently used idle entries go while they take more
// than c.max.
func (c *pastTexts) put(e *pastText) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.refs--; e.refs > 0 || c.m[e.key] != e {
		return
	}
	e.jsonMu.Lock()
	e.idleSize = int64(len(e.text) + len(e.json))
	e.jsonMu.Unlock()
	c.tick++
	e.used = c.tick
	c.idle += e.idleSize
	for c.idle > c.max {
		var old *pastText
		for _, o := range c.m {
			if o.refs == 0 && (old == nil || o.used < old.used) {
				old = o
			}
		}
		delete(c.m, old.key)
		c.idle -= old.idleSize
	}
}

// fail takes an entry that could not be rebuilt out of the cache, so that
// the next request tries again.
func (c *pastTexts) fail(e *pastText, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.err = err
	if c.m[e.key] == e {
		delete(c.m, e.key)
	}
}

// pastText returns document id's text at revision rev, shared; the caller
// gives it back with s.past.put when it has written it.
func (s *Server) pastText(ctx context.Context, id string, rev int64) (*pastText, error) {
	e, first := s.past.get(pastKey{id, rev})
	if first {
		s.rebuildPast(e)
	} else {
		select {
		case <-e.ready:
		case <-ctx.Done():
			s.past.put(e)
			return nil, ctx.Err()
		}
		if e.err == nil {
			// Made for an earlier request: the document may have been
			// deleted since. Asking for the revisions after the last
			// reads the document's meta alone.
			_, err := s.store.Revisions(ctx, id, math.MaxInt64, 1)
			if err != nil {
				s.past.put(e)
				return nil, err
			}
		}
	}
	if e.err != nil {
		s.past.put(e)
		return nil, e.err
	}
	return e, nil
}

// loadPastText returns document id's text at revision rev, for a caller
// that works on it rather than sends it (a write's diff, a stream's
// caret, a revert): through pastText, so that its rebuild is shared and
// reserved under the held-bytes budget like a reader's.
func (s *Server) loadPastText(ctx context.Context, id string, rev int64) (string, error) {
	e, err := s.pastText(ctx, id, rev)
	if err != nil {
		return "", err
	}
	defer s.past.put(e)
	return e.text, nil
}

// rebuildPast reads e's text from the store for every request waiting on
// it, under the server's context rather than the first request's, whose
// client may go away while the others wait. It first reserves what a
// rebuild may take, waiting a little for room: other rebuilds end soon.
func (s *Server) rebuildPast(e *pastText) {
	defer close(e.ready)
	reserve := int64(s.opts.MaxDocChars) * pastRebuildPerChar
	if !s.held.holdWait(s.ctx, unsafe.Pointer(e), reserve, pastRebuildWait) {
		s.past.fail(e, errHeldFull)
		return
	}
	defer s.held.release(unsafe.Pointer(e))
	ctx, cancel := context.WithTimeout(s.ctx, storeTimeout)
	defer cancel()
	d, err := s.store.LoadAt(ctx, e.key.id, e.key.rev)
	if err != nil {
		s.past.fail(e, err)
		return
	}
	e.text, e.viewID = d.Text, d.Meta.ViewID
}

// pastJSON returns e's text as a JSON string, made once, under a
// reservation of the most it can take (6 bytes a byte, for \u escapes);
// false when there is no room for that.
func (s *Server) pastJSON(e *pastText) ([]byte, bool) {
	e.jsonMu.Lock()
	defer e.jsonMu.Unlock()
	if e.json == nil {
		key := unsafe.Pointer(&e.json)
		if !s.held.hold(key, int64(6*len(e.text)+2)) {
			return nil, false
		}
		e.json, _ = json.Marshal(e.text) // a string always encodes
		s.held.release(key)
	}
	return e.json, true
}
