// Package jetstream keeps collabd's documents in NATS JetStream, so that
// several collabd nodes can serve the same documents (docs/scaling.md). It
// is the cluster counterpart of package storage and has the same shape:
// Create, Load, Append, Ops, ClientSeq, SaveSnapshot; plus what only a
// cluster needs: an owner lease per document, Follow for fan-out of
// committed records to every node, and request/reply for forwarding an
// editor's op to the owner.
//
// # Layout in NATS
//
//	stream COLLAB_OPS     subjects collab.ops.<doc>: one message per commit
//	                      group, the records of revisions a..b in order
//	KV collab_docs        doc id -> view id, created
//	KV collab_views       view id -> doc id (Create, so view ids are unique)
//	KV collab_owners      doc id -> node id, the owner lease (TTL bucket)
//	object collab_snaps   doc id -> text and client table at a revision
//	KV collab_comments    doc id.key -> comment record (comments.go)
//	KV collab_authors     doc id.i, doc id.c... -> who wrote what (authors.go)
//	KV collab_activity    doc id.chunk -> revisions by minute (activity.go)
//	subject collab.rpc.<doc>  request/reply to the owner (queue group)
//
// # Ordering and fencing
//
// The op stream is the only thing that has to be consistent. Every message
// on a document's subject is published with
// Nats-Expected-Last-Subject-Sequence set to the stream sequence of the
// previous message of that subject, and carries revisions that continue the
// previous message's. JetStream checks the sequence atomically, so two
// writers at one position can never both succeed: exactly one gets the
// PubAck, the other ErrConflict, whatever the lease says. The lease only
// decides who should write, so that in the normal case nobody is refused.
//
// The (client, seq) dedupe state travels in the records themselves; a
// snapshot carries the client table at its revision, so a node that loads a
// document (snapshot + subject tail) rebuilds both the text and every
// client's last seq, with nothing else to keep consistent.
//
// # Durability
//
// Append returns once JetStream has acknowledged the publish: stored with
// the stream's replicas. With one NATS server that means written but fsynced
// only every sync_interval (two minutes by default); run NATS with
// `jetstream { sync_interval: always }` or three replicas for the same
// guarantee as package storage. The tests use always.
//
// An Append that fails with anything but ErrConflict or a validation error
// is ambiguous: the message may or may not be stored (a lost PubAck, a
// connection cut mid-publish). The caller must then reload (Load, or Follow
// from its revision) rather than assume either outcome. Connect disables
// nats.go's reconnect buffer, so a publish made while disconnected fails at
// once instead of being sent, unasked, after a reconnect.
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// ErrNotFound is returned for an unknown document or view id.
var ErrNotFound = errors.New("jetstream: not found")

// ErrExists is returned by Create when the edit id or view id is taken.
var ErrExists = errors.New("jetstream: already exists")

// ErrConflict is returned by Append when the position it would write at is
// taken: another writer appended since this node last saw the document
// (JetStream refused the expected subject sequence), or the records do not
// continue the revision this node knows. Nothing of the call was stored.
// The caller is not (or no longer) the document's writer: it must reload
// before writing again.
var ErrConflict = errors.New("jetstream: position taken")

// ErrPartial is returned by Append when a group too large for one NATS
// message was split and only its leading messages were stored. Like any
// ambiguous failure, the caller must reload to learn which records exist.
var ErrPartial = errors.New("jetstream: group partly stored")

// ErrBadRecord is returned by Create and Append for records that are not
// well formed: an invalid op, revisions with a gap, or no records at all.
var ErrBadRecord = errors.New("jetstream: bad record")

// ErrTooLarge is returned by Append for a single record whose encoding
// exceeds the connection's max payload; raise max_payload in the NATS
// server's configuration (up to 64 MB) or bound ops below it.
var ErrTooLarge = errors.New("jetstream: record exceeds max payload")

// ErrCorrupt is returned when stored data is inconsistent: an undecodable
// message, a gap in revisions, or an op that does not fit the text.
var ErrCorrupt = errors.New("jetstream: corrupt data")

// ErrHeld is returned by Acquire when another node holds the lease.
var ErrHeld = errors.New("jetstream: lease held by another node")

// ErrLeaseLost is what Lease.Err returns once the lease is gone: taken over,
// expired, or not renewed in time.
var ErrLeaseLost = errors.New("jetstream: lease lost")

// ErrNoOwner is returned by Forward when no node serves the document.
var ErrNoOwner = errors.New("jetstream: no owner serving the document")

// ErrClosed is returned by a Follower's Err after Close.
var ErrClosed = errors.New("jetstream: closed")

