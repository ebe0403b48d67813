package collab

import (
	"fmt"
	"testing"

	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

// TestCatchUpBeyondMemory uses a tiny in-memory history, so that the
// catch-up of a welcome and the transform of a stale op read older ops
// from the store, and a tiny MaxCatchUp, beyond which a stale op is
// refused (but a welcome still has the ops).
func TestCatchUpBeyondMemory(t *testing.T) {
	ts := newTestServer(t, Options{HistoryLimit: 2, MaxCatchUp: 6})
	id, _ := ts.createDoc(t, "")
	ctx := guardCtx(t)
	c := ts.dial(t, id, ClientOptions{})
	texts := []string{""} // texts[r] is the text at rev r
	for i := range 10 {
		s := fmt.Sprint(i)
		if err := c.Edit(ot.Op{}.Retain(i).Insert(s)); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
		texts = append(texts, texts[i]+s)
	}

	// Five behind: ops 6..10, some from the store.
	r := ts.raw(t, id)
	w := r.hello(t, ctx, uuid.NewString(), 5)
	if w.hasField["text"] || len(w.Ops) != 5 {
		t.Fatalf("welcome from rev 5 got %s, want ops 6..10 and no text", w.raw)
	}
	text := texts[5]
	for i, op := range w.Ops {
		if op.Rev != int64(6+i) || op.Author != c.Author() || op.Seq != int64(6+i) {
			t.Fatalf("catch-up op %d got rev %d author %s seq %d, want rev %d author %s seq %d",
				i, op.Rev, op.Author, op.Seq, 6+i, c.Author(), 6+i)
		}
		var err error
		if text, err = ot.Apply(text, op.Op); err != nil {
			t.Fatal(err)
		}
	}
	if text != texts[10] {
		t.Errorf("catch-up ops make %q, want %q", text, texts[10])
	}

	// An op made at rev 6 is transformed over ops 7..10, read partly
	// from the store; the committed ops' inserts at the same place stay
	// to the left.
	r.sendOp(t, ctx, 6, 1, ot.Op{ot.Retain(6), ot.Insert("X")})
	if ack := r.expect(t, ctx, typeAck); ack.Rev != 11 {
		t.Errorf("ack got rev %d, want 11", ack.Rev)
	}
	if d := ts.docState(t, id); d.Text != "0123456789X" {
		t.Errorf("text got %q, want %q", d.Text, "0123456789X")
	}

	// Eight behind, beyond MaxCatchUp, the welcome still carries the ops,
	// read from the store by the connection's writer; but a stale op made
	// that far back is refused.
	r2 := ts.raw(t, id)
	w = r2.hello(t, ctx, uuid.NewString(), 3)
	if w.hasField["text"] || len(w.Ops) != 8 || w.Rev != 11 {
		t.Fatalf("welcome from rev 3 got %s, want ops 4..11 and no text", w.raw)
	}
	text = texts[3]
	for i, op := range w.Ops {
		if op.Rev != int64(4+i) {
			t.Fatalf("catch-up op %d got rev %d, want %d", i, op.Rev, 4+i)
		}
		var err error
		if text, err = ot.Apply(text, op.Op); err != nil {
			t.Fatal(err)
		}
	}
	if text != "0123456789X" {
		t.Errorf("catch-up ops from rev 3 make %q, want %q", text, "0123456789X")
	}
	r2.sendOp(t, ctx, 3, 1, ot.Op{ot.Retain(3), ot.Insert("Y")})
	if e := r2.expectError(t, ctx, CodeBadOp, 4409); e.Seq != 1 {
		t.Errorf("error names seq %d, want 1", e.Seq)
	}
	checkServing(t, ts, id)
}
