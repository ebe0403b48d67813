package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/collabd/collabd/storage"
)

// TestMigrateAdmission: migrate's copy is a write to the cluster's store
// and passes collab's admission: a document whose history is past
// -max-doc-history is copied no further, nothing is copied past
// -max-data-bytes, and a run with room continues where the refused one
// stopped.
func TestMigrateAdmission(t *testing.T) {
	t.Parallel()
	url := startNATS(t)
	path := filepath.Join(t.TempDir(), "collab.db")
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	small := buildDoc(t, db, 5, 1)
	long := buildDoc(t, db, 2600, 2) // several pages of 1,000 records
	m, err := db.Meta(t.Context(), long.meta.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Room for the small document and one page of the long one.
	out, err := migrateCmd(t, "-data", path, "-nats", url, "-max-doc-history", strconv.FormatInt(m.LogBytes/2, 10))
	if err == nil {
		t.Fatalf("migrate with %d bytes of history in a %d budget: got nil error\n%s", m.LogBytes, m.LogBytes/2, out)
	}
	if !strings.Contains(out, small.meta.ID+": copied, 5 revisions") {
		t.Errorf("the small document was not copied:\n%s", out)
	}
	if !strings.Contains(out, long.meta.ID+": error: revisions") || !strings.Contains(out, "history is full") {
		t.Errorf("the long document's refusal is not reported:\n%s", out)
	}
	out, err = migrateCmd(t, "-data", path, "-nats", url, "-max-data-bytes", "1")
	if err == nil || !strings.Contains(out, "storage is full") {
		t.Errorf("migrate past -max-data-bytes: got %v\n%s", err, out)
	}
	out, err = migrateCmd(t, "-data", path, "-nats", url)
	if err != nil {
		t.Fatalf("migrate with room: %v\n%s", err, out)
	}
	if !strings.Contains(out, long.meta.ID+": continued from revision") {
		t.Errorf("the long document was not continued:\n%s", out)
	}
	checkMigrated(t, path, openJS(t, url))
}
