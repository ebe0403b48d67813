// Package storage keeps collabd's documents on disk in a single bbolt file.
// It is the only place documents live: whatever it has acknowledged survives
// a crash at any instant, and nothing half-written is ever read back.
//
// # Layout
//
// The file holds these top-level buckets:
//
//	docs    per document: its meta (view id, created, rev), its op log
//	        (op N turned rev N-1 into N), its clients' last seq and rev,
//	        and its activity index (the revisions of each minute)
//	snaps   per document and revision: the full text at that revision,
//	        compressed, as a milestone or the latest snapshot
//	views   view id -> edit id
//	sys     file format version; Ping's scratch key; the author key
//	outbox  webhook events not yet delivered, created on first use (outbox.go)
//	authors per document and revision: a checkpoint of who wrote what
//	        (opaque to storage), created on first use (authors.go)
//
// Keys are composite (see keys.go) rather than one nested bucket per
// document, so that an append dirties a single leaf page. Revisions are
// 8-byte big-endian, so cursors walk them in order. Every value carries a
// version byte and a CRC-32C, so a damaged value is reported as ErrCorrupt
// naming the document and revision rather than decoded into wrong text.
// The op log is never pruned (until Delete removes the whole document):
// every revision stays readable, through TextAt, Revisions, Activity and
// RevAt (history.go, activity.go).
//
// # Durability and group commit
//
// bbolt makes a transaction durable with two fdatasyncs at commit, a fixed
// cost (about 0.3 ms on the SSD we measured) far above what one op adds
// (a dirty page, about 10 µs). So one committer goroutine owns every
// write transaction: Create, Append, SaveSnapshot, Delete and Ping queue a request
// and wait for its result. The committer takes the first queued request,
// drains whatever else is already waiting, applies the whole group in one
// bbolt transaction and replies to each caller only after the commit has
// been fsynced. While it commits, new requests queue up and form the next
// group, so a lone request is never delayed and a busy server pays one fsync
// per group instead of one per op. Each request is validated before it
// writes anything, so one that conflicts fails alone while the rest of its
// group commits; an I/O error fails the whole group. A record whose op is
// malformed is refused before it is even queued.
//
// A document's meta revision, its new ops and its clients' dedupe entries
// are written in the same transaction, so after a crash they always agree.
//
// # Snapshots
//
// Every SnapshotEvery ops (or SnapshotBytes bytes of ops) a background
// goroutine rebuilds the document's text at that revision from the
// previous milestone and the ops after it, and stores it, compressed,
// through the committer as a new milestone. Milestones are kept, so the
// text at any revision costs one snapshot plus at most SnapshotEvery ops,
// and Load's replay stays as short, without ever holding up appends (see
// snapshot.go and milestone.go).
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/collabd/collabd/ot"
)

// ErrNotFound is returned for an unknown document or view id.
var ErrNotFound = errors.New("storage: not found")

// ErrExists is returned by Create when the edit id or view id is taken.
var ErrExists = errors.New("storage: already exists")

// ErrConflict is returned when a write does not continue the document's
// history: an Append whose first revision is not the current revision plus
// one, a Create whose first record is not revision 1, or a snapshot ahead of
// the document or not matching it.
var ErrConflict = errors.New("storage: revision conflict")

// ErrBadRecord is returned by Create and Append for a record whose op is
// not well formed (ot.Op.Validate fails): stored, it would make every later
// Load of the document fail with ErrCorrupt. The error also wraps the ot
// sentinel saying what is wrong.
var ErrBadRecord = errors.New("storage: bad record")

// ErrCorrupt is returned when stored data is inconsistent: a missing
// revision, an undecodable value, or an op or snapshot that does not fit the
// text it applies to. The wrapping error names the document and revision.
var ErrCorrupt = errors.New("storage: corrupt data")

// ErrLocked is returned by Open when another process holds the file's lock
// for longer than Options.LockTimeout: most likely a running server.
var ErrLocked = errors.New("storage: file is locked by another process")

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("storage: closed")

