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
}

// Usage is the disk space a Store takes and has left.
type Usage struct {
	// DataBytes is the size of the store's data.
	DataBytes int64
	// FreeBytes is the space left on the store's disk, or -1 if unknown.
	FreeBytes int64
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
