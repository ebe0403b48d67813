package collab

// The workspace (docs/workspace.md): with sign-in on, the documents a
// user may read, their titles, tags and trash, and a full-text search
// over them. collab declares what it needs, a SearchIndex and an
// InfoStore, and cmd/collabd wires in package search (bleve) and the
// data file.
//
// The index is never on the editing path. A hub that commits ops only
// marks its document dirty (changed: a map under a mutex, never I/O); the
// indexer goroutine takes the dirty set every FlushEvery, reads each
// document's text once however many ops it took, and writes one batch.
// The index keeps the revision it indexed per document, so that on start
// the indexer catches up with whatever the op log has that the index
// lost (a SIGKILL between commit and index).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"
)

// DocInfo is a document's workspace metadata, kept beside it.
type DocInfo struct {
	// Title is the title given by a rename; empty: the first line.
	Title string   `json:"title,omitempty"`
	Tags  []string `json:"tags,omitempty"`
	// Trashed is when the document went to the trash; zero if it is not
	// there.
	Trashed time.Time `json:"trashed,omitzero"`
}

// InfoStore keeps DocInfo records durably. Implementations must be safe
// for concurrent use and return ErrNotFound (possibly wrapped) for a
// document without a record.
type InfoStore interface {
	Info(ctx context.Context, doc string) (DocInfo, error)
	SetInfo(ctx context.Context, doc string, info DocInfo) error
	DeleteInfo(ctx context.Context, doc string) error
}

// IndexEntry is what the index holds of one document.
type IndexEntry struct {
	ID, ViewID string
	Rev        int64
	Updated    time.Time
	Title      string // the title shown: DocInfo.Title or the first line
	Text       string
	Tags       []string
	Owner      string
	// Readers are the principals who may read it as members: "u:NAME"
	// for a user, "g:NAME" for a group (the owner included). Search
	// filters on them; collab checks each hit against the access record
	// again, so a stale entry never shows a document to someone who lost
	// access.
	Readers []string
	Trashed bool
}

// SearchQuery asks the index for documents.
type SearchQuery struct {
	// Text is what the user typed: words, "quoted phrases"; the last word
	// matches as a prefix unless Text ends with a space. Empty: every
	// document, most recently updated first.
	Text    string
	Readers []string // at least one of them must be among a hit's Readers
	Tag     string   // when set, only documents with this tag
	Trashed bool     // the trash instead of the rest
	Limit   int
}

// SearchHit is one document found.
type SearchHit struct {
	ID, ViewID string
	Rev        int64
	Updated    time.Time
	Title      string
	Tags       []string
	Owner      string
	Trashed    bool
	// Snippet is HTML: the text around the matches, escaped, with each
	// matched word inside <mark></mark>; empty without Text.
	Snippet string
}

// SearchIndex is a full-text index of the documents. Implementations
// must be safe for concurrent use.
type SearchIndex interface {
	// Index adds or replaces entries and removes the documents in remove,
	// as one batch.
	Index(ctx context.Context, entries []IndexEntry, remove []string) error
	// Revs returns the revision each indexed document was indexed at.
	Revs(ctx context.Context) (map[string]int64, error)
	Search(ctx context.Context, q SearchQuery) ([]SearchHit, error)
}

// DocHead is a document's id and latest revision.
type DocHead struct {
	ID  string
	Rev int64
}

// WorkspaceOptions turns the workspace on (it needs Options.SignIn).
// Index, Info and Heads are required; the zero value of every other
// field means its documented default.
type WorkspaceOptions struct {
	Index SearchIndex
	Info  InfoStore
	// Heads lists every document of the store with its revision, for the
	// catch-up at start.
	Heads func(ctx context.Context) ([]DocHead, error)
	// FlushEvery is how often the indexer takes the changed documents
	// (default 500 ms): a commit is searchable within about twice that.
	FlushEvery time.Duration
	// MaxQueue bounds the changed documents waiting (default 100,000);
	// past it the indexer forgets them and catches up from the store's
	// revisions instead.
	MaxQueue int
	// MaxBatchBytes bounds the text one index batch holds (default 64
	// MiB); more waits for the next batch.
	MaxBatchBytes int
	// TrashFor is how long a trashed document is kept before it is
	// purged (default 30 days).
	TrashFor time.Duration
	// SweepEvery is how often the trash is emptied of expired documents
	// (default 1 h).
	SweepEvery time.Duration
	// Now is the clock (default time.Now), for tests of trash expiry.
	Now func() time.Time
}

