package collab

// Comments anchored in the text (docs/comments.md): threads on a range of a
// document, owned by the document's hub like its text and presence. Their
// ranges move through every op with transformRanges, the code that moves
// selections, so every node and client that applies the same ops agrees
// on where a thread sits. Only the hub goroutine touches a commentSet;
// handlers reach it with a commentReq.
//
// Durability: each thread is one record of the CommentStore, holding its
// range at the revision it was written, rewritten when the thread
// changes. The anchors of all threads, which every op moves, are one
// small record more (anchorsKey), written whenever the hub snapshots the
// document and, in the background, every commentSaveEvery revisions. A
// hub loads them lazily, on the first request that needs them, and moves
// each anchor from the newer of its two records through the ops
// committed since.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/ot"
)

// CommentStore keeps a document's comment records. collab declares it;
// cmd/collabd adapts package storage (and storage/jetstream) to it.
// Records are opaque bytes to the store, keyed by strings of at most 64
// bytes. Implementations must be safe for concurrent use, make
// PutComments durable before it returns, and remove a document's records
// when Store.Delete removes the document.
type CommentStore interface {
	// Comments returns every record of document id, by key; an empty map
	// when it has none.
	Comments(ctx context.Context, id string) (map[string][]byte, error)
	// PutComments stores put, replacing records with the same keys, and
	// removes the records of del, in one durable write.
	PutComments(ctx context.Context, id string, put map[string][]byte, del []string) error
}

// Comment limits' defaults (Options.Comment*).
const (
	defaultMaxCommentBytes    = 10 << 10
	defaultMaxComments        = 1000
	defaultMaxCommentDocBytes = 4 << 20
	defaultMaxReplies         = 500
	defaultCommentRate        = 2
	defaultCommentBurst       = 30
	// commentSaveEvery is how many revisions a hub moves the anchors
	// before it stores them all again, bounding the ops a load replays.
	commentSaveEvery = 1024
	// maxQuoteRunes bounds the text a thread remembers of its range, to
	// find it again when deleted text comes back.
	maxQuoteRunes = 1024
	// settingsKey is the record of a document's comment settings, and
	// anchorsKey that of all its anchors; thread keys are UUIDs, so
	// neither can clash.
	settingsKey = "settings"
	anchorsKey  = "anchors"
)

// anchorsRecord is the anchors of every thread at revision Rev: by
// thread id, [from, to, detached (0 or 1)].
type anchorsRecord struct {
	Rev     int64             `json:"rev"`
	Anchors map[string][3]int `json:"anchors"`
}

// thread is one comment thread, as stored and, with Quote cleared, as
// sent. Range is its anchor at the revision it was read or stored at.
type thread struct {
	ID       string     `json:"id"`
	Range    Range      `json:"range"`
	Text     string     `json:"text"`
	Author   string     `json:"author"`
	Name     string     `json:"name"`
	Time     time.Time  `json:"time"`
	Edited   *time.Time `json:"edited,omitempty"`
	Resolved bool       `json:"resolved"`
	// Detached: the text it was on has been deleted; Range is empty, at
	// the place where that text was.
	Detached bool    `json:"detached"`
	Replies  []reply `json:"replies"`
	// Quote is the text of the range when the thread was created (if no
	// longer than maxQuoteRunes): when a detached thread sees it inserted
	// again at its place (an undo, a restore, a revert), it takes it back.
	Quote string `json:"quote,omitempty"`
	// Rev is the revision Range is at, in a stored record only.
	Rev int64 `json:"rev,omitempty"`
}

type reply struct {
	ID     string     `json:"id"`
	Text   string     `json:"text"`
	Author string     `json:"author"`
	Name   string     `json:"name"`
	Time   time.Time  `json:"time"`
	Edited *time.Time `json:"edited,omitempty"`
}

// bytes is what t holds in text, for the document's budget.
func (t *thread) bytes() int {
	n := len(t.Text) + len(t.Quote) + len(t.Name) + 128
	for _, r := range t.Replies {
		n += len(r.Text) + len(r.Name) + 96
	}
	return n
}

// commentSettings is a document's settings record.
type commentSettings struct {
	// Viewers lets the view id read the threads (GET /api/view/{viewId}/comments).
	Viewers bool `json:"viewers"`
}