// Options tunes Open. The zero value works.
type Options struct {
	// LockTimeout is how long Open waits for the file lock held by another
	// process. Zero means 5s (bbolt itself would wait forever).
	LockTimeout time.Duration
	// SnapshotEvery keeps a milestone snapshot every N ops per document
	// (see milestone.go). Zero means 1000; negative disables milestones,
	// leaving only the snapshots SaveSnapshot stores.
	SnapshotEvery int
	// SnapshotBytes keeps a milestone whenever the ops since the last one
	// reach this many stored bytes, if that comes before SnapshotEvery ops
	// (but never more often than the text's own length in bytes of ops).
	// Zero means 1 MiB; negative means no byte limit.
	SnapshotBytes int64
	// Logger receives background errors. Nil means discard.
	Logger *slog.Logger
	// InitialMmapSize is the address space reserved for the file, in
	// bytes. Zero means 1 GiB; negative means none (bbolt's own small
	// start). bbolt cannot remap the file while a read transaction is
	// open, so a larger reservation means fewer remaps that a long reader
	// could stall; tests use a small one to force remaps.
	InitialMmapSize int
}

// Meta describes a document. Rev is its latest revision.
type Meta struct {
	ID, ViewID string
	Created    time.Time
	Rev        int64
	// Len is the text's length in code points at Rev, which lets Append
	// refuse an op that does not fit the text; -1 if unknown (a document
	// stored before the length was kept). Create and Append maintain it.
	Len int64
	// LogBytes is what the document's op log takes in the file: each
	// record's encoded value and keys. Create and Append maintain it; a
	// document stored before it was kept counts from its next append.
	// Milestones are also scheduled by it (SnapshotBytes).
	LogBytes int64
	// Updated is the time of the latest op, zero if there is none. Append
	// keeps records' times from going backwards past it (see Record.Time).
	Updated time.Time
}

// Record is one op of a document's log: op Rev turned revision Rev-1 into
// Rev. Client and Seq identify who sent it, for deduplicating resends.
// Time is when it was committed: Create and Append set a zero Time to now
// and raise one earlier than the document's previous op to that op's
// time, so times never decrease along a document's revisions (a clock
// stepping back makes a few ops share a time instead), which is what lets
// the history find the revision at a time.
type Record struct {
	Rev    int64
	Op     ot.Op
	Client string
	Seq    int64
	Time   time.Time
}

// Snapshot is a document's full text at revision Rev.
type Snapshot struct {
	Rev  int64
	Text string
}

// Doc is a loaded document: Text is its text at Rev, which equals Meta.Rev.
type Doc struct {
	Meta Meta
	Text string
	Rev  int64
}

const (
	defaultLockTimeout   = 5 * time.Second
	defaultSnapshotEvery = 1000
	defaultSnapshotBytes = 1 << 20
	defaultOpsLimit      = 1000

	// formatVersion is stored in sys/format; Open refuses other versions
	// rather than misreading them, except formats 1 and 2, which it
	// upgrades (migrate.go). Format 2 added milestone snapshots (a kind byte
	// in snapshot keys, compressed values) and the activity index; format 3
	// stores several op records to a key (chunk.go).
	formatVersion = 3

	// initialMmapSize reserves address space (not memory or disk) so that
	// the file rarely needs remapping: bbolt cannot remap while a read
	// transaction is open, so without it a long Backup could stall commits.
	initialMmapSize = 1 << 30
)

var (
	bucketDocs  = []byte("docs")
	bucketSnaps = []byte("snaps")
	bucketViews = []byte("views")
	bucketSys   = []byte("sys")
	keyFormat   = []byte("format")
	keyPing     = []byte("ping")
)

