package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/collabd/collabd/storage"
	"github.com/collabd/collabd/storage/jetstream"
)

// `collabd backup -nats URL -o FILE`: a copy of every document of a
// cluster as a single-node data file. The file is what a single-node
// server runs on (`collabd -data FILE`), and what `collabd migrate`
// moves into a cluster, the same or a new one: a restorable copy, made of
// the cluster's own records (every revision with its author, seq and
// time, so the dedupe state comes with them) and its author key.
//
// Each document's comments, access record and title, tags and trash
// time come with it (extras.go).
//
// Each document is copied as it stands when its turn comes; documents
// edited meanwhile are copied up to the revision read. A cluster backup
// is therefore consistent per document, not across documents (JetStream
// has no snapshot across subjects).

// clusterBackup writes the copy of the cluster js holds to w, building
// it first in a data file in dir (removed afterwards). It reports each
// document to log.
func clusterBackup(ctx context.Context, js *jetstream.Store, dir string, w io.Writer, log io.Writer) (int64, error) {
	tmp, err := os.MkdirTemp(dir, ".collabd-backup-*")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	db, err := storage.Open(filepath.Join(tmp, "copy.db"), storage.Options{})
	if err != nil {
		return 0, err
	}
	defer db.Close()

	key, err := js.SharedKey(ctx, authorKeyName, 32)
	if err != nil {
		return 0, fmt.Errorf("the cluster's author key: %w", err)
	}
	if _, err := db.SeedAuthorKey(ctx, key); err != nil {
		return 0, err
	}
	ids, err := js.DocIDs(ctx)
	if err != nil {
		return 0, err
	}
	src, err := clusterExtras(ctx, js, nil)
	if err != nil {
		return 0, err
	}
	dst := boltExtras(db)
	start := time.Now()
	var revs int64
	var extras int
	for _, id := range ids {
		n, err := backupDoc(ctx, js, db, id)
		if err != nil {
			return 0, fmt.Errorf("document %s: %w", id, err)
		}
		k, err := copyExtras(ctx, src, dst, id)
		if err != nil {
			return 0, fmt.Errorf("document %s: %w", id, err)
		}
		revs += n
		extras += k
		fmt.Fprintf(log, "%s: %d revisions, %d other records\n", id, n, k)
	}
	fmt.Fprintf(log, "copied %d documents, %d revisions, %d other records (comments, access, titles and tags), in %v\n",
		len(ids), revs, extras, time.Since(start).Round(time.Millisecond))
	return db.Backup(w, nil)
}

// backupDoc copies document id into db and returns its revisions.
func backupDoc(ctx context.Context, js *jetstream.Store, db *storage.DB, id string) (int64, error) {
	m, rev, err := js.Meta(ctx, id)
	if err != nil {
		return 0, err
	}
	if err := db.Create(ctx, storage.Meta{ID: m.ID, ViewID: m.ViewID, Created: m.Created}, nil); err != nil {
		return 0, err
	}
	after := int64(0)
	for after < rev {
		recs, err := js.Ops(ctx, id, after, migratePageOps, migratePageBytes)
		if err != nil {
			return 0, err
		}
		if len(recs) == 0 {
			return 0, fmt.Errorf("no records after revision %d of %d", after, rev)
		}
		out := make([]storage.Record, len(recs))
		for i, r := range recs {
			out[i] = storage.Record{Rev: r.Rev, Op: r.Op, Client: r.Client, Seq: r.Seq, Time: r.Time}
		}
		if err := db.Append(ctx, id, out); err != nil {
			return 0, err
		}
		after = out[len(out)-1].Rev
	}
	return after, nil
}
