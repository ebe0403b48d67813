package main

// The search index of a cluster node (docs/workspace.md, "Cluster
// mode"). Every node keeps its own index, beside its data file, so that
// any node answers GET /api/docs?q=. What other nodes change reaches it
// through three feeds (storage/jetstream's Changes): the op stream (a
// commit group on any node), the access bucket (a document shared,
// created or deleted) and the docinfo bucket (renamed, tagged, trashed).
// Each change only marks its document for the indexer (IndexChanged);
// the indexer indexes every marked document once per flush, however
// many changes it had, exactly as for local commits.
//
// How far the index has followed each feed is kept in the index itself
// (a mark), written once the indexer says that everything marked up to
// there is indexed (AfterIndexed). A node that starts again resumes
// each feed from its mark, so what other nodes did while it was down is
// indexed; one with a new index starts the op feed at its end and lets
// the indexer's catch-up at start (every document whose revision differs
// from the index's) build it, and reads the buckets whole.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"sync"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/search"
	"github.com/collabd/collabd/storage/jetstream"
)

// feeds are the change feeds an index follows.
var feeds = []string{jetstream.FeedOps, jetstream.FeedAccess, jetstream.FeedDocInfo}

// feedMark is the index's mark of how far it has followed the feeds.
const feedMark = "cluster-feeds"

// feedPos is, per feed, the sequence of the last change indexed.
type feedPos map[string]uint64

// indexFeed follows the feeds into one node's index. It is safe for
// concurrent use.
type indexFeed struct {
	js  *jetstream.Store
	idx *search.Index
	log *slog.Logger

	// mu guards seen, waiting and docs.
	mu      sync.Mutex
	seen    feedPos // the last change marked, per feed
	waiting bool    // an AfterIndexed is pending
	docs    *collab.Server

	cancel context.CancelFunc
	done   []<-chan struct{}
}

// newIndexFeed reads where idx's feeds resume: its mark, or the feeds'
// ends for an index without one. It must run before the collab.Server
// starts its indexer, whose catch-up then covers whatever came before
// those ends.
func newIndexFeed(ctx context.Context, js *jetstream.Store, idx *search.Index, nc natsConfig, log *slog.Logger) (*indexFeed, error) {
	f := &indexFeed{js: js, idx: idx, log: log, seen: feedPos{}}
	b, err := idx.Mark(feedMark)
	if err != nil {
		return nil, err
	}
	var mark feedPos
	if b != nil {
		if err := json.Unmarshal(b, &mark); err != nil {
			log.Warn("search index: unreadable feed mark; following from the feeds' ends", "err", err)
			mark = nil
		}
	}
	for _, name := range feeds {
		var end uint64
		err := nc.retry(ctx, log, "change feed "+name, func(ctx context.Context) error {
			var err error
			end, err = js.FeedEnd(ctx, name)
			return err
		})
		if err != nil {
			return nil, err
		}
		switch at, ok := mark[name]; {
		case !ok && name == jetstream.FeedOps:
			// The catch-up at start indexes every document whose
			// revision is not the index's.
			f.seen[name] = end
		case !ok:
			// An index without a mark may still hold documents (a
			// node killed before its first mark was kept): their
			// titles, tags and readers may be stale, which revisions do
			// not show. The buckets keep one record per document, so
			// reading them whole marks each document with one, once.
			f.seen[name] = 0
		case at > end:
			// The stream is shorter than what the index saw: made again
			// (a new cluster with an old index). Read it whole.
			log.Warn("search index: a feed is behind the index's mark; reading it from the start", "feed", name, "mark", at, "end", end)
			f.seen[name] = 0
		default:
			f.seen[name] = at
			if end > at {
				log.Info("search index catching up from the stream", "feed", name, "changes", end-at)
			}
		}
	}
	return f, nil
}

// start follows the feeds into docs' index, until close.
func (f *indexFeed) start(docs *collab.Server) error {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.mu.Lock()
	f.docs = docs
	from := maps.Clone(f.seen)
	f.mu.Unlock()
	for _, name := range feeds {
		done, err := f.js.Changes(ctx, name, from[name], func(c jetstream.Change) { f.changed(name, c) })
		if err != nil {
			f.close()
			return fmt.Errorf("search index: %w", err)
		}
		f.done = append(f.done, done)
	}
	return nil
}

// changed marks c's document for the index, then notes c as seen: a
// mark taken after that is never ahead of what is marked.
func (f *indexFeed) changed(feed string, c jetstream.Change) {
	f.docs.IndexChanged(c.Doc, c.Rev)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen[feed] = c.Seq
	f.await()
}

// await asks the indexer to say when what has been seen so far is
// indexed, unless it has been asked already. f.mu is held.
func (f *indexFeed) await() {
	if f.waiting {
		return
	}
	f.waiting = true
	at := maps.Clone(f.seen)
	f.docs.AfterIndexed(func() { f.indexed(at) })
}

// indexed records at as the index's mark, on the indexer's goroutine,
// and waits again if more has been seen since.
func (f *indexFeed) indexed(at feedPos) {
	b, _ := json.Marshal(at)
	if err := f.idx.SetMark(feedMark, b); err != nil {
		f.log.Warn("search index: feed mark not kept", "err", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waiting = false
	if !maps.Equal(at, f.seen) {
		f.await()
	}
}

// close stops the feeds and waits for them. Idempotent; nothing on nil.
func (f *indexFeed) close() {
	if f == nil || f.cancel == nil {
		return
	}
	f.cancel()
	for _, d := range f.done {
		<-d
	}
	f.done = nil
}
