package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/collabd/collabd/ot"
)

// verifyFixture writes a closed storage file holding three documents with
// snapshots, including several of one document (as milestone snapshots
// would be), and returns its path.
func verifyFixture(t *testing.T) string {
	t.Helper()
	db, path := openTest(t, Options{SnapshotEvery: -1})
	ctx := context.Background()
	makeDoc(t, db, "a", 30)
	makeDoc(t, db, "b", 5)
	makeDoc(t, db, "empty", 0)
	for _, rev := range []int64{10, 20, 30} {
		if err := db.SaveSnapshot(ctx, "a", Snapshot{Rev: rev, Text: textAt(rev)}); err != nil {
			t.Fatal(err)
		}
	}
	// SaveSnapshot keeps only the latest; put the older ones back by hand,
	// so that the walk over several snapshots of a document is tested
	// whatever the retention policy is.
	rawUpdate(t, db.bolt, func(tx *bbolt.Tx) error {
		for _, rev := range []int64{10, 20} {
			s := Snapshot{Rev: rev, Text: textAt(rev)}
			if err := tx.Bucket(bucketSnaps).Put(keysOf("a").snap(rev), appendSnapshot(nil, &s, len(s.Text))); err != nil {
				return err
			}
		}
		return nil
	})
	if err := db.SaveSnapshot(ctx, "b", Snapshot{Rev: 5, Text: textAt(5)}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func rawUpdate(t *testing.T, b *bbolt.DB, fn func(tx *bbolt.Tx) error) {
	t.Helper()
	if err := b.Update(fn); err != nil {
		t.Fatalf("raw update: %v", err)
	}
}

// damage opens the closed file at path with bbolt alone and applies fn.
func damage(t *testing.T, path string, fn func(tx *bbolt.Tx) error) {
	t.Helper()
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rawUpdate(t, b, fn)
}

func TestVerifyGoodFile(t *testing.T) {
	path := verifyFixture(t)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyFile(context.Background(), path, time.Second)
	if err != nil {
		t.Fatalf("VerifyFile: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("a good file: got problems %v", rep.Problems)
	}
	if rep.Docs != 3 || rep.Ops != 35 || rep.Snapshots != 4 || rep.Views != 3 {
		t.Errorf("got %d docs, %d ops, %d snapshots, %d views; want 3, 35, 4, 3", rep.Docs, rep.Ops, rep.Snapshots, rep.Views)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Error("VerifyFile changed the file it checked")
	}

	// The same checks on an open DB, while it serves.
	db, err := Open(path, Options{SnapshotEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rep, err = db.Verify(context.Background())
	if err != nil || !rep.OK() {
		t.Fatalf("DB.Verify: got %v, %v; want no problems", err, rep)
	}
}

func TestVerifyFindsDamage(t *testing.T) {
	put := func(bucket []byte, k, v []byte) func(tx *bbolt.Tx) error {
		return func(tx *bbolt.Tx) error { return tx.Bucket(bucket).Put(k, v) }
	}
	del := func(bucket []byte, k []byte) func(tx *bbolt.Tx) error {
		return func(tx *bbolt.Tx) error { return tx.Bucket(bucket).Delete(k) }
	}
	delOp := func(k docKeys, rev int64) func(tx *bbolt.Tx) error {
		return func(tx *bbolt.Tx) error {
			return editRecord(tx.Bucket(bucketDocs), k, rev, func([]byte) []byte { return nil })
		}
	}
	snap := func(rev int64, text string) []byte {
		s := Snapshot{Rev: rev, Text: text}
		return appendSnapshot(nil, &s, len(text))
	}
	a := keysOf("a")
	for _, tc := range []struct {
		name   string
		damage func(tx *bbolt.Tx) error
		want   []string // each must appear in some problem
	}{
		{
			// A well-formed snapshot (its checksum is right) of the wrong
			// text: only replaying the op log can tell.
			name:   "snapshot text differs from the log",
			damage: put(bucketSnaps, a.snap(20), snap(20, strings.Replace(textAt(20), "<7>", "<X>", 1))),
			want:   []string{"doc a snapshot rev 20: text differs"},
		},
		{
			name: "bit flip in an op",
			damage: func(tx *bbolt.Tx) error {
				return editRecord(tx.Bucket(bucketDocs), a, 12, func(v []byte) []byte { v[len(v)/2] ^= 0x10; return v })
			},
			// The snapshots after the damage cannot be compared, and say so.
			want: []string{"doc a rev 12: checksum mismatch", "doc a snapshot rev 20: not compared"},
		},
		{
			name: "activity out of step with the log",
			damage: func(tx *bbolt.Tx) error {
				docs := tx.Bucket(bucketDocs)
				k, v := docs.Cursor().Seek(a.activity(0))
				if _, ok := a.activityMinute(k); !ok {
					return fmt.Errorf("doc a has no activity entry")
				}
				act, err := decodeActivity(v)
				if err != nil {
					return err
				}
				act.ins++
				return docs.Put(bytes.Clone(k), appendActivity(nil, &act))
			},
			want: []string{"doc a activity of minute"},
		},
		{
			name: "damaged chunk framing",
			damage: func(tx *bbolt.Tx) error {
				// Revisions 1 to 5 of a, then a length past the end.
				docs := tx.Bucket(bucketDocs)
				_, recs, err := chunkOf(docs, a, 1)
				if err != nil {
					return err
				}
				return docs.Put(a.op(1), append(chunkValue(recs[:5]), 0x7f, 1, 2, 3))
			},
			want: []string{"doc a rev 6: bad stored value"},
		},
		{
			name:   "missing op",
			damage: delOp(a, 17),
			want:   []string{"doc a rev 17: missing op"},
		},
		{
			name:   "missing last op",
			damage: delOp(keysOf("b"), 5),
			want:   []string{"doc b rev 5: missing op (meta says rev 5)"},
		},
		{
			name: "op that does not fit the text",
			damage: func(tx *bbolt.Tx) error {
				rec := Record{Rev: 3, Op: ot.Op{{S: "x"}}, Client: "c-a", Seq: 3}
				return editRecord(tx.Bucket(bucketDocs), a, 3, func([]byte) []byte { return appendRecord(nil, &rec) })
			},
			want: []string{"doc a rev 3:"},
		},
		{
			name: "meta length wrong",
			damage: func(tx *bbolt.Tx) error {
				m := Meta{ID: "b", ViewID: "view-b", Rev: 5, Len: 99}
				return tx.Bucket(bucketDocs).Put(keysOf("b").meta(), appendMeta(nil, &m))
			},
			want: []string{"doc b: meta records 99 code points"},
		},
		{
			name:   "client entry out of step",
			damage: put(bucketDocs, a.client("c-a"), appendClient(nil, 29, 29)),
			want:   []string{"doc a client c-a: entry says seq 29 at rev 29, its last op is seq 30 at rev 30"},
		},
		{
			name:   "snapshot of a missing document",
			damage: put(bucketSnaps, keysOf("gone").snap(3), snap(3, "abc")),
			want:   []string{"doc gone: 1 snapshots of a document that does not exist"},
		},
		{
			name:   "snapshot ahead of the document",
			damage: put(bucketSnaps, keysOf("b").snap(9), snap(9, textAt(9))),
			want:   []string{"doc b snapshot rev 9: ahead of the document"},
		},
		{
			name:   "view index to a missing document",
			damage: put(bucketViews, []byte("view-gone"), []byte("gone")),
			want:   []string{"view view-gone: points at doc \"gone\", which does not exist"},
		},
		{
			name:   "document not in the view index",
			damage: del(bucketViews, []byte("view-b")),
			want:   []string{"doc b: its view id view-b is not indexed"},
		},
		{
			name:   "op log without meta",
			damage: del(bucketDocs, keysOf("b").meta()),
			want:   []string{"doc b: no meta", "view view-b: points at doc \"b\", which does not exist"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := verifyFixture(t)
			damage(t, path, tc.damage)
			rep, err := VerifyFile(context.Background(), path, time.Second)
			if err != nil {
				t.Fatalf("VerifyFile: %v", err)
			}
			if rep.OK() {
				t.Fatal("got no problems, want some")
			}
			for _, w := range tc.want {
				found := false
				for _, p := range rep.Problems {
					found = found || strings.Contains(p.Error(), w)
					if !errors.Is(p, ErrCorrupt) {
						t.Errorf("problem %q does not wrap ErrCorrupt", p)
					}
				}
				if !found {
					t.Errorf("got problems %q, want one containing %q", rep.Problems, w)
				}
			}
		})
	}
}

// TestVerifyDamagedPage overwrites pages in use with garbage, as a failing
// disk might: the check reports it rather than crashing or passing.
func TestVerifyDamagedPage(t *testing.T) {
	for _, typ := range []string{"leaf", "branch"} {
		t.Run(typ, func(t *testing.T) {
			path := verifyFixture(t)
			// A document large enough for a bucket of several leaf pages
			// under a branch page.
			db, err := Open(path, Options{SnapshotEvery: -1})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := db.Create(ctx, Meta{ID: "big", ViewID: "view-big"}, nil); err != nil {
				t.Fatal(err)
			}
			if err := db.Append(ctx, "big", tokenRecords(1, 1500, "c-big")); err != nil {
				t.Fatal(err)
			}
			db.Close()
			// Find pages of this type in use; garbage in a free page would
			// be harmless. (A read-only bbolt does not load the freelist.)
			b, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			var pages []int
			pageSize := b.Info().PageSize
			err = b.View(func(tx *bbolt.Tx) error {
				for id := 2; int64(id) < tx.Size()/int64(pageSize); id++ {
					if p, err := tx.Page(id); err == nil && p != nil && p.Type == typ {
						pages = append(pages, id)
					}
				}
				return nil
			})
			b.Close()
			if err != nil {
				t.Fatal(err)
			}
			if len(pages) == 0 {
				t.Skipf("the fixture has no %s page in use", typ)
			}
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			junk := []byte(strings.Repeat("\xde\xad\xbe\xef", pageSize/4))
			if _, err := f.WriteAt(junk, int64(pages[0]*pageSize)); err != nil {
				t.Fatal(err)
			}
			f.Close()

			rep, err := VerifyFile(context.Background(), path, time.Second)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("VerifyFile: got %v, want a report or ErrCorrupt", err)
				}
				return
			}
			if rep.OK() {
				t.Fatalf("a file with a garbage %s page: got no problems", typ)
			}
			t.Logf("problems: %q", rep.Problems)
		})
	}
}

func TestVerifyCannotRun(t *testing.T) {
	dir := t.TempDir()
	missing := dir + "/missing.db"
	if _, err := VerifyFile(context.Background(), missing, time.Second); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("VerifyFile created the missing file (stat: %v)", err)
	}

	junk := dir + "/junk.db"
	if err := os.WriteFile(junk, []byte(strings.Repeat("not a bbolt file\n", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyFile(context.Background(), junk, time.Second); !errors.Is(err, ErrCorrupt) {
		t.Errorf("junk file: got %v, want ErrCorrupt", err)
	}

	// A running server holds the lock: the check waits, then says so.
	db, path := openTest(t, Options{})
	makeDoc(t, db, "a", 3)
	if _, err := VerifyFile(context.Background(), path, 100*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Errorf("locked file: got %v, want ErrLocked", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.Verify(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}
}
