package main

// The workspace (docs/workspace.md): titles, tags, trash and full-text
// search of the documents, for servers with sign-in. The search index
// (package search, bleve) lives in a directory beside the data file;
// titles, tags and trash times live in the data file, or in cluster mode
// in a JetStream bucket, where every node keeps its own index fed from
// the stream (wsfeed.go). `collabd reindex` rebuilds a single node's
// index from the data file.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/search"
	"github.com/collabd/collabd/storage"
	"github.com/collabd/collabd/storage/jetstream"
)

// workspaceConfig holds the workspace flags.
type workspaceConfig struct {
	trashDays  int
	searchDir  string
	flushEvery time.Duration
	queue      int
}

func (c *workspaceConfig) addFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.trashDays, "trash-days", 30, "with sign-in on, days a document stays in the trash before it is purged")
	fs.StringVar(&c.searchDir, "search-index", "", "`directory` of the full-text search index (default: the data file's path + \".search\")")
	fs.IntVar(&c.queue, "search-queue", 100_000, "changed documents that may wait for the search index; past it the index catches up from the store instead")
	fs.DurationVar(&c.flushEvery, "search-flush", 500*time.Millisecond, "how often committed edits are written to the search index (an edit is searchable within about twice this)")
}

func (c *workspaceConfig) check() error {
	if c.trashDays < 1 || c.trashDays > 3650 {
		return fmt.Errorf("-trash-days %d: 1 to 3650", c.trashDays)
	}
	if c.queue < 1 || c.queue > 10_000_000 {
		return fmt.Errorf("-search-queue %d: 1 to 10000000", c.queue)
	}
	if c.flushEvery < 10*time.Millisecond || c.flushEvery > time.Minute {
		return fmt.Errorf("-search-flush %v: 10ms to 1m", c.flushEvery)
	}
	return nil
}

func (c *workspaceConfig) dir(data string) string {
	if c.searchDir != "" {
		return c.searchDir
	}
	return data + ".search"
}

// setup opens the search index and puts WorkspaceOptions in o, when
// sign-in is on. On one node the documents and the workspace records are
// in db; in cluster mode (js not nil) they are in JetStream, the records
// in bucket collab_docinfo (opened with the start-up retry of nc), and
// the index, still this node's own beside its data file, follows the
// cluster's change feeds (wsfeed.go) once started with follow. The
// returned workspace's close stops the feeds and closes the index, after
// the collab.Server has been closed.
func (c *workspaceConfig) setup(ctx context.Context, o *collab.Options, db *storage.DB, data string, js *jetstream.Store, nc natsConfig, log *slog.Logger) (*workspace, error) {
	if o.SignIn == nil {
		return nil, nil
	}
	idx, err := search.Open(c.dir(data))
	if err != nil {
		return nil, err
	}
	w := &workspace{idx: idx, log: log}
	var info collab.InfoStore = infoStore{boltKV{db}}
	hs := heads(db)
	if js != nil {
		sctx, cancel := context.WithTimeout(ctx, nc.wait)
		defer cancel()
		var kv *jetstream.KV
		err := nc.retry(sctx, log, "docinfo bucket", func(ctx context.Context) error {
			var err error
			kv, err = js.OpenKV(ctx, jetstream.KVDocInfo, nc.replicas, 0)
			return err
		})
		if err == nil {
			w.feed, err = newIndexFeed(sctx, js, idx, nc, log)
		}
		if err != nil {
			idx.Close()
			return nil, fmt.Errorf("cluster mode: %w", err)
		}
		info = infoStore{jsKV{docinfo: kv}}
		hs = jsHeads(js)
	}
	o.Workspace = &collab.WorkspaceOptions{
		Index:      idx,
		Info:       info,
		Heads:      hs,
		FlushEvery: c.flushEvery,
		MaxQueue:   c.queue,
		TrashFor:   time.Duration(c.trashDays) * 24 * time.Hour,
	}
	return w, nil
}

