package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// TestClusterWebhooksOutliveOwner: in cluster mode webhook events wait in
// the cluster's outbox (a JetStream stream), not in the file of the node
// that queued them. The document's owner queues its events while the
// receiver refuses them, and is killed (SIGKILL); the receiver comes back
// and gets the events from the surviving node.
func TestClusterWebhooksOutliveOwner(t *testing.T) {
	skipShortCluster(t)
	secret := filepath.Join(t.TempDir(), "webhook.secret")
	if err := os.WriteFile(secret, []byte("whsec\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var up atomic.Bool
	var refused atomic.Int64
	var mu sync.Mutex
	var events []map[string]any
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !up.Load() {
			refused.Add(1)
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		var ev map[string]any
		json.Unmarshal(body, &ev)
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}))
	defer rc.Close()

	c := startCluster(t, clusterOpts{nodes: 2, race: clusterRaceBuild(),
		extra: []string{"-webhook-url", rc.URL, "-webhook-secret-file", secret, "-webhook-debounce", "50ms"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*clusterGuard)
	defer cancel()
	id, _ := createClusterDoc(t, c.nodes[0], "hello")
	ty, err := newTypist(ctx, 0, c.nodes[0], id, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ty.c.Close()
	if err := ty.burst(); err != nil {
		t.Fatal(err)
	}
	if err := ty.sync(ctx, c.nodes, id); err != nil {
		t.Fatal(err)
	}
	rev := ty.c.Rev()
	owner := c.owner(t, ctx, id)
	if owner == nil {
		t.Fatal("nobody owns the document after an acknowledged op")
	}
	ty.c.Close()
	// Both events (created, changed) queued in the cluster's outbox, and
	// a delivery tried (and refused).
	nc, err := nats.Connect("nats://" + c.nats.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for {
		var queued uint64
		if st, err := js.Stream(ctx, "COLLAB_HOOKS"); err == nil {
			if info, err := st.Info(ctx); err == nil {
				queued = info.State.Msgs
			}
		}
		if queued >= 2 && refused.Load() > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d events queued, %d deliveries tried; want 2 and some", queued, refused.Load())
		case <-time.After(20 * time.Millisecond):
		}
	}
	owner.kill()
	killed := time.Now()
	up.Store(true)

	for {
		mu.Lock()
		var got bool
		for _, ev := range events {
			if ev["type"] == "document.changed" && ev["doc"] == id {
				if r, _ := ev["rev"].(float64); int64(r) == rev {
					got = true
				}
			}
		}
		n := len(events)
		mu.Unlock()
		if got {
			t.Logf("the changed event at rev %d delivered %v after the owner's kill (%d events)", rev, time.Since(killed).Round(time.Millisecond), n)
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the changed event at rev %d never arrived after the owner (%s) was killed; got %v", rev, owner.name, events)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
