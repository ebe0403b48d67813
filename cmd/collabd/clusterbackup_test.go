package main

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
	"github.com/collabd/collabd/storage/jetstream"
)

// TestClusterBackup: `collabd backup -nats` copies every document of a
// cluster, with the writes made in the cluster itself, into a data file
// that passes the storage check, holds the cluster's records and author
// key, and restores into a new cluster with `collabd migrate`.
func TestClusterBackup(t *testing.T) {
	t.Parallel()
	url := startNATS(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "collab.db")
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, revs := range []int{0, 1, 37, 1200} {
		buildDoc(t, db, revs, uint64(i+1))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := migrateCmd(t, "-data", path, "-nats", url); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	js := openJS(t, url)

	// Written in the cluster: a new document, and revisions on an old one.
	fresh := jetstream.DocMeta{ID: uuid.NewString(), ViewID: uuid.NewString(), Created: time.Now().UTC().Truncate(time.Millisecond)}
	if err := js.Create(ctx, fresh, nil); err != nil {
		t.Fatal(err)
	}
	ids, err := js.DocIDs(ctx)
	if err != nil || len(ids) != 5 {
		t.Fatalf("DocIDs = %v, %v; want 5", ids, err)
	}
	old := ids[0]
	if old == fresh.ID {
		old = ids[1]
	}
	for _, id := range []string{fresh.ID, old} {
		d, err := js.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		n := utf8.RuneCountInString(d.Text)
		recs := []jetstream.Record{
			{Rev: d.Rev + 1, Op: ot.Op{}.Retain(n).Insert("cluster é"), Client: "node-writer-" + id, Seq: 1, Time: time.Now()},
			{Rev: d.Rev + 2, Op: ot.Op{}.Insert("𝄞").Retain(n + 9), Client: "node-writer-" + id, Seq: 2, Time: time.Now()},
		}
		if err := js.Append(ctx, id, recs); err != nil {
			t.Fatal(err)
		}
		text, _ := ot.Apply(d.Text, recs[0].Op)
		text, _ = ot.Apply(text, recs[1].Op)
		if err := js.SaveSnapshot(ctx, id, d.Rev+2, text); err != nil {
			t.Fatal(err)
		}
	}

	backup := filepath.Join(t.TempDir(), "backup.db")
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"backup", "-nats", url, "-o", backup}, &stdout, &stderr); err != nil {
		t.Fatalf("backup -nats: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	t.Logf("backup:\n%s", stdout.String())
	if !strings.Contains(stdout.String(), "copied 5 documents") {
		t.Errorf("backup output lacks the summary")
	}
	// Every document of the cluster is in the file, equal to the cluster's.
	bdb, err := openData(backup, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got, err := bdb.DocIDs(ctx)
	if err != nil || !slices.Equal(got, ids) {
		t.Errorf("documents in the backup: %v (%v), want %v", got, err, ids)
	}
	if err := bdb.Check(ctx); err != nil {
		t.Errorf("the backup fails the storage check: %v", err)
	}
	fileKey, err := bdb.AuthorKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bdb.Close()
	clusterKey, err := js.SharedKey(ctx, authorKeyName, 32)
	if err != nil || !bytes.Equal(fileKey, clusterKey) {
		t.Errorf("author key: the backup's differs from the cluster's (%v)", err)
	}
	checkMigrated(t, backup, js)

	// Restored into a new cluster.
	url2 := startNATS(t)
	if out, err := migrateCmd(t, "-data", backup, "-nats", url2); err != nil {
		t.Fatalf("migrate the backup into a new cluster: %v\n%s", err, out)
	}
	checkMigrated(t, backup, openJS(t, url2))

	if err := run(ctx, []string{"backup", "-nats", url, "-from", "http://127.0.0.1:1", "-o", backup}, &stdout, &stderr); err == nil {
		t.Error("backup with -nats and -from: got no error")
	}
}
