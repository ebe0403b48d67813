package storage

import (
	"context"
	"slices"

	"go.etcd.io/bbolt"
)

// DocIDs returns the edit ids of every document in the file, sorted. It
// reads the view index, one small key per document, not the op logs; the
// ids of a million documents take about 40 MB. For tools that walk the
// whole file (collabd migrate), not for serving.
func (db *DB) DocIDs(ctx context.Context) ([]string, error) {
	ids := []string{}
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketViews).ForEach(func(_, v []byte) error {
			ids = append(ids, string(v))
			return ctx.Err()
		})
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	return ids, nil
}
