package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/storage"
	"github.com/collabd/collabd/storage/jetstream"
)

// A document has, beside its log, records that `collabd backup -nats` and
// `collabd migrate` copy with it: its comment threads, its access record
// (sign-in) and its workspace record (title, tags, trash time). Sessions
// are not copied: they are sign-ins to one deployment.

// extrasKVBuckets are the per-document records kept by document id.
var extrasKVBuckets = []string{storage.KVAccess, storage.KVDocInfo}

// extrasSide is where a document's extra records are read or written:
// the data file or the cluster. kv may lack a bucket (a cluster that never
// ran with sign-in or the workspace): nothing to copy from it.
type extrasSide struct {
	comments collab.CommentStore
	kv       map[string]kvBackend // by bucket name
}

// copyExtras copies document id's extra records that dst lacks from src
// to dst, and returns how many it copied. A record dst has already is kept:
// a rerun of migrate must not bring back access the cluster has taken away
// since.
func copyExtras(ctx context.Context, src, dst extrasSide, id string) (int, error) {
	n := 0
	recs, err := src.comments.Comments(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("comments: %w", err)
	}
	if len(recs) > 0 {
		have, err := dst.comments.Comments(ctx, id)
		if err != nil {
			return 0, fmt.Errorf("comments: %w", err)
		}
		for k := range have {
			delete(recs, k)
		}
		if err := dst.comments.PutComments(ctx, id, recs, nil); err != nil {
			return 0, fmt.Errorf("comments: %w", err)
		}
		n += len(recs)
	}
	for _, bucket := range extrasKVBuckets {
		from, to := src.kv[bucket], dst.kv[bucket]
		if from == nil {
			continue
		}
		v, err := from.get(ctx, bucket, id)
		if errors.Is(err, collab.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("%s record: %w", bucket, err)
		}
		if to == nil {
			return 0, fmt.Errorf("%s record: nowhere to write it", bucket)
		}
		if _, err := to.get(ctx, bucket, id); err == nil {
			continue
		} else if !errors.Is(err, collab.ErrNotFound) {
			return 0, fmt.Errorf("%s record: %w", bucket, err)
		}
		if err := to.put(ctx, bucket, id, v); err != nil {
			return 0, fmt.Errorf("%s record: %w", bucket, err)
		}
		n++
	}
	return n, nil
}

// boltExtras is the data file's side.
func boltExtras(db *storage.DB) extrasSide {
	kv := make(map[string]kvBackend)
	for _, b := range extrasKVBuckets {
		kv[b] = boltKV{db}
	}
	return extrasSide{comments: db, kv: kv}
}

// clusterExtras is the cluster's side. With open nil the buckets are
// looked up, never created (a backup reads); otherwise open creates or
// updates them as a node does (migrate writes).
func clusterExtras(ctx context.Context, js *jetstream.Store, open func(ctx context.Context, name string) (*jetstream.KV, error)) (extrasSide, error) {
	if open == nil {
		open = js.LookupKV
	}
	kv := make(map[string]kvBackend)
	for _, b := range extrasKVBuckets {
		k, err := open(ctx, b)
		if errors.Is(err, jetstream.ErrNotFound) {
			continue
		}
		if err != nil {
			return extrasSide{}, err
		}
		switch b {
		case storage.KVAccess:
			kv[b] = jsKV{access: k}
		case storage.KVDocInfo:
			kv[b] = jsKV{docinfo: k}
		}
	}
	return extrasSide{comments: js, kv: kv}, nil
}
