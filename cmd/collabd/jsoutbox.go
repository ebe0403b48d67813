package main

import (
	"context"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/storage/jetstream"
)

// jsOutbox adapts the cluster's webhook outbox (jetstream.Outbox) to
// collab.Outbox: in cluster mode every node queues its events there, and
// whichever node holds the delivery lease posts them, so they outlive the
// node that queued them (docs/scaling.md).
type jsOutbox struct{ o *jetstream.Outbox }

var _ collab.Outbox = jsOutbox{}

func (j jsOutbox) Add(ctx context.Context, events []collab.OutboxEvent) error {
	bodies := make([][]byte, len(events))
	for i, ev := range events {
		bodies[i] = ev.Body
	}
	return j.o.Add(ctx, bodies)
}

func (j jsOutbox) Pending(ctx context.Context, limit int) ([]collab.OutboxEvent, error) {
	evs, err := j.o.Pending(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]collab.OutboxEvent, len(evs))
	for i, ev := range evs {
		out[i] = collab.OutboxEvent{Seq: ev.Seq, Queued: ev.Queued, Body: ev.Body}
	}
	return out, nil
}

// Remove drops the events up to the highest of seqs: collab removes the
// oldest events, a prefix of the queue.
func (j jsOutbox) Remove(ctx context.Context, seqs []uint64) error {
	var last uint64
	for _, s := range seqs {
		last = max(last, s)
	}
	if last == 0 {
		return nil
	}
	return j.o.Remove(ctx, last)
}

func (j jsOutbox) Size(ctx context.Context) (int, int64, error) {
	return j.o.Size(ctx)
}
