package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/collabd/collabd/storage/jetstream"
)

// natsConfig is how a node reaches NATS JetStream in cluster mode
// (docs/scaling.md). The server and `collabd migrate` share it.
type natsConfig struct {
	url      string // empty: single-node mode
	creds    string
	tlsCert  string
	tlsKey   string
	tlsCA    string
	replicas int
	nodeID   string
	leaseTTL time.Duration
	wait     time.Duration // how long start-up retries NATS
}

// addFlags registers the NATS flags on fs.
func (c *natsConfig) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.url, "nats", "", "NATS `URL`s (comma-separated) of a JetStream cluster: switches to cluster mode, with documents stored in JetStream instead of -data (docs/scaling.md)")
	fs.StringVar(&c.creds, "nats-creds", "", "NATS credentials `file` (JWT and NKey seed)")
	fs.StringVar(&c.tlsCert, "nats-tls-cert", "", "client certificate `file` (PEM) for NATS over TLS, with -nats-tls-key")
	fs.StringVar(&c.tlsKey, "nats-tls-key", "", "client private key `file` (PEM) for NATS over TLS")
	fs.StringVar(&c.tlsCA, "nats-tls-ca", "", "CA certificate `file` (PEM) that the NATS servers' certificates are checked against")
	fs.IntVar(&c.replicas, "nats-replicas", 1, "replicas of the JetStream stream and buckets: 3 on a three-server NATS cluster, where an ack then means a quorum has the op")
	fs.StringVar(&c.nodeID, "node-id", "", "this node's name in document leases ([A-Za-z0-9_-]); empty: a random one at each start")
	fs.DurationVar(&c.wait, "nats-wait", time.Minute, "how long a node waits at start-up for NATS and JetStream (the first connection, the stream and buckets, the shared key), retrying with backoff, before it gives up: nodes and NATS may start in any order")
	fs.DurationVar(&c.leaseTTL, "lease-ttl", 2*time.Second, "how long a document's owner lease lives without renewal: a dead node's documents move after about this long; every node must use the same value")
}

// check validates the combination of NATS flags.
func (c natsConfig) check() error {
	if c.url == "" {
		if c.creds != "" || c.tlsCert != "" || c.tlsKey != "" || c.tlsCA != "" {
			return errors.New("-nats-creds and -nats-tls-* need -nats")
		}
		return nil
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return errors.New("-nats-tls-cert and -nats-tls-key go together")
	}
	if c.replicas < 1 || c.replicas > 5 {
		return fmt.Errorf("-nats-replicas %d: must be 1 to 5", c.replicas)
	}
	if c.wait <= 0 {
		return fmt.Errorf("-nats-wait %v: must be positive", c.wait)
	}
	if c.leaseTTL < 500*time.Millisecond {
		return fmt.Errorf("-lease-ttl %v: must be at least 500ms", c.leaseTTL)
	}
	return nil
}

// options are the nats.go options the flags ask for.
func (c natsConfig) options(log *slog.Logger) []nats.Option {
	var opts []nats.Option
	if c.creds != "" {
		opts = append(opts, nats.UserCredentials(c.creds))
	}
	if c.tlsCert != "" {
		opts = append(opts, nats.ClientCert(c.tlsCert, c.tlsKey))
	}
	if c.tlsCA != "" {
		opts = append(opts, nats.RootCAs(c.tlsCA))
	}
	if log != nil {
		opts = append(opts,
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				log.Warn("disconnected from NATS", "err", err)
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted())
			}),
		)
	}
	return opts
}

// open connects to NATS and opens the JetStream store, creating its
// stream and buckets if they do not exist. The caller closes both.
//
// An orchestrator starts NATS and every node at once: NATS may not listen
// yet, or have no JetStream leader, and several nodes create the same
// stream together. So each step is retried with backoff for up to c.wait
// (creating the stream and buckets is idempotent); only then does start-up
// fail, with the last error.
func (c natsConfig) open(ctx context.Context, log *slog.Logger, snapshotEvery int) (*nats.Conn, *jetstream.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, c.wait)
	defer cancel()
	var nc *nats.Conn
	err := c.retry(ctx, log, "connect to NATS", func(context.Context) error {
		var err error
		nc, err = jetstream.Connect(c.url, c.options(log)...)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	var st *jetstream.Store
	err = c.retry(ctx, log, "open JetStream", func(ctx context.Context) error {
		var err error
		st, err = jetstream.New(ctx, nc, jetstream.Options{
			Replicas:      c.replicas,
			LeaseTTL:      c.leaseTTL,
			NodeID:        c.nodeID,
			SnapshotEvery: snapshotEvery,
			Logger:        log,
		})
		return err
	})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, st, nil
}

// startAttempt bounds one attempt of a start-up step, so that a request
// NATS never answers leaves time for the next.
const startAttempt = 20 * time.Second

// retry runs step until it succeeds or ctx ends, waiting 250 ms after the
// first failure and twice as long after each next one, up to 5 s.
func (c natsConfig) retry(ctx context.Context, log *slog.Logger, what string, step func(context.Context) error) error {
	wait := 250 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, startAttempt)
		err := step(actx)
		cancel()
		if err == nil {
			return nil
		}
		if log != nil {
			log.Warn("start-up: retrying", "step", what, "in", wait, "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: gave up after -nats-wait %v: %w", what, c.wait, err)
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}