// DB is an open storage file. It is safe for concurrent use.
type DB struct {
	bolt          *bbolt.DB
	log           *slog.Logger
	snapshotEvery int64 // 0 when disabled
	snapshotBytes int64
	comp          compressor

	// ctx is cancelled by Close; its Done channel tells the background
	// goroutines and waiting callers that the DB is closing.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	reqs          chan *request
	committerDone chan struct{} // closed when the committer has exited
	// onCommit, if set, is called after each write transaction (see
	// ObserveCommits).
	onCommit atomic.Pointer[func(time.Duration)]

	snapWake chan struct{} // capacity 1: a pending wake-up is enough
	// snapMu guards snapPending.
	snapMu sync.Mutex
	// snapPending holds the documents whose milestones the snapshotter
	// must bring up to date.
	snapPending map[string]struct{}

	// commits and committed count transactions and the requests they
	// carried; benchmarks report their ratio, the ops per fsync.
	commits, committed atomic.Int64

	closeOnce sync.Once
	closeErr  error
}

// Open opens or creates the storage file at path and starts its committer
// and snapshotter. It fails with ErrLocked if another process holds the
// file for longer than opts.LockTimeout.
func Open(path string, opts Options) (*DB, error) {
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = defaultLockTimeout
	}
	mmapSize := opts.InitialMmapSize
	switch {
	case mmapSize < 0:
		mmapSize = 0
	case mmapSize == 0 && strconv.IntSize < 64:
		mmapSize = 0 // address space is too scarce to reserve
	case mmapSize == 0:
		mmapSize = initialMmapSize
	}
	bolt, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: timeout,
		// The hashmap freelist stays fast as the file fragments; the
		// default array freelist degrades with many free pages.
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: mmapSize,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open storage %s: waited %v: %w", path, timeout, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open storage %s: %w", path, err)
	}
	if err := initBuckets(bolt, opts.Logger); err != nil {
		bolt.Close()
		return nil, fmt.Errorf("open storage %s: %w", path, err)
	}

	every := int64(opts.SnapshotEvery)
	switch {
	case every == 0:
		every = defaultSnapshotEvery
	case every < 0:
		every = 0
	}
	bytesEvery := opts.SnapshotBytes
	switch {
	case bytesEvery == 0:
		bytesEvery = defaultSnapshotBytes
	case bytesEvery < 0:
		bytesEvery = math.MaxInt64
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	db := &DB{
		bolt:          bolt,
		log:           log,
		snapshotEvery: every,
		snapshotBytes: bytesEvery,
		ctx:           ctx,
		cancel:        cancel,
		reqs:          make(chan *request, maxGroup),
		committerDone: make(chan struct{}),
		snapWake:      make(chan struct{}, 1),
		snapPending:   make(map[string]struct{}),
	}
	db.wg.Add(2)
	go db.commitLoop()
	go db.snapshotLoop()
	return db, nil
}

// Close stops the committer and snapshotter, waits for them, then closes the
// file. Requests still queued fail with ErrClosed; a group already being
// committed finishes first. Close is idempotent and returns the first
// result to every caller.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.cancel()
		db.wg.Wait()
		db.closeErr = db.bolt.Close()
	})
	return db.closeErr
}

// view runs fn in a read transaction, turning use after Close into
// ErrClosed.
func (db *DB) view(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if db.ctx.Err() != nil {
		return ErrClosed
	}
	err := db.bolt.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// readMeta returns the meta of document id and its keys.
func readMeta(tx *bbolt.Tx, id string) (Meta, docKeys, error) {
	keys := keysOf(id)
	v := tx.Bucket(bucketDocs).Get(keys.meta())
	if v == nil || id == "" {
		return Meta{}, nil, fmt.Errorf("doc %s: %w", id, ErrNotFound)
	}
	m, err := decodeMeta(id, v)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("doc %s meta: %v: %w", id, err, ErrCorrupt)
	}
	return m, keys, nil
}

// Meta returns the metadata of document id, or ErrNotFound.
func (db *DB) Meta(ctx context.Context, id string) (Meta, error) {
	var m Meta
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		m, _, err = readMeta(tx, id)
		return err
	})
	return m, err
}

