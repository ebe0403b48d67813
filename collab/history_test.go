package collab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

// getText fetches a text/plain endpoint and its X-Collab-Rev.
func getText(t *testing.T, url string) (int, string, int64) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	rev, _ := strconv.ParseInt(resp.Header.Get("X-Collab-Rev"), 10, 64)
	return resp.StatusCode, string(body), rev
}

// replayOps returns the text at every revision, replaying GET /ops.
func replayOps(t *testing.T, ts *testServer, id string) []string {
	t.Helper()
	texts := []string{""}
	for _, r := range ts.allOps(t, id, 1000) {
		next, err := ot.Apply(texts[len(texts)-1], r.Op)
		if err != nil {
			t.Fatalf("replay op %d: %v", r.Rev, err)
		}
		texts = append(texts, next)
	}
	return texts
}

func TestHistoryTextAtRevisions(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, viewID := ts.createDoc(t, "start")
	ctx := guardCtx(t)
	a, b := ts.dial(t, id, ClientOptions{}), ts.dial(t, id, ClientOptions{})
	waitErr(t, "editing", editConcurrently([]*Client{a, b}, 10, 150))
	texts := replayOps(t, ts, id)
	head := int64(len(texts) - 1)
	if err := a.WaitRev(ctx, head); err != nil {
		t.Fatal(err)
	}
	for rev := range head + 1 {
		var d struct {
			ID, ViewID, Text string
			Rev              int64
		}
		getJSONStatus(t, fmt.Sprintf("%s/api/docs/%s?rev=%d", ts.URL, id, rev), http.StatusOK, &d)
		if d.Rev != rev || d.Text != texts[rev] || d.ID != id || d.ViewID != viewID {
			t.Fatalf("GET ?rev=%d: got %+v, want text %q", rev, d, texts[rev])
		}
		code, text, xrev := getText(t, fmt.Sprintf("%s/api/docs/%s/text?rev=%d", ts.URL, id, rev))
		if code != http.StatusOK || text != texts[rev] || xrev != rev {
			t.Fatalf("GET text?rev=%d: got %d %q rev %d, want %q", rev, code, text, xrev, texts[rev])
		}
		if rev%10 == 0 {
			code, text, xrev = getText(t, fmt.Sprintf("%s/api/view/%s/text?rev=%d", ts.URL, viewID, rev))
			if code != http.StatusOK || text != texts[rev] || xrev != rev {
				t.Fatalf("GET view text?rev=%d: got %d %q rev %d", rev, code, text, xrev)
			}
			body := getJSONStatus(t, fmt.Sprintf("%s/api/view/%s?rev=%d", ts.URL, viewID, rev), http.StatusOK, &d)
			if strings.Contains(string(body), id) || d.Text != texts[rev] || d.Rev != rev {
				t.Fatalf("GET view?rev=%d: got %s", rev, body)
			}
		}
	}
	// The view's current text, and errors.
	if code, text, xrev := getText(t, ts.URL+"/api/view/"+viewID+"/text"); code != 200 || text != texts[head] || xrev != head {
		t.Errorf("GET view text: got %d %q rev %d", code, text, xrev)
	}
	for _, tc := range []struct {
		query  string
		status int
		code   string
	}{
		{fmt.Sprintf("rev=%d", head+1), 404, CodeNotFound},
		{"rev=-1", 400, CodeBadMessage},
		{"rev=x", 400, CodeBadMessage},
		{"rev=", 400, CodeBadMessage},
		{"at=yesterday", 400, CodeBadMessage},
		{"rev=1&at=2026-01-01T00:00:00Z", 400, CodeBadMessage},
	} {
		for _, path := range []string{"/api/docs/" + id, "/api/docs/" + id + "/text", "/api/view/" + viewID, "/api/view/" + viewID + "/text"} {
			code, hdr, body := doHTTP(t, "GET", ts.URL+path+"?"+tc.query, "", nil)
			wantAPIError(t, path+"?"+tc.query, code, hdr, body, tc.status, tc.code)
		}
	}
	if code, hdr, body := doHTTP(t, "GET", ts.URL+"/api/docs/"+uuid.NewString()+"?rev=0", "", nil); code != 404 {
		wantAPIError(t, "unknown doc ?rev=0", code, hdr, body, 404, CodeNotFound)
	}
}

