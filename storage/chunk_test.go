package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/collabd/collabd/ot"
)

// chunkOf returns the first revision and the record values of the chunk
// that holds revision rev of a document, or an error if there is none.
func chunkOf(docs *bbolt.Bucket, k docKeys, rev int64) (int64, [][]byte, error) {
	first, v, ok := opKeyAt(docs.Cursor(), k, rev)
	if !ok {
		return 0, nil, fmt.Errorf("no op key at or before rev %d", rev)
	}
	var recs [][]byte
	if len(v) > 0 && v[0] == opChunk {
		for rest := v[1:]; len(rest) > 0; {
			var rec []byte
			rec, rest = nextRecord(rest)
			recs = append(recs, bytes.Clone(rec))
		}
	} else {
		recs = [][]byte{bytes.Clone(v)}
	}
	if rev-first >= int64(len(recs)) {
		return 0, nil, fmt.Errorf("rev %d is not stored (chunk at %d holds %d)", rev, first, len(recs))
	}
	return first, recs, nil
}

func chunkValue(recs [][]byte) []byte {
	v := []byte{opChunk}
	for _, r := range recs {
		v = binary.AppendUvarint(v, uint64(len(r)))
		v = append(v, r...)
	}
	return v
}

// editRecord is how tests damage one stored record: it replaces the value
// of revision rev with what edit returns for it; nil removes the record,
// splitting its chunk so that the later ones keep their revisions.
func editRecord(docs *bbolt.Bucket, k docKeys, rev int64, edit func(v []byte) []byte) error {
	first, recs, err := chunkOf(docs, k, rev)
	if err != nil {
		return err
	}
	i := rev - first
	nv := edit(recs[i])
	if nv != nil {
		recs[i] = nv
		return docs.Put(k.op(first), chunkValue(recs))
	}
	if err := docs.Delete(k.op(first)); err != nil {
		return err
	}
	if i > 0 {
		if err := docs.Put(k.op(first), chunkValue(recs[:i])); err != nil {
			return err
		}
	}
	if int(i)+1 < len(recs) {
		return docs.Put(k.op(rev+1), chunkValue(recs[i+1:]))
	}
	return nil
}

// opKeys returns the first revision of each op key of document id and the
// number of records under it.
func opKeys(t *testing.T, db *DB, id string) (firsts []int64, counts []int) {
	t.Helper()
	k := keysOf(id)
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketDocs).Cursor()
		for key, v := c.Seek(k.op(0)); ; key, v = c.Next() {
			first, ok := k.opRev(key)
			if !ok {
				return nil
			}
			n, _ := chunkLen(v)
			firsts, counts = append(firsts, first), append(counts, n)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return firsts, counts
}

func TestChunks(t *testing.T) {
	db, _ := openTest(t, Options{SnapshotEvery: -1})
	ctx := context.Background()
	makeDoc(t, db, "d", 40) // three ops per Append
	firsts, counts := opKeys(t, db, "d")
	if want := []int64{1, 17, 33}; fmt.Sprint(firsts) != fmt.Sprint(want) || fmt.Sprint(counts) != "[16 16 8]" {
		t.Errorf("op keys after 40 single appends: firsts %v counts %v, want %v [16 16 8]", firsts, counts, want)
	}
	// A batch fills the last chunk and spills into a new one.
	if err := db.Append(ctx, "d", tokenRecords(41, 50, "c")); err != nil {
		t.Fatal(err)
	}
	firsts, counts = opKeys(t, db, "d")
	if fmt.Sprint(firsts) != "[1 17 33 49]" || fmt.Sprint(counts) != "[16 16 16 2]" {
		t.Errorf("op keys after a batch of 10: firsts %v counts %v, want [1 17 33 49] [16 16 16 2]", firsts, counts)
	}
	// Every range reads back, whichever chunks it starts, ends or lies in.
	all, err := db.Ops(ctx, "d", 0, 0, 0)
	if err != nil || len(all) != 50 {
		t.Fatalf("Ops(0): %d records, %v", len(all), err)
	}
	for after := int64(0); after < 50; after++ {
		for _, limit := range []int{1, 3, 16, 100} {
			got, err := db.Ops(ctx, "d", after, limit, 0)
			if err != nil {
				t.Fatalf("Ops(after %d, limit %d): %v", after, limit, err)
			}
			n := min(limit, int(50-after))
			if len(got) != n || got[0].Rev != after+1 || got[n-1].Rev != after+int64(n) {
				t.Fatalf("Ops(after %d, limit %d): got %d records from rev %d", after, limit, len(got), got[0].Rev)
			}
		}
	}
	revs, err := db.Revisions(ctx, "d", 20, 5)
	if err != nil || len(revs) != 5 || revs[0].Rev != 21 || revs[4].Rev != 25 {
		t.Errorf("Revisions(after 20, 5): got %+v, %v", revs, err)
	}
	if rep, err := db.Verify(ctx); err != nil || !rep.OK() || rep.Ops != 50 {
		t.Errorf("Verify: got %+v, %v, want 50 ops and no problems", rep, err)
	}
}

