package jetstream

import (
	"context"
	"errors"
	"fmt"
	"slices"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// DocIDs returns the edit ids of every document, sorted. It lists the
// documents bucket's keys, through a consumer: for tools (a backup), not
// for serving requests.
func (s *Store) DocIDs(ctx context.Context) ([]string, error) {
	ids, err := s.docs.Keys(ctx)
	if errors.Is(err, natsjs.ErrNoKeysFound) {
		return []string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list documents: %w", err)
	}
	// The bucket also keeps the cluster's shared keys ("key.<name>").
	ids = slices.DeleteFunc(ids, func(k string) bool { return checkID(k) != nil })
	slices.Sort(ids)
	return ids, nil
}
