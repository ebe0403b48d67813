package collab

// Webhooks (docs/embedding.md): the server POSTs document events to the
// embedding application, signed with HMAC-SHA256. Events go through a
// durable outbox, so that a receiver that is down misses nothing: they are
// retried with backoff, in order, until it accepts them.
//
// None of this is on the editing path. A hub that commits ops only records
// them in a map under a mutex (changed), which never blocks on I/O; a
// debouncer goroutine turns each document's changes into at most one
// event per Debounce and writes it to the outbox; a delivery goroutine
// posts the outbox's events one at a time.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Outbox is the durable queue webhook events wait in. collab declares it;
// cmd/collabd adapts package storage to it. Implementations must be safe
// for concurrent use.
type Outbox interface {
	// Add durably appends events after every event already queued; it
	// returns once they would survive a crash.
	Add(ctx context.Context, events []OutboxEvent) error
	// Pending returns up to limit queued events, oldest first.
	Pending(ctx context.Context, limit int) ([]OutboxEvent, error)
	// Remove deletes delivered events. Unknown seqs are ignored.
	Remove(ctx context.Context, seqs []uint64) error
	// Size returns how many events are queued and the bytes of their
	// bodies. It is called once, at start-up (outbox.go).
	Size(ctx context.Context) (events int, bytes int64, err error)
}

// OutboxEvent is one queued webhook event.
type OutboxEvent struct {
	// Seq orders the queue; Add assigns it and ignores the caller's.
	Seq uint64
	// Queued is when the event entered the outbox.
	Queued time.Time
	// Body is the JSON posted to the receiver.
	Body []byte
}

// SignatureHeader carries a webhook's signature: "t=<unix seconds>,
// v1=<hex HMAC-SHA256 of "<t>.<body>">", as Stripe signs its webhooks.
const SignatureHeader = "Collabd-Signature"

// Webhook event types.
const (
	EventCreated = "document.created"
	EventChanged = "document.changed"
	EventDeleted = "document.deleted"
)

// WebhookOptions configures webhooks. URL, Secret and Outbox are required;
// the zero value of every other field means its documented default.
type WebhookOptions struct {
	URL    string
	Secret []byte
	Outbox Outbox
	// Debounce is the least time between two changed events of one
	// document (default 2 s). The first change waits that long, so that
	// one event covers a burst of typing.
	Debounce time.Duration
	// Text adds the document's text to changed events.
	Text bool
	// Client posts the events (default: 10 s timeout, redirects not
	// followed: a receiver answers 2xx or the event is retried).
	Client *http.Client
	// MinBackoff and MaxBackoff bound the wait before retrying a failed
	// delivery (defaults 1 s and 30 s); it doubles after each failure.
	MinBackoff, MaxBackoff time.Duration
	// MaxAge is how long an event is retried before it is given up on
	// and logged (default 72 h).
	MaxAge time.Duration
	// MaxOutboxBytes bounds the bytes of the event bodies queued in the
	// outbox (default 64 MiB), and MaxOutboxEvents their number (default
	// 100,000). Past the bytes, changed events are queued without their
	// text ("textOmitted": true); when an event does not fit even so, the
	// oldest queued events are dropped to make room (outbox.go).
	MaxOutboxBytes  int64
	MaxOutboxEvents int
}

// webhooks is the debouncer and delivery side of WebhookOptions. Every
// method is a no-op on a nil *webhooks, the state with webhooks off.
type webhooks struct {
	srv     *Server
	opts    WebhookOptions
	log     *slog.Logger
	metrics *Metrics

	wake chan struct{} // capacity 1: a change is waiting for the debouncer
	kick chan struct{} // capacity 1: the outbox has new events

	// use is what the outbox holds, within its bounds (outbox.go).
	use outboxUse

	// mu guards pending: per document, the changes no event has covered.
	mu      sync.Mutex
	pending map[string]change

	// debounceCtx stops the debouncer; deliverCtx the delivery loop.
	debounceCtx, deliverCtx   context.Context
	stopDebounce, stopDeliver context.CancelFunc
	debounceDone, deliverDone chan struct{}
	closeOnce                 sync.Once
}

// change is a range of committed revisions not yet in an event.
type change struct {
	viewID   string
	from, to int64
	length   int // code points at revision to
	due      time.Time
}

