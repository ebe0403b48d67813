package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestNATSStartWaits: a node started before NATS is reachable retries its
// first connection (and then the stream and buckets) with backoff instead
// of exiting, and opens once NATS answers: an orchestrator starts
// everything at once.
func TestNATSStartWaits(t *testing.T) {
	ctx := inprocCtx(t, 30*time.Second)
	proxy := startNATSProxy(t, strings.TrimPrefix(startNATS(t), "nats://"))
	proxy.Cut()
	logs := &inprocLog{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	c := natsConfig{url: proxy.URL(), replicas: 1, leaseTTL: 2 * time.Second, wait: 20 * time.Second}
	type opened struct{ err error }
	done := make(chan opened, 1)
	go func() {
		nc, st, err := c.open(ctx, log, -1)
		if err == nil {
			st.Close()
			nc.Close()
		}
		done <- opened{err}
	}()
	inprocWaitFor(t, ctx, "a failed first connection", func() bool {
		return strings.Contains(logs.String(), "start-up: retrying")
	})
	proxy.Heal()
	select {
	case o := <-done:
		if o.err != nil {
			t.Fatalf("open once NATS answers: %v\n%s", o.err, logs)
		}
	case <-ctx.Done():
		t.Fatal("open did not return once NATS answered")
	}

	// It gives up after -nats-wait, with the error.
	proxy.Cut()
	c.wait = 500 * time.Millisecond
	if nc, _, err := c.open(ctx, nil, -1); err == nil {
		nc.Close()
		t.Fatal("open with NATS unreachable succeeded")
	} else if !strings.Contains(err.Error(), "gave up after -nats-wait") {
		t.Fatalf("open with NATS unreachable: %v", err)
	}
}

// TestClusterUnavailable503: a node that cannot reach NATS answers a create
// and a WebSocket upgrade with 503 and Retry-After, which clients and load
// balancers retry, not 500.
func TestClusterUnavailable503(t *testing.T) {
	ctx := inprocCtx(t, 30*time.Second)
	proxy := startNATSProxy(t, strings.TrimPrefix(startNATS(t), "nats://"))
	n := startInprocNode(t, proxy.URL(), "n0")
	id := inprocCreate(t, n, "hello")
	proxy.Cut()

	resp, err := http.Post(n.http.URL+"/api/docs", "application/json", bytes.NewReader([]byte(`{"text":"x"}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("create without NATS: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(dctx, n.wsURL(id), nil)
	if err == nil {
		ws.CloseNow()
		t.Fatal("WebSocket upgrade without NATS succeeded")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		status, retry := 0, ""
		if resp != nil {
			status, retry = resp.StatusCode, resp.Header.Get("Retry-After")
		}
		t.Errorf("upgrade without NATS: %d, Retry-After %q (%v); want 503 with Retry-After", status, retry, err)
	}
}
