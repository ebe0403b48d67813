package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/ot/ottest"
	"github.com/collabd/collabd/storage"
	"github.com/collabd/collabd/storage/jetstream"
	"github.com/google/uuid"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// BenchmarkAuthorsPaper stores the automerge-paper trace (259,778 edits)
// in a bbolt file as one document, its edits taken in turns of 200 by
// four writers so that the text has many runs of authors, then asks
// GET /api/docs/{id}/authors?rev=R at random revisions through the real
// store. The first request, which builds the checkpoints, is reported as
// build-ms; each iteration is one request, with p50-ms and p99-ms.
//
//	go test -run '^$' -bench BenchmarkAuthorsPaper -benchtime 2000x ./cmd/collabd
func BenchmarkAuthorsPaper(b *testing.B) {
	tr := ottest.Open(b, "../../../shared/traces", "automerge-paper.json.gz")
	db, err := storage.Open(filepath.Join(b.TempDir(), "collab.db"), storage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	id, viewID := uuid.NewString(), uuid.NewString()
	if err := db.Create(ctx, storage.Meta{ID: id, ViewID: viewID, Created: time.Now().Add(-time.Hour)}, nil); err != nil {
		b.Fatal(err)
	}
	clients := []string{uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()}
	seqs := make([]int64, len(clients))
	var recs []storage.Record
	n, rev := 0, int64(0)
	at := time.Now().Add(-time.Hour)
	for _, txn := range tr.Txns {
		for _, p := range txn.Patches {
			op := ot.Op{}.Retain(p.Pos).Insert(p.Ins).Delete(p.Del).Retain(n - p.Pos - p.Del)
			n = op.TargetLen()
			rev++
			w := int(rev/200) % len(clients)
			seqs[w]++
			recs = append(recs, storage.Record{Rev: rev, Op: op, Client: clients[w], Seq: seqs[w], Time: at})
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
	head := rev
	srv := collab.New(store{db}, collab.Options{})
	ts := httptest.NewServer(srv)
	defer func() {
		ts.Close()
		srv.Close(ctx)
	}()
	get := func(rev int64) {
		resp, err := http.Get(fmt.Sprintf("%s/api/docs/%s/authors?rev=%d", ts.URL, id, rev))
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("authors?rev=%d: %d %s", rev, resp.StatusCode, body)
		}
	}
	start := time.Now()
	get(head)
	build := time.Since(start)
	r := rand.New(rand.NewPCG(1, 1))
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		get(1 + r.Int64N(head))
		times = append(times, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(times)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(build), "build-ms")
	b.ReportMetric(ms(times[len(times)/2]), "p50-ms")
	b.ReportMetric(ms(times[len(times)*99/100]), "p99-ms")
}

// BenchmarkAuthorsPaperCluster is BenchmarkAuthorsPaper in cluster mode:
// the trace in JetStream (an in-process NATS server), a first node that
// answers at the head and so stores the checkpoints (build-ms), then a
// second node, as after a restart or a change of owner, that answers
// GET /authors?rev=R at random revisions from what JetStream holds
// (p50-ms, p99-ms, each iteration one request). The edits are appended
// clusterGroup to a message, as an editor typing fast sends them: a read
// of the log takes up to 256 messages at a time, so far larger groups
// would make each replay read dozens of times the ops it needs.
//
//	go test -run '^$' -bench BenchmarkAuthorsPaperCluster -benchtime 2000x ./cmd/collabd
func BenchmarkAuthorsPaperCluster(b *testing.B) {
	const clusterGroup = 16
	tr := ottest.Open(b, "../../../shared/traces", "automerge-paper.json.gz")
	url := startNATS(b)
	ctx := context.Background()
	node := func(name string) (*httptest.Server, func()) {
		nc, err := jetstream.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		st, err := jetstream.New(ctx, nc, jetstream.Options{NodeID: name})
		if err != nil {
			b.Fatal(err)
		}
		key, err := st.SharedKey(ctx, "author", 32)
		if err != nil {
			b.Fatal(err)
		}
		cl := newJSCluster(st, slog.New(slog.DiscardHandler))
		srv := collab.New(jsStore{st: st, jsCluster: cl}, collab.Options{AuthorKey: key, Logger: slog.New(slog.DiscardHandler), AuthorsEvery: clusterAuthorsEvery})
		ts := httptest.NewServer(srv)
		return ts, func() {
			ts.Close()
			srv.Close(ctx)
			cl.close()
			st.Close()
			nc.Close()
		}
	}
	nc, err := jetstream.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	st, err := jetstream.New(ctx, nc, jetstream.Options{NodeID: "loader", SnapshotEvery: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	id, viewID := uuid.NewString(), uuid.NewString()
	if err := st.Create(ctx, jetstream.DocMeta{ID: id, ViewID: viewID, Created: time.Now().Add(-time.Hour)}, nil); err != nil {
		b.Fatal(err)
	}
	clients := []string{uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()}
	seqs := make([]int64, len(clients))
	var recs []jetstream.Record
	n, rev := 0, int64(0)
	at := time.Now().Add(-time.Hour)
	for _, txn := range tr.Txns {
		for _, p := range txn.Patches {
			op := ot.Op{}.Retain(p.Pos).Insert(p.Ins).Delete(p.Del).Retain(n - p.Pos - p.Del)
			n = op.TargetLen()
			rev++
			w := int(rev/200) % len(clients)
			seqs[w]++
			recs = append(recs, jetstream.Record{Rev: rev, Op: op, Client: clients[w], Seq: seqs[w], Time: at})
			if len(recs) == clusterGroup {
				if err := st.Append(ctx, id, recs); err != nil {
					b.Fatal(err)
				}
				recs = recs[:0]
			}
		}
	}
	if err := st.Append(ctx, id, recs); err != nil {
		b.Fatal(err)
	}
	head := rev
	get := func(ts *httptest.Server, rev int64) {
		resp, err := http.Get(fmt.Sprintf("%s/api/docs/%s/authors?rev=%d", ts.URL, id, rev))
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("authors?rev=%d: %d %s", rev, resp.StatusCode, body)
		}
	}
	first, stop := node("first")
	start := time.Now()
	get(first, head)
	build := time.Since(start)
	stop()
	// What the checkpoints take in JetStream.
	js, err := natsjs.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	info, err := js.Stream(ctx, "KV_collab_authors")
	if err != nil {
		b.Fatal(err)
	}
	ckptBytes := info.CachedInfo().State.Bytes
	second, stop := node("second")
	defer stop()
	r := rand.New(rand.NewPCG(1, 1))
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		get(second, 1+r.Int64N(head))
		times = append(times, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(times)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(build), "build-ms")
	b.ReportMetric(ms(times[len(times)/2]), "p50-ms")
	b.ReportMetric(ms(times[len(times)*99/100]), "p99-ms")
	b.ReportMetric(float64(ckptBytes)/(1<<20), "ckpt-MB")
}