// commentSet is a hub's comments. The zero value is an unloaded set.
type commentSet struct {
	loaded  bool
	threads []*thread
	// anchors[i] is threads[i]'s range at the hub's revision, all in one
	// slice so that an op moves them in one pass.
	anchors  []Range
	index    map[string]int // by thread id
	bytes    int
	settings commentSettings
	// movedRev is the revision of the anchors last stored (or in
	// flight); saving, when not nil, is closed once the background write
	// of the anchors ends.
	movedRev int64
	saving   chan struct{}
	// ahead holds, oldest first, records written at a revision this hub
	// has not applied yet (another node's, in cluster mode): each joins
	// the set, at its stored range, once the hub reaches its revision.
	ahead []*thread
}

// move moves every anchor through op, just applied: as a selection moves
// (transformRanges), so that text inserted inside a range widens it and a
// range whose text is deleted ends up empty where it was. That thread is
// then marked detached; a detached thread whose quote comes back at its
// place takes its range back.
func (cs *commentSet) move(op ot.Op) {
	if len(cs.anchors) == 0 {
		return
	}
	m := ot.NewIndexMap(op)
	for i := range cs.anchors {
		a := &cs.anchors[i]
		if a[0] == a[1] {
			// Empty: created so, or detached. Only these read their
			// thread, so that the usual op touches the anchors alone.
			// Most ops insert nothing where a detached thread sits: the
			// compiled op says so before the op is walked for its quote.
			if t := cs.threads[i]; t.Detached && t.Quote != "" {
				if from, to := m.Inserted(a[0]); to > from && to-from >= utf8.RuneCountInString(t.Quote) {
					if r, ok := reattach(op, a[0], t.Quote); ok {
						*a, t.Detached = r, false
						continue
					}
				}
			}
			a[0] = m.Map(a[0])
			a[1] = a[0]
			continue
		}
		a[0], a[1] = m.Map(a[0]), m.Map(a[1]) // as mapRanges moves selections
		if a[0] == a[1] {
			cs.threads[i].Detached = true
		}
	}
}

// catchUp adds the threads of ahead whose revision the hub, now at rev,
// has reached.
func (cs *commentSet) catchUp(rev int64) {
	for len(cs.ahead) > 0 && cs.ahead[0].Rev <= rev {
		t := cs.ahead[0]
		cs.ahead = cs.ahead[1:]
		r := t.Range
		t.Rev, t.Range = 0, Range{}
		cs.add(t, r)
	}
}

// reattach finds quote in the text that op inserts at pos, where a
// detached thread sits: the inserts of the run of deletes and inserts
// that pos lies in, which TransformIndex puts before pos. It returns the
// range of quote's first occurrence there.
func reattach(op ot.Op, pos int, quote string) (Range, bool) {
	if quote == "" {
		return Range{}, false
	}
	var ins strings.Builder     // the inserts of the current run
	i, out, runStart := 0, 0, 0 // base and target positions
	for _, c := range op {
		switch {
		case c.N > 0:
			if runStart <= pos && pos <= i {
				return findQuote(ins.String(), out, quote)
			}
			if i+c.N > pos {
				return Range{}, false // inside text the op keeps
			}
			i += c.N
			out += c.N
			runStart = i
			ins.Reset()
		case c.N < 0:
			i -= c.N
		default:
			ins.WriteString(c.S)
			out += utf8.RuneCountInString(c.S)
		}
	}
	if runStart <= pos && pos <= i {
		return findQuote(ins.String(), out, quote)
	}
	return Range{}, false
}

// findQuote looks for quote in inserted, the text that ends at target
// position end.
func findQuote(inserted string, end int, quote string) (Range, bool) {
	k := strings.Index(inserted, quote)
	if inserted == "" || k < 0 {
		return Range{}, false
	}
	start := end - utf8.RuneCountInString(inserted) + utf8.RuneCountInString(inserted[:k])
	return Range{start, start + utf8.RuneCountInString(quote)}, true
}

// add puts a thread in the set at range r.
func (cs *commentSet) add(t *thread, r Range) {
	if cs.index == nil {
		cs.index = make(map[string]int)
	}
	cs.index[t.ID] = len(cs.threads)
	cs.threads = append(cs.threads, t)
	cs.anchors = append(cs.anchors, r)
	cs.bytes += t.bytes()
}