// Names in NATS. Fixed, so that every node of a cluster agrees on them.
const (
	streamOps  = "COLLAB_OPS"
	subjectOps = "collab.ops."
	// subjectPub is where the stream republishes each stored message of
	// subjectOps<id> (as subjectPub<id>), for followers (follow.go).
	subjectPub   = "collab.pub."
	subjectRPC   = "collab.rpc."
	bucketDocs   = "collab_docs"
	bucketViews  = "collab_views"
	bucketOwners = "collab_owners"
	bucketSnaps  = "collab_snaps"
	// bucketComments holds comment records (comments.go).
	bucketComments = "collab_comments"
	// bucketAuthors (authors.go) is declared with its code.
	queueOwner = "collab-owner"
)

// maxConsumers is the stream's explicit consumer limit (see New).
const maxConsumers = 1_000_000

// validID accepts what can be both one subject token and a KV key: collab
// uses UUIDs, and anything with '.', '*', '>' or spaces would change which
// subjects a document's messages land on.
var validID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// Options tunes New. The zero value works for one NATS server.
type Options struct {
	// Replicas of the stream and buckets. Zero means 1; use 3 on a three
	// server NATS cluster, where a PubAck then means a quorum has it.
	Replicas int
	// LeaseTTL is how long an owner lease lives without renewal. Zero
	// means 2s. It bounds failover from below: a dead owner's documents
	// move after at most this long. The bucket is created with it, so all
	// nodes must agree (New updates the bucket to its own value).
	LeaseTTL time.Duration
	// RenewEvery is how often a lease is renewed. Zero means LeaseTTL/3,
	// so two renewals in a row may fail before the lease is at risk.
	RenewEvery time.Duration
	// NodeID names this node in leases; it must match [A-Za-z0-9_-]+.
	// Empty means a random UUID.
	NodeID string
	// SnapshotEvery makes this node snapshot a document, in the
	// background, after every N records it appended to it, and after a
	// Load that replayed N or more. Zero means 1000; negative disables.
	// It bounds what a new owner replays on failover.
	SnapshotEvery int
	// Logger receives background errors. Nil means discard.
	Logger *slog.Logger
}

// Store is collabd's document storage on JetStream. It is safe for
// concurrent use. It does not own the NATS connection it is given.
type Store struct {
	nc     *nats.Conn
	js     natsjs.JetStream
	ops    natsjs.Stream
	docs   natsjs.KeyValue
	views  natsjs.KeyValue
	owners natsjs.KeyValue
	snaps  natsjs.ObjectStore
	// comments holds comment records (comments.go).
	comments natsjs.KeyValue
	// authors holds checkpoints of who wrote what (authors.go).
	authors natsjs.KeyValue
	// seeks is where this node has seen documents' revisions in the
	// stream (seekcache.go).
	seeks *seekCache
	// activity holds the activity index (activity.go), in chunks of
	// actChunk revisions.
	activity natsjs.KeyValue
	actChunk int64
	// scanned counts the records range reads decoded, for tests of
	// what a read costs.
	scanned atomic.Int64

	node       string
	replicas   int
	ttl, renew time.Duration
	log        *slog.Logger

	// mu guards states.
	mu sync.Mutex
	// states holds, per document this node has read or written, the last
	// position it saw and the client table there (see state.go). It is
	// only a cache: Append is fenced by JetStream whatever it holds.
	states map[string]*docState

	// The snapshotter (snapshot.go): one goroutine, stopped by Close.
	snapEvery int64 // 0 when disabled
	// milestones is the milestone interval (snapshot.go).
	milestones int64
	// authorsMax bounds a document's authorship checkpoints (authors.go;
	// tests lower it).
	authorsMax int
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	snapWake   chan struct{} // capacity 1: a pending wake-up is enough
	// snapMu guards snapPending, the documents to snapshot.
	snapMu      sync.Mutex
	snapPending map[string]struct{}
	closeOnce   sync.Once

	// followSkip, set by tests before Follow, makes followers ignore
	// their consumers' messages, as a stalled consumer delivers none.
	followSkip bool
}

// maxStates bounds the cache of document states; past it the cache is
// dropped whole, which costs each document one extra round trip.
const maxStates = 100_000

// Connect dials NATS with the options collabd needs before the caller's:
// reconnect forever, and no reconnect buffer, so that a publish made while
// disconnected fails at once (see the package comment).
func Connect(url string, opts ...nats.Option) (*nats.Conn, error) {
	base := []nats.Option{
		nats.Name("collabd"),
		nats.MaxReconnects(-1),
		nats.ReconnectBufSize(-1),
		nats.ReconnectWait(250 * time.Millisecond),
	}
	nc, err := nats.Connect(url, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", url, err)
	}
	return nc, nil
}