func (o *WorkspaceOptions) setDefaults() {
	if o.FlushEvery <= 0 {
		o.FlushEvery = 500 * time.Millisecond
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 100_000
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = 64 << 20
	}
	if o.TrashFor <= 0 {
		o.TrashFor = 30 * 24 * time.Hour
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// workspace is the indexer and the trash sweeper; nil when off. Its
// methods are safe for concurrent use and do nothing on nil.
type workspace struct {
	s    *Server
	opts WorkspaceOptions
	log  *slog.Logger

	// infoMu serializes read-modify-writes of DocInfo records.
	infoMu sync.Mutex

	// mu guards dirty, want, overflow, the flush waiters and after.
	mu       sync.Mutex
	dirty    map[string]struct{}
	want     map[string]int64 // revisions other nodes made (workspacecluster.go)
	overflow bool             // dirty overflowed: catch up from the store
	waiters  []chan struct{}  // closed after the next flush
	after    []func()         // run after the next clean flush (workspacecluster.go)
	wake     chan struct{}    // cap 1: a flush is wanted now

	cancel context.CancelFunc
	done   chan struct{}
}

// newWorkspace returns the workspace of o (nil if o is), not yet started:
// s.workspace must be set before its goroutine runs.
func newWorkspace(s *Server, o *WorkspaceOptions) *workspace {
	if o == nil {
		return nil
	}
	ws := &workspace{s: s, opts: *o, log: s.log.With("part", "workspace"),
		dirty: map[string]struct{}{}, want: map[string]int64{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	ws.opts.setDefaults()
	ws.overflow = true // the first flush catches up
	return ws
}

// start starts the indexer.
func (ws *workspace) start() {
	if ws == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	ws.cancel = cancel
	go ws.loop(ctx)
}

// close stops the indexer after a last flush and waits for it.
func (ws *workspace) close() {
	if ws == nil {
		return
	}
	ws.cancel()
	<-ws.done
}

// changed marks doc for indexing. It never blocks on I/O: hubs call it
// on every commit.
func (ws *workspace) changed(doc string) {
	if ws == nil {
		return
	}
	ws.mu.Lock()
	if len(ws.dirty) < ws.opts.MaxQueue {
		ws.dirty[doc] = struct{}{}
	} else if _, ok := ws.dirty[doc]; !ok {
		ws.overflow = true
	}
	ws.mu.Unlock()
}

// sync marks doc for indexing and waits until the index has it (or ctx
// ends): metadata changes are searchable when their request returns.
func (ws *workspace) sync(ctx context.Context, doc string) {
	if ws == nil {
		return
	}
	c := make(chan struct{})
	ws.mu.Lock()
	ws.dirty[doc] = struct{}{} // one over MaxQueue at most per waiter
	ws.waiters = append(ws.waiters, c)
	ws.mu.Unlock()
	select {
	case ws.wake <- struct{}{}:
	default:
	}
	select {
	case <-c:
	case <-ctx.Done():
	case <-ws.done:
	}
}

func (ws *workspace) loop(ctx context.Context) {
	defer close(ws.done)
	flush := time.NewTicker(ws.opts.FlushEvery)
	defer flush.Stop()
	sweep := time.NewTicker(ws.opts.SweepEvery)
	defer sweep.Stop()
	ws.flush(ctx)
	ws.sweep(ctx)
	for {
		select {
		case <-ctx.Done():
			ws.flush(context.Background()) // what the hubs committed last
			return
		case <-flush.C:
		case <-ws.wake:
		case <-sweep.C:
			ws.sweep(ctx)
			continue
		}
		ws.flush(ctx)
	}
}

// flush indexes the documents marked since the last flush.
func (ws *workspace) flush(ctx context.Context) {
	ws.mu.Lock()
	dirty, want, overflow, waiters, after := ws.dirty, ws.want, ws.overflow, ws.waiters, ws.after
	ws.dirty, ws.want, ws.overflow, ws.waiters, ws.after = map[string]struct{}{}, map[string]int64{}, false, nil, nil
	ws.mu.Unlock()
	clean := true // everything marked before this flush is indexed
	defer func() {
		for _, c := range waiters {
			close(c)
		}
		ws.afterFlush(after, clean)
	}()
	if overflow {
		if err := ws.catchUp(ctx, dirty); err != nil {
			ws.log.Error("index catch-up failed; retrying at the next flush", "err", err)
			ws.mu.Lock()
			ws.overflow = true
			ws.mu.Unlock()
			clean = false
		}
	}
	if len(dirty) == 0 {
		return
	}
	start, docs, total := time.Now(), len(dirty), 0
	var reading time.Duration // of took: reading the documents
	defer func() {
		ws.log.Debug("index flush", "docs", docs, "bytes", total, "took", time.Since(start), "reading", reading)
	}()
	var (
		entries []IndexEntry
		remove  []string
		bytes   int
	)
	write := func() {
		if len(entries)+len(remove) == 0 {
			return
		}
		if err := ws.opts.Index.Index(ctx, entries, remove); err != nil {
			clean = false
			ws.log.Error("index batch failed; retrying at the next flush", "docs", len(entries)+len(remove), "err", err)
			ws.mu.Lock()
			for _, e := range entries {
				ws.dirty[e.ID] = struct{}{}
			}
			for _, id := range remove {
				ws.dirty[id] = struct{}{}
			}
			ws.mu.Unlock()
		}
		entries, remove, bytes = entries[:0], remove[:0], 0
	}
	for id := range dirty {
		if ctx.Err() != nil {
			ws.requeue(dirty)
			clean = false
			return
		}
		t := time.Now()
		e, err := ws.entryAt(ctx, id, want[id])
		reading += time.Since(t)
		switch {
		case errors.Is(err, ErrNotFound):
			remove = append(remove, id)
		case err != nil:
			clean = false
			ws.log.Warn("document not indexed", "doc", id, "err", err)
		default:
			entries = append(entries, e)
			bytes += len(e.Text)
			total += len(e.Text)
		}
		delete(dirty, id)
		if bytes >= ws.opts.MaxBatchBytes {
			write()
		}
	}
	write()
}

func (ws *workspace) requeue(ids map[string]struct{}) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for id := range ids {
		ws.dirty[id] = struct{}{}
	}
}

// catchUp adds to dirty every document whose indexed revision is not
// the store's, and every indexed document the store no longer has.
func (ws *workspace) catchUp(ctx context.Context, dirty map[string]struct{}) error {
	heads, err := ws.opts.Heads(ctx)
	if err != nil {
		return fmt.Errorf("list documents: %w", err)
	}
	revs, err := ws.opts.Index.Revs(ctx)
	if err != nil {
		return fmt.Errorf("read indexed revisions: %w", err)
	}
	n := len(dirty)
	for _, h := range heads {
		if r, ok := revs[h.ID]; !ok || r != h.Rev {
			dirty[h.ID] = struct{}{}
		}
		delete(revs, h.ID)
	}
	for id := range revs {
		dirty[id] = struct{}{} // gone from the store: removed
	}
	if added := len(dirty) - n; added > 0 {
		ws.log.Info("index catching up", "docs", added)
	}
	return nil
}

// entry builds the index entry of doc from the store.
func (ws *workspace) entry(ctx context.Context, id string) (IndexEntry, error) {
	return ws.entryAt(ctx, id, 0)
}

// entryAt is entry of doc at revision minRev or later.
func (ws *workspace) entryAt(ctx context.Context, id string, minRev int64) (IndexEntry, error) {
	e, err := ws.text(ctx, id, minRev)
	if err != nil {
		return IndexEntry{}, err
	}
	if e.Rev > 0 {
		revs, err := ws.s.store.Revisions(ctx, id, e.Rev-1, 1)
		if err != nil {
			return IndexEntry{}, err
		}
		if len(revs) > 0 {
			e.Updated = revs[0].Time
		}
	}
	info, err := ws.info(ctx, id)
	if err != nil {
		return IndexEntry{}, err
	}
	e.Title, e.Tags, e.Trashed = info.Title, info.Tags, !info.Trashed.IsZero()
	if e.Title == "" {
		e.Title = firstLine(e.Text)
	}
	rec, err := ws.s.access.record(ctx, id)
	if err != nil {
		return IndexEntry{}, err
	}
	e.Owner = rec.Owner
	e.Readers = readersOf(&rec)
	return e, nil
}

// text returns an entry with doc's ids, text and revision: from its hub
// when it is open here (editing keeps it so), without replaying its log,
// else from the store, without opening a hub. A hub behind minRev (a
// follower whose log has not yet brought what another node committed)
// is passed over for the store.
func (ws *workspace) text(ctx context.Context, id string, minRev int64) (IndexEntry, error) {
	s := ws.s
	s.mu.Lock()
	open := s.hubs != nil && s.hubs[id] != nil && !s.closing
	s.mu.Unlock()
	if open {
		if t, err := s.docText(ctx, id, false); err == nil && t.rev >= minRev {
			return IndexEntry{ID: id, ViewID: t.viewID, Rev: t.rev, Text: t.text}, nil
		}
	}
	d, err := s.store.Load(ctx, id)
	if err != nil {
		return IndexEntry{}, err
	}
	return IndexEntry{ID: id, ViewID: d.Meta.ViewID, Rev: d.Rev, Text: d.Text, Updated: d.Meta.Created}, nil
}

// info returns doc's record, the zero one if it has none.
func (ws *workspace) info(ctx context.Context, id string) (DocInfo, error) {
	info, err := ws.opts.Info.Info(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return DocInfo{}, nil
	}
	return info, err
}

// readersOf returns the principals an access record lets read.
func readersOf(a *Access) []string {
	var rs []string
	if a.Owner != "" {
		rs = append(rs, "u:"+a.Owner)
	}
	for _, m := range a.Members {
		if r, ok := parseRole(m.Role); !ok || r < roleView {
			continue
		}
		if m.User != "" {
			rs = append(rs, "u:"+m.User)
		} else {
			rs = append(rs, "g:"+m.Group)
		}
	}
	return rs
}

// principals returns what a signed-in user is among readers.
func principals(who *identity) []string {
	ps := []string{"u:" + who.User}
	for _, g := range who.Groups {
		ps = append(ps, "g:"+g)
	}
	return ps
}

// maxTitleRunes bounds a title, given or taken from the first line.
const maxTitleRunes = 200

// firstLine returns a document's title when it has none: its first
// non-empty line without Markdown marks (#, >, list bullets, emphasis).
func firstLine(text string) string {
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		line = strings.TrimLeft(line, "#>-*+ \t")
		if len(line) > 2 && line[0] >= '0' && line[0] <= '9' {
			if i := strings.IndexAny(line, ".)"); i > 0 && i < 4 && strings.Trim(line[:i], "0123456789") == "" {
				line = strings.TrimSpace(line[i+1:])
			}
		}
		line = strings.Map(func(r rune) rune {
			switch r {
			case '*', '_', '`', '~':
				return -1
			}
			if unicode.IsControl(r) {
				return -1
			}
			return r
		}, line)
		line = strings.TrimSpace(line)
		if line != "" {
			return truncateRunes(line, maxTitleRunes)
		}
	}
	return ""
}

func truncateRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// Reindex writes an index entry for every document of store, whose
// access records are in acc, into o.Index, in batches of o.MaxBatchBytes
// of text: `collabd reindex` rebuilds a search index with it while no
// server runs. progress, if not nil, hears how many documents are done.
func Reindex(ctx context.Context, store Store, acc AccessStore, o WorkspaceOptions, progress func(done, total int)) error {
	o.setDefaults()
	s := &Server{store: store, access: &access{store: acc}, log: slog.New(slog.DiscardHandler)}
	ws := &workspace{s: s, opts: o, log: s.log}
	heads, err := o.Heads(ctx)
	if err != nil {
		return fmt.Errorf("list documents: %w", err)
	}
	var (
		entries []IndexEntry
		bytes   int
	)
	for i, h := range heads {
		e, err := ws.entry(ctx, h.ID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("document %d of %d: %w", i+1, len(heads), err)
		}
		entries = append(entries, e)
		bytes += len(e.Text)
		if bytes >= o.MaxBatchBytes || len(entries) >= 1000 || i == len(heads)-1 {
			if err := o.Index.Index(ctx, entries, nil); err != nil {
				return err
			}
			entries, bytes = entries[:0], 0
			if progress != nil {
				progress(i+1, len(heads))
			}
		}
	}
	return nil
}
