package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/collabd/collabd/collab"
)

// errHelp is returned by parseConfig when -help was asked for; the usage
// has already been printed.
var errHelp = errors.New("help requested")

// config is everything collabd reads from its flags and environment.
type config struct {
	addr            string
	data            string
	logLevel        slog.Level
	shutdownTimeout time.Duration
	lockTimeout     time.Duration
	snapshotEvery   int
	snapshotBytes   int64
	tlsCert         string
	tlsKey          string
	adminAddr       string
	adminHosts      []string
	version         bool
	collab          collab.Options
	embed           embedConfig     // embed.go
	nats            natsConfig      // natsconn.go
	signin          signInConfig    // signin.go
	workspace       workspaceConfig // workspace.go
}

// envPrefix turns a flag name into its environment variable:
// -log-level is COLLABD_LOG_LEVEL.
const envPrefix = "COLLABD_"

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads flags, falling back to environment variables for any
// flag not given on the command line, and then to defaults.
func parseConfig(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("collabd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "`address` to listen on (host:port; port 0 picks a free one)")
	fs.StringVar(&cfg.data, "data", "./collab.db", "`path` of the bbolt data file, created if missing")
	fs.TextVar(&cfg.logLevel, "log-level", slog.LevelInfo, "log `level`: debug, info, warn or error")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long a graceful shutdown may take before connections are cut")
	fs.DurationVar(&cfg.lockTimeout, "lock-timeout", 5*time.Second, "how long to wait for another process's lock on the data file")
	fs.IntVar(&cfg.snapshotEvery, "snapshot-every", 1000, "keep a milestone of a document's text every `N` ops, for history and fast loads (negative: none, only a snapshot on unload)")
	fs.Int64Var(&cfg.snapshotBytes, "snapshot-bytes", 1<<20, "keep a milestone sooner, once the ops since the last take this many `bytes` (but no more often than the text's own length)")
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "TLS certificate `file` (PEM); with -tls-key, serves HTTPS and HTTP/2")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "TLS private key `file` (PEM)")
	fs.BoolVar(&cfg.version, "version", false, "print the version and build revision, and exit")
	fs.StringVar(&cfg.adminAddr, "admin-addr", "", "`address` for operator endpoints (GET /backup); unauthenticated, so keep it on loopback; empty: off")

	o := &cfg.collab
	fs.Int64Var(&o.MaxMessageBytes, "max-message", 1<<20, "largest WebSocket message a client may send, in `bytes`")
	fs.IntVar(&o.MaxDocChars, "max-doc-chars", 2_000_000, "largest document, in code points")
	fs.Float64Var(&o.RateLimit, "rate-limit", 100, "messages per second one connection may send on average")
	fs.IntVar(&o.RateBurst, "rate-burst", 200, "messages one connection may send in a burst")
	fs.Float64Var(&o.FrameRate, "frame-rate", 1000, "WebSocket frames per second one connection may send on average, the continuation frames of split messages included, and a ping as 16 (at least -rate-limit)")
	fs.IntVar(&o.FrameBurst, "frame-burst", 4096, "WebSocket frames one connection may send in a burst, a message split into N frames needing N (at least -rate-burst)")
	fs.DurationVar(&o.MessageTimeout, "message-timeout", 30*time.Second, "longest one WebSocket message may take to arrive, from its first byte to its last, before the connection is closed (1013)")
	fs.IntVar(&o.MaxEditors, "max-editors", 100, "most editors connected to one document at once")
	fs.IntVar(&o.MaxViewers, "max-viewers", 10_000, "most SSE viewers of one document at once; one more is answered 429")
	fs.IntVar(&o.FanOutBudget, "fanout-budget", 20_000, "`frames` per second one document may send its editors: with many editors, commits (each a frame to every editor) are paced to stay under it, waiting at most 20 ms; negative: no pacing")
	fs.IntVar(&o.BroadcastBudget, "broadcast-budget", 0, "`frames` of others' ops per second one document may send its editors: an editor's next such frame waits until editors/budget seconds (at most 20 ms) after its last, gathering the ops that come meanwhile (less CPU per op, others' keystrokes up to 20 ms later; 4000 is the measured setting); acks are never held; 0 or negative: no holding")
	fs.Func("allowed-origins", "comma-separated host `patterns` (path.Match) of other sites allowed to open editing WebSockets; the server's own origin always is", func(v string) error {
		o.AllowedOrigins = splitList(v)
		return nil
	})
	fs.Func("view-origins", "comma-separated `origins` allowed to read the view endpoints cross-origin (CORS); default *, empty for none", func(v string) error {
		o.ViewOrigins = splitList(v)
		if o.ViewOrigins == nil {
			o.ViewOrigins = []string{}
		}
		return nil
	})
	fs.DurationVar(&o.IdleUnload, "idle-unload", time.Minute, "unload a document from memory after this long with nobody connected")
	fs.DurationVar(&o.Heartbeat, "heartbeat", 15*time.Second, "interval of keep-alive comments on idle SSE streams")
	fs.DurationVar(&o.WriteTimeout, "client-write-timeout", 10*time.Second, "longest a write to one client may take before it is disconnected (a large write gets longer: see -min-write-rate)")
	fs.IntVar(&o.MinWriteRate, "min-write-rate", 64<<10, "`bytes` per second a client must take a large write at: a write of N bytes may take -client-write-timeout plus N over this")
	fs.IntVar(&o.SendQueueBytes, "send-queue-bytes", 4<<20, "`bytes` of messages queued for one editor before it is disconnected as too slow")
	fs.IntVar(&o.ViewerQueueBytes, "viewer-queue-bytes", 4<<20, "`bytes` of events queued for one SSE viewer before it is disconnected as too slow")

	// Abuse resistance; docs/operations.md has what each one bounds.
	fs.Func("admin-hosts", "comma-separated `host:port` values the admin endpoints answer to besides -admin-addr itself (a DNS-rebinding guard: any other Host header is refused)", func(v string) error {
		cfg.adminHosts = splitList(v)
		return nil
	})
	fs.Func("allowed-hosts", "comma-separated host `names` (path.Match patterns, any port) that requests may carry in Host, besides localhost, 127.0.0.1 and [::1]; any other is refused 403 (a DNS-rebinding guard). With a loopback -addr only the loopback names are allowed unless listed here (behind a proxy, list the public name); otherwise any Host is unless this is given", func(v string) error {
		o.AllowedHosts = splitList(v)
		if o.AllowedHosts == nil {
			o.AllowedHosts = []string{}
		}
		return nil
	})
	fs.DurationVar(&o.HSTSMaxAge, "hsts-max-age", 365*24*time.Hour, "max-age of the Strict-Transport-Security header sent over TLS (or when a trusted proxy's X-Forwarded-Proto says https); negative: none")
	fs.IntVar(&o.MaxConns, "max-conns", 4096, "most requests in progress at once, WebSocket and SSE sessions included; past it 503")
	fs.IntVar(&o.MaxConnsPerAddr, "max-conns-per-addr", 64, "most requests in progress from one client address (an IPv6 /64); past it 429")
	fs.IntVar(&o.MaxHealthConns, "max-health-conns", 32, "most /healthz requests in progress at once, counted apart from -max-conns so that sessions cannot starve the health check; past it 503")
	fs.IntVar(&o.MaxHealthConnsPerAddr, "max-health-conns-per-addr", 4, "most /healthz requests in progress from one client address; past it 429")
	fs.IntVar(&o.MaxPageConns, "max-page-conns", 256, "most requests for the static pages in progress at once, counted apart from -max-conns; past it 503")
	fs.IntVar(&o.MaxPageConnsPerAddr, "max-page-conns-per-addr", 32, "most requests for the static pages in progress from one client address; past it 429")
	fs.IntVar(&o.MaxTCPConns, "max-tcp-conns", 8192, "most TCP connections held at once, idle ones included; past it new ones are closed")
	fs.IntVar(&o.MaxTCPConnsPerAddr, "max-tcp-conns-per-addr", 256, "most TCP connections from one peer address (an IPv6 /64), trusted proxies exempt")
	fs.Func("trusted-proxies", "comma-separated `CIDRs` (or addresses) of reverse proxies whose X-Forwarded-For names the client; default none", func(v string) error {
		o.TrustedProxies = nil
		for _, item := range splitList(v) {
			p, err := parsePrefix(item)
			if err != nil {
				return err
			}
			o.TrustedProxies = append(o.TrustedProxies, p)
		}
		return nil
	})
	fs.DurationVar(&o.BodyTimeout, "body-timeout", 30*time.Second, "longest a client may take to send a request body before its connection is cut")
	fs.Int64Var(&o.MaxBodyBytesInFlight, "max-body-bytes-in-flight", 64<<20, "request body `bytes` read at once over all clients; past it 503")
	fs.Int64Var(&o.MaxHeldResponseBytes, "max-held-response-bytes", 256<<20, "response body `bytes` (document texts now or past, their JSON, SSE snapshots, pages of ops, and past revisions being rebuilt) held at once for readers that have not taken them yet, over all clients, a body shared by many counting once; past it 503")
	fs.Float64Var(&o.CreateRate, "create-rate", 2, "documents one client address may create per second on average; past it 429")
	fs.IntVar(&o.CreateBurst, "create-burst", 20, "documents one client address may create in a burst")
	fs.IntVar(&o.MaxTrackedAddrs, "max-tracked-addrs", 10_000, "client addresses remembered for -create-rate, -restore-rate and -write-rate")
	fs.Float64Var(&o.RestoreRate, "restore-rate", 0.5, "restores one client address, and separately one document, may make per second on average; past it 429")
	fs.IntVar(&o.RestoreBurst, "restore-burst", 5, "restores one client address, and separately one document, may make in a burst")
	fs.IntVar(&o.MaxCommentBytes, "max-comment-bytes", 10<<10, "bytes of text in one comment or reply; past it 413")
	fs.IntVar(&o.MaxComments, "max-comments", 1000, "comment threads on one document; past it 413")
	fs.IntVar(&o.MaxReplies, "max-replies", 500, "replies in one comment thread; past it 413")
	fs.IntVar(&o.MaxCommentDocBytes, "max-comment-doc-bytes", 4<<20, "bytes of comment text (threads and replies) on one document; past it 413")
	fs.Float64Var(&o.CommentRate, "comment-rate", 2, "comment writes (create, reply, edit, resolve, delete) one client address may make per second on average; past it 429")
	fs.IntVar(&o.CommentBurst, "comment-burst", 30, "comment writes one client address may make in a burst")
	fs.Int64Var(&o.MaxDataBytes, "max-data-bytes", 0, "data file size in `bytes` past which creates, restores (507) and ops that insert text (too_large) are refused; 0: no limit")
	fs.Int64Var(&o.MinFreeBytes, "min-free-bytes", 64<<20, "free disk `bytes` below which creates, restores and inserting ops are refused and /healthz answers 503; negative: no check")
	fs.Int64Var(&o.MaxDocHistory, "max-doc-history", 256<<20, "op log `bytes` per document (as stored) past which its inserting ops and restores are refused with too_large; negative: no limit")
	fs.Int64Var(&o.MemoryBudget, "memory-budget", 0, "`bytes` of memory all loaded documents may hold together (history, text, cached snapshots, queued ops): past 3/4 the largest shrink and idle ones unload, past all of it inserting ops get too_large and unloaded documents 503; 0: a quarter of the cgroup's or machine's memory (at least 64 MiB); negative: no bound")
	fs.Float64Var(&o.WriteRate, "write-rate", 100, "HTTP writes (POST /ops, PUT /text, /revert) one client address may make per second on average; past it 429; negative: no limit")
	fs.IntVar(&o.WriteBurst, "write-burst", 200, "HTTP writes one client address may make in a burst")
	fs.IntVar(&o.MaxWriteRebase, "max-write-rebase", 1_000_000, "most `ops` an HTTP write made on an old revision is transformed over; one further back is refused with 400 bad_op")
	fs.DurationVar(&o.StreamIdle, "stream-idle", 30*time.Second, "longest a streamed write (POST /stream) may send nothing before it is ended")
	fs.DurationVar(&o.MaxStreamDuration, "max-stream-duration", time.Hour, "longest a streamed write may stay open")
	fs.IntVar(&o.MaxStreamsPerDoc, "max-streams-per-doc", 16, "streamed writes open at once on one document; past it 429")
	fs.IntVar(&o.MaxStreamsPerAddr, "max-streams-per-addr", 4, "streamed writes open at once from one client address; past it 429")
	fs.Float64Var(&o.StreamCommitRate, "stream-commit-rate", 50, "most commits a second of one streamed write (at least 10: a stream commits at least every 100 ms)")
	fs.IntVar(&o.HistorySearchOps, "history-search-ops", 1_000_000, "most `ops` one search in history (GET .../history/search) replays before it answers what it found, to be continued")
	fs.DurationVar(&o.HistorySearchTime, "history-search-time", 2*time.Second, "longest one search in history runs before it answers what it found, to be continued")
	fs.IntVar(&o.MaxHistorySearches, "max-history-searches", 2, "searches in history running at once; past it 429")
	fs.IntVar(&o.MaxOpsPageBytes, "max-ops-page-bytes", 4<<20, "`bytes` of ops in one page of GET /api/docs/{id}/ops (at least one op)")
	fs.StringVar(&o.FrameAncestors, "frame-ancestors", "'none'", "Content-Security-Policy frame-ancestors of the pages: the `sources` that may embed them, e.g. \"'self' https://wiki.example.com\"")

	// Embedding: access tokens, webhooks, metrics (embed.go, docs/embedding.md).
	e := &cfg.embed
	fs.StringVar(&e.authKeyFile, "auth-key-file", "", "`file` holding the HS256 secret (32+ bytes) that access tokens are signed with; turns access tokens on")
	fs.StringVar(&e.authJWKS, "auth-jwks", "", "`file` holding a JSON Web Key Set of public keys (RS256, ES256, EdDSA) that access tokens are signed with; turns access tokens on")
	fs.DurationVar(&e.authLeeway, "auth-leeway", 10*time.Second, "how far a token's exp and nbf may be off this server's clock")
	fs.StringVar(&e.createToken, "create-token", "", "shared `secret` that requests must carry (Authorization: Bearer, or X-Create-Token) to create documents; prefer the environment variable")
	fs.StringVar(&e.webhookURL, "webhook-url", "", "`URL` that document events (created, changed, deleted) are POSTed to")
	fs.StringVar(&e.webhookSecretFile, "webhook-secret-file", "", "`file` holding the secret that webhook bodies are signed with (HMAC-SHA256)")
	fs.DurationVar(&e.webhookDebounce, "webhook-debounce", 2*time.Second, "least time between two changed events of one document")
	fs.BoolVar(&e.webhookText, "webhook-text", false, "include the document's text in changed events")
	fs.Int64Var(&e.webhookMaxBytes, "webhook-outbox-bytes", 64<<20, "`bytes` of event bodies the webhook outbox holds while the receiver is away: past them changed events are queued without their text (\"textOmitted\": true), and when even that does not fit the oldest events are dropped")
	fs.IntVar(&e.webhookMaxEvents, "webhook-outbox-events", 100_000, "webhook events the outbox holds while the receiver is away; past it the oldest are dropped")
	fs.BoolVar(&e.pprof, "pprof", false, "serve /debug/pprof/ on the admin listener (-admin-addr)")

	// Cluster mode (natsconn.go, docs/scaling.md).
	cfg.nats.addFlags(fs)

	// Sign-in and per-document access (signin.go, docs/teams.md).
	cfg.signin.addFlags(fs)
	cfg.workspace.addFlags(fs)

	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: collabd [flags]\n\n"+
			"collabd serves collaborative plain-text documents: editing over WebSockets,\n"+
			"live viewing over Server-Sent Events, and the browser frontend.\n\n"+
			"Every flag can also be set by an environment variable, named after the flag:\n"+
			"-log-level is %s. A flag on the command line wins over the environment.\n\n"+
			"`collabd backup -help` explains the backup command, `collabd check -help`\n"+
			"the data file check, `collabd migrate -help` the move of a data file into\n"+
			"a cluster (-nats); `collabd export -help` and `collabd import -help` the\n"+
			"move of a document's text out and in; `collabd version` prints the version.\n\nFlags:\n", envName("log-level"))
		fs.PrintDefaults()
	}

	// Environment first, so that flags given on the command line override it.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := lookupEnv(envName(f.Name))
		// -version is an action, not a setting: a COLLABD_VERSION left in
		// an environment must not turn the server into a version printer.
		if !ok || envErr != nil || f.Name == "version" {
			return
		}
		if err := f.Value.Set(v); err != nil {
			envErr = fmt.Errorf("environment %s=%q: %w", envName(f.Name), v, err)
		}
	})
	if envErr != nil {
		return cfg, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, errHelp
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q (see -help)", fs.Args())
	}
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		return cfg, errors.New("-tls-cert and -tls-key go together")
	}
	// On loopback, only the loopback names (and -allowed-hosts) are
	// served: any other Host is a DNS-rebinding page's.
	if o.AllowedHosts == nil && loopbackAddr(cfg.addr) {
		o.AllowedHosts = []string{}
	}
	if err := cfg.embed.check(cfg.adminAddr); err != nil {
		return cfg, err
	}
	if err := cfg.nats.check(); err != nil {
		return cfg, err
	}
	if err := cfg.workspace.check(); err != nil {
		return cfg, err
	}
	if err := cfg.signin.check(o); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// parsePrefix reads a CIDR, or a single address as its own /32 or /128.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("trusted proxy %q: %w", s, err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("trusted proxy %q: %w", s, err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// loopbackAddr reports whether a listen address is on loopback only: a
// loopback IP, or a name all of whose addresses are.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().IsLoopback()
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			return false
		}
	}
	return true
}