// ViewDoc returns the edit id of the document whose view id is viewID, or
// ErrNotFound.
func (db *DB) ViewDoc(ctx context.Context, viewID string) (string, error) {
	var id string
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		if viewID != "" {
			id = string(tx.Bucket(bucketViews).Get([]byte(viewID)))
		}
		if id == "" {
			return fmt.Errorf("view %s: %w", viewID, ErrNotFound)
		}
		return nil
	})
	return id, err
}

// Ops returns the ops of document id with Rev > after, oldest first, at
// most limit of them (limit <= 0 means 1000), or ErrNotFound for an unknown
// document. A missing or undecodable record in that range is ErrCorrupt.
//
// maxBytes, when positive, bounds the page by RecordSize too: Ops stops
// before the record that would take the page past it, so a few huge ops
// cannot make one call decode gigabytes. The first record is returned
// whatever its size, so that a caller paging with after always progresses.
func (db *DB) Ops(ctx context.Context, id string, after int64, limit, maxBytes int) ([]Record, error) {
	if limit <= 0 {
		limit = defaultOpsLimit
	}
	if after < 0 {
		after = 0
	}
	// Not nil when empty: callers encode it as a JSON array.
	recs := []Record{}
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		m, keys, err := readMeta(tx, id)
		if err != nil {
			return err
		}
		if after >= m.Rev {
			return nil
		}
		recs = make([]Record, 0, min(int64(limit), m.Rev-after, 1024))
		size := 0
		return scanOpValues(tx, keys, id, after+1, m.Rev, func(rev int64, v []byte) (bool, error) {
			// The size is known before decoding, so the record that
			// would go over the budget is never even copied out.
			n := recordSize(v)
			if maxBytes > 0 && len(recs) > 0 && size+n > maxBytes {
				return false, nil
			}
			rec, err := decodeRecordAt(rev, v)
			if err != nil {
				return false, err
			}
			size += n
			recs = append(recs, rec)
			return len(recs) < limit, nil
		})
	})
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// RecordSize is what Ops counts against its maxBytes for one stored
// record of encoded length n with ops components: about the memory it
// takes once decoded (the text, plus a component struct each).
func RecordSize(n, components int) int { return n + 24*components }

// recordSize is RecordSize of a stored value, read without decoding it
// (or checking it: the decode that follows does). A value too damaged to
// tell counts its length alone.
func recordSize(v []byte) int {
	if len(v) < 5 {
		return len(v)
	}
	r := reader{b: v[1 : len(v)-4]}
	r.uvarint() // rev
	r.varint()  // time
	r.varint()  // seq
	if n := r.uvarint(); r.err == nil && n <= uint64(len(r.b)) {
		r.b = r.b[n:] // client
	} else {
		return len(v)
	}
	n := r.uvarint()
	if r.err != nil || n > uint64(len(v)) {
		return len(v)
	}
	return RecordSize(len(v), int(n))
}

// decodeRecordAt decodes the value stored under revision rev's key. The
// rev inside the value repeats the key, so a value filed under the wrong
// key is caught.
func decodeRecordAt(rev int64, v []byte) (Record, error) {
	rec, err := decodeRecord(v)
	if err == nil && rec.Rev != rev {
		err = fmt.Errorf("record claims rev %d", rec.Rev)
	}
	return rec, err
}

// scanOps calls fn with each op from rev from to rev to of a document, in
// order, until fn returns false. It reports the first missing or damaged
// revision as ErrCorrupt.
func scanOps(tx *bbolt.Tx, keys docKeys, id string, from, to int64, fn func(Record) bool) error {
	return scanOpValues(tx, keys, id, from, to, func(rev int64, v []byte) (bool, error) {
		rec, err := decodeRecordAt(rev, v)
		if err != nil {
			return false, err
		}
		return fn(rec), nil
	})
}

// scanOpsSized is scanOps also telling fn the size of each stored record.
func scanOpsSized(tx *bbolt.Tx, keys docKeys, id string, from, to int64, fn func(Record, int) bool) error {
	return scanOpValues(tx, keys, id, from, to, func(rev int64, v []byte) (bool, error) {
		rec, err := decodeRecordAt(rev, v)
		if err != nil {
			return false, err
		}
		return fn(rec, len(v)), nil
	})
}