// New creates or updates the stream and buckets and returns a Store on nc.
// Every node calls it at start-up; it is idempotent.
func New(ctx context.Context, nc *nats.Conn, opts Options) (*Store, error) {
	js, err := natsjs.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	replicas := max(opts.Replicas, 1)
	ttl := opts.LeaseTTL
	if ttl <= 0 {
		ttl = 2 * time.Second
	}
	renew := opts.RenewEvery
	if renew <= 0 {
		renew = ttl / 3
	}
	node := opts.NodeID
	if node == "" {
		node = uuid.NewString()
	}
	if !validID.MatchString(node) {
		return nil, fmt.Errorf("jetstream: node id %q must match %s", node, validID)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	every := int64(opts.SnapshotEvery)
	switch {
	case every == 0:
		every = 1000
	case every < 0:
		every = 0
	}
	s := &Store{
		seeks: newSeekCache(),
		nc:    nc, js: js, node: node, replicas: replicas, ttl: ttl, renew: renew, log: log,
		states:    make(map[string]*docState),
		snapEvery: every, snapWake: make(chan struct{}, 1), milestones: defaultMilestoneEvery,
		authorsMax: maxAuthorsIndex, actChunk: defaultActivityChunk,
		snapPending: make(map[string]struct{}),
	}

	// Every node runs New at each start, on every attempt, and each
	// create-or-update of a stream or bucket is a proposal to the meta
	// leader and to the asset's own group: on loaded cores the whole
	// sequence outgrew a start-up attempt, so nodes started together
	// never opened. What already exists as configured is only looked up.
	opsCfg := natsjs.StreamConfig{
		Name:        streamOps,
		Description: "collabd op records: one message per commit group, a subject per document",
		Subjects:    []string{subjectOps + "*"},
		Storage:     natsjs.FileStorage,
		Replicas:    replicas,
		// History is never pruned, as in package storage: catch-up and
		// the history view read old revisions. Single messages cannot be
		// deleted (a hole would be a gap in a document's revisions), but
		// a subject can be purged whole: that is how Delete removes a
		// document. DenyPurge cannot be turned off once set (the server
		// refuses the update), so it must never be set here.
		Retention:  natsjs.LimitsPolicy,
		DenyDelete: true,
		DenyPurge:  false,
		// Follows take no consumer any more (follow.go), but a node of
		// an older version does, and nats-server 2.15 applies a default
		// of 1,000 per stream unless the stream names a limit (-1 counts
		// as unset), which would cap how many documents it follows.
		MaxConsumers: maxConsumers,
		// Reads of a range are direct gets, served by any caught-up
		// replica without a consumer (direct.go). A replica may lag: the
		// subject's end is read from the leader, and a read that misses
		// a message it knows exists asks again. Updating the stream
		// turns it on in a cluster made before.
		AllowDirect: true,
		// Followers take new records from the stream's republication of
		// what it stored, on plain subscriptions: no consumer per
		// followed document (follow.go).
		RePublish: &natsjs.RePublish{Source: subjectOps + "*", Destination: subjectPub + "{{wildcard(1)}}"},
	}
	if st, err := js.Stream(ctx, streamOps); err == nil && sameOps(st.CachedInfo().Config, opsCfg) {
		s.ops = st
	} else if s.ops, err = js.CreateOrUpdateStream(ctx, opsCfg); err != nil {
		return nil, fmt.Errorf("jetstream: stream %s: %w", streamOps, err)
	}
	kv := func(name, desc string, ttl time.Duration, storage natsjs.StorageType) (natsjs.KeyValue, error) {
		if b, err := js.KeyValue(ctx, name); err == nil {
			if st, err := b.Status(ctx); err == nil {
				if c := st.Config(); c.Replicas == replicas && c.TTL == ttl && c.Storage == storage && c.History == 1 {
					return b, nil
				}
			}
		}
		b, err := js.CreateOrUpdateKeyValue(ctx, natsjs.KeyValueConfig{
			Bucket: name, Description: desc, History: 1, TTL: ttl,
			Storage: storage, Replicas: replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("jetstream: bucket %s: %w", name, err)
		}
		return b, nil
	}
	if s.docs, err = kv(bucketDocs, "collabd documents: id -> view id, created", 0, natsjs.FileStorage); err != nil {
		return nil, err
	}
	if s.views, err = kv(bucketViews, "collabd view ids -> document ids", 0, natsjs.FileStorage); err != nil {
		return nil, err
	}
	if s.comments, err = kv(bucketComments, "collabd comments: doc id.key -> record", 0, natsjs.FileStorage); err != nil {
		return nil, err
	}
	if s.authors, err = kv(bucketAuthors, "collabd who wrote what: doc id.i -> index, doc id.c<rev>... -> checkpoint", 0, natsjs.FileStorage); err != nil {
		return nil, err
	}
	if s.activity, err = kv(bucketActivity, "collabd activity index: doc id.chunk -> revisions by minute", 0, natsjs.FileStorage); err != nil {
		return nil, err
	}
	// The bucket's max age is the lease TTL: every renewal is a new
	// message, and the key vanishes TTL after the last one. In memory,
	// not on file: a node renews every lease it holds every TTL/3, which
	// on file storage with sync_interval always is an fsync each (1,500
	// a second for 1,000 documents, which starved the op appends and let
	// leases expire under load). Leases need no durability: if NATS
	// loses them, the documents are free to take, and fencing by stream
	// position, not the lease, is what keeps two owners from forking a
	// document.
	if s.owners, err = kv(bucketOwners, "collabd owner leases: doc id -> node id", ttl, natsjs.MemoryStorage); err != nil {
		return nil, err
	}
	if obs, err := js.ObjectStore(ctx, bucketSnaps); err == nil {
		if st, err := obs.Status(ctx); err == nil && st.Replicas() == replicas && st.Storage() == natsjs.FileStorage {
			s.snaps = obs
		}
	}
	if s.snaps == nil {
		s.snaps, err = js.CreateOrUpdateObjectStore(ctx, natsjs.ObjectStoreConfig{
			Bucket:      bucketSnaps,
			Description: "collabd snapshots: doc id -> text and client table at a revision",
			Storage:     natsjs.FileStorage,
			Replicas:    replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("jetstream: object store %s: %w", bucketSnaps, err)
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.snapshotLoop()
	return s, nil
}

// sameOps reports whether the ops stream's configuration have is want in
// everything New sets.
func sameOps(have, want natsjs.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Storage == want.Storage &&
		have.Replicas == want.Replicas && have.Retention == want.Retention &&
		have.DenyDelete == want.DenyDelete && have.DenyPurge == want.DenyPurge &&
		have.MaxConsumers == want.MaxConsumers && have.AllowDirect == want.AllowDirect &&
		have.RePublish != nil && *have.RePublish == *want.RePublish && have.Description == want.Description
}

// Close stops the background snapshotter and waits for it; a snapshot
// being written is abandoned (the previous one stays). It does not close
// the NATS connection, which the caller owns, nor leases or followers,
// which their owners close first. Idempotent.
func (s *Store) Close() {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
	})
}

// NodeID returns the name this store's node uses in leases.
func (s *Store) NodeID() string { return s.node }

// Ping proves that JetStream still takes durable writes: it puts this
// node's key in the documents bucket, which needs the bucket's leader and,
// with replicas, a quorum. The key ("ping.<node>") has a dot, so it can
// never be a document id.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.docs.Put(ctx, "ping."+s.node, []byte(time.Now().UTC().Format(time.RFC3339Nano))); err != nil {
		return fmt.Errorf("jetstream: ping: %w", err)
	}
	return nil
}

func opsSubject(id string) string { return subjectOps + id }

func checkID(id string) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("doc %q: %w", id, ErrNotFound)
	}
	return nil
}

// Unavailable reports whether err means that NATS or JetStream cannot
// serve now, rather than anything wrong with the request: disconnected,
// no server answering, no stream leader or meta leader (no quorum), a
// request that timed out. The same request may succeed later.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var apiErr *natsjs.APIError
	if errors.As(err, &apiErr) {
		// 503: JetStream temporarily unavailable, stream offline,
		// insufficient resources; 408: a request timed out in the
		// cluster.
		return apiErr.Code == 503 || apiErr.Code == 408
	}
	for _, e := range []error{
		context.DeadlineExceeded, nats.ErrTimeout, nats.ErrNoResponders,
		natsjs.ErrNoStreamResponse, nats.ErrConnectionClosed,
		nats.ErrConnectionReconnecting, nats.ErrReconnectBufExceeded,
		nats.ErrDisconnected, nats.ErrConnectionDraining,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// isWrongLastSeq reports whether err is JetStream refusing an expected
// last sequence; replicated streams use a second code.
func isWrongLastSeq(err error) bool {
	var apiErr *natsjs.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == natsjs.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == natsjs.JSErrCodeStreamWrongLastSequenceConstant
}