func TestHistoryAt(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, viewID := ts.createDoc(t, "")
	ctx := guardCtx(t)
	c := ts.dial(t, id, ClientOptions{})
	for i := range 20 {
		if err := c.Edit(ot.Op{}.Retain(i).Insert("x")); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // distinct times, mostly
	}
	var revs []revisionJSON
	getJSONStatus(t, ts.URL+"/api/docs/"+id+"/revisions", http.StatusOK, &revs)
	if len(revs) != 20 {
		t.Fatalf("revisions: got %d, want 20", len(revs))
	}
	at := func(s string) (int64, string) {
		var d struct {
			Rev  int64
			Text string
		}
		getJSONStatus(t, ts.URL+"/api/view/"+viewID+"?at="+s, http.StatusOK, &d)
		return d.Rev, d.Text
	}
	for i, r := range revs {
		tm, err := time.Parse(time.RFC3339Nano, r.Time)
		if err != nil {
			t.Fatal(err)
		}
		// The latest revision at that time: r itself unless the next
		// shares its time.
		want := r.Rev
		for j := i + 1; j < len(revs) && revs[j].Time == r.Time; j++ {
			want = revs[j].Rev
		}
		if got, text := at(tm.Format(time.RFC3339Nano)); got != want || text != strings.Repeat("x", int(want)) {
			t.Errorf("at %s (rev %d's time): got rev %d %q, want %d", r.Time, r.Rev, got, text, want)
		}
		// A nanosecond before: the revision before, unless it shares it.
		before := r.Rev - 1
		for j := i - 1; j >= 0 && revs[j].Time == r.Time; j-- {
			before = revs[j].Rev - 1
		}
		if got, _ := at(tm.Add(-time.Nanosecond).Format(time.RFC3339Nano)); got != before {
			t.Errorf("at %s minus 1ns: got rev %d, want %d", r.Time, got, before)
		}
	}
	first, _ := time.Parse(time.RFC3339Nano, revs[0].Time)
	if got, text := at(first.Add(-time.Hour).Format(time.RFC3339)); got != 0 || text != "" {
		t.Errorf("at an hour before the first op: got rev %d %q, want 0 and no text", got, text)
	}
	if got, _ := at("2999-01-01T00:00:00Z"); got != 20 {
		t.Errorf("at a time after the last op: got rev %d, want 20", got)
	}
	// Another zone names the same instant.
	last, _ := time.Parse(time.RFC3339Nano, revs[19].Time)
	if got, _ := at(strings.ReplaceAll(last.In(time.FixedZone("", 5*3600)).Format(time.RFC3339Nano), "+", "%2B")); got != 20 {
		t.Errorf("at the last op's time in +05:00: got rev %d, want 20", got)
	}
}

func TestHistoryRevisionsAndBuckets(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, viewID := ts.createDoc(t, "héllo") // rev 1, server-made
	ctx := guardCtx(t)
	c := ts.dial(t, id, ClientOptions{})
	if err := c.Edit(ot.Op{}.Retain(1).Delete(2).Insert("😀x").Retain(2)); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	var revs []revisionJSON
	getJSONStatus(t, ts.URL+"/api/view/"+viewID+"/revisions", http.StatusOK, &revs)
	if len(revs) != 2 || revs[0].Rev != 1 || revs[0].Author != "" || revs[0].Inserted != 5 ||
		revs[1].Rev != 2 || revs[1].Author != ts.srv.author(c.ID()) || revs[1].Inserted != 2 || revs[1].Deleted != 2 {
		t.Errorf("revisions: got %+v", revs)
	}
	getJSONStatus(t, ts.URL+"/api/docs/"+id+"/revisions?from=1&limit=1", http.StatusOK, &revs)
	if len(revs) != 1 || revs[0].Rev != 2 {
		t.Errorf("revisions from 1, limit 1: got %+v", revs)
	}
	for _, unit := range []string{"minute", "hour", "day"} {
		var buckets []bucketJSON
		getJSONStatus(t, ts.URL+"/api/docs/"+id+"/revisions?bucket="+unit, http.StatusOK, &buckets)
		n := int64(0)
		for _, b := range buckets {
			n += b.Count
			if _, err := time.Parse(time.RFC3339, b.Time); err != nil {
				t.Errorf("bucket time %q: %v", b.Time, err)
			}
		}
		if n != 2 || buckets[0].FirstRev != 1 || buckets[len(buckets)-1].LastRev != 2 {
			t.Errorf("buckets by %s: got %+v", unit, buckets)
		}
	}
	for _, q := range []string{"bucket=week", "bucket=", "from=-1", "limit=0", "from=x"} {
		code, hdr, body := doHTTP(t, "GET", ts.URL+"/api/docs/"+id+"/revisions?"+q, "", nil)
		wantAPIError(t, "revisions?"+q, code, hdr, body, 400, CodeBadMessage)
	}
}

