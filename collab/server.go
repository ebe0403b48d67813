package collab

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Options configures a Server. The zero value of every field means its
// documented default, so Options{} works.
type Options struct {
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger

	// MaxMessageBytes bounds one WebSocket message from a client
	// (default 1 MiB). A larger one is answered with too_large.
	MaxMessageBytes int64
	// MaxDocChars bounds a document's length in code points (default
	// 2,000,000). An op that would make it longer is answered with too_large.
	MaxDocChars int
	// RateLimit is how many messages per second one connection may send on
	// average (default 100), with bursts up to RateBurst (default 200).
	RateLimit float64
	RateBurst int
	// MaxEditors bounds the editors connected to one document (default 100),
	// and MaxViewers its SSE viewers (default 10,000): one past the limit
	// is answered 429 rate_limited (before its stream starts, for a
	// viewer).
	MaxEditors int
	MaxViewers int
	// FanOutBudget paces the commits of a document with many editors
	// (pace.go): each commit sends every editor a frame, and the next
	// commit starts no sooner than editors/FanOutBudget seconds after the
	// last one (at most 20 ms; under 1 ms, not at all). Default 20,000
	// frames per second, so from 20 editors on; negative turns it off.
	FanOutBudget int
	// BroadcastBudget bounds the frames of others' ops per second that a
	// document sends its editors (hold.go): after a commit, an editor's
	// frame waits until editors/BroadcastBudget seconds (at most 20 ms;
	// under 1 ms, not at all) have passed since its last one, and the
	// ops that come meanwhile join it. Acks are never held. It saves
	// CPU per op (docs/cpu.md) at the price of delivering others'
	// keystrokes up to 20 ms later, so it is off by default (zero or
	// negative); 4,000 holds from 4 editors on.
	BroadcastBudget int

	// AllowedOrigins lists host patterns (path.Match syntax, as
	// coder/websocket's OriginPatterns) of other origins allowed to open
	// editing sessions. The server's own origin is always allowed.
	AllowedOrigins []string
	// ViewOrigins lists the origins that may read the view endpoints
	// cross-origin (CORS). Nil means any origin ("*"); an empty non-nil
	// slice means none.
	ViewOrigins []string

	// IdleUnload is how long a document stays in memory with nobody
	// connected (default 1 minute). It is snapshotted when unloaded.
	IdleUnload time.Duration
	// HistoryLimit is how many recent ops a loaded document keeps in memory
	// for transforms and catch-up (default 4096); older ones are read
	// from the store.
	HistoryLimit int
	// HistoryBytes bounds the inserted text those ops may hold (default
	// 16 MiB), so that a few huge ops cannot pin much memory.
	HistoryBytes int
	// MemoryBudget bounds the memory that loaded documents hold, over
	// all of them (default 1 GiB here; collabd sets a quarter of the
	// machine's or cgroup's memory; negative: no bound): their in-memory
	// history, text, cached snapshots and events, and the ops queued for
	// them (budget.go). Past three quarters of it, the largest documents
	// keep only their newest ops in memory (older ones are read back from
	// the store), drop their cached snapshots, and unload if nobody has
	// them open. Past all of it, ops that insert text are refused with
	// too_large, and documents not in memory answer 503 rate_limited,
	// until memory is freed. The process takes more than this: the
	// connections and the garbage collector's headroom (about as much
	// again, with the default GOGC).
	MemoryBudget int64
	// MaxCatchUp is the most ops the hub transforms a stale op over
	// (default 10,000); an op made further back is refused, and its client
	// reconnects. (A reconnecting client's catch-up has no such limit: its
	// connection reads the ops it missed from the store, a page at a
	// time; see catchup.go.)
	MaxCatchUp int
	// MaxCatchUpBytes bounds, in inserted text, the older ops read back
	// from the store to transform one stale op (default 32 MiB), so that
	// a few huge ops cannot make one op cost gigabytes; past it the op is
	// refused, as past MaxCatchUp.
	MaxCatchUpBytes int
	// SendQueueBytes bounds the bytes of the messages queued for one
	// editor (default 4 MiB), and SendQueue their number (default 1024).
	// ViewerQueueBytes and ViewerQueue (default 4 MiB and 256) do the
	// same for the events queued for one viewer. A connection whose queue
	// overflows is closed; its client resumes. One message larger than
	// the budget is still sent when it is all there is to send. Messages
	// are shared by all recipients, so this bounds what a slow connection
	// pins, not a copy per connection.
	SendQueueBytes   int
	SendQueue        int
	ViewerQueueBytes int
	ViewerQueue      int
	// WriteTimeout bounds one write to a client (default 10 s); a large
	// write gets longer, as much as it takes at MinWriteRate bytes per
	// second (default 64 KiB/s), so that a snapshot of a large document
	// still reaches a slow reader and yet no reader can keep an old
	// revision's text in memory for longer.
	WriteTimeout time.Duration
	MinWriteRate int
	// HelloTimeout is how long a new WebSocket may take to say hello
	// (default 10 s).
	HelloTimeout time.Duration
	// FrameRate is how many WebSocket frames per second one editing
	// connection may send on average (default 1,000), with bursts up to
	// FrameBurst (default 4,096, room for a 1 MiB message in 256-byte
	// frames); every frame counts, the continuation frames of a message
	// split up included, and a ping as 16, since each is answered; never
	// less than RateLimit and RateBurst. Past it, rate_limited (4429). MessageTimeout is how long one message may
	// take to arrive, from its first byte to its last (default 30 s);
	// past it the connection is closed with 1013, and the client
	// reconnects (frames.go).
	FrameRate      float64
	FrameBurst     int
	MessageTimeout time.Duration
	// Heartbeat is the interval of ": ping" comments on idle SSE streams
	// (default 15 s).
	Heartbeat time.Duration

	// Abuse resistance (limits.go, disk.go, headers.go).

	// MaxConns bounds the requests in progress at once, WebSocket and SSE
	// sessions included (default 4096); past it, 503 rate_limited.
	// MaxConnsPerAddr bounds them per client address (default 64; IPv6
	// addresses count per /64); past it, 429 rate_limited.
	MaxConns        int
	MaxConnsPerAddr int
	// MaxHealthConns and MaxHealthConnsPerAddr (defaults 32 and 4) bound
	// the /healthz requests in progress, and MaxPageConns and
	// MaxPageConnsPerAddr (defaults 256 and 32) the requests for static
	// pages (ProtectPages): each kind has its own caps, apart from
	// MaxConns, so that sessions filling MaxConns never make the health
	// check or the editor's page fail. Past them, 503 and 429 as above.
	MaxHealthConns        int
	MaxHealthConnsPerAddr int
	MaxPageConns          int
	MaxPageConnsPerAddr   int
	// MaxTCPConns and MaxTCPConnsPerAddr bound the TCP connections that
	// LimitListener accepts, idle ones and ones still sending their first
	// request included (defaults 8192 and 256; trusted proxies are exempt
	// from the per-address bound). A connection past them is closed at
	// once: nothing has been read from it to answer.
	MaxTCPConns        int
	MaxTCPConnsPerAddr int
	// TrustedProxies lists the peers whose X-Forwarded-For is believed:
	// the client address is the right-most one in that header that is not
	// itself a trusted proxy. From anyone else the header is ignored and
	// the client address is the peer's.
	TrustedProxies []netip.Prefix
	// BodyTimeout is how long a client may take to send a request body
	// (default 30 s); a slower one has its connection cut.
	BodyTimeout time.Duration
	// MaxBodyBytesInFlight bounds the request bodies being read at once,
	// over all clients (default 64 MiB); a create that would go past it
	// is answered 503 rate_limited.
	MaxBodyBytesInFlight int64
	// MaxHeldResponseBytes bounds the bytes of response bodies (a
	// document's text, now or at a past revision, its JSON, a page of ops
	// or revisions, a new SSE viewer's snapshot) that the server holds at
	// once for readers still
	// taking them, over all requests, and of past revisions being rebuilt
	// for them (default 256 MiB; held.go). A body shared by many
	// responses counts once. A request that would go past it is answered
	// 503 rate_limited with Retry-After.
	MaxHeldResponseBytes int64
	// CreateRate is how many documents one client address may create per
	// second on average (default 2), in bursts of up to CreateBurst
	// (default 20). Past it, 429 rate_limited. MaxTrackedAddrs bounds the
	// addresses remembered for this (default 10,000): beyond it, the
	// least recently limited are forgotten first.
	CreateRate      float64
	CreateBurst     int
	MaxTrackedAddrs int
	// RestoreRate is how many restores (POST /api/docs/{id}/restore) one
	// client address, and separately one document, may make per second
	// on average (default 0.5), in bursts of up to RestoreBurst (default
	// 5). Past it, 429 rate_limited with Retry-After.
	RestoreRate  float64
	RestoreBurst int
	// MaxDataBytes, when positive, is the data file size past which
	// creates (507) and ops that insert text (too_large, close 4413) are
	// refused; reads and deletions still work. Zero: no limit.
	MaxDataBytes int64
	// MinFreeBytes is the free disk space below which the same is refused
	// and /healthz answers 503 (default 64 MiB; negative: no check).
	MinFreeBytes int64
	// MaxDocHistory bounds, in bytes, the op log of one document (default
	// 256 MiB): past it, ops that insert text are refused with too_large,
	// so that churn on one document cannot fill the disk. Negative: none.
	MaxDocHistory int64
	// MaxOpsPageBytes bounds one page of GET /api/docs/{id}/ops by size
	// as well as count (default 4 MiB); a page always holds at least one
	// op.
	MaxOpsPageBytes int
	// AuthorsEvery is the number of revisions between the checkpoints
	// of who wrote what (default 1000): GET .../authors?rev=R replays at
	// most this many ops. A store whose ops cost more to read (cluster
	// mode) wants them closer; each costs some bytes a run of authors.
	AuthorsEvery int
	// AllowedHosts, when not nil, lists the host names (path.Match
	// patterns, ports ignored) that requests may carry in Host, besides
	// the loopback names (localhost, 127.0.0.1, [::1]), which are always
	// allowed; any other Host is answered 403 forbidden (hosts.go: a
	// DNS-rebinding guard). Nil allows any Host. cmd/collabd sets it for
	// a server bound to loopback, and whenever -allowed-hosts is given.
	AllowedHosts []string
	// HSTSMaxAge is the max-age of the Strict-Transport-Security header
	// sent over TLS, or when a trusted proxy says the client used https
	// (X-Forwarded-Proto); default one year, negative: no header.
	HSTSMaxAge time.Duration
	// FrameAncestors is the Content-Security-Policy frame-ancestors value
	// of the pages: who may embed them (default 'none').
	FrameAncestors string
	// DiskCheckInterval is how long a reading of the store's usage is
	// reused before the store is asked again (default 1 s).
	DiskCheckInterval time.Duration

	// Embedding (auth.go, metrics.go, webhook.go); nil means off.
	// Auth makes requests carry access tokens; Metrics receives the
	// server's measurements; Webhook posts document events to an
	// application.
	Auth    *Auth
	Metrics *Metrics
	Webhook *WebhookOptions
	// SignIn turns on sign-in and per-document access (access.go,
	// signin.go); nil means off.
	SignIn *SignInOptions
	// Workspace turns on the list, search, titles, tags and trash of
	// documents (workspace.go); it needs SignIn. nil means off.
	Workspace *WorkspaceOptions

	// HTTP writes (httpwrite.go). WriteRate is how many writes one
	// client address may make per second on average (default 100), in
	// bursts of up to WriteBurst (default 200); past it, 429
	// rate_limited. Negative: no limit. MaxWriteRebase bounds how many
	// ops a write made on an old revision is transformed over (default
	// 1,000,000): one further back is refused with bad_op.
	WriteRate      float64
	WriteBurst     int
	MaxWriteRebase int
	// A stream (POST .../stream) ends when its body sends nothing for
	// StreamIdle (default 30 s) or has been open for MaxStreamDuration
	// (default 1 hour); a document has at most MaxStreamsPerDoc streams
	// open (default 16), and a client address MaxStreamsPerAddr (default
	// 4): past them, 429 rate_limited. A stream commits at most
	// StreamCommitRate ops a second (default 50). Its body counts
	// against the create body limit (MaxDocChars), like every body.
	StreamIdle        time.Duration
	MaxStreamDuration time.Duration
	MaxStreamsPerDoc  int
	MaxStreamsPerAddr int
	StreamCommitRate  float64

	// Comments keeps comment threads (comments.go, docs/comments.md).
	// Nil: the store's, when it implements CommentStore; otherwise the
	// comment endpoints answer 501.
	Comments CommentStore
	// MaxCommentBytes bounds the text of one comment or reply (default
	// 10 KiB; 413 beyond). MaxComments bounds a document's threads
	// (default 1000), MaxReplies a thread's replies (default 500) and
	// MaxCommentDocBytes all of a document's comment text (default 4 MiB);
	// beyond them a new one is refused with 413.
	MaxCommentBytes    int
	MaxComments        int
	MaxReplies         int
	MaxCommentDocBytes int
	// CommentRate is how many comment writes (create, reply, edit,
	// resolve, delete) one address may make per second on average
	// (default 2), with bursts up to CommentBurst (default 30); beyond
	// them 429.
	CommentRate  float64
	CommentBurst int

	// Search in history (histsearch.go). One request looks at most
	// HistorySearchOps ops (default 1,000,000) and spends at most
	// HistorySearchTime (default 2 s) before it answers what it found so
	// far, for the client to continue; at most MaxHistorySearches run at
	// once (default 2), past them 429 rate_limited.
	HistorySearchOps   int
	HistorySearchTime  time.Duration
	MaxHistorySearches int

	// AuthorKey is the secret that author ids are derived from (see
	// author.go). Keep it in the store, so that author ids stay the same
	// across restarts; nil means a random key for this Server alone.
	AuthorKey []byte
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	setDefault(&o.MaxMessageBytes, 1<<20)
	setDefault(&o.MaxDocChars, 2_000_000)
	setDefault(&o.RateLimit, 100)
	setDefault(&o.RateBurst, 200)
	setDefault(&o.MaxEditors, 100)
	setDefault(&o.MaxViewers, 10_000)
	if o.FanOutBudget == 0 {
		o.FanOutBudget = 20_000
	}
	setDefault(&o.IdleUnload, time.Minute)
	setDefault(&o.HistoryLimit, 4096)
	setDefault(&o.HistoryBytes, 16<<20)
	if o.MemoryBudget == 0 {
		o.MemoryBudget = 1 << 30
	}
	setDefault(&o.MaxCatchUp, 10_000)
	setDefault(&o.MaxCatchUpBytes, 32<<20)
	setDefault(&o.SendQueueBytes, 4<<20)
	setDefault(&o.SendQueue, 1024)
	setDefault(&o.ViewerQueueBytes, 4<<20)
	setDefault(&o.ViewerQueue, 256)
	setDefault(&o.MinWriteRate, 64<<10)
	setDefault(&o.WriteTimeout, 10*time.Second)
	setDefault(&o.HelloTimeout, 10*time.Second)
	setDefault(&o.FrameRate, 1000)
	setDefault(&o.FrameBurst, 4096)
	setDefault(&o.MessageTimeout, 30*time.Second)
	setDefault(&o.Heartbeat, 15*time.Second)
	setDefault(&o.MaxConns, 4096)
	setDefault(&o.MaxConnsPerAddr, 64)
	setDefault(&o.MaxHealthConns, 32)
	setDefault(&o.MaxHealthConnsPerAddr, 4)
	setDefault(&o.MaxPageConns, 256)
	setDefault(&o.MaxPageConnsPerAddr, 32)
	setDefault(&o.MaxTCPConns, 8192)
	setDefault(&o.MaxTCPConnsPerAddr, 256)
	setDefault(&o.BodyTimeout, 30*time.Second)
	setDefault(&o.MaxBodyBytesInFlight, 64<<20)
	setDefault(&o.MaxHeldResponseBytes, 256<<20)
	setDefault(&o.CreateRate, 2)
	setDefault(&o.CreateBurst, 20)
	setDefault(&o.MaxTrackedAddrs, 10_000)
	setDefault(&o.RestoreRate, 0.5)
	setDefault(&o.RestoreBurst, 5)
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = 64 << 20
	}
	if o.MaxDocHistory == 0 {
		o.MaxDocHistory = 256 << 20
	}
	setDefault(&o.MaxOpsPageBytes, 4<<20)
	setDefault(&o.AuthorsEvery, authorsEvery)
	if o.HSTSMaxAge == 0 {
		o.HSTSMaxAge = 365 * 24 * time.Hour
	}
	if o.FrameAncestors == "" {
		o.FrameAncestors = "'none'"
	}
	setDefault(&o.DiskCheckInterval, time.Second)
	if o.WriteRate == 0 {
		o.WriteRate = 100
	}
	setDefault(&o.WriteBurst, 200)
	setDefault(&o.MaxWriteRebase, 1_000_000)
	setDefault(&o.StreamIdle, 30*time.Second)
	setDefault(&o.MaxStreamDuration, time.Hour)
	setDefault(&o.MaxStreamsPerDoc, 16)
	setDefault(&o.MaxStreamsPerAddr, 4)
	setDefault(&o.StreamCommitRate, 50)
	setDefault(&o.MaxCommentBytes, defaultMaxCommentBytes)
	setDefault(&o.MaxComments, defaultMaxComments)
	setDefault(&o.MaxReplies, defaultMaxReplies)
	setDefault(&o.MaxCommentDocBytes, defaultMaxCommentDocBytes)
	setDefault(&o.CommentRate, defaultCommentRate)
	setDefault(&o.CommentBurst, defaultCommentBurst)
	setDefault(&o.HistorySearchOps, 1_000_000)
	setDefault(&o.HistorySearchTime, 2*time.Second)
	setDefault(&o.MaxHistorySearches, 2)
	// The protocol promises a commit at least every 100 ms while text
	// arrives.
	o.StreamCommitRate = max(o.StreamCommitRate, 10)
}

