package collab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/collabd/collabd/ot"
)

// restoreAs posts a restore of rev as the client at addr (named in
// X-Forwarded-For, for a server that trusts the loopback proxy; "" for
// none) and returns the status, headers and body.
func restoreAs(t *testing.T, ts *testServer, addr, id string, rev int64) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(guardCtx(t), http.MethodPost, ts.URL+"/api/docs/"+id+"/restore",
		strings.NewReader(fmt.Sprintf(`{"rev":%d}`, rev)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if addr != "" {
		req.Header.Set("X-Forwarded-For", addr)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// TestRestoreAdmission: a restore is a write like an op and passes the
// same admission. One that adds text is refused with 507 too_large, and
// writes nothing, once the data is past MaxDataBytes, the free space
// below MinFreeBytes or the document's history would pass MaxDocHistory;
// one that only deletes still goes through. On the original code every
// restore went through.
func TestRestoreAdmission(t *testing.T) {
	text := strings.Repeat("restore me ", 1000) // 11,000 bytes
	for _, tc := range []struct {
		name  string
		opts  Options
		usage Usage // set once the document is made
	}{
		{"data past -max-data-bytes", Options{MaxDataBytes: 1 << 20}, Usage{DataBytes: 2 << 20, FreeBytes: 1 << 40}},
		{"free space below -min-free-bytes", Options{MinFreeBytes: 1 << 20}, Usage{DataBytes: 1 << 20, FreeBytes: 4096}},
		// The text once (rev 1) fits, twice (rev 3) does not.
		{"history past -max-doc-history", Options{MaxDocHistory: 20_000}, Usage{FreeBytes: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.DiskCheckInterval = time.Nanosecond
			ts := newTestServer(t, opts)
			id, _ := ts.createDoc(t, text)
			ts.store.setUsage(tc.usage)
			if got := restore(t, ts, id, 0); got != 2 {
				t.Fatalf("restore 0 (deletes everything): head %d, want 2", got)
			}
			code, hdr, body := doHTTP(t, http.MethodPost, ts.URL+"/api/docs/"+id+"/restore", "application/json", strings.NewReader(`{"rev":1}`))
			wantAPIError(t, "restore 1", code, hdr, body, http.StatusInsufficientStorage, CodeTooLarge)
			if d := ts.docState(t, id); d.Rev != 2 || d.Text != "" {
				t.Errorf("after the refused restore: rev %d, %d bytes of text; want rev 2, empty", d.Rev, len(d.Text))
			}
			// Room again: it goes through.
			ts.store.setUsage(Usage{FreeBytes: -1})
			if tc.opts.MaxDocHistory == 0 {
				if got := restore(t, ts, id, 1); got != 3 {
					t.Errorf("restore 1 with room: head %d, want 3", got)
				}
			}
		})
	}
}

// TestRestoreRateLimit: restores are limited per client address and,
// separately, per document (429 rate_limited with Retry-After); a
// malformed request is not charged. On the original code nothing
// limited them.
func TestRestoreRateLimit(t *testing.T) {
	ts := newTestServer(t, Options{RestoreRate: 0.001, RestoreBurst: 2,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}})
	a, _ := ts.createDoc(t, "document a")
	b, _ := ts.createDoc(t, "document b")
	const alice, bob = "192.0.2.1", "192.0.2.2"
	// Malformed: answered 400, not charged.
	for range 5 {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/docs/"+a+"/restore", strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", alice)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("malformed restore: got %d, want 400", resp.StatusCode)
		}
	}
	for i, rev := range []int64{0, 1} {
		if code, _, body := restoreAs(t, ts, alice, a, rev); code != http.StatusOK {
			t.Fatalf("alice's restore %d of a: got %d %s, want 200 (within the burst)", i, code, body)
		}
	}
	wantLimited := func(what string, code int, hdr http.Header, body []byte, why string) {
		t.Helper()
		wantAPIError(t, what, code, hdr, body, http.StatusTooManyRequests, CodeRateLimited)
		if s, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("%s: Retry-After %q, want whole seconds >= 1", what, hdr.Get("Retry-After"))
		}
		if !strings.Contains(string(body), why) {
			t.Errorf("%s: got %s, want it to say %q", what, body, why)
		}
	}
	code, hdr, body := restoreAs(t, ts, alice, b, 0)
	wantLimited("alice's third restore, of b", code, hdr, body, "from this address")
	// Bob has his own budget, but document a has spent its own.
	code, hdr, body = restoreAs(t, ts, bob, a, 0)
	wantLimited("bob's restore of a", code, hdr, body, "of this document")
	if code, _, body := restoreAs(t, ts, bob, b, 0); code != http.StatusOK {
		t.Errorf("bob's restore of b: got %d %s, want 200", code, body)
	}
}

