package collab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
)

// memOutbox is an Outbox in memory.
type memOutbox struct {
	mu   sync.Mutex
	seq  uint64
	evs  []OutboxEvent
	adds int
}

func (o *memOutbox) Add(ctx context.Context, evs []OutboxEvent) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, ev := range evs {
		o.seq++
		ev.Seq = o.seq
		o.evs = append(o.evs, ev)
	}
	o.adds++
	return nil
}

func (o *memOutbox) Pending(ctx context.Context, limit int) ([]OutboxEvent, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]OutboxEvent(nil), o.evs[:min(limit, len(o.evs))]...), nil
}

func (o *memOutbox) Remove(ctx context.Context, seqs []uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	gone := map[uint64]bool{}
	for _, s := range seqs {
		gone[s] = true
	}
	kept := o.evs[:0]
	for _, ev := range o.evs {
		if !gone[ev.Seq] {
			kept = append(kept, ev)
		}
	}
	o.evs = kept
	return nil
}

func (o *memOutbox) Size(ctx context.Context) (int, int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var b int64
	for _, ev := range o.evs {
		b += int64(len(ev.Body))
	}
	return len(o.evs), b, nil
}

func (o *memOutbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.evs)
}

// receiver is a webhook endpoint that verifies every signature. While
// down, it answers 503 to everything.
type receiver struct {
	*httptest.Server
	secret []byte
	down   atomic.Bool

	mu       sync.Mutex
	events   []webhookEvent
	refused  int
	badSigs  []string
	received chan struct{} // capacity 1: an event arrived
}

