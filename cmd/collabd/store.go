package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/storage"
)

// store adapts *storage.DB to the collab.Store interface. collab declares
// the interface it needs and never imports storage; this is the one place
// that sees both.
type store struct{ db *storage.DB }

var (
	_ collab.Store       = store{}
	_ collab.RecordSizer = store{}
)

// mapErr lets collab recognise storage's not-found errors as its own.
func mapErr(err error) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("%w: %w", collab.ErrNotFound, err)
	case errors.Is(err, storage.ErrNoRevision):
		return fmt.Errorf("%w: %w", collab.ErrNoRevision, err)
	}
	return err
}

func toStorage(r collab.Record) storage.Record {
	return storage.Record{Rev: r.Rev, Op: r.Op, Client: r.Client, Seq: r.Seq, Time: r.Time}
}

func fromStorage(r storage.Record) collab.Record {
	return collab.Record{Rev: r.Rev, Op: r.Op, Client: r.Client, Seq: r.Seq, Time: r.Time}
}

func (s store) Create(ctx context.Context, m collab.DocMeta, first *collab.Record) error {
	var f *storage.Record
	if first != nil {
		r := toStorage(*first)
		f = &r
	}
	return mapErr(s.db.Create(ctx, storage.Meta{ID: m.ID, ViewID: m.ViewID, Created: m.Created}, f))
}

func (s store) ViewDoc(ctx context.Context, viewID string) (string, error) {
	id, err := s.db.ViewDoc(ctx, viewID)
	return id, mapErr(err)
}

func (s store) Load(ctx context.Context, id string) (*collab.StoredDoc, error) {
	d, err := s.db.Load(ctx, id)
	if err != nil {
		return nil, mapErr(err)
	}
	return &collab.StoredDoc{
		Meta:     collab.DocMeta{ID: d.Meta.ID, ViewID: d.Meta.ViewID, Created: d.Meta.Created},
		Rev:      d.Rev,
		Text:     d.Text,
		LogBytes: d.Meta.LogBytes,
	}, nil
}

func (s store) Append(ctx context.Context, id string, recs []collab.Record) error {
	out := make([]storage.Record, len(recs))
	for i, r := range recs {
		out[i] = toStorage(r)
	}
	return mapErr(s.db.Append(ctx, id, out))
}

// RecordBytes is what r adds to its document's LogBytes in the file, so
// that -max-doc-history counts bytes on disk.
func (s store) RecordBytes(r collab.Record) int64 { return storage.RecordBytes(toStorage(r)) }

func (s store) Ops(ctx context.Context, id string, after int64, limit, maxBytes int) ([]collab.Record, error) {
	recs, err := s.db.Ops(ctx, id, after, limit, maxBytes)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]collab.Record, len(recs))
	for i, r := range recs {
		out[i] = fromStorage(r)
	}
	return out, nil
}

func (s store) ClientSeq(ctx context.Context, id, client string) (int64, int64, error) {
	seq, rev, err := s.db.ClientSeq(ctx, id, client)
	return seq, rev, mapErr(err)
}

func (s store) SaveSnapshot(ctx context.Context, id string, rev int64, text string) error {
	return mapErr(s.db.SaveSnapshot(ctx, id, storage.Snapshot{Rev: rev, Text: text}))
}

func (s store) Ping(ctx context.Context) error { return s.db.Ping(ctx) }

func (s store) Usage(ctx context.Context) (collab.Usage, error) {
	u, err := s.db.Usage()
	return collab.Usage{DataBytes: u.FileBytes, FreeBytes: u.FreeBytes}, err
}

func (s store) LoadAt(ctx context.Context, id string, rev int64) (*collab.StoredDoc, error) {
	d, err := s.db.DocAt(ctx, id, rev)
	if err != nil {
		return nil, mapErr(err)
	}
	return &collab.StoredDoc{
		Meta: collab.DocMeta{ID: d.Meta.ID, ViewID: d.Meta.ViewID, Created: d.Meta.Created},
		Rev:  d.Rev,
		Text: d.Text,
	}, nil
}

func (s store) RevAt(ctx context.Context, id string, t time.Time) (int64, error) {
	rev, err := s.db.RevAt(ctx, id, t)
	return rev, mapErr(err)
}

func (s store) Revisions(ctx context.Context, id string, after int64, limit int) ([]collab.Revision, error) {
	revs, err := s.db.Revisions(ctx, id, after, limit)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]collab.Revision, len(revs))
	for i, r := range revs {
		out[i] = collab.Revision{Rev: r.Rev, Time: r.Time, Client: r.Client, Inserted: r.Inserted, Deleted: r.Deleted}
	}
	return out, nil
}

func (s store) Activity(ctx context.Context, id string, after int64, unit time.Duration, limit int) ([]collab.Bucket, error) {
	bs, err := s.db.Activity(ctx, id, after, unit, limit)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]collab.Bucket, len(bs))
	for i, b := range bs {
		out[i] = collab.Bucket{Start: b.Start, FirstRev: b.FirstRev, LastRev: b.LastRev, Count: b.Count,
			Inserted: b.Inserted, Deleted: b.Deleted, Clients: b.Clients}
	}
	return out, nil
}

func (s store) Delete(ctx context.Context, id string) error { return mapErr(s.db.Delete(ctx, id)) }

func (s store) SaveAuthors(ctx context.Context, id string, cps []collab.AuthorsCheckpoint) error {
	out := make([]storage.Checkpoint, len(cps))
	for i, cp := range cps {
		out[i] = storage.Checkpoint{Rev: cp.Rev, Data: cp.Data}
	}
	return mapErr(s.db.SaveAuthors(ctx, id, out))
}

func (s store) AuthorsBefore(ctx context.Context, id string, rev int64) (collab.AuthorsCheckpoint, error) {
	cp, err := s.db.AuthorsBefore(ctx, id, rev)
	return collab.AuthorsCheckpoint{Rev: cp.Rev, Data: cp.Data}, mapErr(err)
}

var _ collab.AuthorStore = store{}
