package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/storage"
)

// TestImportDataAdmission: `collabd import -data` writes the file as a
// server's create would, and passes the same admission: past
// -max-data-bytes, or with a first op the document's -max-doc-history
// cannot hold, it is refused and the file gains no document.
func TestImportDataAdmission(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := filepath.Join(t.TempDir(), "collab.db")
	db, err := storage.Open(data, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	file := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(file, []byte(strings.Repeat("imported text ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flags []string
		want  string // in the error; "" for none
	}{
		{[]string{"-max-data-bytes", "4096"}, "storage is full"},
		{[]string{"-max-doc-history", "10000"}, "history is full"},
		{[]string{"-min-free-bytes", "-1", "-max-data-bytes", "1000000000"}, ""},
	} {
		var out bytes.Buffer
		args := append(append([]string{"import", "-data", data}, tc.flags...), file)
		err := run(ctx, args, &out, io.Discard)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: got %v, want it imported", tc.flags, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: got %v (printed %q), want an error saying %q", tc.flags, err, out.String(), tc.want)
		}
	}
	db, err = storage.Open(data, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if ids, err := db.DocIDs(ctx); err != nil || len(ids) != 1 {
		t.Errorf("the file holds %d documents (%v), want the one imported", len(ids), err)
	}
}
