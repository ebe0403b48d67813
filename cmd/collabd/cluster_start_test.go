package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"
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

// TestNATSStartTogetherR3: three nodes and a three-server NATS cluster
// start at once, the nodes first, as an orchestrator does: every node
// opens (connection, stream and buckets on three replicas, created by
// whichever node gets there first) and none gives up. On two loaded
// cores each step's first attempt times out while the R3 stream and
// buckets form (what made three nodes started together exit before), and
// the retries find them made: about 10 to 45 s on this machine, and
// more than 80 s once under CI's load, hence the generous -nats-wait.
func TestNATSStartTogetherR3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-server NATS cluster")
	}
	ctx := inprocCtx(t, 170*time.Second)
	ports := make([]int, 6) // client and route ports
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	var urls, routes []string
	for i := range 3 {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3+i]))
	}
	errs := make(chan error, 3)
	for i := range 3 {
		c := natsConfig{url: strings.Join(urls, ","), replicas: 3, leaseTTL: 2 * time.Second,
			nodeID: fmt.Sprintf("node%d", i), wait: 150 * time.Second}
		go func() {
			nc, st, err := c.open(ctx, nil, -1)
			if err == nil {
				st.Close()
				nc.Close()
			}
			errs <- err
		}()
	}
	for i := range 3 {
		srv, err := natsserver.NewServer(&natsserver.Options{
			ServerName: fmt.Sprintf("s%d", i), Host: "127.0.0.1", Port: ports[i],
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: natsserver.ClusterOpts{Name: "collab", Host: "127.0.0.1", Port: ports[3+i]},
			Routes:  natsserver.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			t.Fatal(err)
		}
		srv.Start()
		t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Errorf("node did not start: %v", err)
		}
	}
}
