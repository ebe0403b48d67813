package collab

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/ot/ottest"
)

// traceDir holds the team's shared editing traces (github.com/josephg/
// editing-traces, CC BY 4.0, Joseph Gentle). They are never copied into
// the repository; tests skip when they are absent.
var traceDir = filepath.Join("..", "..", "shared", "traces")

// spliceOp turns splices on a text of n code points into one op.
func spliceOp(n int, ss []ottest.Splice) (ot.Op, error) {
	op := ot.Op{}.Retain(n)
	for _, s := range ss {
		if s.Pos+s.Del > n {
			return nil, fmt.Errorf("splice %+v past the end of %d code points", s, n)
		}
		next := ot.Op{}.Retain(s.Pos).Insert(s.Ins).Delete(s.Del).Retain(n - s.Pos - s.Del)
		var err error
		if op, err = ot.Compose(op, next); err != nil {
			return nil, err
		}
		n = next.TargetLen()
	}
	return op, nil
}

// TestTraceFriendsForever replays the concurrent friendsforever trace (two
// people typing at once) through two real Clients over WebSockets and the
// real server, as the traces README describes: before each transaction its
// agent waits until it has received the other's transactions in its
// causal past, then makes the transaction's change on the text it holds,
// whatever else has arrived. Clients read every message as it comes. Both
// clients and the server must end at the trace's endContent.
func TestTraceFriendsForever(t *testing.T) {
	tr := ottest.Open(t, traceDir, "friendsforever.json.gz")
	r, err := ottest.NewReplay(tr)
	if err != nil {
		t.Fatal(err)
	}
	// Each client sends an op per round trip at most, but that is far
	// above the default rate limit.
	ts := newTestServer(t, Options{RateLimit: 1e9, RateBurst: 1 << 30})
	id, _ := ts.createDoc(t, "")
	ctx := guardCtx(t)

	n := r.Agents()
	clients := make([]*Client, n)
	agentOf := map[string]int{}
	for a := range clients {
		clients[a] = ts.dial(t, id, ClientOptions{Name: fmt.Sprintf("agent %d", a)})
		agentOf[clients[a].ID()] = a
	}
	// booked[a] is the revision up to which agent a's received ops have
	// been told to the Replay. book brings it up to the client's
	// revision; the store says whose op each revision was (it has every
	// op before anyone hears of it). Called with the client's lock held
	// (v is its view).
	booked := make([]int64, n)
	book := func(a int, v ClientView) error {
		for rev := booked[a] + 1; rev <= v.Rev(); rev++ {
			rec, ok := ts.store.record(id, rev)
			if !ok {
				return fmt.Errorf("agent %d is at rev %d, which the store lacks", a, rev)
			}
			if x, ok := agentOf[rec.Client]; ok && x != a {
				if err := r.Receive(a, x, rec.Seq); err != nil {
					return err
				}
			}
			booked[a] = rev
		}
		return nil
	}

	for txn := range r.Len() {
		a := r.Agent(txn)
		c := clients[a]
		var bookErr error
		if err := c.Wait(ctx, func(v ClientView) bool {
			bookErr = book(a, v)
			return bookErr != nil || r.Ready(txn)
		}); err != nil {
			t.Fatalf("txn %d: %v; %s", txn, err, r.Waiting(txn))
		}
		if bookErr != nil {
			t.Fatalf("txn %d: %v", txn, bookErr)
		}
		var editErr error
		err := c.EditView(func(v ClientView) ot.Op {
			// Under the client's lock: nothing arrives until the op is
			// applied, so it is made on the text as it is.
			noop := ot.Op{}.Retain(v.Len())
			if editErr = book(a, v); editErr != nil {
				return noop
			}
			if txn%997 == 0 {
				if got, want := v.Text(), r.LocalText(a); got != want {
					editErr = fmt.Errorf("agent %d text got %q, want %q", a, got, want)
					return noop
				}
			}
			ss, err := r.Edit(txn)
			if err != nil || ss == nil {
				editErr = err
				return noop
			}
			op, err := spliceOp(v.Len(), ss)
			if err != nil {
				editErr = err
				return noop
			}
			// The edit goes out with the next seq: now if nothing is in
			// flight, else in the buffer sent after the ack.
			r.Carry(a, v.LastSeq()+1)
			return op
		})
		if err == nil {
			err = editErr
		}
		if err != nil {
			t.Fatalf("txn %d by agent %d: %v", txn, a, err)
		}
	}

	for a, c := range clients {
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatalf("agent %d: %v", a, err)
		}
	}
	d := ts.docState(t, id)
	for a, c := range clients {
		if err := c.WaitRev(ctx, d.Rev); err != nil {
			t.Fatalf("agent %d: %v", a, err)
		}
	}
	want := tr.EndContent
	check := func(what, got string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: got %d code points, want endContent's %d; first difference at byte %d",
				what, utf8.RuneCountInString(got), utf8.RuneCountInString(want), firstDifference(got, want))
		}
	}
	check("replay bookkeeping", r.Text())
	check("server", d.Text)
	for a, c := range clients {
		check(fmt.Sprintf("agent %d", a), c.Text())
	}
	code, _, body := doHTTP(t, http.MethodGet, ts.URL+"/api/docs/"+id+"/text", "", nil)
	if code != http.StatusOK {
		t.Errorf("GET text: status %d", code)
	}
	check("GET text", string(body))
	t.Logf("%d transactions became %d revisions", r.Len(), d.Rev)
}

func firstDifference(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