// remove takes thread i out of the set, moving the last one into its
// place.
func (cs *commentSet) remove(i int) {
	t := cs.threads[i]
	cs.bytes -= t.bytes()
	delete(cs.index, t.ID)
	last := len(cs.threads) - 1
	if i != last {
		cs.threads[i], cs.anchors[i] = cs.threads[last], cs.anchors[last]
		cs.index[cs.threads[i].ID] = i
	}
	cs.threads[last] = nil
	cs.threads, cs.anchors = cs.threads[:last], cs.anchors[:last]
}

// get returns thread id and its index, or nil.
func (cs *commentSet) get(id string) (*thread, int) {
	i, ok := cs.index[id]
	if !ok {
		return nil, -1
	}
	return cs.threads[i], i
}

// wire returns a copy of thread i to send: its range at the head, no
// quote, no rev.
func (cs *commentSet) wire(i int) thread {
	t := *cs.threads[i]
	t.Range, t.Quote, t.Rev = cs.anchors[i], "", 0
	t.Replies = slices.Clone(t.Replies)
	if t.Replies == nil {
		t.Replies = []reply{}
	}
	return t
}

// list returns every thread to send, in the order of their ranges (and,
// on the same range, of their creation).
func (cs *commentSet) list() []thread {
	out := make([]thread, len(cs.threads))
	for i := range cs.threads {
		out[i] = cs.wire(i)
	}
	slices.SortFunc(out, func(a, b thread) int {
		if a.Range[0] != b.Range[0] {
			return a.Range[0] - b.Range[0]
		}
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// errNoComments is why comments cannot be kept: the server has no
// CommentStore.
var errNoComments = errors.New("this server keeps no comments")

// commentReq runs do on the hub goroutine, with the document's comments
// loaded (or h.comments.loaded false and err set), then closes done.
type commentReq struct {
	do   func(h *hub, err error)
	done chan struct{}
}

func (h *hub) handleComment(m commentReq) {
	defer close(m.done)
	m.do(h, h.loadComments())
}

// loadComments reads the document's comment records the first time they
// are needed and moves each through the ops committed after it was
// written.
func (h *hub) loadComments() error {
	cs := &h.comments
	if cs.loaded {
		return nil
	}
	st := h.srv.commentStore
	if st == nil {
		return errNoComments
	}
	ctx, cancel := context.WithTimeout(h.srv.ctx, storeTimeout)
	defer cancel()
	recs, err := st.Comments(ctx, h.id)
	if err != nil {
		return fmt.Errorf("load comments: %w", err)
	}
	var threads []*thread
	var anchors anchorsRecord
	for k, v := range recs {
		if k == anchorsKey {
			if err := json.Unmarshal(v, &anchors); err != nil {
				h.log.Error("comment anchors unreadable; using each thread's own", "err", err)
			}
			continue
		}
		if k == settingsKey {
			if err := json.Unmarshal(v, &cs.settings); err != nil {
				h.log.Error("comment settings unreadable; using defaults", "err", err)
			}
			continue
		}
		t := &thread{}
		if err := json.Unmarshal(v, t); err != nil || t.ID != k {
			h.log.Error("comment record unreadable; skipped", "key", k, "err", err)
			continue
		}
		// The anchors record, when newer, has moved the thread further.
		if a, ok := anchors.Anchors[t.ID]; ok && anchors.Rev > t.Rev && a[0] <= a[1] {
			t.Rev, t.Range, t.Detached = anchors.Rev, Range{a[0], a[1]}, a[2] == 1
		}
		threads = append(threads, t)
	}
	// Oldest record first: each op moves the threads written before it.
	slices.SortFunc(threads, func(a, b *thread) int { return cmp.Compare(a.Rev, b.Rev) })
	from := h.rev
	if len(threads) > 0 {
		from = min(threads[0].Rev, h.rev)
	}
	var moving commentSet
	next := 0
	join := func(upTo int64) {
		for ; next < len(threads) && threads[next].Rev <= upTo; next++ {
			t := threads[next]
			moving.add(t, t.Range)
		}
	}
	err = h.eachOpAfter(ctx, from, func(r Record) {
		join(r.Rev - 1)
		moving.move(r.Op)
	})
	if err != nil {
		return fmt.Errorf("move comments from rev %d: %w", from, err)
	}
	join(h.rev)
	cs.ahead = threads[next:] // written at revisions still to come here
	n := h.doc.Len()
	for i, t := range moving.threads {
		// Clamped, in case of a store whose ops and records disagree:
		// a wrong place beats a lost thread.
		a := moving.anchors[i]
		a = Range{min(max(a[0], 0), n), min(max(a[1], 0), n)}
		t.Rev, t.Range = 0, Range{}
		cs.add(t, a)
	}
	cs.loaded = true
	cs.movedRev = from
	return nil
}

// eachOpAfter calls fn with every committed op after rev, oldest first:
// from the store, in pages, then from memory. Unlike opsAfter it has no
// limit: it holds one page at a time.
func (h *hub) eachOpAfter(ctx context.Context, rev int64, fn func(Record)) error {
	for after := rev; after < h.histBase; {
		page, err := h.srv.store.Ops(ctx, h.id, after, int(min(h.histBase-after, 1024)), 8<<20)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return fmt.Errorf("store has no ops after rev %d", after)
		}
		for _, r := range page {
			if r.Rev != after+1 {
				return fmt.Errorf("store returned rev %d after rev %d", r.Rev, after)
			}
			if r.Rev > h.histBase {
				break
			}
			after = r.Rev
			fn(r)
		}
	}
	for _, r := range h.history {
		if r.Rev > rev {
			fn(r)
		}
	}
	return nil
}

// storeComments writes the records of the threads ids at the current
// revision and removes those of del.
func (h *hub) storeComments(ids []string, del []string) error {
	cs := &h.comments
	put := make(map[string][]byte)
	for _, id := range ids {
		if _, i := cs.get(id); i >= 0 {
			t := *cs.threads[i]
			t.Range, t.Rev = cs.anchors[i], h.rev
			put[t.ID] = mustJSON(t)
		}
	}
	// Not h.srv.ctx: the hub stores its threads as it shuts down.
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := h.srv.commentStore.PutComments(ctx, h.id, put, del); err != nil {
		return fmt.Errorf("store comments: %w", err)
	}
	if len(del) > 0 || len(ids) > 0 {
		h.notify(notice{Kind: "comments", Rev: h.rev})
	}
	return nil
}

// saveComments stores the anchors of every thread, if they moved since
// they were last stored: with force (the hub snapshots the document, or
// stops) now, waiting for a write in flight; without it, once they have
// moved commentSaveEvery revisions, in the background, so that the ops
// waiting on the hub do not wait for it. Not in cluster mode, where every
// node moves the anchors alike and the document's owner may change: there
// a load moves each thread from its own record.
func (h *hub) saveComments(force bool) {
	cs := &h.comments
	if cs.saving != nil {
		select {
		case <-cs.saving:
			cs.saving = nil
		default:
			if !force {
				return
			}
			<-cs.saving
			cs.saving = nil
		}
	}
	if h.link != nil || !cs.loaded || len(cs.threads) == 0 || cs.movedRev == h.rev ||
		(!force && h.rev-cs.movedRev < commentSaveEvery) {
		return
	}
	rec := anchorsRecord{Rev: h.rev, Anchors: make(map[string][3]int, len(cs.threads))}
	for i, t := range cs.threads {
		d := 0
		if t.Detached {
			d = 1
		}
		rec.Anchors[t.ID] = [3]int{cs.anchors[i][0], cs.anchors[i][1], d}
	}
	put := map[string][]byte{anchorsKey: mustJSON(rec)}
	cs.movedRev = h.rev
	write := func() {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		if err := h.srv.commentStore.PutComments(ctx, h.id, put, nil); err != nil {
			// The thread records stay; a load replays more ops.
			h.log.Error("store comment anchors", "rev", rec.Rev, "err", err)
		}
	}
	if force {
		write()
		return
	}
	// Owned by the server's hub group, which Close waits for, like the
	// hub itself; the hub waits for it before the next one.
	done := make(chan struct{})
	cs.saving = done
	h.srv.hubWG.Add(1)
	go func() {
		defer h.srv.hubWG.Done()
		defer close(done)
		write()
	}()
}

// commentsChanged handles another node's notice that it changed the
// document's comments (cluster mode): the set is read again from the
// store, and the editors here that asked for comments get it whole.
// Records written at a revision this node has not applied yet join once
// it has (commentSet.ahead).
func (h *hub) commentsChanged() {
	if !h.comments.loaded {
		return // read when first needed
	}
	h.comments = commentSet{}
	for _, e := range h.editors {
		if e.comments {
			h.welcomeComments(e)
		}
	}
}