// restore posts a restore of rev and returns the new head.
func restore(t *testing.T, ts *testServer, id string, rev int64) int64 {
	t.Helper()
	code, _, body := doHTTP(t, "POST", ts.URL+"/api/docs/"+id+"/restore", "application/json",
		strings.NewReader(fmt.Sprintf(`{"rev":%d}`, rev)))
	if code != http.StatusOK {
		t.Fatalf("restore %d: got %d %s", rev, code, body)
	}
	var out struct{ Rev int64 }
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Rev
}

func TestHistoryRestore(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, viewID := ts.createDoc(t, "one two three")
	ctx := guardCtx(t)
	c := ts.dial(t, id, ClientOptions{})
	watch := openSSE(t, http.DefaultClient, viewEventsURL(ts.URL, viewID), nil)
	watch.next(t) // retry
	view := newViewState()
	if err := view.apply(watch.nextEvent(t)); err != nil {
		t.Fatal(err)
	}
	if err := c.Edit(ot.Op{}.Retain(4).Delete(4).Insert("TWO ").Retain(5)); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	// Back to rev 1: one new op, seen by the live editor and the viewer.
	if got := restore(t, ts, id, 1); got != 3 {
		t.Errorf("restore 1: got head %d, want 3", got)
	}
	if err := c.WaitRev(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if c.Text() != "one two three" {
		t.Errorf("editor after restore: got %q", c.Text())
	}
	view.follow(t, watch, 3)
	if view.text != "one two three" {
		t.Errorf("viewer after restore: got %q", view.text)
	}
	// The text already is the text at 1: no op.
	if got := restore(t, ts, id, 1); got != 3 {
		t.Errorf("restore 1 again: got head %d, want 3 (no new op)", got)
	}
	// Restoring the revision before the restore undoes it.
	if got := restore(t, ts, id, 2); got != 4 {
		t.Errorf("restore 2: got head %d, want 4", got)
	}
	if d := ts.docState(t, id); d.Text != "one TWO three" {
		t.Errorf("after restoring rev 2: got %q", d.Text)
	}
	ops := ts.allOps(t, id, 1000)
	if len(ops) != 4 || ops[2].Author != "" || ops[3].Author != "" {
		t.Errorf("ops: got %+v, want restores 3 and 4 by the server", ops)
	}
	for _, tc := range []struct {
		ctype, body string
		status      int
	}{
		{"application/json", `{"rev":99}`, 404},
		{"application/json", `{"rev":-1}`, 400},
		{"application/json", `{}`, 400},
		{"application/json", `nope`, 400},
		{"text/plain", `{"rev":1}`, 415},
	} {
		code, hdr, body := doHTTP(t, "POST", ts.URL+"/api/docs/"+id+"/restore", tc.ctype, strings.NewReader(tc.body))
		wantAPIError(t, "restore "+tc.body, code, hdr, body, tc.status, map[int]string{404: CodeNotFound, 400: CodeBadMessage, 415: CodeBadMessage}[tc.status])
	}
	if code, _, _ := doHTTP(t, "POST", ts.URL+"/api/view/"+viewID+"/restore", "application/json", strings.NewReader(`{"rev":1}`)); code != 404 {
		t.Errorf("restore by view id: got %d, want 404", code)
	}
}

// TestHistoryRestoreWhileEditing restores old revisions while two editors
// type: everyone converges, and each restore made the text it restored at
// its own revision.
func TestHistoryRestoreWhileEditing(t *testing.T) {
	ts := newTestServer(t, Options{RestoreBurst: 100})
	id, _ := ts.createDoc(t, "base text")
	ctx := guardCtx(t)
	a, b := ts.dial(t, id, ClientOptions{}), ts.dial(t, id, ClientOptions{})
	done := editConcurrently([]*Client{a, b}, 11, 120)
	rng := rand.New(rand.NewPCG(1, 2))
	restored := map[int64]int64{} // new head -> revision restored
	for range 8 {
		time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
		_, head := serverText(t, ts.URL, id)
		rev := rng.Int64N(head + 1)
		restored[restore(t, ts, id, rev)] = rev
	}
	waitErr(t, "editing", done)
	text, head := serverText(t, ts.URL, id)
	for _, c := range []*Client{a, b} {
		if err := c.WaitRev(ctx, head); err != nil {
			t.Fatal(err)
		}
		if c.Text() != text {
			t.Errorf("editor %s: got %q, want the server's %q", c.ID(), c.Text(), text)
		}
	}
	texts := replayOps(t, ts, id)
	if texts[head] != text {
		t.Errorf("replay of /ops: got %q, want %q", texts[head], text)
	}
	// Whether it made an op or found the text already equal, a restore's
	// answer is a revision whose text is the one restored.
	for at, rev := range restored {
		if texts[at] != texts[rev] {
			t.Errorf("restore of rev %d answered rev %d: got %q, want %q", rev, at, texts[at], texts[rev])
		}
	}
}

// TestHistoryResumeFarBehind: an editor and a viewer 50,000 ops behind get
// exactly those ops, not the text.
func TestHistoryResumeFarBehind(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, viewID := ts.createDoc(t, "")
	// 50,100 ops, appended straight to the store before anyone loads the
	// document: typing one character at a time.
	const n = 50_100
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Rev: int64(i + 1), Op: ot.Op{}.Retain(i).Insert(string(rune('a' + i%26))),
			Client: "typist", Seq: int64(i + 1), Time: time.Now()}
	}
	if err := ts.store.Append(context.Background(), id, recs); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := range n {
		b.WriteRune(rune('a' + i%26))
	}
	want := b.String()
	const from = n - 50_000
	ctx := guardCtx(t)

	r := ts.raw(t, id)
	w := r.hello(t, ctx, uuid.NewString(), from)
	if w.hasField["text"] || len(w.Ops) != 50_000 || w.Rev != n {
		t.Fatalf("welcome from rev %d: got rev %d, %d ops, text %v; want 50,000 ops and no text", from, w.Rev, len(w.Ops), w.hasField["text"])
	}
	text := want[:from]
	doc := ot.NewDoc(text)
	for i, op := range w.Ops {
		if op.Rev != int64(from+1+i) {
			t.Fatalf("catch-up op %d has rev %d, want %d", i, op.Rev, from+1+i)
		}
		if err := doc.Apply(op.Op); err != nil {
			t.Fatal(err)
		}
	}
	if doc.String() != want {
		t.Errorf("catch-up ops do not make the text")
	}
	// The session goes on after it: an op on the head is acknowledged.
	r.sendOp(t, ctx, n, 1, ot.Op{}.Retain(n).Insert("!"))
	if ack := r.expect(t, ctx, typeAck); ack.Rev != n+1 {
		t.Errorf("ack after the catch-up: got rev %d, want %d", ack.Rev, n+1)
	}

	s := openSSE(t, http.DefaultClient, viewEventsURL(ts.URL, viewID), http.Header{"Last-Event-ID": {strconv.Itoa(from)}})
	defer s.close()
	s.next(t) // retry
	v := &viewState{rev: from, text: want[:from]}
	v.follow(t, s, n+1)
	if v.snapshots != 0 || v.text != want+"!" {
		t.Errorf("viewer from rev %d: got %d snapshots, %d code points, want ops only", from, v.snapshots, len(v.text))
	}
}