func newReceiver(t *testing.T, secret []byte) *receiver {
	rc := &receiver{secret: secret, received: make(chan struct{}, 1)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.down.Load() {
			rc.refused++
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if err := VerifyWebhook(rc.secret, r.Header.Get(SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
			rc.badSigs = append(rc.badSigs, err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var ev webhookEvent
		if err := json.Unmarshal(body, &ev); err != nil || r.Header.Get("Content-Type") != "application/json" {
			rc.badSigs = append(rc.badSigs, fmt.Sprintf("body %q: %v", body, err))
		}
		rc.events = append(rc.events, ev)
		select {
		case rc.received <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

// waitFor waits until cond holds over the events received.
func (rc *receiver) waitFor(t *testing.T, what string, cond func([]webhookEvent) bool) []webhookEvent {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		rc.mu.Lock()
		evs := append([]webhookEvent(nil), rc.events...)
		bad := append([]string(nil), rc.badSigs...)
		rc.mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("receiver refused deliveries: %v", bad)
		}
		if cond(evs) {
			return evs
		}
		select {
		case <-rc.received:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("waiting for %s: got %d events: %+v", what, len(evs), evs)
		}
	}
}

func webhookServer(t *testing.T, rc *receiver, out Outbox, o WebhookOptions) *testServer {
	o.URL, o.Secret, o.Outbox = rc.URL, rc.secret, out
	return newTestServer(t, Options{Webhook: &o})
}

// lastChanged returns the last changed event of doc and whether it covers
// revision rev.
func lastChanged(evs []webhookEvent, doc string) (webhookEvent, bool) {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == EventChanged && evs[i].Doc == doc {
			return evs[i], true
		}
	}
	return webhookEvent{}, false
}

func TestWebhookEvents(t *testing.T) {
	secret := []byte("webhook-secret")
	rc := newReceiver(t, secret)
	ts := webhookServer(t, rc, &memOutbox{}, WebhookOptions{Debounce: 50 * time.Millisecond, Text: true})
	ctx := guardCtx(t)

	id, viewID := ts.createDoc(t, "héllo")
	evs := rc.waitFor(t, "created", func(evs []webhookEvent) bool { return len(evs) >= 1 })
	if e := evs[0]; e.Type != EventCreated || e.Doc != id || e.ViewID != viewID || e.Rev != 1 || e.Length == nil || *e.Length != 5 {
		t.Fatalf("created: got %+v, want doc %s view %s rev 1 length 5", e, id, viewID)
	}

	c := ts.dial(t, id, ClientOptions{Name: "A"})
	for i := range 5 {
		if err := c.Edit(ot.Op{ot.Retain(c.Len()), ot.Insert(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := "héllo01234"
	evs = rc.waitFor(t, "changed up to rev 6", func(evs []webhookEvent) bool {
		e, ok := lastChanged(evs, id)
		return ok && e.Rev == 6
	})
	// The changed events cover revisions 2..6 without a gap or overlap.
	next := int64(2)
	for _, e := range evs[1:] {
		if e.Type != EventChanged || e.Doc != id || e.ViewID != viewID {
			t.Fatalf("got %+v, want a changed event of %s", e, id)
		}
		if e.FromRev != next || e.Rev < e.FromRev {
			t.Fatalf("changed event covers %d..%d, want it to start at %d", e.FromRev, e.Rev, next)
		}
		next = e.Rev + 1
	}
	if e, _ := lastChanged(evs, id); e.Text == nil || *e.Text != want || e.Length == nil || *e.Length != 10 {
		t.Errorf("last changed: got text %v length %v, want %q and 10", e.Text, e.Length, want)
	}

	// A deletion flushes a pending change first.
	if err := c.Edit(ot.Op{ot.Retain(c.Len()), ot.Insert("!")}); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if code, _, body := doHTTP(t, "DELETE", ts.URL+"/api/docs/"+id, "", nil); code != http.StatusNoContent {
		t.Fatalf("DELETE: got %d %s, want 204", code, body)
	}
	evs = rc.waitFor(t, "deleted", func(evs []webhookEvent) bool { return evs[len(evs)-1].Type == EventDeleted })
	if e := evs[len(evs)-1]; e.Doc != id || e.ViewID != viewID {
		t.Errorf("deleted: got %+v, want doc %s view %s", e, id, viewID)
	}
	if e, _ := lastChanged(evs, id); e.Rev != 7 {
		t.Errorf("before deleted: got last changed event at rev %d, want 7", e.Rev)
	}
	ids := map[string]bool{}
	for _, e := range evs {
		if ids[e.ID] {
			t.Errorf("event id %s delivered twice", e.ID)
		}
		ids[e.ID] = true
	}
}

// TestWebhookReceiverDown: events made while the receiver is down, and
// across a restart of the server, all arrive once it is back, in order.
func TestWebhookReceiverDown(t *testing.T) {
	secret := []byte("webhook-secret")
	rc := newReceiver(t, secret)
	rc.down.Store(true)
	out := &memOutbox{}
	opts := func() Options {
		return Options{Webhook: &WebhookOptions{URL: rc.URL, Secret: secret, Outbox: out,
			Debounce: 20 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}}
	}
	store := newMemStore()
	srv := New(store, opts())
	hs := httptest.NewServer(srv)
	ts := &testServer{Server: hs, srv: srv, store: store}
	ctx := guardCtx(t)

	var docs []string
	for i := range 3 {
		id, _ := ts.createDoc(t, fmt.Sprint("doc", i))
		docs = append(docs, id)
		c := ts.dial(t, id, ClientOptions{})
		if err := c.Edit(ot.Op{ot.Retain(c.Len()), ot.Insert("!")}); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	// Wait until deliveries have been refused a few times, then restart
	// the server with the receiver still down: nothing is lost.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		rc.mu.Lock()
		n := rc.refused
		rc.mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the receiver was tried %d times, want 3", n)
		}
	}
	hs.Close()
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := out.len(); n != 6 {
		t.Fatalf("outbox after shutdown: got %d events, want 6 (3 created, 3 changed)", n)
	}
	srv = New(store, opts())
	t.Cleanup(func() { srv.Close(context.Background()) })
	time.Sleep(100 * time.Millisecond) // a few more refusals
	rc.down.Store(false)

	evs := rc.waitFor(t, "every event", func(evs []webhookEvent) bool { return len(evs) >= 6 })
	if len(evs) != 6 {
		t.Fatalf("got %d events, want 6: %+v", len(evs), evs)
	}
	perDoc := map[string][]webhookEvent{}
	for _, e := range evs {
		perDoc[e.Doc] = append(perDoc[e.Doc], e)
	}
	for i, id := range docs {
		if len(perDoc[id]) != 2 {
			t.Errorf("doc %d: got %d events, want 2", i, len(perDoc[id]))
			continue
		}
		cr, ch := perDoc[id][0], perDoc[id][1]
		if cr.Type != EventCreated || cr.Doc != id || ch.Type != EventChanged || ch.Doc != id || ch.FromRev != 2 || ch.Rev != 2 {
			t.Errorf("doc %d: got %+v then %+v, want created then changed 2..2 of %s", i, cr, ch, id)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); out.len() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := out.len(); n != 0 {
		t.Errorf("outbox after delivery: got %d events, want none", n)
	}
}

// TestWebhookDebounce: under steady typing a document gets at most one
// changed event per Debounce, and the events cover every revision.
func TestWebhookDebounce(t *testing.T) {
	secret := []byte("webhook-secret")
	rc := newReceiver(t, secret)
	const debounce = 200 * time.Millisecond
	ts := webhookServer(t, rc, &memOutbox{}, WebhookOptions{Debounce: debounce})
	ctx := guardCtx(t)
	id, _ := ts.createDoc(t, "x")
	c := ts.dial(t, id, ClientOptions{})

	start := time.Now()
	ops := 0
	for time.Since(start) < 1200*time.Millisecond {
		if err := c.Edit(ot.Op{ot.Retain(c.Len()), ot.Insert("x")}); err != nil {
			t.Fatal(err)
		}
		ops++
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	final := c.Rev()
	typed := time.Since(start)
	evs := rc.waitFor(t, "changed up to the last rev", func(evs []webhookEvent) bool {
		e, ok := lastChanged(evs, id)
		return ok && e.Rev == final
	})
	var changed []webhookEvent
	for _, e := range evs {
		if e.Type == EventChanged {
			changed = append(changed, e)
		}
	}
	// The client composes edits made while an op is in flight, so final
	// can be below ops; the events must cover 2..final anyway (op 1 is
	// the text the document was created with).
	next := int64(2)
	for i, e := range changed {
		if e.FromRev != next {
			t.Fatalf("event %d covers %d..%d, want it to start at %d", i, e.FromRev, e.Rev, next)
		}
		next = e.Rev + 1
		if i > 0 {
			if gap := e.Time.Sub(changed[i-1].Time); gap < debounce {
				t.Errorf("events %d and %d are %v apart, want at least %v", i-1, i, gap, debounce)
			}
		}
	}
	// Typing for typed, one event per debounce at most (plus the one for
	// the changes after the typing's last window).
	if max := int(typed/debounce) + 1; len(changed) > max || len(changed) < 2 {
		t.Errorf("got %d changed events for %d ops over %v, want between 2 and %d", len(changed), ops, typed, max)
	}
	t.Logf("%d edits (up to rev %d) in %v: %d changed events", ops, final, typed, len(changed))
}

func TestVerifyWebhook(t *testing.T) {
	secret := []byte("s")
	body := []byte(`{"id":"1"}`)
	now := time.Unix(1700000000, 0)
	sig := SignWebhook(secret, now, body)
	for _, tc := range []struct {
		name   string
		secret []byte
		header string
		body   []byte
		at     time.Time
		ok     bool
	}{
		{"good", secret, sig, body, now, true},
		{"good, two signatures", secret, "t=1700000000,v1=00," + sig[len("t=1700000000,"):], body, now, true},
		{"other secret", []byte("t"), sig, body, now, false},
		{"other body", secret, sig, []byte(`{"id":"2"}`), now, false},
		{"too old", secret, sig, body, now.Add(10 * time.Minute), false},
		{"no t", secret, sig[len("t=1700000000,"):], body, now, false},
		{"empty", secret, "", body, now, false},
	} {
		err := VerifyWebhook(tc.secret, tc.header, tc.body, tc.at, 5*time.Minute)
		if (err == nil) != tc.ok {
			t.Errorf("%s: got %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
