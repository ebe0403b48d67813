package collab

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/collabd/collabd/ot"
)

// BenchmarkCommentAnchors is what moving the anchors adds to each op: a
// typing op (one insert or delete at a random place) moved through the
// anchors of 0, 100 or 1,000 threads spread over a 20,000 code point
// document, as movePresence does for every op the hub applies.
func BenchmarkCommentAnchors(b *testing.B) {
	const docLen = 20_000
	for _, threads := range []int{0, 100, 1000} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			var cs commentSet
			for i := range threads {
				from := r.IntN(docLen - 50)
				cs.add(&thread{ID: fmt.Sprint(i), Quote: "q"}, Range{from, from + 1 + r.IntN(40)})
			}
			// Pairs of an insert and a delete, so that the length comes
			// back and the ops can be applied round and round.
			ops := make([]ot.Op, 1024)
			for i := 0; i < len(ops); i += 2 {
				p, q := r.IntN(docLen), r.IntN(docLen+1)
				ops[i] = ot.Op{}.Retain(p).Insert("a").Retain(docLen - p)
				ops[i+1] = ot.Op{}.Retain(q).Delete(1).Retain(docLen - q)
			}
			i := 0
			for b.Loop() {
				cs.move(ops[i%len(ops)])
				i++
			}
		})
	}
}

// BenchmarkAckLatencyComments is one editor's op round trip (edit to
// ack, in-memory store) on a 20,000 code point document with 0 or 1,000
// open threads: the anchors' part of the hub's work per op, end to end.
func BenchmarkAckLatencyComments(b *testing.B) {
	for _, threads := range []int{0, 1000} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			store := newMemStore()
			id := uuid.NewString()
			text := strings.Repeat("lorem ipsum dolor sit amet ", 20_000/27+1)[:20_000]
			if err := store.Create(context.Background(), DocMeta{ID: id, ViewID: uuid.NewString(), Created: time.Now()},
				&Record{Rev: 1, Op: ot.Op{ot.Insert(text)}, Time: time.Now()}); err != nil {
				b.Fatal(err)
			}
			srv := New(store, Options{RateLimit: 1e9, RateBurst: 1e9, CommentRate: 1e9, CommentBurst: 1e9, MaxComments: threads + 1})
			hs := httptest.NewServer(srv)
			defer func() { hs.Close(); srv.Close(context.Background()) }()
			h, err := srv.acquire(context.Background(), id)
			if err != nil {
				b.Fatal(err)
			}
			// Threads straight into the hub: 1,000 HTTP creates would
			// each be a store write, which is not what is measured.
			r := rand.New(rand.NewPCG(3, 4))
			m := commentReq{done: make(chan struct{}), do: func(h *hub, err error) {
				for i := range threads {
					from := r.IntN(len(text) - 50)
					h.comments.add(&thread{ID: fmt.Sprint(i), Text: "t"}, Range{from, from + 1 + r.IntN(40)})
				}
			}}
			h.send(context.Background(), m)
			<-m.done
			srv.release(h)
			ctx := context.Background()
			c, err := Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/api/docs/"+id+"/ws", ClientOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			for b.Loop() {
				p := r.IntN(c.Len())
				if err := c.Edit(ot.Op{}.Retain(p).Insert("a").Retain(c.Len() - p)); err != nil {
					b.Fatal(err)
				}
				if err := c.WaitSynced(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