func TestChunkBytesBound(t *testing.T) {
	db, _ := openTest(t, Options{SnapshotEvery: -1})
	ctx := context.Background()
	makeDoc(t, db, "d", 0)
	// Inserts of 300 bytes: three fit under maxChunkBytes; one larger
	// than the bound gets a chunk of its own.
	text := 0
	add := func(n int) {
		t.Helper()
		m, err := db.Meta(ctx, "d")
		if err != nil {
			t.Fatal(err)
		}
		op := ot.Op{{S: strings.Repeat("x", n)}}
		if text > 0 {
			op = ot.Op{{N: text}, {S: strings.Repeat("x", n)}}
		}
		if err := db.Append(ctx, "d", []Record{{Rev: m.Rev + 1, Op: op}}); err != nil {
			t.Fatal(err)
		}
		text += n
	}
	for range 4 {
		add(300)
	}
	add(5000)
	add(10)
	firsts, counts := opKeys(t, db, "d")
	if fmt.Sprint(firsts) != "[1 4 5 6]" || fmt.Sprint(counts) != "[3 1 1 1]" {
		t.Errorf("op keys: firsts %v counts %v, want [1 4 5 6] [3 1 1 1]", firsts, counts)
	}
	doc, err := db.Load(ctx, "d")
	if err != nil || len(doc.Text) != text {
		t.Errorf("Load: %d bytes, %v, want %d", len(doc.Text), err, text)
	}
}