// TestHistoryDeleteWhileEditing deletes a document with two editors and a
// viewer connected.
func TestHistoryDeleteWhileEditing(t *testing.T) {
	// The editor types as fast as it can: lift the rate limit, which a
	// fast enough client would otherwise meet before the delete.
	ts := newTestServer(t, Options{RateLimit: 1e6, RateBurst: 1e6})
	id, viewID := ts.createDoc(t, "doomed")
	ctx := guardCtx(t)
	a := ts.raw(t, id)
	a.hello(t, ctx, uuid.NewString(), -1)
	c := ts.dial(t, id, ClientOptions{})
	done := make(chan error, 1)
	go func() { done <- editRandomly(ctx, c, rand.New(rand.NewPCG(3, 3)), 1000) }()
	s := openSSE(t, http.DefaultClient, viewEventsURL(ts.URL, viewID), nil)
	s.next(t) // retry
	time.Sleep(20 * time.Millisecond)

	if code, _, body := doHTTP(t, "DELETE", ts.URL+"/api/docs/"+id, "", nil); code != http.StatusNoContent {
		t.Fatalf("DELETE: got %d %s, want 204", code, body)
	}
	a.expectError(t, ctx, CodeNotFound, 4404, typeOp, typePresence, typeLeave)
	if err := <-done; err == nil {
		t.Errorf("editing client: got no error after the delete, want not_found")
	}
	if err := c.Err(); !errIs(err, CodeNotFound) {
		t.Errorf("editing client: got %v, want not_found", err)
	}
	if _, err := s.end(t); err != nil {
		t.Errorf("viewer stream: %v", err)
	}
	for _, path := range []string{"/api/docs/" + id, "/api/docs/" + id + "/text", "/api/docs/" + id + "/ops",
		"/api/docs/" + id + "/revisions", "/api/docs/" + id + "?rev=1", "/api/view/" + viewID, "/api/view/" + viewID + "/text",
		"/api/view/" + viewID + "/revisions"} {
		code, hdr, body := doHTTP(t, "GET", ts.URL+path, "", nil)
		wantAPIError(t, "GET "+path+" after delete", code, hdr, body, 404, CodeNotFound)
	}
	code, hdr, body := doHTTP(t, "DELETE", ts.URL+"/api/docs/"+id, "", nil)
	wantAPIError(t, "DELETE again", code, hdr, body, 404, CodeNotFound)
	if _, resp, err := dialRaw(ctx, ts.wsURL(id)); err == nil || resp == nil || resp.StatusCode != 404 {
		t.Errorf("editing session after delete: got %v, want 404", err)
	}
	checkServing(t, ts, mustCreate(t, ts))
}

