package jetstream

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// freePorts returns n loopback ports that were free a moment ago; a
// cluster's routes must be known before its servers start.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		defer l.Close()
	}
	return ports
}

// startCluster runs three NATS servers with JetStream, routed to each
// other on loopback, and waits until JetStream has a meta leader.
func startCluster(t testing.TB) []*server.Server {
	t.Helper()
	ports := freePorts(t, 3)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	servers := make([]*server.Server, 3)
	for i := range servers {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: "collab", Host: "127.0.0.1", Port: ports[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		}
		srv, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		srv.Start()
		servers[i] = srv
		t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	}
	for _, srv := range servers {
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatalf("%s not ready", srv.Name())
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		leader := false
		for _, srv := range servers {
			leader = leader || srv.JetStreamIsLeader()
		}
		if leader {
			return servers
		}
		if time.Now().After(deadline) {
			t.Fatal("no JetStream meta leader after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReplicatedCluster runs the store on three NATS servers with three
// replicas: fencing still lets exactly one of two writers win (replicated
// streams report the conflict with another error code), and losing one
// server of three loses nothing and stops nothing.
func TestReplicatedCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-server NATS cluster")
	}
	servers := startCluster(t)
	var urls []string
	for _, srv := range servers {
		urls = append(urls, srv.ClientURL())
	}
	ctx := testCtx(t)
	newStore := func(node string) *Store {
		nc, err := Connect(strings.Join(urls, ","), nats.DontRandomize())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		// Stream creation waits for the meta leader's placement.
		var s *Store
		for {
			if s, err = New(ctx, nc, Options{Replicas: 3, NodeID: node}); err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("New: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Cleanup(s.Close)
		return s
	}
	a, b := newStore("a"), newStore("b")
	m := createDoc(t, a)

	var ty typist
	for round := range 5 {
		var groups [2][]Record
		var texts [2]string
		for i, s := range []*Store{a, b} {
			d, err := s.Load(ctx, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			w := typist{rev: d.Rev, text: d.Text}
			groups[i] = w.group(1, s.NodeID(), int64(round+1))
			texts[i] = w.text
		}
		var errs [2]error
		var wg sync.WaitGroup
		for i, s := range []*Store{a, b} {
			wg.Go(func() { errs[i] = s.Append(ctx, m.ID, groups[i]) })
		}
		wg.Wait()
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
				ty = typist{rev: groups[i][0].Rev, text: texts[i]}
			case !errors.Is(err, ErrConflict):
				t.Fatalf("round %d: %v, want nil or ErrConflict", round, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d appends won, want 1 (%v)", round, wins, errs)
		}
	}

	la, err := a.Acquire(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer la.Close()
	if _, err := b.Acquire(ctx, m.ID); !errors.Is(err, ErrHeld) {
		t.Fatalf("b.Acquire = %v, want ErrHeld", err)
	}

	// One server of three goes; a quorum remains. The first appends may
	// wait out a leader election; retry only while nothing was stored.
	servers[0].Shutdown()
	servers[0].WaitForShutdown()
	// Both clients were on servers[0] (DontRandomize); with no reconnect
	// buffer they fail fast until they reach another server.
	time.Sleep(100 * time.Millisecond)
	waitConnected(t, a)
	waitConnected(t, b)
	// The stream's leader may have been on servers[0]: reads fail until
	// the remaining two elect one.
	for {
		_, err := a.Load(ctx, m.ID)
		if err == nil {
			break
		}
		if errors.Is(err, ErrCorrupt) || ctx.Err() != nil {
			t.Fatalf("load with a server down: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := range 10 {
		recs := ty.group(1, "a", int64(100+i))
		for ambiguous := false; ; ambiguous = true {
			err := a.Append(ctx, m.ID, recs)
			if err == nil {
				break
			}
			if errors.Is(err, ErrConflict) && ambiguous {
				// The earlier attempt, still being stored when the
				// reload below looked, has landed since.
				if d, lerr := a.Load(ctx, m.ID); lerr == nil && d.Rev == recs[0].Rev {
					break
				}
			}
			if errors.Is(err, ErrConflict) || ctx.Err() != nil {
				t.Fatalf("append %d with a server down: %v", i, err)
			}
			// Ambiguous: reload (as a hub must) and see whether it landed.
			time.Sleep(100 * time.Millisecond)
			d, lerr := a.Load(ctx, m.ID)
			if lerr != nil {
				continue
			}
			if d.Rev == recs[0].Rev {
				break
			}
		}
	}
	d, err := b.Load(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Text != ty.text || d.Rev != ty.rev {
		t.Fatalf("after losing a server: rev %d %q, want rev %d %q", d.Rev, d.Text, ty.rev, ty.text)
	}
	if !la.Valid() {
		t.Errorf("lease lost with a quorum up: %v", la.Err())
	}
}