func setDefault[T int | int64 | float64 | time.Duration](p *T, def T) {
	if *p <= 0 {
		*p = def
	}
}

// errShuttingDown is returned to requests that arrive while the server
// closes.
var errShuttingDown = errors.New("server is shutting down")

// Server serves documents over HTTP, WebSocket and SSE. It is safe for
// concurrent use.
//
// Ordering and concurrency: one goroutine (a hub) owns each loaded
// document: its text, revision, recent history, editors and viewers. All
// changes to a document pass through its hub in one total order. An op is
// appended to the Store before the hub acknowledges it, broadcasts it to
// other editors or sends it to viewers, so nobody ever hears of an op that
// a crash could take back. Each connection has a bounded send queue that
// the hub never blocks on: a connection whose queue overflows is closed,
// and its client resumes from its last revision.
type Server struct {
	store Store
	opts  Options
	log   *slog.Logger
	mux   *http.ServeMux
	// handler is mux behind Protect: caps, body limits, headers.
	handler http.Handler

	// conns, healthConns and pageConns are Protect's three pools.
	conns       *connLimiter
	healthConns *connLimiter
	pageConns   *connLimiter
	creates     *addrBuckets
	bodies      *byteBudget
	writes      writeHealth // health.go
	lingering   *lingerGate // limits.go
	headers     headerValues
	// admission is the check every write that grows the store passes
	// (disk.go).
	admission *Admission
	restores  *restoreLimiter
	held      *heldBytes // response bodies held for readers (held.go)
	past      *pastTexts // past revisions' texts (pastrev.go)
	// authorsCache and authorNames serve who wrote what (authors.go).
	authorsCache *authorCache
	authorNames  authorNames
	authorsEvery int64       // revisions between checkpoints; tests make it small
	mem          *memBudget  // budget.go
	httpWrites   *httpWrites // httpwrite.go
	// commentStore keeps comments (nil: none); commentRate limits
	// comment writes per address (commentapi.go).
	commentStore CommentStore
	commentRate  *addrBuckets
	// histSearches holds a token per search in history running
	// (histsearch.go).
	histSearches chan struct{}
	// editors remembers who made which revision, for the workspace's
	// rows (present.go).
	editors editorMemo

	// authorKey is never changed after New.
	authorKey []byte
	// readBuffers holds *bytes.Buffer for reading WebSocket messages.
	readBuffers sync.Pool

	// ctx is cancelled by Close; hubs and sessions watch it.
	ctx    context.Context
	cancel context.CancelFunc

	// hubs and sessions count the goroutines Close waits for.
	hubWG     sync.WaitGroup
	sessionWG sync.WaitGroup

	// mu guards the fields below and every hub's refs.
	mu      sync.Mutex
	hubs    map[string]*hub
	closing bool

	webhooks  *webhooks  // nil without Options.Webhook
	workspace *workspace // nil without Options.Workspace
	access    *access    // nil without Options.SignIn
}

