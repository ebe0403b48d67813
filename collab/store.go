package collab

import (
	"context"
	"errors"
	"time"

	"github.com/collabd/collabd/ot"
)

// Store is the durable storage collab needs. collab declares it and never
// imports an implementation; cmd/collabd adapts package storage to it.
//
// Implementations must be safe for concurrent use. Append must return only
// once the records are durable: collab acknowledges and broadcasts an op
// after Append returns, never before.
type Store interface {
	// Create records a new document, with first as op 1 when it is not nil.
	Create(ctx context.Context, meta DocMeta, first *Record) error
	// ViewDoc returns the edit id of the document with this view id.
	ViewDoc(ctx context.Context, viewID string) (id string, err error)
	// Load returns a document's metadata and its text at its latest revision.
	Load(ctx context.Context, id string) (*StoredDoc, error)
	// Append durably adds recs, which continue the document's revisions
	// without a gap, and records each one's client id and seq for dedupe.
	Append(ctx context.Context, id string, recs []Record) error
	// Ops returns up to limit ops with revision > after, oldest first.
	// When maxBytes is positive, the page also stops before the op that
	// would take it past maxBytes (about the memory the ops take decoded:
	// their inserted text plus a few dozen bytes per component), without
	// reading that op into memory; the first op is returned whatever its
	// size, so that paging progresses.
	Ops(ctx context.Context, id string, after int64, limit, maxBytes int) ([]Record, error)
	// ClientSeq returns the highest seq applied from client on the
	// document and the revision that op became; zeros if none.
	ClientSeq(ctx context.Context, id, client string) (seq, rev int64, err error)
	// SaveSnapshot stores the text at a revision, to make later loads fast.
	SaveSnapshot(ctx context.Context, id string, rev int64, text string) error
	// Ping proves that the store can still write durably.
	Ping(ctx context.Context) error
	// Usage reports the space the store takes and what is left on its
	// disk. It must be cheap: admission checks call it about once a
	// second.
	Usage(ctx context.Context) (Usage, error)

	// History (history.go). Every committed revision stays readable until
	// the document is deleted.

	// LoadAt returns a document's metadata and its text at revision rev,
	// or ErrNoRevision if it has no such revision.
	LoadAt(ctx context.Context, id string, rev int64) (*StoredDoc, error)
	// RevAt returns the latest revision committed at or before t: 0 if t
	// is before the first op.
	RevAt(ctx context.Context, id string, t time.Time) (int64, error)
	// Revisions describes up to limit ops with revision > after, oldest
	// first.
	Revisions(ctx context.Context, id string, after int64, limit int) ([]Revision, error)
	// Activity summarises the revisions after after by period of length
	// unit (a minute, an hour or a day, aligned in UTC), oldest first, at
	// most limit periods; a period names at most a few clients.
	Activity(ctx context.Context, id string, after int64, unit time.Duration, limit int) ([]Bucket, error)
	// Delete removes a document, its whole history and its view id.
	Delete(ctx context.Context, id string) error
}

// Usage is the disk space a Store takes and has left.
type Usage struct {
	// DataBytes is the size of the store's data.
	DataBytes int64
	// FreeBytes is the space left on the store's disk, or -1 if unknown.
	FreeBytes int64
}

// ErrNoRevision is what a Store returns (possibly wrapped) for a revision
// a document does not have.
var ErrNoRevision = errors.New("no such revision")

// ErrUnavailable is what a Store returns (possibly wrapped) when its
// backend cannot serve now but may later: in cluster mode, NATS
// unreachable or without a JetStream quorum. Requests that meet it are
// answered 503 with Retry-After, so that clients and load balancers retry.
var ErrUnavailable = errors.New("storage unavailable")

// Revision describes one committed op without its content.
type Revision struct {
	Rev               int64
	Time              time.Time
	Client            string
	Inserted, Deleted int64 // code points
}

// Bucket summarises the revisions FirstRev..LastRev, all committed in the
// period starting at Start.
type Bucket struct {
	Start             time.Time
	FirstRev, LastRev int64
	Count             int64
	Inserted, Deleted int64
	Clients           []string
}

// ErrNotFound is what a Store returns (possibly wrapped) for an unknown
// document or view id.
var ErrNotFound = errors.New("not found")

// DocMeta identifies a document.
type DocMeta struct {
	ID      string // the edit id: the capability to edit
	ViewID  string // the view id: the capability to watch
	Created time.Time
}

// StoredDoc is a document as loaded from a Store.
type StoredDoc struct {
	Meta DocMeta
	Rev  int64
	Text string
	// LogBytes is what the document's op log takes in the store, which
	// Options.MaxDocHistory bounds; 0 if the store does not know.
	LogBytes int64
}

// Record is one committed op.
type Record struct {
	Rev    int64
	Op     ot.Op
	Client string
	Seq    int64
	Time   time.Time
}