// startWebhooks starts the webhook goroutines for o, or returns nil when
// o is nil. Server.Close stops them through close.
func startWebhooks(s *Server, o *WebhookOptions) *webhooks {
	if o == nil {
		return nil
	}
	w := &webhooks{
		srv: s, opts: *o, log: s.log.With("component", "webhook"), metrics: s.opts.Metrics,
		wake: make(chan struct{}, 1), kick: make(chan struct{}, 1),
		pending:      make(map[string]change),
		debounceDone: make(chan struct{}), deliverDone: make(chan struct{}),
	}
	setDefault(&w.opts.Debounce, 2*time.Second)
	setDefault(&w.opts.MinBackoff, time.Second)
	setDefault(&w.opts.MaxBackoff, 30*time.Second)
	setDefault(&w.opts.MaxAge, 72*time.Hour)
	setDefault(&w.opts.MaxOutboxBytes, 64<<20)
	setDefault(&w.opts.MaxOutboxEvents, 100_000)
	if w.opts.Client == nil {
		w.opts.Client = &http.Client{
			Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	w.initUse()
	w.debounceCtx, w.stopDebounce = context.WithCancel(context.Background())
	w.deliverCtx, w.stopDeliver = context.WithCancel(context.Background())
	go w.debounceLoop()
	go w.deliverLoop()
	return w
}

// close flushes the changes not yet in an event into the outbox, then
// stops delivery; what is left in the outbox is delivered after the next
// start. Server.Close calls it once the hubs have stopped, so no change
// comes after the flush.
func (w *webhooks) close() {
	if w == nil {
		return
	}
	w.closeOnce.Do(func() {
		w.stopDebounce()
		<-w.debounceDone
		w.emit(time.Time{}) // everything, due or not
		w.stopDeliver()
		<-w.deliverDone
	})
}

// changed records that a document committed revisions from..to and now
// has length code points. The hub calls it after every commit: it never
// blocks, and it allocates only for a document's first change in a
// debounce window.
func (w *webhooks) changed(id, viewID string, from, to int64, length int) {
	if w == nil {
		return
	}
	w.mu.Lock()
	c, ok := w.pending[id]
	if !ok {
		c = change{viewID: viewID, from: from, due: time.Now().Add(w.opts.Debounce)}
	}
	c.to, c.length = to, length
	w.pending[id] = c
	w.mu.Unlock()
	if !ok {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// webhookEvent is the JSON body of every event.
type webhookEvent struct {
	// ID is unique per event: deliveries are at least once, and a
	// receiver drops an ID it has seen.
	ID     string    `json:"id"`
	Type   string    `json:"type"`
	Time   time.Time `json:"time"`
	Doc    string    `json:"doc"`
	ViewID string    `json:"viewId,omitempty"`
	// Rev is the revision the event leaves the document at. FromRev is
	// the first op a changed event covers: it covers ops FromRev..Rev.
	Rev     int64   `json:"rev"`
	FromRev int64   `json:"fromRev,omitempty"`
	Length  *int    `json:"length,omitempty"`
	Text    *string `json:"text,omitempty"`
	// TextOmitted marks a changed event queued without its text, the
	// outbox being past its byte bound (outbox.go).
	TextOmitted bool `json:"textOmitted,omitempty"`
	// Comment is the thread of a comment event (commentapi.go).
	Comment *webhookComment `json:"comment,omitempty"`
}

func newEvent(typ, id, viewID string) webhookEvent {
	return webhookEvent{ID: uuid.NewString(), Type: typ, Time: time.Now().UTC(), Doc: id, ViewID: viewID}
}

// outboxTimeout bounds one outbox write or read.
const outboxTimeout = 30 * time.Second

// add writes events to the outbox, within its bounds (outbox.go), and
// wakes the delivery loop.
func (w *webhooks) add(ctx context.Context, evs ...webhookEvent) error {
	ctx, cancel := context.WithTimeout(ctx, outboxTimeout)
	defer cancel()
	out := w.prepare(ctx, evs)
	if len(out) == 0 {
		return nil
	}
	if err := w.opts.Outbox.Add(ctx, out); err != nil {
		w.unreserve(out)
		return fmt.Errorf("webhook outbox: %w", err)
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
	return nil
}

// created queues a created event; handleCreate calls it before answering,
// so the event is durable by the time anyone knows the document.
func (w *webhooks) created(ctx context.Context, meta DocMeta, rev int64, length int) {
	if w == nil {
		return
	}
	ev := newEvent(EventCreated, meta.ID, meta.ViewID)
	ev.Rev, ev.Length = rev, &length
	if err := w.add(context.WithoutCancel(ctx), ev); err != nil {
		w.log.Error("created event lost", "doc", meta.ID, "err", err)
	}
}

// docDeleted queues a deleted event for a document, after a changed event
// for whatever changes of it no event covers yet. Whoever deletes a
// document calls it once the deletion is durable.
func (s *Server) docDeleted(ctx context.Context, id, viewID string) {
	if err := s.access.deleted(context.WithoutCancel(ctx), id); err != nil {
		s.log.Warn("deleted document keeps its access record", "err", err)
	}
	s.workspace.deleted(context.WithoutCancel(ctx), id)
	w := s.webhooks
	if w == nil {
		return
	}
	var evs []webhookEvent
	w.mu.Lock()
	c, ok := w.pending[id]
	delete(w.pending, id)
	w.mu.Unlock()
	if ok {
		evs = append(evs, changedEvent(id, c, time.Now()))
	}
	evs = append(evs, newEvent(EventDeleted, id, viewID))
	if err := w.add(context.WithoutCancel(ctx), evs...); err != nil {
		w.log.Error("deleted event lost", "doc", id, "err", err)
	}
}

// changedEvent is the event for change c, made at now.
func changedEvent(id string, c change, now time.Time) webhookEvent {
	ev := newEvent(EventChanged, id, c.viewID)
	ev.Time = now.UTC()
	length := c.length
	ev.FromRev, ev.Rev, ev.Length = c.from, c.to, &length
	return ev
}

// debounceLoop turns pending changes into events once they are due.
func (w *webhooks) debounceLoop() {
	defer close(w.debounceDone)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := w.emit(time.Now())
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-w.wake:
		case <-timer.C:
		case <-w.debounceCtx.Done():
			return
		}
	}
}

// emit writes a changed event for every pending change due by now (all of
// them if now is zero) and returns when the next one falls due (zero if
// none is pending).
func (w *webhooks) emit(now time.Time) time.Time {
	type item struct {
		id string
		c  change
	}
	var due []item
	var next time.Time
	w.mu.Lock()
	for id, c := range w.pending {
		if now.IsZero() || !c.due.After(now) {
			due = append(due, item{id, c})
			delete(w.pending, id)
		} else if next.IsZero() || c.due.Before(next) {
			next = c.due
		}
	}
	w.mu.Unlock()

	// An event's time is the now it was found due at: one document's
	// changed events are then at least Debounce apart by their times too.
	at := now
	if at.IsZero() {
		at = time.Now()
	}
	evs := make([]webhookEvent, 0, len(due))
	for _, d := range due {
		ev := changedEvent(d.id, d.c, at)
		if w.opts.Text {
			w.addText(&ev)
		}
		evs = append(evs, ev)
	}
	if len(evs) > 0 {
		if err := w.add(context.Background(), evs...); err != nil {
			w.log.Error("changed events lost", "docs", len(evs), "err", err)
		}
	}
	return next
}

// addText puts the document's current text in a changed event. The text
// may be at a later revision than the event's changes reached; the event
// then covers up to that revision, and the next event starts after it.
func (w *webhooks) addText(ev *webhookEvent) {
	ctx, cancel := context.WithTimeout(context.Background(), outboxTimeout)
	defer cancel()
	t, err := w.srv.docText(ctx, ev.Doc, false)
	if errors.Is(err, errShuttingDown) {
		// The hubs have stopped (the flush in close): their last
		// snapshots are in the store.
		var d *StoredDoc
		if d, err = w.srv.store.Load(ctx, ev.Doc); err == nil {
			t = textReply{docSnapshot: &docSnapshot{rev: d.Rev, text: d.Text}}
		}
	}
	if err != nil {
		w.log.Warn("changed event without text", "doc", ev.Doc, "err", err)
		return
	}
	n := utf8.RuneCountInString(t.text)
	ev.Text, ev.Length = &t.text, &n
	if t.rev <= ev.Rev {
		return
	}
	ev.Rev = t.rev
	w.mu.Lock()
	defer w.mu.Unlock()
	// Every change up to t.rev was recorded before the hub answered with
	// its text (both happen on the hub's goroutine), so only pending ones
	// can overlap.
	if c, ok := w.pending[ev.Doc]; ok {
		if c.to <= t.rev {
			delete(w.pending, ev.Doc)
		} else if c.from <= t.rev {
			c.from = t.rev + 1
			w.pending[ev.Doc] = c
		}
	}
}

// deliverBatch is how many events the delivery loop reads at once.
const deliverBatch = 64

// outboxPoll is how often an empty outbox is read again without a kick.
const outboxPoll = time.Second

// deliverLoop posts the outbox's events, oldest first, one at a time: a
// receiver sees each document's events in order. A failure is retried,
// with backoff, before anything after it.
func (w *webhooks) deliverLoop() {
	defer close(w.deliverDone)
	ctx := w.deliverCtx
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, outboxTimeout)
		evs, err := w.opts.Outbox.Pending(rctx, deliverBatch)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				w.log.Error("read webhook outbox", "err", err)
			}
			backoff = w.sleep(ctx, backoff)
			continue
		}
		if len(evs) == 0 {
			// Also after outboxPoll: a cluster's outbox takes other
			// nodes' events, and this node may take over their delivery.
			select {
			case <-w.kick:
			case <-time.After(outboxPoll):
			case <-ctx.Done():
			}
			continue
		}
		// done counts the events, from the first, that leave the
		// outbox: removal is always of a prefix (outbox.go).
		done := 0
		failed := false
		for _, ev := range evs {
			if time.Since(ev.Queued) > w.opts.MaxAge {
				w.log.Error("webhook event given up on", "queued", ev.Queued, "body", truncate(string(ev.Body), 200))
				w.metrics.webhookGaveUp()
				done++
				continue
			}
			if err := w.post(ctx, ev.Body); err != nil {
				if ctx.Err() == nil {
					w.log.Warn("webhook delivery failed; will retry", "err", err, "retry_in", w.nextBackoff(backoff))
					w.metrics.webhookFailure()
				}
				failed = true
				break
			}
			w.metrics.webhookOK(ev.Queued)
			done++
		}
		if done > 0 {
			// Not ctx: what was delivered is removed even while stopping,
			// or it would be delivered again after the restart.
			rctx, cancel := context.WithTimeout(context.Background(), outboxTimeout)
			if err := w.remove(rctx, evs[:done]); err != nil {
				w.log.Error("remove delivered webhook events; they will be delivered again", "err", err)
			}
			cancel()
		}
		if failed {
			backoff = w.sleep(ctx, backoff)
		} else {
			backoff = 0
		}
	}
}

