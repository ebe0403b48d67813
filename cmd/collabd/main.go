// Command collabd serves collaborative plain-text documents: editing over
// WebSockets, live read-only viewing over Server-Sent Events, and the
// browser frontend, with every document kept in one embedded bbolt file.
//
// This file holds only flags, wiring and signals; the work is in the
// collab, ot and storage packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/frontend"
	"github.com/collabd/collabd/storage"
	"github.com/collabd/collabd/storage/jetstream"
)

func main() {
	setProcs(os.Getenv("GOMAXPROCS"))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, errHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "collabd:", err)
		os.Exit(exitCode(err))
	}
}

// run starts the server and blocks until ctx is cancelled, then shuts down
// gracefully: editors are told to reconnect later (close code 1001),
// viewers' streams end, documents are snapshotted, and the database closes
// last. It prints one line to stdout once it is listening, naming the URL,
// so that scripts and tests using port 0 can find it.
//
// `collabd backup ...`, `collabd check ...` and `collabd version` run
// those commands instead; see runBackup, runCheck and printVersion.
// `collabd export ...` and `collabd import ...` move a document's text out
// and in (transfer.go).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "backup":
			return runBackup(ctx, args[1:], stdout, stderr)
		case "check":
			return runCheck(ctx, args[1:], os.LookupEnv, stdout, stderr)
		case "version":
			return printVersion(stdout)
		case "export":
			return runExport(ctx, args[1:], stdout, stderr)
		case "import":
			return runImport(ctx, args[1:], stdout, stderr)
		case "migrate":
			return runMigrate(ctx, args[1:], stdout, stderr)
		case "reindex":
			return runReindex(ctx, args[1:], stdout, stderr)
		}
	}
	cfg, err := parseConfig(args, os.LookupEnv, stderr)
	if err != nil {
		return err
	}
	if cfg.version {
		return printVersion(stdout)
	}
	// Edit ids are capabilities, and errors from storage name documents
	// by them: every log line passes through the redaction.
	logger := slog.New(collab.RedactIDs(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel})))

	db, err := storage.Open(cfg.data, storage.Options{
		LockTimeout:   cfg.lockTimeout,
		SnapshotEvery: cfg.snapshotEvery,
		SnapshotBytes: cfg.snapshotBytes,
		Logger:        logger.With("component", "storage"),
	})
	if err != nil {
		return fmt.Errorf("open data file: %w", err)
	}
	defer db.Close()

	cfg.collab.Logger = logger.With("component", "collab")
	if cfg.collab.MemoryBudget == 0 {
		cfg.collab.MemoryBudget = defaultMemoryBudget(os.ReadFile) // membudget.go
	}
	// Author ids are derived from a key kept in the data file, so that
	// they stay the same across restarts.
	keyCtx, cancelKey := context.WithTimeout(ctx, 10*time.Second)
	cfg.collab.AuthorKey, err = db.AuthorKey(keyCtx)
	cancelKey()
	if err != nil {
		return fmt.Errorf("open data file: %w", err)
	}
	var docStore collab.Store = store{db}
	var clusterJS *jetstream.Store // cluster mode only
	if cfg.nats.url != "" {
		// Cluster mode: documents live in JetStream; the data file keeps
		// only this node's webhook outbox.
		nc, js, err := cfg.nats.open(ctx, logger.With("component", "nats"), cfg.snapshotEvery)
		if err != nil {
			return fmt.Errorf("cluster mode: %w", err)
		}
		defer nc.Close()
		defer js.Close()
		keyCtx, cancelKey := context.WithTimeout(ctx, cfg.nats.wait)
		err = cfg.nats.retry(keyCtx, logger.With("component", "nats"), "author key", func(ctx context.Context) error {
			var err error
			cfg.collab.AuthorKey, err = js.SharedKey(ctx, "author", 32)
			return err
		})
		cancelKey()
		if err != nil {
			return fmt.Errorf("cluster mode: author key: %w", err)
		}
		cluster := newJSCluster(js, logger.With("component", "cluster"))
		defer cluster.close()
		docStore = jsStore{st: js, jsCluster: cluster}
		clusterJS = js
		// An op read from JetStream costs some ten times one read from
		// the file: checkpoints of who wrote what four times as close
		// keep GET /authors at any revision within its p99 target
		// (BenchmarkAuthorsPaperCluster, docs/scaling.md).
		cfg.collab.AuthorsEvery = clusterAuthorsEvery
		logger.Info("cluster mode", "nats", nc.ConnectedUrlRedacted(), "node", js.NodeID())
	}
	reg, err := cfg.embed.setup(&cfg.collab, db, cfg.adminAddr != "")
	if err != nil {
		return err
	}
	if wh := cfg.collab.Webhook; wh != nil && clusterJS != nil {
		// Cluster mode: the outbox is the cluster's, not this node's
		// file, so that events outlive the node that queued them.
		octx, cancel := context.WithTimeout(ctx, cfg.nats.wait)
		ob, err := clusterJS.Outbox(octx, int64(wh.MaxOutboxEvents), wh.MaxOutboxBytes)
		cancel()
		if err != nil {
			return fmt.Errorf("cluster mode: webhook outbox: %w", err)
		}
		defer ob.Close()
		wh.Outbox = jsOutbox{ob}
	}
	signIn, watchAccess, err := cfg.signin.setup(ctx, &cfg.collab, db, clusterJS, cfg.nats.replicas, logger.With("component", "signin"))
	if err != nil {
		return fmt.Errorf("sign-in: %w", err)
	}
	defer signIn.close()
	ws, err := cfg.workspace.setup(ctx, &cfg.collab, db, cfg.data, clusterJS, cfg.nats, logger.With("component", "workspace"))
	if err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	defer ws.close() // after docs.Close: the indexer's last flush
	docs := collab.New(docStore, cfg.collab)
	if err := watchAccess(docs.AccessChanged, docs.SessionEnded); err != nil {
		return fmt.Errorf("sign-in: %w", err)
	}
	if err := ws.follow(docs); err != nil {
		return fmt.Errorf("workspace: %w", err)
	}

	mux := http.NewServeMux()
	mux.Handle("/api/", docs)
	mux.Handle("GET /healthz", docs)
	// The pages have the API's headers and body limits, and caps of
	// their own, which editors' sessions cannot fill.
	mux.Handle("/", docs.ProtectPages(frontend.Handler()))

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ln = docs.LimitListener(ln)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// Long-lived streams manage their own deadlines: WebSocket sessions
		// clear this one, SSE streams extend it before every write.
		WriteTimeout: 30 * time.Second,
		IdleTimeout:  120 * time.Second,
		ErrorLog:     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if cfg.tlsCert != "" {
		scheme = "https"
	}
	// The admin listener is opened before anything is announced, so a
	// taken port fails start-up rather than leaving half a server.
	var admin *http.Server
	var adminLn net.Listener
	if cfg.adminAddr != "" {
		if adminLn, err = net.Listen("tcp", cfg.adminAddr); err != nil {
			ln.Close()
			return fmt.Errorf("listen on -admin-addr: %w", err)
		}
		hosts := adminHosts(cfg.adminAddr, adminLn.Addr(), cfg.adminHosts)
		admin = &http.Server{
			Handler:           observe(adminHandler(db, filepath.Dir(cfg.data), hosts, logger.With("component", "admin")), reg, cfg.embed.pprof, hosts, logger),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		}
	}
	fmt.Fprintf(stdout, "collabd listening on %s://%s\n", scheme, ln.Addr())
	logger.Info("listening", "addr", ln.Addr().String(), "data", cfg.data, "tls", cfg.tlsCert != "", "procs", runtime.GOMAXPROCS(0), "memory_budget", cfg.collab.MemoryBudget)

	// Each server reports on serveErr when it stops; Serve returns
	// http.ErrServerClosed after Shutdown and any other error on failure.
	servers := []*http.Server{srv}
	serveErr := make(chan error, 2)
	go func() {
		if cfg.tlsCert != "" {
			// With TLS, net/http negotiates HTTP/2, so one browser can hold
			// many SSE streams over one connection.
			serveErr <- srv.ServeTLS(ln, cfg.tlsCert, cfg.tlsKey)
			return
		}
		serveErr <- srv.Serve(ln)
	}()
	if admin != nil {
		fmt.Fprintf(stdout, "collabd admin on http://%s\n", adminLn.Addr())
		logger.Info("admin listening", "addr", adminLn.Addr().String())
		servers = append(servers, admin)
		go func() { serveErr <- admin.Serve(adminLn) }()
	}

	var errs []error
	running := len(servers)
	select {
	case err := <-serveErr:
		running--
		errs = append(errs, fmt.Errorf("serve: %w", err))
		logger.Error("server failed; shutting down", "err", err)
	case <-ctx.Done():
		logger.Info("shutting down")
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	// Reverse order of start-up: sessions and hubs first (they need the
	// database to finish their commits and snapshots), then the HTTP
	// servers, then the database.
	if err := docs.Close(shutdownCtx); err != nil {
		errs = append(errs, fmt.Errorf("close documents: %w", err))
	}
	for _, s := range servers {
		if err := s.Shutdown(shutdownCtx); err != nil {
			// Out of time: cut what is left (a backup download, say), so
			// that no handler still holds the database closed below.
			errs = append(errs, fmt.Errorf("shutdown http: %w", err))
			s.Close()
		}
	}
	for range running {
		if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("serve: %w", err))
		}
	}
	if err := db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close data file: %w", err))
	}
	return errors.Join(errs...)
}
