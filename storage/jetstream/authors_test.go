package jetstream

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// TestAuthorsCheckpoints: checkpoints read back by "latest at or before",
// from another node too; one larger than a message is cut into chunks and
// put back together; a checkpoint replaced at its revision reads as the
// new one; two nodes saving at once both keep theirs; a checkpoint past
// the head is refused; a damaged one is an error, not a wrong answer; and
// they go with their document.
func TestAuthorsCheckpoints(t *testing.T) {
	ns := &natsServer{t: t, dir: t.TempDir(), port: -1, tweak: func(o *server.Options) { o.MaxPayload = 16 << 10 }}
	ns.start()
	t.Cleanup(ns.stop)
	s := ns.newStore(t, Options{})
	other := ns.newStore(t, Options{})
	ctx := testCtx(t)
	m := createDoc(t, s)
	var ty typist
	for i := range 50 {
		if err := s.Append(ctx, m.ID, ty.group(1, "c", int64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	data := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return b
	}
	want := map[int64][]byte{10: data(100), 20: data(40 << 10), 33: data(7)}
	if err := s.SaveAuthors(ctx, m.ID, []Checkpoint{{10, want[10]}, {20, want[20]}}); err != nil {
		t.Fatal(err)
	}
	if err := other.SaveAuthors(ctx, m.ID, []Checkpoint{{33, want[33]}}); err != nil {
		t.Fatal(err)
	}
	check := func(who *Store, rev, wantRev int64) {
		t.Helper()
		cp, err := who.AuthorsBefore(ctx, m.ID, rev)
		if err != nil {
			t.Fatalf("AuthorsBefore(%d): %v", rev, err)
		}
		if cp.Rev != wantRev || !bytes.Equal(cp.Data, want[wantRev]) {
			t.Fatalf("AuthorsBefore(%d): got rev %d, %d bytes; want rev %d, %d bytes", rev, cp.Rev, len(cp.Data), wantRev, len(want[wantRev]))
		}
	}
	for _, c := range [][2]int64{{5, 0}, {10, 10}, {19, 10}, {20, 20}, {32, 20}, {33, 33}, {50, 33}} {
		check(s, c[0], c[1])
		check(other, c[0], c[1])
	}
	// Replaced by a smaller one: the new data, and the old chunks gone.
	old := want[20]
	want[20] = data(3 << 10)
	if err := other.SaveAuthors(ctx, m.ID, []Checkpoint{{20, want[20]}}); err != nil {
		t.Fatal(err)
	}
	check(s, 25, 20)
	keys, err := s.authors.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range keys.Keys() {
		n++
	}
	if n != 4 { // the index and one chunk each
		t.Errorf("keys after replacing a checkpoint of %d bytes: %d, want 4", len(old), n)
	}
	// Two nodes adding at once: the index keeps both.
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			who := s
			if i%2 == 1 {
				who = other
			}
			errs[i] = who.SaveAuthors(ctx, m.ID, []Checkpoint{{int64(30 + i), []byte(fmt.Sprint(i))}})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent save %d: %v", i, err)
		}
		want[int64(30+i)] = []byte(fmt.Sprint(i))
	}
	for i := range errs {
		check(other, int64(30+i), int64(30+i))
	}
	if err := s.SaveAuthors(ctx, m.ID, []Checkpoint{{51, []byte("x")}}); !errors.Is(err, ErrConflict) {
		t.Errorf("a checkpoint past the head: %v, want ErrConflict", err)
	}
	// A damaged chunk: an error, never other data.
	idx, err := s.authors.Get(ctx, m.ID+".i")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := decodeIndex(idx.Value())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.rev == 10 {
			if _, err := s.authors.Put(ctx, chunkKey(m.ID, e, 0), []byte("garbage")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if cp, err := s.AuthorsBefore(ctx, m.ID, 12); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a damaged checkpoint: got %d bytes, %v; want ErrCorrupt", len(cp.Data), err)
	}
	if err := s.Delete(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	if cp, err := s.AuthorsBefore(ctx, m.ID, 1); err != nil || cp.Data != nil {
		t.Errorf("a recreated document's checkpoints: got rev %d, %v; want none", cp.Rev, err)
	}
}

// TestAuthorsIndexCodec: the index decodes to what was encoded, and no
// prefix of it decodes.
func TestAuthorsIndexCodec(t *testing.T) {
	idx := []authorsEntry{
		{rev: 1000, size: 12, chunks: 1, crc: 7, tag: "0011223344556677"},
		{rev: 1234, size: 1 << 20, chunks: 5, crc: 1<<32 - 1, tag: "8899aabbccddeeff"},
	}
	enc := encodeIndex(idx)
	got, err := decodeIndex(enc)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(idx) {
		t.Fatalf("round trip: got %v, %v; want %v", got, err, idx)
	}
	for i := range enc {
		if _, err := decodeIndex(enc[:i]); err == nil {
			t.Errorf("the first %d bytes decoded", i)
		}
	}
}

// TestAuthorsIndexLimit: past its limit of checkpoints a document takes no
// more, and keeps those it has; the refused one's chunks are not left.
func TestAuthorsIndexLimit(t *testing.T) {
	ns := startNATS(t)
	s := ns.newStore(t, Options{})
	s.authorsMax = 3
	ctx := testCtx(t)
	m := createDoc(t, s)
	var ty typist
	for i := range 5 {
		if err := s.Append(ctx, m.ID, ty.group(1, "c", int64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	for rev := int64(1); rev <= 3; rev++ {
		if err := s.SaveAuthors(ctx, m.ID, []Checkpoint{{rev, []byte{byte(rev)}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveAuthors(ctx, m.ID, []Checkpoint{{4, []byte{4}}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("a fourth checkpoint past the limit of 3: %v, want ErrConflict", err)
	}
	// Replacing one is not adding one.
	if err := s.SaveAuthors(ctx, m.ID, []Checkpoint{{2, []byte{22}}}); err != nil {
		t.Fatalf("replacing a checkpoint at the limit: %v", err)
	}
	if cp, err := s.AuthorsBefore(ctx, m.ID, 5); err != nil || cp.Rev != 3 || !bytes.Equal(cp.Data, []byte{3}) {
		t.Fatalf("AuthorsBefore(5): rev %d %v, %v; want rev 3", cp.Rev, cp.Data, err)
	}
	keys, err := s.authors.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range keys.Keys() {
		n++
	}
	if n != 4 {
		t.Errorf("keys: %d, want 4 (the index and three checkpoints)", n)
	}
}
