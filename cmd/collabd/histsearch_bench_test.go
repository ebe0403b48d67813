package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/ot/ottest"
	"github.com/collabd/collabd/storage"
	"github.com/google/uuid"
)

// BenchmarkHistorySearchPaper stores the automerge-paper trace (259,778
// edits) in a bbolt file as one document, then searches all of its
// revisions for a phrase through GET /api/docs/{id}/history/search, the
// real store underneath. Each iteration is one whole search: the
// requests it takes with the default budgets (2 s, 1,000,000 ops a
// request), following "scanned" until "complete". It reports the time
// per search, the revisions searched per second, the requests and the
// spans found.
//
//	go test -run '^$' -bench BenchmarkHistorySearchPaper -benchtime 3x ./cmd/collabd
func BenchmarkHistorySearchPaper(b *testing.B) {
	tr := ottest.Open(b, "../../../shared/traces", "automerge-paper.json.gz")
	db, err := storage.Open(filepath.Join(b.TempDir(), "collab.db"), storage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	id := uuid.NewString()
	if err := db.Create(ctx, storage.Meta{ID: id, ViewID: uuid.NewString(), Created: time.Now()}, nil); err != nil {
		b.Fatal(err)
	}
	client := uuid.NewString()
	var recs []storage.Record
	n, head := 0, int64(0)
	for _, txn := range tr.Txns {
		for _, p := range txn.Patches {
			op := ot.Op{}.Retain(p.Pos).Insert(p.Ins).Delete(p.Del).Retain(n - p.Pos - p.Del)
			n = op.TargetLen()
			head++
			recs = append(recs, storage.Record{Rev: head, Op: op, Client: client, Seq: head, Time: time.Now()})
			if len(recs) == 256 {
				if err := db.Append(ctx, id, recs); err != nil {
					b.Fatal(err)
				}
				recs = recs[:0]
			}
		}
	}
	if err := db.Append(ctx, id, recs); err != nil {
		b.Fatal(err)
	}
	srv := collab.New(store{db}, collab.Options{})
	ts := httptest.NewServer(srv)
	defer func() {
		ts.Close()
		srv.Close(ctx)
	}()
	for _, phrase := range []string{"operational transformation", "the"} {
		b.Run(phrase, func(b *testing.B) {
			var requests, spans int
			for range b.N {
				requests, spans = 0, 0
				for from := int64(0); ; {
					var a struct {
						Scanned  int64
						Complete bool
						Spans    []json.RawMessage
					}
					resp, err := http.Get(fmt.Sprintf("%s/api/docs/%s/history/search?q=%s&from=%d", ts.URL, id, url.QueryEscape(phrase), from))
					if err != nil {
						b.Fatal(err)
					}
					err = json.NewDecoder(resp.Body).Decode(&a)
					resp.Body.Close()
					if err != nil || resp.StatusCode != http.StatusOK {
						b.Fatalf("search from %d: %d %v", from, resp.StatusCode, err)
					}
					requests++
					spans += len(a.Spans)
					if a.Complete {
						break
					}
					from = a.Scanned
				}
			}
			b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "revs/s")
			b.ReportMetric(float64(requests), "requests")
			b.ReportMetric(float64(spans), "spans")
		})
	}
}
