package collab

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

// TestBatchFanOut: a committed batch of ops from two editors goes to the
// others as one array frame, and to each of its authors op by op with
// its ack in its place, all in revision order.
func TestBatchFanOut(t *testing.T) {
	for attempt := 1; !batchedFanOut(t); attempt++ {
		// The two ops must both reach the hub while the first commit is
		// held; a machine too busy to deliver them in 100 ms gets
		// another go.
		if attempt == 5 {
			t.Fatal("in 5 attempts, the two ops were never committed in one batch")
		}
	}
}

// frameMsg is a message as a raw reader saw it, with the number of the
// frame it came in.
type frameMsg struct {
	wireMsg
	frame int
}

// readUntilRev reads r's frames until one holds an op or ack of revision
// rev, and returns the ops and acks seen (skipping presence).
func readUntilRev(t *testing.T, r *rawConn, rev int64) []frameMsg {
	t.Helper()
	ctx := guardCtx(t)
	var out []frameMsg
	for frame := 0; ; frame++ {
		_, data, err := r.ws.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v (after %v)", err, out)
		}
		raws := []json.RawMessage{data}
		if data[0] == '[' {
			if err := json.Unmarshal(data, &raws); err != nil {
				t.Fatalf("bad frame %s: %v", data, err)
			}
		}
		last := false
		for _, raw := range raws {
			var m wireMsg
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatalf("bad message %s: %v", raw, err)
			}
			if m.Type == typeOp || m.Type == typeAck {
				m.raw = string(raw)
				out = append(out, frameMsg{m, frame})
				last = last || m.Rev == rev
			}
		}
		if last {
			return out
		}
	}
}

func batchedFanOut(t *testing.T) bool {
	gs := newGateStore()
	ts := newTestServerStore(t, gs.memStore, gs, Options{})
	id, _ := ts.createDoc(t, "abc")
	ctx := guardCtx(t)
	var conns [4]*rawConn // A and B write, C and D only read
	var authors [4]string
	var r0 int64
	for i := range conns {
		conns[i] = ts.raw(t, id)
		w := conns[i].hello(t, ctx, uuid.NewString(), -1)
		authors[i], r0 = w.Author, w.Rev
	}
	a, b := conns[0], conns[1]
	entered, release := gs.hold()
	a.sendOp(t, ctx, r0, 1, ot.Op{ot.Insert("x"), ot.Retain(3)})
	<-entered
	a.sendOp(t, ctx, r0+1, 2, ot.Op{ot.Retain(4), ot.Insert("y")})
	b.sendOp(t, ctx, r0, 1, ot.Op{ot.Retain(3), ot.Insert("z")})
	time.Sleep(100 * time.Millisecond)
	release()

	// What C reads fixes which of the two later ops came first.
	seen := readUntilRev(t, conns[2], r0+3)
	if len(seen) != 3 {
		t.Fatalf("C got %v, want the 3 ops", seen)
	}
	byRev := map[int64]string{} // author of each revision
	for i, m := range seen {
		if m.Type != typeOp || m.Rev != r0+1+int64(i) {
			t.Fatalf("C's message %d is %s, want op %d", i, m.raw, r0+1+int64(i))
		}
		byRev[m.Rev] = m.Author
	}
	if byRev[r0+1] != authors[0] || byRev[r0+2] == byRev[r0+3] {
		t.Fatalf("C got ops by %v; A is %s, B %s", byRev, authors[0], authors[1])
	}
	batched := seen[1].frame == seen[2].frame
	if d := readUntilRev(t, conns[3], r0+3); len(d) != 3 || (batched && d[1].frame != d[2].frame) {
		t.Fatalf("D got %v, C %v", d, seen)
	}
	// Each author: the other's ops, and acks of its own, in revision order.
	for i, r := range []*rawConn{a, b} {
		got := readUntilRev(t, r, r0+3)
		if len(got) != 3 {
			t.Fatalf("editor %d got %v, want 3 messages", i, got)
		}
		seq := int64(0)
		for k, m := range got {
			rev := r0 + 1 + int64(k)
			mine := byRev[rev] == authors[i]
			switch {
			case m.Rev != rev:
				t.Fatalf("editor %d's message %d is %s, want revision %d", i, k, m.raw, rev)
			case mine && m.Type != typeAck, !mine && m.Type != typeOp:
				t.Fatalf("editor %d's message %d is %s (own op: %v)", i, k, m.raw, mine)
			case mine:
				seq++
				if m.Seq != seq {
					t.Fatalf("editor %d's ack %s, want seq %d", i, m.raw, seq)
				}
			}
		}
	}
	if st := ts.waitDocRev(t, id, r0+3); len(st.Text) != 6 {
		t.Fatalf("text %q after 3 inserts into abc", st.Text)
	}
	return batched
}
