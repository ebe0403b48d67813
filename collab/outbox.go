package collab

// The outbox's bounds. A receiver that is down for long, with -webhook-text
// on, let the outbox grow by the text of every changed document each
// debounce (855 MB in 46 s in the audit). The outbox now holds at most
// MaxOutboxBytes of event bodies and MaxOutboxEvents events:
//
//   - Past MaxOutboxBytes, changed events are queued without their text
//     (and say so: "textOmitted": true); the receiver reads the text with
//     GET /api/docs/{id}/text if it wants it. Events stay small, and none
//     is lost for text.
//   - When even that does not fit, the oldest events are dropped to make
//     room, so that the receiver, once back, hears the latest state of
//     every document rather than the oldest. Each changed event names the
//     revisions it covers (fromRev..rev), so a receiver sees the gap.
//
// Both are logged and counted (collabd_webhook_text_omitted_total,
// collabd_webhook_evicted_total).
//
// Removal is always from the head of the queue, by delivery or by
// eviction, so what has left the outbox is every seq up to the highest
// removed (head), and accounting for a removal twice is avoided by
// skipping seqs at or below head.

import (
	"context"
	"sync"
	"time"
)

// outboxUse is what the outbox holds, as far as this server has added
// and removed it.
type outboxUse struct {
	mu     sync.Mutex
	events int
	bytes  int64
	head   uint64 // every event up to this seq has left the outbox
	// Omitted texts and evictions are logged at most once per logEvery
	// each, with the number since the last line: a full outbox does
	// either about once per changed event.
	omitLogged, evictLogged time.Time
	omitUnlogged, unlogged  int
}

const logEvery = time.Minute

// evictBatch is how many events one read of the outbox's head takes.
const evictBatch = 16

// initUse reads what the outbox holds at start-up, and evicts what a
// server with other bounds (or none) left past them.
func (w *webhooks) initUse() {
	ctx, cancel := context.WithTimeout(context.Background(), outboxTimeout)
	defer cancel()
	n, b, err := w.opts.Outbox.Size(ctx)
	if err != nil {
		w.log.Error("webhook outbox size unknown; counting from empty", "err", err)
		return
	}
	u := &w.use
	u.mu.Lock()
	defer u.mu.Unlock()
	u.events, u.bytes = n, b
	w.evictLocked(ctx, u.events-w.opts.MaxOutboxEvents, u.bytes-w.opts.MaxOutboxBytes)
	w.metrics.webhookOutbox(u.events, u.bytes)
}

// prepare encodes events for the outbox within its bounds: text left out
// of those that would take it past MaxOutboxBytes, then the oldest
// events in the outbox, and if need be of evs, dropped to make room. It
// reserves the room for what it returns; add gives back what it could
// not add.
func (w *webhooks) prepare(ctx context.Context, evs []webhookEvent) []OutboxEvent {
	// Encoded outside the lock: a body may hold a large text.
	bodies := make([][]byte, len(evs))
	for i, ev := range evs {
		bodies[i] = mustJSON(ev)
	}
	u := &w.use
	u.mu.Lock()
	defer u.mu.Unlock()
	now := time.Now()
	out := make([]OutboxEvent, 0, len(evs))
	var size int64
	omitted := 0
	for i, ev := range evs {
		body := bodies[i]
		if ev.Text != nil && u.bytes+size+int64(len(body)) > w.opts.MaxOutboxBytes {
			ev.Text, ev.TextOmitted = nil, true
			body = mustJSON(ev)
			omitted++
		}
		out = append(out, OutboxEvent{Queued: now, Body: body})
		size += int64(len(body))
	}
	if omitted > 0 {
		w.metrics.webhookTextOmitted(omitted)
		u.omitUnlogged += omitted
		if now.Sub(u.omitLogged) >= logEvery {
			w.log.Warn("webhook outbox past its byte bound: changed events queued without their text",
				"events", u.omitUnlogged, "outbox_bytes", u.bytes, "max_bytes", w.opts.MaxOutboxBytes)
			u.omitLogged, u.omitUnlogged = now, 0
		}
	}

	overEvents := u.events + len(out) - w.opts.MaxOutboxEvents
	overBytes := u.bytes + size - w.opts.MaxOutboxBytes
	if overEvents > 0 || overBytes > 0 {
		w.evictLocked(ctx, overEvents, overBytes)
	}
	// What the outbox could not make room for: the batch's own oldest.
	dropped := 0
	for len(out) > 0 && (u.events+len(out) > w.opts.MaxOutboxEvents || u.bytes+size > w.opts.MaxOutboxBytes) {
		size -= int64(len(out[0].Body))
		out = out[1:]
		dropped++
	}
	w.evicted(dropped)
	u.events += len(out)
	u.bytes += size
	w.metrics.webhookOutbox(u.events, u.bytes)
	return out
}

// unreserve gives back the room of events that were not added.
func (w *webhooks) unreserve(out []OutboxEvent) {
	u := &w.use
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, ev := range out {
		u.events--
		u.bytes -= int64(len(ev.Body))
	}
	w.metrics.webhookOutbox(u.events, u.bytes)
}

// evictLocked removes the oldest events from the outbox until at least
// events of them and bytes of their bodies are gone (or the outbox is
// empty, or it fails). The caller holds w.use.mu.
func (w *webhooks) evictLocked(ctx context.Context, events int, bytes int64) {
	evicted := 0
	for events > 0 || bytes > 0 {
		evs, err := w.opts.Outbox.Pending(ctx, evictBatch)
		if err != nil {
			w.log.Error("read webhook outbox to evict", "err", err)
			break
		}
		k := 0
		for k < len(evs) && (events > 0 || bytes > 0) {
			events--
			bytes -= int64(len(evs[k].Body))
			k++
		}
		if k == 0 {
			break
		}
		if err := w.removeLocked(ctx, evs[:k]); err != nil {
			w.log.Error("evict webhook events", "err", err)
			break
		}
		evicted += k
	}
	w.evicted(evicted)
}

// evicted logs and counts n events dropped from the outbox. The caller
// holds w.use.mu.
func (w *webhooks) evicted(n int) {
	if n == 0 {
		return
	}
	w.metrics.webhookEvicted(n)
	u := &w.use
	u.unlogged += n
	if now := time.Now(); now.Sub(u.evictLogged) >= logEvery {
		w.log.Error("webhook outbox full: events dropped, oldest first", "dropped", u.unlogged,
			"max_events", w.opts.MaxOutboxEvents, "max_bytes", w.opts.MaxOutboxBytes)
		u.evictLogged, u.unlogged = now, 0
	}
}

// remove deletes events the receiver took (or that were given up on),
// a prefix of the outbox, and accounts for them.
func (w *webhooks) remove(ctx context.Context, evs []OutboxEvent) error {
	u := &w.use
	u.mu.Lock()
	defer u.mu.Unlock()
	return w.removeLocked(ctx, evs)
}

func (w *webhooks) removeLocked(ctx context.Context, evs []OutboxEvent) error {
	if len(evs) == 0 {
		return nil
	}
	seqs := make([]uint64, len(evs))
	for i, ev := range evs {
		seqs[i] = ev.Seq
	}
	if err := w.opts.Outbox.Remove(ctx, seqs); err != nil {
		return err
	}
	u := &w.use
	for _, ev := range evs {
		if ev.Seq > u.head {
			u.events--
			u.bytes -= int64(len(ev.Body))
		}
	}
	u.head = max(u.head, evs[len(evs)-1].Seq)
	w.metrics.webhookOutbox(u.events, u.bytes)
	return nil
}