func mustCreate(t *testing.T, ts *testServer) string {
	id, _ := ts.createDoc(t, "x")
	return id
}

// TestCatchUpFromStoreWhileEditing: with two ops of memory, every resume
// reads its catch-up from the store while another editor keeps typing. An
// editor that goes offline, edits, and comes back again and again, and a
// viewer that reconnects again and again, must each see every op once, in
// order (the Client and viewState refuse gaps), and all converge.
func TestCatchUpFromStoreWhileEditing(t *testing.T) {
	mem := newMemStore()
	store := &countingStore{memStore: mem}
	ts := newTestServerStore(t, mem, store, Options{HistoryLimit: 2, RateLimit: 1e6, RateBurst: 1e6})
	id, viewID := ts.createDoc(t, "shared text")
	ctx := guardCtx(t)
	a, b, c := ts.dial(t, id, ClientOptions{}), ts.dial(t, id, ClientOptions{}), ts.dial(t, id, ClientOptions{})
	// a types all along, so live ops arrive while catch-ups are written.
	done := editConcurrently([]*Client{a}, 21, 400)

	view := newViewState()
	watch := func() *sseStream {
		hdr := http.Header{}
		if view.rev >= 0 {
			hdr.Set("Last-Event-ID", strconv.FormatInt(view.rev, 10))
		}
		s := openSSE(t, http.DefaultClient, viewEventsURL(ts.URL, viewID), hdr)
		s.next(t) // retry
		return s
	}
	s := watch()
	rng := rand.New(rand.NewPCG(8, 9))
	for range 15 {
		// b and the viewer leave; b edits offline; c makes 20 more ops, so
		// that both come back further behind than the hub's memory.
		b.Drop()
		s.close()
		for range 1 + rng.IntN(3) {
			if err := b.Edit(randomOp(rng, b.Len())); err != nil {
				t.Fatal(err)
			}
		}
		if err := editRandomly(ctx, c, rng, 20); err != nil {
			t.Fatal(err)
		}
		if err := b.Reconnect(ctx); err != nil {
			t.Fatal(err)
		}
		s = watch()
		_, head := serverText(t, ts.URL, id)
		view.follow(t, s, head)
	}
	waitErr(t, "editing", done)
	if err := b.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	text, head := serverText(t, ts.URL, id)
	for _, e := range []*Client{a, b, c} {
		if err := e.WaitRev(ctx, head); err != nil {
			t.Fatal(err)
		}
		if e.Text() != text {
			t.Errorf("editor %s: got %q, want %q", e.ID(), e.Text(), text)
		}
	}
	view.follow(t, s, head)
	if view.text != text {
		t.Errorf("viewer: got %q, want %q", view.text, text)
	}
	if view.snapshots != 1 {
		t.Errorf("viewer got %d snapshots, want only the first", view.snapshots)
	}
	// Each of b's 15 resumes reads the store at least once. (The viewer's
	// may come from the hub's recent shared events instead.)
	if n := store.ops.Load(); n < 15 {
		t.Errorf("the store was read for ops %d times, want the editor's catch-ups to have come from it", n)
	}
}

// countingStore counts the Ops calls that reach the store.
type countingStore struct {
	*memStore
	ops atomic.Int64
}

func (s *countingStore) Ops(ctx context.Context, id string, after int64, limit, maxBytes int) ([]Record, error) {
	s.ops.Add(1)
	return s.memStore.Ops(ctx, id, after, limit, maxBytes)
}