// workspace is what setup opened: the index, and in cluster mode its
// feeds. Its methods do nothing on nil (sign-in off).
type workspace struct {
	idx  *search.Index
	feed *indexFeed // cluster mode only
	log  *slog.Logger
}

// follow starts the cluster's change feeds into docs' index; nothing on
// one node, where the hubs' commits are all there is.
func (w *workspace) follow(docs *collab.Server) error {
	if w == nil || w.feed == nil {
		return nil
	}
	return w.feed.start(docs)
}

// close stops the feeds and closes the index.
func (w *workspace) close() {
	if w == nil {
		return
	}
	w.feed.close()
	if err := w.idx.Close(); err != nil {
		w.log.Error("close search index", "err", err)
	}
}

// heads lists the documents of db with their revisions.
func heads(db *storage.DB) func(ctx context.Context) ([]collab.DocHead, error) {
	return func(ctx context.Context) ([]collab.DocHead, error) {
		ids, err := db.DocIDs(ctx)
		if err != nil {
			return nil, err
		}
		hs := make([]collab.DocHead, 0, len(ids))
		for _, id := range ids {
			m, err := db.Meta(ctx, id)
			if errors.Is(err, storage.ErrNotFound) {
				continue // deleted since
			}
			if err != nil {
				return nil, err
			}
			hs = append(hs, collab.DocHead{ID: id, Rev: m.Rev})
		}
		return hs, nil
	}
}

// jsHeads lists the documents of a cluster with their revisions: two
// reads per document, for the index's catch-up at start.
func jsHeads(js *jetstream.Store) func(ctx context.Context) ([]collab.DocHead, error) {
	return func(ctx context.Context) ([]collab.DocHead, error) {
		ids, err := js.DocIDs(ctx)
		if err != nil {
			return nil, mapJSErr(err)
		}
		hs := make([]collab.DocHead, 0, len(ids))
		for _, id := range ids {
			_, rev, err := js.Meta(ctx, id)
			if errors.Is(err, jetstream.ErrNotFound) {
				continue // deleted since
			}
			if err != nil {
				return nil, mapJSErr(err)
			}
			hs = append(hs, collab.DocHead{ID: id, Rev: rev})
		}
		return hs, nil
	}
}

// infoStore adapts a kvBackend to collab.InfoStore: records are JSON.
type infoStore struct{ kv kvBackend }

func (s infoStore) Info(ctx context.Context, doc string) (collab.DocInfo, error) {
	var v collab.DocInfo
	b, err := s.kv.get(ctx, storage.KVDocInfo, doc)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("docinfo record: %w", err)
	}
	return v, nil
}
func (s infoStore) SetInfo(ctx context.Context, doc string, v collab.DocInfo) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.kv.put(ctx, storage.KVDocInfo, doc, b)
}
func (s infoStore) DeleteInfo(ctx context.Context, doc string) error {
	return s.kv.del(ctx, storage.KVDocInfo, doc)
}

// runReindex is `collabd reindex -data FILE [-search-index DIR]`: it
// rebuilds the search index from the data file, while no server runs.
func runReindex(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("collabd reindex", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./collab.db", "`path` of the bbolt data file")
	var c workspaceConfig
	c.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := storage.Open(*data, storage.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("open data file (is a server running on it?): %w", err)
	}
	defer db.Close()
	dir := c.dir(*data)
	if err := search.Remove(dir); err != nil {
		return fmt.Errorf("remove the old index: %w", err)
	}
	idx, err := search.Open(dir)
	if err != nil {
		return err
	}
	start := time.Now()
	last := start
	err = collab.Reindex(ctx, store{db}, accessStore{boltKV{db}}, collab.WorkspaceOptions{
		Index: idx, Info: infoStore{boltKV{db}}, Heads: heads(db),
	}, func(done, total int) {
		if time.Since(last) > 5*time.Second || done == total {
			last = time.Now()
			fmt.Fprintf(stdout, "%d of %d documents indexed\n", done, total)
		}
	})
	if cerr := idx.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	fmt.Fprintf(stdout, "search index %s rebuilt in %v\n", dir, time.Since(start).Round(time.Millisecond))
	return nil
}
