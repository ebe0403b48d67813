package main

// Embedding: access tokens, webhooks and metrics (docs/embedding.md,
// docs/operations.md). The flags are declared in config.go; this file
// reads the files they name and wires the result into collab.Options and
// the admin listener.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/storage"
)

// embedConfig holds the embedding flags.
type embedConfig struct {
	authKeyFile       string
	authJWKS          string
	authLeeway        time.Duration
	createToken       string
	webhookURL        string
	webhookSecretFile string
	webhookDebounce   time.Duration
	webhookText       bool
	webhookMaxBytes   int64
	webhookMaxEvents  int
	pprof             bool
}

// check reports flags that make no sense together, at parse time.
func (e *embedConfig) check(adminAddr string) error {
	if (e.webhookURL == "") != (e.webhookSecretFile == "") {
		return errors.New("-webhook-url and -webhook-secret-file go together: every webhook is signed")
	}
	if e.pprof && adminAddr == "" {
		return errors.New("-pprof serves on the admin listener: set -admin-addr too")
	}
	return nil
}

// readSecret reads a key or secret file. Surrounding whitespace, such as
// the newline an editor or `echo` leaves, is not part of the secret.
func readSecret(flagName, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-%s: %w", flagName, err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("-%s: %s is empty", flagName, path)
	}
	return b, nil
}

// setup fills the embedding fields of o: Auth from the key files and the
// create token, Webhook with db's outbox, and, when admin is on, Metrics
// registered in the registry it returns for /metrics (nil otherwise).
func (e *embedConfig) setup(o *collab.Options, db *storage.DB, admin bool) (*prometheus.Registry, error) {
	if e.authKeyFile != "" || e.authJWKS != "" || e.createToken != "" {
		ao := collab.AuthOptions{CreateToken: e.createToken, Leeway: e.authLeeway}
		var err error
		if e.authKeyFile != "" {
			if ao.HMACSecret, err = readSecret("auth-key-file", e.authKeyFile); err != nil {
				return nil, err
			}
		}
		if e.authJWKS != "" {
			if ao.JWKS, err = os.ReadFile(e.authJWKS); err != nil {
				return nil, fmt.Errorf("-auth-jwks: %w", err)
			}
		}
		if o.Auth, err = collab.NewAuth(ao); err != nil {
			return nil, fmt.Errorf("access tokens: %w", err)
		}
	}
	if e.webhookURL != "" {
		secret, err := readSecret("webhook-secret-file", e.webhookSecretFile)
		if err != nil {
			return nil, err
		}
		o.Webhook = &collab.WebhookOptions{
			URL: e.webhookURL, Secret: secret, Outbox: outbox{db},
			Debounce: e.webhookDebounce, Text: e.webhookText,
			MaxOutboxBytes: e.webhookMaxBytes, MaxOutboxEvents: e.webhookMaxEvents,
		}
	}
	if !admin {
		return nil, nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		// Across all documents: the ratio of these two is the average
		// number of writes that shared one fsync.
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "collabd", Name: "storage_commits_total",
			Help: "Write transactions (each one fsync) the storage committer has run."},
			func() float64 { c, _ := db.CommitStats(); return float64(c) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "collabd", Name: "storage_writes_total",
			Help: "Write requests (appends, creates, snapshots, outbox writes) those transactions carried."},
			func() float64 { _, r := db.CommitStats(); return float64(r) }),
	)
	o.Metrics = collab.NewMetrics(reg)
	db.ObserveCommits(o.Metrics.StorageCommitted)
	return reg, nil
}

// observe adds GET /metrics (when reg is set) and, with -pprof, the
// /debug/pprof/ endpoints to the admin handler next, behind the same Host
// check (hosts) as the rest of the admin endpoints.
func observe(next http.Handler, reg *prometheus.Registry, withPprof bool, hosts []string, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", next)
	if reg != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError),
		}))
	}
	if withPprof {
		// Registered here by hand: importing net/http/pprof also adds
		// these to http.DefaultServeMux, which collabd never serves.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return checkHost(hosts, mux)
}

// outbox adapts *storage.DB's outbox to collab.Outbox.
type outbox struct{ db *storage.DB }

var _ collab.Outbox = outbox{}

func (o outbox) Add(ctx context.Context, events []collab.OutboxEvent) error {
	out := make([]storage.OutboxEvent, len(events))
	for i, ev := range events {
		out[i] = storage.OutboxEvent{Queued: ev.Queued, Body: ev.Body}
	}
	return o.db.OutboxAdd(ctx, out)
}

func (o outbox) Pending(ctx context.Context, limit int) ([]collab.OutboxEvent, error) {
	evs, err := o.db.OutboxPending(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]collab.OutboxEvent, len(evs))
	for i, ev := range evs {
		out[i] = collab.OutboxEvent{Seq: ev.Seq, Queued: ev.Queued, Body: ev.Body}
	}
	return out, nil
}

func (o outbox) Remove(ctx context.Context, seqs []uint64) error {
	return o.db.OutboxRemove(ctx, seqs)
}

func (o outbox) Size(ctx context.Context) (int, int64, error) {
	return o.db.OutboxSize(ctx)
}