// New returns a Server that keeps documents in store.
func New(store Store, opts Options) *Server {
	opts.setDefaults()
	// Edit ids are capabilities: no log line may carry one (logid.go).
	opts.Logger = slog.New(redactIDs(opts.Logger.Handler()))
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		store:        store,
		opts:         opts,
		log:          opts.Logger,
		conns:        newConnLimiter("requests", opts.MaxConns, opts.MaxConnsPerAddr),
		healthConns:  newConnLimiter("health checks", opts.MaxHealthConns, opts.MaxHealthConnsPerAddr),
		pageConns:    newConnLimiter("page requests", opts.MaxPageConns, opts.MaxPageConnsPerAddr),
		lingering:    &lingerGate{time: lingerTime, bytes: lingerBytes, max: maxLingering},
		headers:      newHeaderValues(opts),
		creates:      newAddrBuckets(opts.CreateRate, opts.CreateBurst, opts.MaxTrackedAddrs),
		bodies:       &byteBudget{max: opts.MaxBodyBytesInFlight},
		held:         newHeldBytes(opts.MaxHeldResponseBytes),
		past:         newPastTexts(pastCacheBytes),
		authorsCache: newAuthorCache(authorsCacheBytes),
		authorsEvery: int64(opts.AuthorsEvery),
		ctx:          ctx,
		cancel:       cancel,
		hubs:         make(map[string]*hub),
		histSearches: make(chan struct{}, opts.MaxHistorySearches),
	}
	s.admission = NewAdmission(store, Limits{MaxDataBytes: opts.MaxDataBytes, MinFreeBytes: opts.MinFreeBytes,
		MaxDocHistory: opts.MaxDocHistory, DiskCheckInterval: opts.DiskCheckInterval}, s.log)
	s.restores = newRestoreLimiter(opts)
	s.mem = newMemBudget(opts.MemoryBudget, s.reclaim)
	s.httpWrites = newHTTPWrites(opts)
	s.commentStore = opts.Comments
	if cs, ok := store.(CommentStore); ok && s.commentStore == nil {
		s.commentStore = cs
	}
	s.commentRate = newAddrBuckets(opts.CommentRate, opts.CommentBurst, opts.MaxTrackedAddrs)
	s.authorKey = append([]byte(nil), opts.AuthorKey...)
	if len(s.authorKey) == 0 {
		s.authorKey = newAuthorKey()
	}
	if opts.SignIn != nil {
		ac, err := newAccess(*opts.SignIn)
		if err != nil {
			panic("collab: Options.SignIn: " + err.Error()) // cmd/collabd checks its flags first
		}
		s.access = ac
	}
	s.mux = s.routes()
	s.handler = s.Protect(s.mux)
	s.webhooks = startWebhooks(s, opts.Webhook)
	if s.access != nil {
		s.workspace = newWorkspace(s, opts.Workspace)
		s.workspace.start()
	}
	return s
}

