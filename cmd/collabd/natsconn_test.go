package main

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// TestNATSConfigTLS: -nats-tls-ca makes a node trust a NATS server whose
// certificate is signed by that CA, and without it the connection is
// refused; the flags that need -nats, or each other, are checked.
func TestNATSConfigTLS(t *testing.T) {
	certFile, keyFile, _ := selfSignedCert(t)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		TLS: true, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	good := natsConfig{url: srv.ClientURL(), tlsCA: certFile, replicas: 1, leaseTTL: 2 * time.Second, nodeID: "tls-node", wait: 10 * time.Second}
	if err := good.check(); err != nil {
		t.Fatal(err)
	}
	nc, st, err := good.open(ctx, nil, -1)
	if err != nil {
		t.Fatalf("with -nats-tls-ca: %v", err)
	}
	if !nc.TLSRequired() {
		t.Error("connection is not TLS")
	}
	if err := st.Ping(ctx); err != nil {
		t.Errorf("ping over TLS: %v", err)
	}
	st.Close()
	nc.Close()

	bad := good
	bad.tlsCA, bad.wait = "", time.Second
	if nc, _, err := bad.open(ctx, nil, -1); err == nil {
		nc.Close()
		t.Fatal("connected to a server with an unknown CA without -nats-tls-ca")
	}

	for _, c := range []natsConfig{
		{creds: "x.creds"},
		{url: "nats://x", tlsCert: certFile, replicas: 1, leaseTTL: time.Second},
		{url: "nats://x", replicas: 0, leaseTTL: time.Second},
		{url: "nats://x", replicas: 1, leaseTTL: time.Millisecond, wait: time.Second},
		{url: "nats://x", replicas: 1, leaseTTL: time.Second},
	} {
		if err := c.check(); err == nil {
			t.Errorf("check(%+v) passed", c)
		}
	}
}
