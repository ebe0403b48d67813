package main

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"path/filepath"
	"testing"
	"time"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/storage"
	"github.com/collabd/collabd/storage/jetstream"
)

// TestExtrasCopied: a document's comments, access record and workspace
// record go with it into a cluster (`collabd migrate`) and back out of it
// (`collabd backup -nats`); a rerun of migrate keeps what the cluster
// changed since (a revoked access stays revoked).
func TestExtrasCopied(t *testing.T) {
	t.Parallel()
	url := startNATS(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "collab.db")
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	withExtras := buildDoc(t, db, 5, 1).meta.ID
	bare := buildDoc(t, db, 3, 2).meta.ID
	comments := map[string][]byte{"c1": []byte(`{"text":"first"}`), "c2": []byte(`{"text":"second"}`)}
	if err := db.PutComments(ctx, withExtras, comments, nil); err != nil {
		t.Fatal(err)
	}
	access := []byte(`{"owner":"ada","link":"none"}`)
	info := []byte(`{"title":"Plans","tags":["q1"]}`)
	if err := db.KVPut(ctx, storage.KVAccess, withExtras, access); err != nil {
		t.Fatal(err)
	}
	if err := db.KVPut(ctx, storage.KVDocInfo, withExtras, info); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := migrateCmd(t, "-data", path, "-nats", url); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}

	js := openJS(t, url)
	side, err := clusterExtras(ctx, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantExtras(t, "cluster", side, withExtras, comments, access, info)
	wantExtras(t, "cluster", side, bare, nil, nil, nil)

	// The cluster takes access away; migrating the file again keeps that.
	revoked := []byte(`{"owner":"ada","link":"none","members":[]}`)
	if err := side.kv[storage.KVAccess].put(ctx, storage.KVAccess, withExtras, revoked); err != nil {
		t.Fatal(err)
	}
	if out, err := migrateCmd(t, "-data", path, "-nats", url); err != nil {
		t.Fatalf("migrate again: %v\n%s", err, out)
	}
	wantExtras(t, "cluster after a second migrate", side, withExtras, comments, revoked, info)

	// And out again.
	backup := filepath.Join(t.TempDir(), "backup.db")
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"backup", "-nats", url, "-o", backup}, &stdout, &stderr); err != nil {
		t.Fatalf("backup -nats: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	bdb, err := openData(backup, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	wantExtras(t, "backup", boltExtras(bdb), withExtras, comments, revoked, info)
	wantExtras(t, "backup", boltExtras(bdb), bare, nil, nil, nil)
}

// TestExtrasBackupLooksUp: a backup of a cluster that never had sign-in
// or the workspace creates no bucket in it.
func TestExtrasBackupLooksUp(t *testing.T) {
	t.Parallel()
	js := openJS(t, startNATS(t))
	ctx := context.Background()
	side, err := clusterExtras(ctx, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(side.kv) != 0 {
		t.Errorf("buckets found in a new cluster: %v", side.kv)
	}
	for _, b := range extrasKVBuckets {
		if _, err := js.LookupKV(ctx, b); !errors.Is(err, jetstream.ErrNotFound) {
			t.Errorf("LookupKV(%s) after a backup's look-up = %v, want ErrNotFound", b, err)
		}
	}
}

// wantExtras checks document id's extra records on one side; nil means
// none.
func wantExtras(t *testing.T, where string, side extrasSide, id string, comments map[string][]byte, access, info []byte) {
	t.Helper()
	ctx := context.Background()
	got, err := side.comments.Comments(ctx, id)
	if err != nil {
		t.Fatalf("%s: comments: %v", where, err)
	}
	if len(got) != len(comments) || !maps.EqualFunc(got, comments, bytes.Equal) {
		t.Errorf("%s: comments of %s = %q, want %q", where, id, got, comments)
	}
	for bucket, want := range map[string][]byte{storage.KVAccess: access, storage.KVDocInfo: info} {
		kv := side.kv[bucket]
		if kv == nil {
			if want != nil {
				t.Errorf("%s: no %s bucket, want %s", where, bucket, want)
			}
			continue
		}
		v, err := kv.get(ctx, bucket, id)
		switch {
		case want == nil && !errors.Is(err, collab.ErrNotFound):
			t.Errorf("%s: %s record of %s = %s, %v; want none", where, bucket, id, v, err)
		case want != nil && (err != nil || !bytes.Equal(v, want)):
			t.Errorf("%s: %s record of %s = %s, %v; want %s", where, bucket, id, v, err, want)
		}
	}
}