// ServeHTTP serves the API: /api/... and /healthz, behind Protect.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(s.opts.Metrics.wrap(w), r)
}

// Close shuts the server down gracefully: new requests get 503, editors
// get a shutting_down error and close code 1001, viewers' streams end,
// every hub finishes its commit in flight and snapshots its document. It
// returns when all of that is done, or when ctx ends. The Store is the
// caller's to close afterwards.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.sessionWG.Wait()
		s.hubWG.Wait()
		s.webhooks.close() // after the hubs: their last changes are flushed
		s.workspace.close()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// acquire returns the hub of document id, loading it if needed, and holds
// a reference that keeps it loaded until release. It fails with an error
// wrapping ErrNotFound for an unknown document, and with errMemoryFull
// for one not loaded while the MemoryBudget is spent.
func (s *Server) acquire(ctx context.Context, id string) (*hub, error) {
	full := s.mem.full() // not under s.mu: it may reclaim, which takes s.mu
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil, errShuttingDown
	}
	h := s.hubs[id]
	if h == nil && full {
		s.mu.Unlock()
		return nil, errMemoryFull
	}
	if h == nil {
		h = newHub(s, id)
		s.hubs[id] = h
		s.hubWG.Add(1)
		go h.run()
	}
	h.refs++
	s.mu.Unlock()

	select {
	case <-h.ready:
	case <-ctx.Done():
		s.release(h)
		return nil, ctx.Err()
	}
	if h.loadErr != nil {
		s.release(h)
		return nil, h.loadErr
	}
	return h, nil
}

// release drops a reference taken by acquire.
func (s *Server) release(h *hub) {
	s.mu.Lock()
	h.refs--
	s.mu.Unlock()
}

// tryUnload removes an idle hub from the registry when nobody holds it,
// so no new reference can reach it. It reports whether it did.
func (s *Server) tryUnload(h *hub) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.refs > 0 || s.hubs[h.id] != h {
		return false
	}
	delete(s.hubs, h.id)
	return true
}

// forget removes a hub that failed or stopped, whatever its references:
// the next acquire loads the document afresh.
func (s *Server) forget(h *hub) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hubs[h.id] == h {
		delete(s.hubs, h.id)
	}
}

// trackSession counts a WebSocket or SSE session that Close must wait
// for. It fails once the server is closing.
func (s *Server) trackSession() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.sessionWG.Add(1)
	return true
}
