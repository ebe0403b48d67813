package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/collab/client"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
)

// TestDocHistoryAcrossRestart: -max-doc-history counts the bytes the data
// file holds, the same way before a restart (the hub's running count)
// and after one (the count the file keeps, which the hub starts from).
// Inserts are accepted until the next would take the document's log past
// the budget, and the log never passes it. The original code counted an
// op as its text plus 16 bytes per component, below what the file takes
// (about 125 bytes more per op with a client id), so that the file's
// log went past the budget by the difference on every op.
func TestDocHistoryAcrossRestart(t *testing.T) {
	const (
		budget = 20_000
		chunk  = 1000
	)
	data := filepath.Join(t.TempDir(), "collab.db")
	args := []string{"-max-doc-history", "20000", "-rate-limit", "1000000", "-rate-burst", "1000000"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	s1 := startServerAt(t, data, args...)
	resp, err := http.Post(s1.URL+"/api/docs", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: status %d, %v", resp.StatusCode, err)
	}
	insert := func(c *client.Client) error {
		if err := c.Edit(ot.Op{}.Retain(c.Len()).Insert(strings.Repeat("y", chunk))); err != nil {
			return err
		}
		return c.WaitSynced(ctx)
	}
	dial := func(base string) *client.Client {
		c, err := client.Dial(ctx, base+"/api/docs/"+created.ID+"/ws", client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c1 := dial(s1.URL)
	for i := range 5 {
		if err := insert(c1); err != nil {
			t.Fatalf("insert %d before the restart: %v", i, err)
		}
	}
	clientID := c1.ID()
	c1.Close()
	s1.Stop(t)

	s2 := startServerAt(t, data, args...)
	c2 := dial(s2.URL)
	accepted := 5
	for ; accepted < 100; accepted++ {
		err := insert(c2)
		if err == nil {
			continue
		}
		var pe *client.ServerError
		if !errors.As(err, &pe) || pe.Code != collab.CodeTooLarge {
			t.Fatalf("insert %d: got %v, want too_large", accepted, err)
		}
		break
	}
	c2.Close()
	s2.Stop(t)

	db, err := storage.Open(data, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m, err := db.Meta(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The refused insert, as the file would have taken it.
	next := storage.RecordBytes(storage.Record{Rev: m.Rev + 1, Op: ot.Op{}.Retain(int(m.Len)).Insert(strings.Repeat("y", chunk)),
		Client: clientID, Seq: int64(accepted + 1), Time: time.Now()})
	if m.LogBytes > budget {
		t.Errorf("after %d inserts the file holds %d bytes of the document's log, past the %d budget", accepted, m.LogBytes, budget)
	}
	if m.LogBytes+next <= budget {
		t.Errorf("insert %d refused with %d bytes of log and %d to add, within the %d budget", accepted+1, m.LogBytes, next, budget)
	}
	if m.Rev != int64(accepted) {
		t.Errorf("the file holds %d revisions, want the %d accepted", m.Rev, accepted)
	}
}

// TestRecordBytesEstimate: collab's estimate of a record's size, used
// for stores that cannot tell it, is what package storage counts.
func TestRecordBytesEstimate(t *testing.T) {
	var tiny ot.Op
	for range 500 {
		tiny = append(tiny, ot.Op{{N: 1}, {S: "a"}, {N: -1}}...)
	}
	for _, r := range []collab.Record{
		{Rev: 1, Op: ot.Op{{S: "hello"}}, Client: "5f1c7c2e-6b1d-4c57-9d4e-2a0b7f3c1e99", Seq: 1, Time: time.Now()},
		{Rev: 1 << 33, Op: ot.Op{{N: 1 << 25}, {N: -300}, {S: "héllo ✓ 𝄞"}}, Time: time.Unix(1, 0)},
		{Rev: 9, Op: tiny, Client: "c", Seq: 1 << 40, Time: time.Now()},
	} {
		if got, want := collab.EstimateRecordBytes(r), storage.RecordBytes(toStorage(r)); got != want {
			t.Errorf("rev %d: EstimateRecordBytes %d, want storage's %d", r.Rev, got, want)
		}
	}
}
