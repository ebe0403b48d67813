package jetstream

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// natsServer is a NATS server with JetStream running in the test process,
// on loopback and a temporary directory, fsyncing every write
// (sync_interval: always) as a production single server should.
type natsServer struct {
	t    testing.TB
	dir  string
	port int
	srv  *server.Server
	// tweak, if set, adjusts the server's options before each start.
	tweak func(*server.Options)
}

func startNATS(t testing.TB) *natsServer {
	t.Helper()
	ns := &natsServer{t: t, dir: t.TempDir(), port: -1}
	ns.start()
	t.Cleanup(ns.stop)
	return ns
}

func (ns *natsServer) start() {
	ns.t.Helper()
	opts := &server.Options{
		ServerName: "collabd-test",
		Host:       "127.0.0.1",
		Port:       ns.port,
		JetStream:  true,
		StoreDir:   ns.dir,
		SyncAlways: true,
		NoLog:      true,
		NoSigs:     true,
	}
	if ns.tweak != nil {
		ns.tweak(opts)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		ns.t.Fatalf("nats server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		ns.t.Fatalf("nats server not ready after 10s")
	}
	ns.srv = srv
	// Restarts reuse the port, so that clients reconnect to the same URL.
	ns.port = srv.Addr().(*net.TCPAddr).Port
}

func (ns *natsServer) stop() {
	if ns.srv != nil {
		ns.srv.Shutdown()
		ns.srv.WaitForShutdown()
		ns.srv = nil
	}
}

// restart stops the server and starts it again on the same port and
// directory, as a NATS server that crashed or was upgraded.
func (ns *natsServer) restart() {
	ns.t.Helper()
	ns.stop()
	ns.start()
}

func (ns *natsServer) url() string { return ns.srv.ClientURL() }

// connect dials the server with Connect's options, closed at cleanup.
func (ns *natsServer) connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := Connect(ns.url(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// newStore returns a Store on a new connection to ns.
func (ns *natsServer) newStore(t testing.TB, opts Options) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := New(ctx, ns.connect(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