func (w *webhooks) nextBackoff(b time.Duration) time.Duration {
	if b == 0 {
		return w.opts.MinBackoff
	}
	return min(2*b, w.opts.MaxBackoff)
}

// sleep waits out the backoff after b, or until ctx ends, and returns it.
func (w *webhooks) sleep(ctx context.Context, b time.Duration) time.Duration {
	b = w.nextBackoff(b)
	t := time.NewTimer(b)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return b
}

// post delivers one event, signed at the time of this attempt.
func (w *webhooks) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.opts.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "collabd-webhook")
	req.Header.Set(SignatureHeader, SignWebhook(w.opts.Secret, time.Now(), body))
	resp, err := w.opts.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

// SignWebhook returns the SignatureHeader value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
func SignWebhook(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// ErrBadSignature is returned by VerifyWebhook for a body whose signature
// header is missing, malformed, wrong, or too old.
var ErrBadSignature = errors.New("bad webhook signature")

// VerifyWebhook checks a SignatureHeader value against body, as a Go
// receiver would: the signature must match and its time lie within
// tolerance of now, so that a captured request cannot be replayed later.
func VerifyWebhook(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: header %q", ErrBadSignature, truncate(header, 100))
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed %v ago, beyond the tolerance of %v", ErrBadSignature, d.Round(time.Second), tolerance)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches", ErrBadSignature)
}
