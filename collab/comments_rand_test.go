package collab

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
)

// madeComment is a thread the randomized test made: on range rg of
// revision rev, placed by the server at revision at.
type madeComment struct {
	id      string
	rev, at int64
	rg      Range
}

// TestCommentsRandomizedAgainstReference: editors type concurrently
// while threads are made on ranges of random (often stale) revisions;
// between rounds editors drop and reconnect, and the server restarts,
// cleanly or as after a crash, on the same store. At the end every
// thread's range and detached mark must be what the marked-text
// reference gives when the whole committed log is applied to it.
func TestCommentsRandomizedAgainstReference(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { commentsRandomRun(t, seed) })
	}
}

func commentsRandomRun(t *testing.T, seed uint64) {
	store := newMemStore()
	var cur atomic.Pointer[Server]
	var old []*Server
	opts := Options{CommentRate: 1000, CommentBurst: 1000}
	cur.Store(New(store, opts))
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { cur.Load().ServeHTTP(w, r) }))
	t.Cleanup(func() {
		for _, s := range append(old, cur.Load()) {
			s.Close(context.Background())
		}
		hs.Close()
	})
	ts := &testServer{Server: hs, store: store}
	id, _ := ts.createDoc(t, "the quick brown fox jumps over the lazy dog")
	clients := make([]*Client, 3)
	for i := range clients {
		clients[i] = ts.dial(t, id, ClientOptions{Name: fmt.Sprint("e", i)})
	}
	r := rand.New(rand.NewPCG(seed, 2828))
	var made []madeComment
	ctx, cancel := context.WithTimeout(context.Background(), sseGuard)
	defer cancel()
	for round := range 4 {
		edits := editConcurrently(clients, seed*100+uint64(round), 12)
		for range 6 {
			var d struct {
				Rev  int64
				Text string
			}
			if st := call(t, "GET", hs.URL+"/api/docs/"+id, nil, &d); st != 200 {
				t.Fatalf("GET doc: %d", st)
			}
			n := len([]rune(d.Text))
			from := r.IntN(n + 1)
			to := from + r.IntN(min(n-from, 8)+1)
			var c createdComment
			body := map[string]any{"rev": d.Rev, "range": []int{from, to}, "text": "c"}
			if st := call(t, "POST", hs.URL+"/api/docs/"+id+"/comments", body, &c); st != 201 {
				t.Fatalf("create comment: %d", st)
			}
			made = append(made, madeComment{id: c.ID, rev: d.Rev, at: c.Rev, rg: Range{from, to}})
			time.Sleep(time.Duration(r.IntN(5)) * time.Millisecond)
		}
		waitErr(t, "edits", edits)
		// Drops, and a restart: clean on odd rounds, as after a crash
		// (the old server's hubs never store their moved anchors) on
		// even ones.
		prev := cur.Swap(New(store, opts))
		if round%2 == 1 {
			prev.Close(context.Background())
		} else {
			old = append(old, prev)
		}
		for _, c := range clients {
			if err := c.Reconnect(ctx); err != nil {
				t.Fatalf("reconnect: %v", err)
			}
		}
	}
	for _, c := range clients {
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The reference: the committed log applied to a marked text.
	var recs []OpRecord
	for from := int64(0); ; {
		var page []OpRecord
		if st := call(t, "GET", fmt.Sprintf("%s/api/docs/%s/ops?from=%d", hs.URL, id, from), nil, &page); st != 200 {
			t.Fatalf("GET ops: %d", st)
		}
		if len(page) == 0 {
			break
		}
		recs = append(recs, page...)
		from = page[len(page)-1].Rev
	}
	ref := newMarkedText("")
	num := map[string]int{}
	markAt := func(rev int64) {
		for i, c := range made {
			if c.rev == rev {
				num[c.id] = i
				ref.mark(i, c.rg[0], c.rg[1])
				ref.emptyBefore[i] = c.rg[0] == c.rg[1]
				ref.quote[i] = "" // known once placed, at c.at
			}
		}
	}
	quoteAt := func(rev int64) {
		for i, c := range made {
			if c.at == rev {
				rg := ref.ranges()[i]
				if rg[1]-rg[0] <= maxQuoteRunes {
					ref.quote[i] = ref.slice(rg[0], rg[1])
				}
			}
		}
	}
	markAt(0)
	quoteAt(0)
	for _, rec := range recs {
		ref.apply(ot.Op(rec.Op))
		markAt(rec.Rev)
		quoteAt(rec.Rev)
	}
	got := getComments(t, hs.URL, id)
	if got.Rev != recs[len(recs)-1].Rev {
		t.Fatalf("comments at rev %d, log ends at %d", got.Rev, recs[len(recs)-1].Rev)
	}
	if len(got.Comments) != len(made) {
		t.Fatalf("%d threads, want %d", len(got.Comments), len(made))
	}
	want := ref.ranges()
	detached := 0
	for _, th := range got.Comments {
		n := num[th.ID]
		if th.Range != want[n] || th.Detached != ref.detached[n] {
			t.Errorf("thread %d (made on %v at rev %d): got %v detached %v, want %v detached %v",
				n, made[n].rg, made[n].rev, th.Range, th.Detached, want[n], ref.detached[n])
		}
		if th.Detached {
			detached++
		}
	}
	t.Logf("%d ops, %d threads, %d detached", len(recs), len(made), detached)
}