// TestDocHistoryCountsStoredBytes: MaxDocHistory counts what the store
// takes, not 16 bytes per component. Ops of 20,000 one-character
// components take about 2 bytes a component on disk; counted at 16, a
// 1 MB budget was spent after 1 MB / 8 of history, and one edit-link
// holder could block a document's inserts for good with 1/8 of the
// budget. Each round below stores about 60 KB (40 KB of inserts, 20 KB
// of deletions): 15 or 16 rounds fit in 1 MB; the original code refused
// the second.
func TestDocHistoryCountsStoredBytes(t *testing.T) {
	const (
		budget = 1_000_000
		length = 10_000
	)
	ts := newTestServer(t, Options{MaxDocHistory: budget, MaxMessageBytes: 4 << 20})
	id, _ := ts.createDoc(t, strings.Repeat("x", length))
	ctx := guardCtx(t)
	r := ts.raw(t, id)
	r.hello(t, ctx, uuid.NewString(), 1)
	var grow, shrink ot.Op // a after each character, then each a deleted
	for range length {
		grow = append(grow, ot.Retain(1), ot.Insert("a"))
		shrink = append(shrink, ot.Retain(1), ot.Delete(1))
	}
	rev, seq := int64(1), int64(0)
	rounds := 0
	for ; rounds < 40; rounds++ {
		seq++
		r.sendOp(t, ctx, rev, seq, grow)
		m, err := r.next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == typeError {
			if m.Code != CodeTooLarge {
				t.Fatalf("got error %s, want too_large", m.raw)
			}
			break
		}
		if m.Type != typeAck {
			t.Fatalf("got %s, want an ack", m.raw)
		}
		rev++
		seq++
		r.sendOp(t, ctx, rev, seq, shrink)
		r.expect(t, ctx, typeAck)
		rev++
	}
	if rounds < 14 || rounds > 17 {
		t.Errorf("inserts refused after %d rounds of about 60 KB stored; want 15 or 16 in a %d-byte budget", rounds, budget)
	}
	d, err := ts.store.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if d.LogBytes > budget {
		t.Errorf("the store holds %d bytes of history, past the %d budget", d.LogBytes, budget)
	}
}

// TestAdmissionCountsWritesBetweenReadings: the store's usage is read
// once per DiskCheckInterval, and the writes admitted meanwhile count
// against MaxDataBytes until the next reading shows them. On the
// original code every write within the interval was checked against the
// same stale reading: a second's worth of 2 MB restores went through
// after the data had reached the limit.
func TestAdmissionCountsWritesBetweenReadings(t *testing.T) {
	store := newMemStore()
	store.setUsage(Usage{DataBytes: 500_000, FreeBytes: -1})
	a := NewAdmission(store, Limits{MaxDataBytes: 1_000_000, DiskCheckInterval: time.Hour}, nil)
	ctx := context.Background()
	for i := range 4 {
		if err := a.Admit(ctx, Growth{Adds: 100_000, Inserts: true}); err != nil {
			t.Fatalf("write %d of 100 KB on 500 KB of a 1 MB limit: %v", i, err)
		}
	}
	if err := a.Admit(ctx, Growth{Adds: 100_000, Inserts: true}); !errors.Is(err, ErrStorageFull) {
		t.Errorf("fifth write of 100 KB, reaching the limit: got %v, want ErrStorageFull", err)
	}
	if err := a.Admit(ctx, Growth{Adds: 100_000}); err != nil {
		t.Errorf("a write that only deletes: got %v, want nil", err)
	}
	if err := a.Admit(ctx, Growth{Adds: 99_999, Inserts: true}); err != nil {
		t.Errorf("a write that fits: got %v, want nil", err)
	}
}