// TestUpgradeFormat2 checks that a file of format 2, whose op keys hold
// one bare record each, opens as format 3, reads as before, and goes on
// in chunks.
func TestUpgradeFormat2(t *testing.T) {
	db, path := openTest(t, Options{SnapshotEvery: -1})
	ctx := context.Background()
	makeDoc(t, db, "d", 5)
	// Rewrite revisions 1 to 5 as format 2 stored them.
	k := keysOf("d")
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		docs := tx.Bucket(bucketDocs)
		_, recs, err := chunkOf(docs, k, 1)
		if err != nil {
			return err
		}
		if err := docs.Delete(k.op(1)); err != nil {
			return err
		}
		for i, r := range recs {
			if err := docs.Put(k.op(int64(i+1)), r); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketSys).Put(keyFormat, []byte{2})
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	// Checked offline, before Open upgrades it, it is sound.
	if rep, err := VerifyFile(ctx, path, time.Second); err != nil || !rep.OK() {
		t.Errorf("VerifyFile of the format 2 file: got %+v, %v, want no problems", rep, err)
	}
	db, err = Open(path, Options{SnapshotEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var format []byte
	_ = db.bolt.View(func(tx *bbolt.Tx) error { format = bytes.Clone(tx.Bucket(bucketSys).Get(keyFormat)); return nil })
	if !bytes.Equal(format, []byte{formatVersion}) || formatVersion != 3 {
		t.Errorf("format after opening a format 2 file: got %v, want [3]", format)
	}
	if err := db.Append(ctx, "d", tokenRecords(6, 7, "c")); err != nil {
		t.Fatal(err)
	}
	if err := db.Append(ctx, "d", tokenRecords(8, 8, "c")); err != nil {
		t.Fatal(err)
	}
	firsts, counts := opKeys(t, db, "d")
	if fmt.Sprint(firsts) != "[1 2 3 4 5 6]" || fmt.Sprint(counts) != "[1 1 1 1 1 3]" {
		t.Errorf("op keys: firsts %v counts %v, want [1 2 3 4 5 6] [1 1 1 1 1 3]", firsts, counts)
	}
	doc, err := db.Load(ctx, "d")
	if err != nil || doc.Text != textAt(8) {
		t.Errorf("Load: got %q, %v, want %q", doc.Text, err, textAt(8))
	}
	for after := int64(0); after < 8; after++ {
		got, err := db.Ops(ctx, "d", after, 2, 0)
		if err != nil || got[0].Rev != after+1 {
			t.Errorf("Ops(after %d): got %+v, %v", after, got, err)
		}
	}
	if rep, err := db.Verify(ctx); err != nil || !rep.OK() {
		t.Errorf("Verify: got %+v, %v", rep, err)
	}
}

// FuzzChunkSplit checks that splitting any op value terminates without
// panicking, and that chunkLen counts the records a value splits into
// when it accepts it.
func FuzzChunkSplit(f *testing.F) {
	rec := appendRecord(nil, &Record{Rev: 1, Op: ot.Op{{S: "x"}}})
	f.Add(chunkValue([][]byte{rec, rec}))
	f.Add(rec)
	f.Add([]byte{opChunk})
	f.Add([]byte{opChunk, 0x7f, 1, 2})
	f.Fuzz(func(t *testing.T, v []byte) {
		n, ok := chunkLen(v)
		if len(v) == 0 || v[0] != opChunk {
			if n != 1 || ok {
				t.Fatalf("bare value: chunkLen %d, %v, want 1, false", n, ok)
			}
			return
		}
		var recs [][]byte
		for rest := v[1:]; len(rest) > 0; {
			var r []byte
			r, rest = nextRecord(rest)
			recs = append(recs, r)
			if len(recs) > len(v) {
				t.Fatal("splitting does not terminate")
			}
		}
		if ok && n != len(recs) {
			t.Fatalf("chunkLen %d accepted %x, which splits into %d records", n, v, len(recs))
		}
		if ok && len(recs) > 0 && !bytes.HasSuffix(v, recs[len(recs)-1]) {
			t.Fatalf("chunkLen accepted %x, whose last record %x is not its end", v, recs[len(recs)-1])
		}
	})
}

// TestOpenFormat2File opens a file the previous release wrote (format 2:
// documents a, 40 ops with milestones every 10, and b, 5 ops; written by
// makeDoc, then compacted to 32 KB) and checks that it reads, verifies and
// goes on in chunks.
func TestOpenFormat2File(t *testing.T) {
	src, err := os.ReadFile("testdata/format2.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "collab.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if rep, err := VerifyFile(ctx, path, time.Second); err != nil || !rep.OK() || rep.Ops != 45 {
		t.Fatalf("VerifyFile before opening: got %+v, %v, want 45 ops and no problems", rep, err)
	}
	open := func() *DB {
		t.Helper()
		db, err := Open(path, Options{SnapshotEvery: 10})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	db := open()
	for id, rev := range map[string]int64{"a": 40, "b": 5} {
		if doc, err := db.Load(ctx, id); err != nil || doc.Rev != rev || doc.Text != textAt(rev) {
			t.Errorf("Load(%s): got %+v, %v, want rev %d", id, doc, err, rev)
		}
	}
	if text, err := db.TextAt(ctx, "a", 25); err != nil || text != textAt(25) {
		t.Errorf("TextAt(a, 25): got %q, %v", text, err)
	}
	if seq, rev, err := db.ClientSeq(ctx, "a", "c-a"); err != nil || seq != 40 || rev != 40 {
		t.Errorf("ClientSeq(a, c-a): got %d, %d, %v, want 40, 40", seq, rev, err)
	}
	if err := db.Append(ctx, "a", tokenRecords(41, 45, "c-a")); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = open()
	if doc, err := db.Load(ctx, "a"); err != nil || doc.Text != textAt(45) {
		t.Errorf("Load(a) after appending and reopening: got %+v, %v", doc, err)
	}
	firsts, counts := opKeys(t, db, "a")
	if len(firsts) != 41 || firsts[40] != 41 || counts[40] != 5 {
		t.Errorf("op keys of a: firsts %v counts %v, want 40 bare records, then a chunk of 5 at 41", firsts, counts)
	}
	if rep, err := db.Verify(ctx); err != nil || !rep.OK() || rep.Ops != 50 {
		t.Errorf("Verify: got %+v, %v, want 50 ops and no problems", rep, err)
	}
}
