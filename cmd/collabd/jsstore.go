package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/storage/jetstream"
)

// jsStore adapts *jetstream.Store to collab.Store, and with jsCluster
// (jslink.go) to collab.Cluster: cluster mode, chosen by -nats. As store
// does for storage, it is the one place that sees both packages.
type jsStore struct {
	st *jetstream.Store
	*jsCluster
}

var (
	_ collab.Store        = jsStore{}
	_ collab.Cluster      = jsStore{}
	_ collab.CommentStore = jsStore{}
	_ collab.AuthorStore  = jsStore{}
)

// clusterAuthorsEvery is collab.Options.AuthorsEvery in cluster mode.
const clusterAuthorsEvery = 250

// SaveAuthors and AuthorsBefore keep collab's checkpoints of who wrote
// what in JetStream, so that another node, or this one restarted, starts
// from them rather than from the document's first op, and text a restore
// or revert brought back keeps its authors there too.
func (s jsStore) SaveAuthors(ctx context.Context, id string, cps []collab.AuthorsCheckpoint) error {
	out := make([]jetstream.Checkpoint, len(cps))
	for i, cp := range cps {
		out[i] = jetstream.Checkpoint{Rev: cp.Rev, Data: cp.Data}
	}
	return mapJSErr(s.st.SaveAuthors(ctx, id, out))
}

func (s jsStore) AuthorsBefore(ctx context.Context, id string, rev int64) (collab.AuthorsCheckpoint, error) {
	cp, err := s.st.AuthorsBefore(ctx, id, rev)
	return collab.AuthorsCheckpoint{Rev: cp.Rev, Data: cp.Data}, mapJSErr(err)
}

func (s jsStore) Comments(ctx context.Context, id string) (map[string][]byte, error) {
	m, err := s.st.Comments(ctx, id)
	return m, mapJSErr(err)
}

func (s jsStore) PutComments(ctx context.Context, id string, put map[string][]byte, del []string) error {
	return mapJSErr(s.st.PutComments(ctx, id, put, del))
}

// mapJSErr lets collab recognise jetstream's errors as its own.
func mapJSErr(err error) error {
	switch {
	case errors.Is(err, jetstream.ErrNotFound):
		return fmt.Errorf("%w: %w", collab.ErrNotFound, err)
	case errors.Is(err, jetstream.ErrNoRevision):
		return fmt.Errorf("%w: %w", collab.ErrNoRevision, err)
	case errors.Is(err, jetstream.ErrNoOwner):
		return fmt.Errorf("%w: %w", collab.ErrNoOwner, err)
	case jetstream.Unavailable(err):
		return fmt.Errorf("%w: %w", collab.ErrUnavailable, err)
	}
	return err
}

func toJS(r collab.Record) jetstream.Record {
	return jetstream.Record{Rev: r.Rev, Op: r.Op, Client: r.Client, Seq: r.Seq, Time: r.Time}
}

func fromJS(r jetstream.Record) collab.Record {
	return collab.Record{Rev: r.Rev, Op: r.Op, Client: r.Client, Seq: r.Seq, Time: r.Time}
}

func fromJSDoc(d *jetstream.StoredDoc) *collab.StoredDoc {
	return &collab.StoredDoc{
		Meta: collab.DocMeta{ID: d.Meta.ID, ViewID: d.Meta.ViewID, Created: d.Meta.Created},
		Rev:  d.Rev,
		Text: d.Text,
	}
}

func (s jsStore) Create(ctx context.Context, m collab.DocMeta, first *collab.Record) error {
	var f *jetstream.Record
	if first != nil {
		r := toJS(*first)
		f = &r
	}
	return mapJSErr(s.st.Create(ctx, jetstream.DocMeta{ID: m.ID, ViewID: m.ViewID, Created: m.Created}, f))
}

func (s jsStore) ViewDoc(ctx context.Context, viewID string) (string, error) {
	id, err := s.st.ViewDoc(ctx, viewID)
	return id, mapJSErr(err)
}

func (s jsStore) Load(ctx context.Context, id string) (*collab.StoredDoc, error) {
	d, err := s.st.Load(ctx, id)
	if err != nil {
		return nil, mapJSErr(err)
	}
	return fromJSDoc(d), nil
}

func (s jsStore) Append(ctx context.Context, id string, recs []collab.Record) error {
	out := make([]jetstream.Record, len(recs))
	for i, r := range recs {
		out[i] = toJS(r)
	}
	return mapJSErr(s.st.Append(ctx, id, out))
}

func (s jsStore) Ops(ctx context.Context, id string, after int64, limit, maxBytes int) ([]collab.Record, error) {
	recs, err := s.st.Ops(ctx, id, after, limit, maxBytes)
	if err != nil {
		return nil, mapJSErr(err)
	}
	out := make([]collab.Record, len(recs))
	for i, r := range recs {
		out[i] = fromJS(r)
	}
	return out, nil
}

func (s jsStore) ClientSeq(ctx context.Context, id, client string) (int64, int64, error) {
	seq, rev, err := s.st.ClientSeq(ctx, id, client)
	return seq, rev, mapJSErr(err)
}

func (s jsStore) SaveSnapshot(ctx context.Context, id string, rev int64, text string) error {
	return mapJSErr(s.st.SaveSnapshot(ctx, id, rev, text))
}

func (s jsStore) Ping(ctx context.Context) error { return s.st.Ping(ctx) }

// Usage reports what JetStream holds; the free space is the NATS
// servers' to watch, so -min-free-bytes does not apply.
func (s jsStore) Usage(ctx context.Context) (collab.Usage, error) {
	n, err := s.st.Usage(ctx)
	return collab.Usage{DataBytes: n, FreeBytes: -1}, err
}

func (s jsStore) LoadAt(ctx context.Context, id string, rev int64) (*collab.StoredDoc, error) {
	d, err := s.st.LoadAt(ctx, id, rev)
	if err != nil {
		return nil, mapJSErr(err)
	}
	return fromJSDoc(d), nil
}

func (s jsStore) RevAt(ctx context.Context, id string, t time.Time) (int64, error) {
	rev, err := s.st.RevAt(ctx, id, t)
	return rev, mapJSErr(err)
}

func (s jsStore) Revisions(ctx context.Context, id string, after int64, limit int) ([]collab.Revision, error) {
	revs, err := s.st.Revisions(ctx, id, after, limit)
	if err != nil {
		return nil, mapJSErr(err)
	}
	out := make([]collab.Revision, len(revs))
	for i, r := range revs {
		out[i] = collab.Revision{Rev: r.Rev, Time: r.Time, Client: r.Client, Inserted: r.Inserted, Deleted: r.Deleted}
	}
	return out, nil
}

func (s jsStore) Activity(ctx context.Context, id string, after int64, unit time.Duration, limit int) ([]collab.Bucket, error) {
	bs, err := s.st.Activity(ctx, id, after, unit, limit)
	if err != nil {
		return nil, mapJSErr(err)
	}
	out := make([]collab.Bucket, len(bs))
	for i, b := range bs {
		out[i] = collab.Bucket{Start: b.Start, FirstRev: b.FirstRev, LastRev: b.LastRev, Count: b.Count,
			Inserted: b.Inserted, Deleted: b.Deleted, Clients: b.Clients}
	}
	return out, nil
}

func (s jsStore) Delete(ctx context.Context, id string) error { return mapJSErr(s.st.Delete(ctx, id)) }