// scanOpValues is scanOps on the stored values, which alias the mmap and
// must not be kept: fn decodes what it needs (decodeRecordAt) and returns
// a bad value as an error, which comes back as ErrCorrupt naming the
// revision.
func scanOpValues(tx *bbolt.Tx, keys docKeys, id string, from, to int64, fn func(rev int64, v []byte) (bool, error)) error {
	want := from
	for o := seekOps(tx.Bucket(bucketDocs).Cursor(), keys, from); o.ok && want <= to; o.next() {
		rev := o.rev
		if rev != want {
			return fmt.Errorf("doc %s rev %d: missing op: %w", id, want, ErrCorrupt)
		}
		more, err := fn(rev, o.val)
		if err != nil {
			return fmt.Errorf("doc %s rev %d: %v: %w", id, rev, err, ErrCorrupt)
		}
		want++
		if !more {
			return nil
		}
	}
	if want <= to {
		return fmt.Errorf("doc %s rev %d: missing op: %w", id, want, ErrCorrupt)
	}
	return nil
}

// ClientSeq returns the last seq of client applied to document id and the
// revision that op became, or 0, 0 if the client has none.
func (db *DB) ClientSeq(ctx context.Context, id, client string) (seq, rev int64, err error) {
	err = db.view(ctx, func(tx *bbolt.Tx) error {
		_, keys, err := readMeta(tx, id)
		if err != nil || client == "" {
			return err
		}
		v := tx.Bucket(bucketDocs).Get(keys.client(client))
		if v == nil {
			return nil
		}
		if seq, rev, err = decodeClient(v); err != nil {
			return fmt.Errorf("doc %s client %s: %v: %w", id, client, err, ErrCorrupt)
		}
		return nil
	})
	return seq, rev, err
}

// Load returns document id at its latest revision: the latest snapshot with
// the op tail after it replayed through ot. Any gap, undecodable record or
// op that does not fit the text fails with ErrCorrupt naming the document
// and revision; Load never returns wrong text.
func (db *DB) Load(ctx context.Context, id string) (*Doc, error) {
	var (
		doc  *Doc
		tail int64
	)
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		doc, tail, err = loadDoc(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	// A long tail means milestones were missed, e.g. the process died
	// before the snapshotter ran, or the file predates them.
	if db.snapshotEvery > 0 && tail >= db.snapshotEvery {
		db.scheduleMilestones(id)
	}
	return doc, nil
}

// Backup writes a consistent copy of the whole file to w while the DB keeps
// serving, and returns the number of bytes written. The copy is itself a
// storage file that Open accepts. If size is not nil, it is called with the
// copy's exact size before the first byte is written (for a Content-Length,
// say).
//
// It holds a read transaction until w has taken the last byte, and bbolt
// cannot grow its memory map while one is open: once the file outgrows
// the map, no write commits until Backup returns. So w should be fast (a
// local file), never a network client that may stall.
func (db *DB) Backup(w io.Writer, size func(int64)) (int64, error) {
	var n int64
	err := db.view(context.Background(), func(tx *bbolt.Tx) error {
		if size != nil {
			size(tx.Size())
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}

// Check verifies the file's structure as bbolt sees it: every page
// reachable exactly once, the freelist consistent, keys in order. It reads
// the whole file, so it is for tools such as the backup command, not for a
// serving process. Values are checked where they are read (their CRCs).
func (db *DB) Check(ctx context.Context) error {
	return db.view(ctx, func(tx *bbolt.Tx) error {
		var errs []error
		// Drain the channel whatever it holds: the checker goroutine
		// sends until it is done.
		for err := range tx.Check() {
			if len(errs) < 10 {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("check: %w: %w", ErrCorrupt, errors.Join(errs...))
		}
		return nil
	})
}
