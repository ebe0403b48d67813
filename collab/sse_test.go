package collab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/ot"
)

func TestEventParser(t *testing.T) {
	type ev = sseEvent
	for _, tc := range []struct {
		name  string
		in    string
		want  []ev
		retry int64
	}{
		{"LF", "data: a\n\n", []ev{{"message", "a", ""}}, -1},
		{"CRLF", "event: op\r\nid: 7\r\ndata: x\r\n\r\n", []ev{{"op", "x", "7"}}, -1},
		{"CR", "data: a\r\rdata: b\r\r", []ev{{"message", "a", ""}, {"message", "b", ""}}, -1},
		{"mixed line endings", "data: a\r\ndata: b\rdata: c\n\n", []ev{{"message", "a\nb\nc", ""}}, -1},
		{"CR then CRLF blank line", "data: a\r\r\n", []ev{{"message", "a", ""}}, -1},
		{"LF then CRLF blank line", "data: a\n\r\n", []ev{{"message", "a", ""}}, -1},
		{"CRLF then LF blank line", "data: a\r\n\n", []ev{{"message", "a", ""}}, -1},
		{"multi-line data", "data: a\ndata:\ndata:  b\n\n", []ev{{"message", "a\n\n b", ""}}, -1},
		{"no space after colon", "data:x\n\n", []ev{{"message", "x", ""}}, -1},
		{"field without colon", "data\n\n", []ev{{"message", "", ""}}, -1},
		{"comments ignored", ": ping\n\n:\n:x\ndata: y\n\n", []ev{{"message", "y", ""}}, -1},
		{"unknown field ignored", "foo: bar\n data: z\ndata: x\n\n", []ev{{"message", "x", ""}}, -1},
		{"event type resets after dispatch", "event: op\ndata: 1\n\ndata: 2\n\n",
			[]ev{{"op", "1", ""}, {"message", "2", ""}}, -1},
		{"event without data is not dispatched", "event: op\n\ndata: 2\n\n", []ev{{"message", "2", ""}}, -1},
		{"empty event name means message", "event\ndata: x\n\n", []ev{{"message", "x", ""}}, -1},
		{"id persists", "id: 1\ndata: a\n\ndata: b\n\n", []ev{{"message", "a", "1"}, {"message", "b", "1"}}, -1},
		{"empty id resets it", "id: 1\ndata: a\n\nid\ndata: b\n\n", []ev{{"message", "a", "1"}, {"message", "b", ""}}, -1},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
			[]ev{{"message", "a", "1"}, {"message", "b", "1"}}, -1},
		{"id without data still sets the last id", "id: 5\n\ndata: x\n\n", []ev{{"message", "x", "5"}}, -1},
		{"retry", "retry: 2000\n\n", nil, 2000},
		{"retry without space", "retry:1500\n\n", nil, 1500},
		{"retry not digits ignored", "retry: 20x\n\nretry: \n\nretry: -1\n\n", nil, -1},
		{"BOM dropped once", "\uFEFFdata: a\n\n\uFEFFdata: b\n\n", []ev{{"message", "a", ""}}, -1},
		{"unfinished event discarded", "data: a\n\ndata: b\n", []ev{{"message", "a", ""}}, -1},
		{"unfinished line discarded", "data: a\n\ndata: b", []ev{{"message", "a", ""}}, -1},
		{"unfinished after CR discarded", "data: a\r", nil, -1},
		{"UTF-8", "data: 日本😀\n\n", []ev{{"message", "日本😀", ""}}, -1},
		{"invalid UTF-8 replaced", "data: a\xffb\n\n", []ev{{"message", "a\uFFFDb", ""}}, -1},
	} {
		for _, split := range []string{"whole", "one byte at a time"} {
			t.Run(tc.name+"/"+split, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tc.in)
				if split != "whole" {
					r = iotest.OneByteReader(r)
				}
				p := newEventParser(r)
				var got []ev
				for {
					blk, err := p.Next()
					if err != nil {
						if err != io.EOF {
							t.Fatalf("got error %v, want io.EOF at the end", err)
						}
						break
					}
					if blk.Event != nil {
						got = append(got, *blk.Event)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("got events %q, want %q", got, tc.want)
				}
				if p.Retry != tc.retry {
					t.Errorf("got retry %d, want %d", p.Retry, tc.retry)
				}
			})
		}
	}
}

// TestEventParserCRDoesNotWait checks that a line ends at its CR: the
// parser must not wait for a possible LF before dispatching.
func TestEventParserCRDoesNotWait(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte("data: a\r\r"))
	got := make(chan *sseEvent, 1)
	go func() {
		blk, _ := newEventParser(pr).Next()
		got <- blk.Event
	}()
	select {
	case ev := <-got:
		if ev == nil || ev.Data != "a" {
			t.Fatalf("got %+v, want the event with data a", ev)
		}
	case <-time.After(sseGuard):
		t.Fatal("the parser waited for more input after CR CR")
	}
}

// TestCheckFraming checks that the framing check rejects what a lenient
// parser would accept but collabd never sends.
func TestCheckFraming(t *testing.T) {
	const good = "retry: 2000\n\nevent: snapshot\nid: 3\ndata: {\"rev\":3,\"text\":\"a\"}\n\n" +
		": ping\n\nevent: op\nid: 4\ndata: {\"rev\":4,\"op\":[1,\"b\"]}\n\n"
	check := func(stream string) error {
		p := newEventParser(strings.NewReader(stream))
		for first := true; ; first = false {
			blk, err := p.Next()
			if err == io.EOF && len(blk.Lines) == 0 {
				return nil
			}
			if err != nil {
				return err
			}
			if _, err := checkFraming(p, blk, first); err != nil {
				return err
			}
		}
	}
	if err := check(good); err != nil {
		t.Fatalf("good stream: %v", err)
	}
	for _, bad := range []string{
		"retry:2000\n\n",
		"retry: 3000\n\n",
		"retry: 2000\r\n\r\n",
		"retry: 2000\n\n:ping\n\n",
		"retry: 2000\n\n: ping\n: ping\n\n",
		"retry: 2000\n\nevent: snapshot\nid: 03\ndata: {\"rev\":3,\"text\":\"a\"}\n\n",
		"retry: 2000\n\nevent: snapshot\nid: 4\ndata: {\"rev\":3,\"text\":\"a\"}\n\n",
		"retry: 2000\n\nevent: snapshot\ndata: {\"rev\":3,\"text\":\"a\"}\n\n",
		"retry: 2000\n\nid: 3\nevent: snapshot\ndata: {\"rev\":3,\"text\":\"a\"}\n\n",
		"retry: 2000\n\nevent: snapshot\nid: 3\ndata: {\"rev\":3,\"text\":\"a\",\"id\":\"x\"}\n\n",
		"retry: 2000\n\nevent: snapshot\nid: 3\ndata: {\"rev\":3}\n\n",
		"retry: 2000\n\nevent: op\nid: 3\ndata: {\"rev\":3,\"op\":[1,\"b\"]}\ndata: x\n\n",
		"retry: 2000\n\nevent: op\nid: 3\ndata: {\"rev\":3,\"op\":[0]}\n\n",
		"retry: 2000\n\nevent: message\nid: 3\ndata: {\"rev\":3,\"op\":[1]}\n\n",
		"retry: 2000\n\nevent: op\nid: 3\ndata: {\"rev\":3,\"op\":[1,\"\xff\"]}\n\n",
	} {
		if err := check(bad); err == nil {
			t.Errorf("framing check accepted %q", bad)
		}
	}
}

func viewEventsURL(baseURL, viewID string) string {
	return baseURL + "/api/view/" + viewID + "/events"
}

func docEventsURL(baseURL, id string) string {
	return baseURL + "/api/docs/" + id + "/events"
}

// TestSSEHeaders checks both feeds' status and headers, and that every
// connect, fresh or resuming, starts with "retry: 2000". The framing
// check in openSSE holds the stream to the exact bytes.
func TestSSEHeaders(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, viewID := ts.createDoc(t, "hi")
	for _, url := range []string{viewEventsURL(ts.URL, viewID), docEventsURL(ts.URL, id)} {
		for _, hdr := range []http.Header{nil, {"Last-Event-ID": {"1"}}, {"Last-Event-ID": {"0"}}} {
			s := openSSE(t, http.DefaultClient, url, hdr) // checks the headers
			if m := s.next(t); m.Kind != "retry" {
				t.Fatalf("%s %v: got %v first, want the retry line", url, hdr, m)
			}
			if hdr == nil {
				if m := s.next(t); m.Kind != "snapshot" || m.ID != 1 || m.Text != "hi" {
					t.Fatalf("%s: got %v, want snapshot 1 \"hi\"", url, m)
				}
			}
			s.close()
		}
	}
}

// TestSSERetryFirstBytes reads the first bytes of a stream as they are on
// the wire, without any parser.
func TestSSERetryFirstBytes(t *testing.T) {
	ts := newTestServer(t, Options{})
	_, viewID := ts.createDoc(t, "")
	resp, err := http.Get(viewEventsURL(ts.URL, viewID))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	want := "retry: 2000\n\nevent: snapshot\nid: 0\ndata: {\"rev\":0,\"text\":\"\"}\n\n"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(resp.Body, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestSSESnapshotThenOps has three editors typing at once while viewers
// watch from before the first edit, from the middle, and on the edit-id
// feed. Each gets a snapshot and then every op, ids consecutive, and ends
// with the server's text.
func TestSSESnapshotThenOps(t *testing.T) {
	ts := newTestServer(t, Options{RateLimit: 1e6, RateBurst: 1e6})
	id, viewID := ts.createDoc(t, "start\n")
	editors := []*Client{
		ts.dial(t, id, ClientOptions{Name: "A"}),
		ts.dial(t, id, ClientOptions{Name: "B"}),
		ts.dial(t, id, ClientOptions{Name: "C"}),
	}
	early := openSSE(t, http.DefaultClient, viewEventsURL(ts.URL, viewID), nil)
	byEditID := openSSE(t, http.DefaultClient, docEventsURL(ts.URL, id), nil)

	done := editConcurrently(editors, 1, 30)
	// A viewer that arrives while the editors are busy.
	earlyState := newViewState()
	earlyState.follow(t, early, 5)
	late := openSSE(t, http.DefaultClient, viewEventsURL(ts.URL, viewID), nil)
	waitErr(t, "editors", done)

	text, rev := serverText(t, ts.URL, id)
	if rev < 30 {
		t.Fatalf("got rev %d after 90 edits, want at least 30 revisions", rev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), sseGuard)
	defer cancel()
	for _, c := range editors {
		if err := c.WaitRev(ctx, rev); err != nil {
			t.Fatal(err)
		}
		if c.Text() != text {
			t.Fatalf("editor has %q, server %q", c.Text(), text)
		}
	}
	for name, v := range map[string]struct {
		s  *sseStream
		st *viewState
	}{"early": {early, earlyState}, "edit id": {byEditID, newViewState()}, "late": {late, newViewState()}} {
		v.st.follow(t, v.s, rev)
		if v.st.snapshots != 1 {
			t.Errorf("%s: got %d snapshots, want 1", name, v.st.snapshots)
		}
		if v.st.text != text {
			t.Errorf("%s viewer: got text %q, want %q", name, v.st.text, text)
		}
	}
	if earlyState.ops != int(rev-1) {
		t.Errorf("early viewer: got %d ops, want %d (every op after its snapshot at rev 1)", earlyState.ops, rev-1)
	}
}

// TestSSEResume disconnects a viewer again and again while editors keep
// typing and resumes it with Last-Event-ID, or with ?since on what is a
// first connect for the server. Every resume must bring exactly the ops
// missed: no snapshot, no gap, no repeat.
func TestSSEResume(t *testing.T) {
	for _, how := range []string{"Last-Event-ID", "since"} {
		t.Run(how, func(t *testing.T) {
			ts := newTestServer(t, Options{RateLimit: 1e6, RateBurst: 1e6})
			id, viewID := ts.createDoc(t, "x")
			editors := []*Client{ts.dial(t, id, ClientOptions{}), ts.dial(t, id, ClientOptions{})}
			done := editConcurrently(editors, 2, 40)

			st := newViewState()
			r := rand.New(rand.NewPCG(3, 3))
			const rounds = 6
			for round := range rounds {
				url, hdr := viewEventsURL(ts.URL, viewID), http.Header(nil)
				if round > 0 {
					last := strconv.FormatInt(st.rev, 10)
					if how == "since" {
						url += "?since=" + last
					} else {
						hdr = http.Header{"Last-Event-ID": {last}}
					}
				}
				s := openSSE(t, http.DefaultClient, url, hdr)
				if m := s.next(t); m.Kind != "retry" {
					t.Fatalf("round %d: got %v, want retry first", round, m)
				}
				for i := range 1 + r.IntN(5) {
					m := s.nextEvent(t)
					if round > 0 && i == 0 && m.Kind != "op" {
						t.Fatalf("round %d: resume from %d got %v, want op %d", round, st.rev, m, st.rev+1)
					}
					if err := st.apply(m); err != nil {
						t.Fatalf("round %d: %v", round, err)
					}
				}
				s.close()
			}
			waitErr(t, "editors", done)
			text, rev := serverText(t, ts.URL, id)
			s := openSSE(t, http.DefaultClient, viewEventsURL(ts.URL, viewID), http.Header{"Last-Event-ID": {strconv.FormatInt(st.rev, 10)}})
			s.next(t) // retry
			st.follow(t, s, rev)
			if st.text != text || st.snapshots != 1 {
				t.Fatalf("after %d resumes: got text %q with %d snapshots, want %q with 1", rounds, st.text, st.snapshots, text)
			}
		})
	}
}

// TestSSEResumePoints covers each kind of resume point: up to date, in
// the in-memory history, only in the store (however far back), ahead of
// the document, and malformed.
func TestSSEResumePoints(t *testing.T) {
	// A short history and catch-up, so that some ops are read back from
	// the store and older ones are gone.
	ts := newTestServer(t, Options{HistoryLimit: 2, MaxCatchUp: 6})
	id, viewID := ts.createDoc(t, "x")
	c := ts.dial(t, id, ClientOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), sseGuard)
	defer cancel()
	if err := editRandomly(ctx, c, rand.New(rand.NewPCG(4, 4)), 20); err != nil {
		t.Fatal(err)
	}
	text, rev := serverText(t, ts.URL, id)
	url := viewEventsURL(ts.URL, viewID)

	first := func(t *testing.T, url string, hdr http.Header) sseMsg {
		t.Helper()
		s := openSSE(t, http.DefaultClient, url, hdr)
		defer s.close()
		if m := s.next(t); m.Kind != "retry" {
			t.Fatalf("got %v, want retry first", m)
		}
		return s.nextEvent(t)
	}
	snapshot := func(t *testing.T, url string, hdr http.Header) {
		t.Helper()
		if m := first(t, url, hdr); m.Kind != "snapshot" || m.ID != rev || m.Text != text {
			t.Fatalf("got %v, want a snapshot at rev %d", m, rev)
		}
	}
	ops := func(t *testing.T, url string, hdr http.Header, since int64) {
		t.Helper()
		s := openSSE(t, http.DefaultClient, url, hdr)
		defer s.close()
		s.next(t) // retry
		st := &viewState{rev: since, text: textAt(t, ts.store, id, since)}
		st.follow(t, s, rev)
		if st.snapshots != 0 || st.text != text {
			t.Fatalf("from %d: got %d snapshots and text %q, want ops only and %q", since, st.snapshots, st.text, text)
		}
	}
	str := func(n int64) string { return strconv.FormatInt(n, 10) }

	t.Run("ahead", func(t *testing.T) {
		snapshot(t, url+"?since="+str(rev+1), nil)
		snapshot(t, url, http.Header{"Last-Event-ID": {str(rev + 1000)}})
	})
	t.Run("far back in the store", func(t *testing.T) {
		ops(t, url+"?since=0", nil, 0)
		ops(t, url, http.Header{"Last-Event-ID": {str(rev - 7)}}, rev-7)
	})
	t.Run("malformed Last-Event-ID", func(t *testing.T) {
		snapshot(t, url, http.Header{"Last-Event-ID": {"x1"}})
		snapshot(t, url, http.Header{"Last-Event-ID": {"-1"}})
	})
	t.Run("in memory", func(t *testing.T) {
		ops(t, url, http.Header{"Last-Event-ID": {str(rev - 1)}}, rev-1)
	})
	t.Run("in the store", func(t *testing.T) {
		ops(t, url+"?since="+str(rev-6), nil, rev-6)
	})
	t.Run("Last-Event-ID wins over since", func(t *testing.T) {
		ops(t, url+"?since=0", http.Header{"Last-Event-ID": {str(rev - 3)}}, rev-3)
	})
	t.Run("up to date", func(t *testing.T) {
		s := openSSE(t, http.DefaultClient, url+"?since="+str(rev), nil)
		s.next(t) // retry
		if err := c.Edit(ot.Op{ot.Insert("!"), ot.Retain(c.Len())}); err != nil {
			t.Fatal(err)
		}
		if m := s.nextEvent(t); m.Kind != "op" || m.ID != rev+1 {
			t.Fatalf("got %v, want op %d and nothing before it", m, rev+1)
		}
	})
	t.Run("malformed since", func(t *testing.T) {
		for _, q := range []string{"?since=-1", "?since=abc", "?since=1.5"} {
			resp, err := http.Get(url + q)
			if err != nil {
				t.Fatal(err)
			}
			checkAPIError(t, resp, http.StatusBadRequest, CodeBadMessage)
		}
	})
}

// textAt replays a document's ops from the store up to rev.
func textAt(t *testing.T, store *memStore, id string, rev int64) string {
	t.Helper()
	recs, err := store.Ops(context.Background(), id, 0, int(rev), 0)
	if err != nil {
		t.Fatal(err)
	}
	text := ""
	for _, r := range recs {
		if text, err = ot.Apply(text, r.Op); err != nil {
			t.Fatal(err)
		}
	}
	return text
}

// checkAPIError checks an error answer: the status and a JSON body
// {"error":{"code","message"}} with the code.
func checkAPIError(t *testing.T, resp *http.Response, status int, code string) {
	t.Helper()
	defer resp.Body.Close()
	var body struct {
		Error *struct{ Code, Message string } `json:"error"`
	}
	err := json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != status || err != nil || body.Error == nil || body.Error.Code != code || body.Error.Message == "" {
		t.Fatalf("%s: got status %d, body %+v (decode err %v), want %d with error code %q",
			resp.Request.URL, resp.StatusCode, body.Error, err, status, code)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: got Content-Type %q, want application/json", resp.Request.URL, ct)
	}
}

func TestSSEUnknownIDs(t *testing.T) {
	ts := newTestServer(t, Options{})
	for _, path := range []string{
		"/api/view/7c4a5a52-5a0f-4a43-9a57-5d2a4c8c2f11/events",
		"/api/view/not-a-uuid/events",
		"/api/docs/7c4a5a52-5a0f-4a43-9a57-5d2a4c8c2f11/events",
		"/api/docs/nope/events",
	} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		checkAPIError(t, resp, http.StatusNotFound, CodeNotFound)
	}
	// A view id is not an edit id, nor the other way round.
	id, viewID := ts.createDoc(t, "")
	for _, path := range []string{"/api/docs/" + viewID + "/events", "/api/view/" + id + "/events"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		checkAPIError(t, resp, http.StatusNotFound, CodeNotFound)
	}
}

// TestSSEHeartbeat checks that pings arrive on a quiet stream, and again
// after an event, and that a stream is pinged only once it has been quiet
// for the interval. The bound needs no slack and no upper limit: each
// write the server makes (the snapshot, the op) comes after a moment the
// test noted, so the k-th ping after it cannot be read sooner than k
// intervals after that moment, however late the test reads.
func TestSSEHeartbeat(t *testing.T) {
	const interval = 100 * time.Millisecond
	ts := newTestServer(t, Options{Heartbeat: interval})
	id, viewID := ts.createDoc(t, "a")
	pings := func(s *sseStream, since time.Time, n int, what string) {
		t.Helper()
		for k := 1; k <= n; k++ {
			if m := s.next(t); m.Kind != "ping" {
				t.Fatalf("got %v %s, want ping", m, what)
			}
			if got := time.Since(since); got < time.Duration(k)*interval {
				t.Errorf("ping %d %s came %v after the write, want at least %v", k, what, got, time.Duration(k)*interval)
			}
		}
	}
	start := time.Now()
	s := openSSE(t, http.DefaultClient, viewEventsURL(ts.URL, viewID), nil)
	s.next(t) // retry
	if m := s.next(t); m.Kind != "snapshot" {
		t.Fatalf("got %v, want the snapshot", m)
	}
	pings(s, start, 3, "on a quiet stream")

	c := ts.dial(t, id, ClientOptions{})
	edited := time.Now()
	if err := c.Edit(ot.Op{ot.Retain(1), ot.Insert("b")}); err != nil {
		t.Fatal(err)
	}
	if m := s.nextEvent(t); m.Kind != "op" || m.ID != 2 {
		t.Fatalf("got %v, want op 2", m)
	}
	pings(s, edited, 2, "after the op")
}

// TestSSEViewNeverRevealsEditID reads everything a view id reaches, raw,
// and looks for the edit id in it.
func TestSSEViewNeverRevealsEditID(t *testing.T) {
	ts := newTestServer(t, Options{Heartbeat: 20 * time.Millisecond})
	id, viewID := ts.createDoc(t, "secret-free text")
	editor := ts.dial(t, id, ClientOptions{Name: "A"})
	base := viewEventsURL(ts.URL, viewID)
	var raws [][]byte
	var headers []http.Header
	// watch reads a stream raw until it has had events events and two pings.
	watch := func(s *sseStream, events int) {
		defer s.close()
		headers = append(headers, s.Resp.Header)
		for pings := 0; events > 0 || pings < 2; {
			switch m := s.next(t); m.Kind {
			case "ping":
				pings++
			case "snapshot", "op":
				events--
			}
		}
		raws = append(raws, s.rawBytes())
	}
	open := func(url string, hdr http.Header) *sseStream {
		s, err := startSSE(http.DefaultClient, url, hdr, true)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	live := open(base, nil)
	ctx, cancel := context.WithTimeout(context.Background(), sseGuard)
	defer cancel()
	if err := editRandomly(ctx, editor, rand.New(rand.NewPCG(5, 5)), 5); err != nil {
		t.Fatal(err)
	}
	_, rev := serverText(t, ts.URL, id)
	watch(live, int(rev))
	watch(open(base, nil), 1)
	watch(open(base, http.Header{"Last-Event-ID": {"1"}}), int(rev-1))
	watch(open(base+"?since=2", nil), int(rev-2))
	watch(open(base+"?since=999", nil), 1)
	for i, raw := range raws {
		if strings.Contains(string(raw), id) {
			t.Errorf("stream %d contains the edit id: %q", i, raw)
		}
	}
	for i, h := range headers {
		for k, vs := range h {
			if strings.Contains(k+strings.Join(vs, ","), id) {
				t.Errorf("stream %d: header %s: %q contains the edit id", i, k, vs)
			}
		}
	}
	for _, url := range []string{base + "?since=x", ts.URL + "/api/view/" + viewID} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), id) {
			t.Errorf("GET %s: body contains the edit id: %s", url, body)
		}
	}
}

func TestSSECORS(t *testing.T) {
	const allowed = "https://viewer.example"
	preflight := func(t *testing.T, url, origin string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodOptions, url, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Access-Control-Request-Headers", "last-event-id")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("preflight from %s: got status %d, want 2xx", origin, resp.StatusCode)
		}
		return resp
	}
	for _, tc := range []struct {
		name    string
		origins []string
		origin  string
		want    string // Access-Control-Allow-Origin; "" for none
	}{
		{"default allows any origin", nil, "https://anyone.example", "*"},
		{"listed origin", []string{allowed}, allowed, allowed},
		{"unlisted origin", []string{allowed}, "https://evil.example", ""},
		{"none allowed", []string{}, allowed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, Options{ViewOrigins: tc.origins})
			id, viewID := ts.createDoc(t, "x")
			url := viewEventsURL(ts.URL, viewID)
			resp := preflight(t, url, tc.origin)
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.want {
				t.Fatalf("preflight: got Access-Control-Allow-Origin %q, want %q", got, tc.want)
			}
			if tc.want != "" {
				if h := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")); !strings.Contains(h, "last-event-id") {
					t.Errorf("preflight: got Access-Control-Allow-Headers %q, want it to allow Last-Event-ID", h)
				}
				if m := resp.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "GET") {
					t.Errorf("preflight: got Access-Control-Allow-Methods %q, want GET", m)
				}
			}
			s := openSSE(t, http.DefaultClient, url, http.Header{"Origin": {tc.origin}, "Last-Event-ID": {"1"}})
			if got := s.Resp.Header.Get("Access-Control-Allow-Origin"); got != tc.want {
				t.Errorf("stream: got Access-Control-Allow-Origin %q, want %q", got, tc.want)
			}
			if tc.want != "" && tc.want != "*" && !strings.Contains(strings.Join(s.Resp.Header.Values("Vary"), ","), "Origin") {
				t.Errorf("stream: got Vary %q, want Origin", s.Resp.Header.Values("Vary"))
			}
			// The edit-id feed is for editors, never for other sites.
			s2 := openSSE(t, http.DefaultClient, docEventsURL(ts.URL, id), http.Header{"Origin": {tc.origin}})
			if got := s2.Resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("edit-id feed: got Access-Control-Allow-Origin %q, want none", got)
			}
		})
	}
}

// TestSSEStreamsEndOnClose checks that Close ends every stream cleanly,
// at an event boundary, after every committed op.
func TestSSEStreamsEndOnClose(t *testing.T) {
	ts := newTestServer(t, Options{RateLimit: 1e6, RateBurst: 1e6})
	id, viewID := ts.createDoc(t, "x")
	streams := []*sseStream{
		openSSE(t, http.DefaultClient, viewEventsURL(ts.URL, viewID), nil),
		openSSE(t, http.DefaultClient, docEventsURL(ts.URL, id), nil),
	}
	c := ts.dial(t, id, ClientOptions{})
	waitErr(t, "editor", editConcurrently([]*Client{c}, 6, 10))
	_, rev := serverText(t, ts.URL, id)

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), sseGuard)
		defer cancel()
		closed <- ts.srv.Close(ctx)
	}()
	waitErr(t, "Close", closed)
	for i, s := range streams {
		rest, err := s.end(t)
		if err != nil {
			t.Errorf("stream %d: ended with %v, want a clean end", i, err)
		}
		st := newViewState()
		for _, m := range rest {
			if err := st.apply(m); err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
		}
		if st.rev != rev {
			t.Errorf("stream %d: ended at rev %d, want %d", i, st.rev, rev)
		}
	}
	resp, err := http.Get(viewEventsURL(ts.URL, viewID))
	if err != nil {
		t.Fatal(err)
	}
	checkAPIError(t, resp, http.StatusServiceUnavailable, CodeShuttingDown)
}

// TestSSEOutlivesWriteTimeout puts an http.Server with a short
// WriteTimeout in front of the collab Server, with a short per-write
// timeout too, and keeps a stream quiet for several times both before an
// event: the stream must still deliver it. Over HTTP/2 a write deadline
// left set resets the stream even while it is quiet.
func TestSSEOutlivesWriteTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
		t.Run(proto, func(t *testing.T) {
			srv := New(newMemStore(), Options{WriteTimeout: timeout, Heartbeat: time.Hour})
			hs := httptest.NewUnstartedServer(srv)
			hs.Config.WriteTimeout = timeout
			if proto == "HTTP/2" {
				hs.EnableHTTP2 = true
				hs.StartTLS()
			} else {
				hs.Start()
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), sseGuard)
				defer cancel()
				srv.Close(ctx)
				hs.Close()
			})
			id, viewID := createDocWith(t, hs.Client(), hs.URL, "a")
			s := openSSE(t, hs.Client(), viewEventsURL(hs.URL, viewID), nil)
			if got, want := s.Resp.ProtoMajor, int(proto[5]-'0'); got != want {
				t.Fatalf("got %s, want %s", s.Resp.Proto, proto)
			}
			s.next(t) // retry
			st := newViewState()
			st.follow(t, s, 1)
			for i := range 2 {
				time.Sleep(3 * timeout)
				// The editor goes through a plain listener of its own, as
				// the Go client dials with the default transport.
				ed := httptest.NewServer(srv)
				c := dialAt(t, ed.URL, id)
				if err := c.Edit(ot.Op{ot.Retain(c.Len()), ot.Insert("b")}); err != nil {
					t.Fatal(err)
				}
				st.follow(t, s, int64(2+i))
				c.Close()
				ed.Close()
			}
		})
	}
}

// createDocWith creates a document through client.
func createDocWith(t testing.TB, client *http.Client, baseURL, text string) (id, viewID string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"text": text})
	resp, err := client.Post(baseURL+"/api/docs", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ ID, ViewID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: status %d, err %v", resp.StatusCode, err)
	}
	return out.ID, out.ViewID
}

// dialAt opens an editing client through another URL of the same server.
func dialAt(t *testing.T, baseURL, id string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sseGuard)
	defer cancel()
	c, err := Dial(ctx, "ws"+strings.TrimPrefix(baseURL, "http")+"/api/docs/"+id+"/ws", ClientOptions{})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

// smallBufferListener shrinks the kernel's send buffer of every accepted
// connection, so that a client that stops reading blocks the server's
// writes after a few kilobytes rather than megabytes.
type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// TestSSESlowViewer has a viewer that stops reading while an editor
// writes large ops. The slow viewer is disconnected; the editor and a
// second viewer are not held up; the slow viewer then resumes from the
// last event it got, without a gap.
func TestSSESlowViewer(t *testing.T) {
	srv := New(newMemStore(), Options{ViewerQueue: 8, WriteTimeout: 2 * time.Second, RateLimit: 1e6, RateBurst: 1e6})
	hs := httptest.NewUnstartedServer(srv)
	hs.Listener = smallBufferListener{hs.Listener}
	hs.Start()
	ts := &testServer{Server: hs, srv: srv}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), sseGuard)
		defer cancel()
		srv.Close(ctx)
		hs.Close()
	})
	id, viewID := createDocWith(t, http.DefaultClient, hs.URL, "")

	// The slow viewer: a raw connection with a small receive buffer,
	// which reads the headers, the retry line and the snapshot, then
	// nothing until the editor is done.
	d := net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/view/%s/events HTTP/1.1\r\nHost: x\r\n\r\n", viewID)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSSEHeaders(resp); err != nil {
		t.Fatal(err)
	}
	slow := newEventParser(resp.Body)
	slowState := newViewState()
	errFraming := errors.New("bad event")
	// readSlow reads the slow stream: up to the snapshot, or to its end.
	first := true
	readSlow := func(toEnd bool) error {
		for {
			blk, err := slow.Next()
			if err != nil {
				return err
			}
			m, err := checkFraming(slow, blk, first)
			first = false
			if err == nil {
				err = slowState.apply(m)
			}
			if err != nil {
				return fmt.Errorf("%w: %v", errFraming, err)
			}
			if m.Kind == "snapshot" && !toEnd {
				return nil
			}
		}
	}
	if err := readSlow(false); err != nil {
		t.Fatal(err)
	}

	fast := openSSE(t, http.DefaultClient, viewEventsURL(hs.URL, viewID), nil)
	fastState := newViewState()
	fastDone := make(chan error, 1)
	const ops, size = 60, 2048
	// The editor waits for the fast viewer after every op, so that however
	// loaded the machine, the fast one is never ViewerQueue events behind:
	// only the slow one may overflow.
	fastRev := make(chan int64, ops+2)
	go func() {
		if m := <-fast.msgs; m.Kind != "retry" {
			fastDone <- fmt.Errorf("got %v, want retry", m)
			return
		}
		for fastState.rev < ops {
			var m sseMsg
			select {
			case m = <-fast.msgs:
			case <-fast.done:
				fastDone <- fmt.Errorf("fast viewer's stream ended at rev %d: %v", fastState.rev, fast.err)
				return
			}
			if err := fastState.apply(m); err != nil {
				fastDone <- err
				return
			}
			fastRev <- fastState.rev
		}
		fastDone <- nil
	}()

	c := ts.dial(t, id, ClientOptions{})
	editDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), sseGuard)
		defer cancel()
		for i := range ops {
			big := strings.Repeat(string(rune('a'+i%26)), size)
			if err := c.Edit(ot.Op(nil).Retain(c.Len()).Insert(big)); err != nil {
				editDone <- err
				return
			}
			if err := c.WaitSynced(ctx); err != nil {
				editDone <- err
				return
			}
			for seen := int64(-1); seen < c.Rev(); {
				select {
				case seen = <-fastRev:
				case <-ctx.Done():
					editDone <- fmt.Errorf("fast viewer stuck before rev %d: %w", c.Rev(), ctx.Err())
					return
				}
			}
		}
		editDone <- nil
	}()
	// The editor and the fast viewer finish while the slow viewer reads
	// nothing: neither waits for it.
	waitErr(t, "editor", editDone)
	waitErr(t, "fast viewer", fastDone)

	// Now the slow viewer reads what reached it, and its stream ends.
	ended := make(chan error, 1)
	go func() { ended <- readSlow(true) }()
	select {
	case err := <-ended:
		// The server cut the connection: maybe inside an event, whose
		// incomplete part the parser drops.
		if errors.Is(err, errFraming) {
			t.Fatalf("slow viewer: %v", err)
		}
		t.Logf("slow viewer's stream ended with %v", err)
	case <-time.After(sseGuard):
		t.Fatal("slow viewer was never disconnected")
	}
	if slowState.rev >= ops {
		t.Fatalf("slow viewer got every op (to rev %d): the test did not make it slow", slowState.rev)
	}
	t.Logf("slow viewer was cut at rev %d of %d", slowState.rev, ops)

	// Its EventSource would reconnect with its last id.
	s := openSSE(t, http.DefaultClient, viewEventsURL(hs.URL, viewID), http.Header{"Last-Event-ID": {strconv.FormatInt(slowState.rev, 10)}})
	s.next(t) // retry
	slowState.follow(t, s, ops)
	if slowState.snapshots != 1 || slowState.text != fastState.text || slowState.text != c.Text() {
		t.Fatalf("after resuming: %d snapshots, text of %d bytes; want 1 snapshot and the editor's %d bytes",
			slowState.snapshots, len(slowState.text), len(c.Text()))
	}
}

// TestSSEEndsOnClientDisconnect checks that a viewer that goes away
// releases the document: its handler ends and the hub forgets it, so the
// idle document is unloaded (and snapshotted) as if it had never been
// watched.
func TestSSEEndsOnClientDisconnect(t *testing.T) {
	ts := newTestServer(t, Options{IdleUnload: 10 * time.Millisecond, Heartbeat: time.Hour})
	id, viewID := ts.createDoc(t, "a")
	s := openSSE(t, http.DefaultClient, viewEventsURL(ts.URL, viewID), nil)
	c := ts.dial(t, id, ClientOptions{})
	if err := c.Edit(ot.Op{ot.Retain(1), ot.Insert("b")}); err != nil {
		t.Fatal(err)
	}
	newViewState().follow(t, s, 2)
	c.Close()
	snapshotted := func() bool {
		ts.store.mu.Lock()
		defer ts.store.mu.Unlock()
		_, ok := ts.store.docs[id].snaps[2]
		return ok
	}
	// While the viewer watches, the document stays loaded.
	time.Sleep(100 * time.Millisecond)
	if snapshotted() {
		t.Fatal("the document was unloaded while a viewer was watching it")
	}
	s.close()
	for deadline := time.Now().Add(sseGuard); !snapshotted(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the document was not unloaded within %s of its viewer leaving", sseGuard)
		}
	}
}

// TestSSEResumeLargeFromStore: a viewer whose missing ops would take more
// than maxCatchUpBytes to send from the hub's memory gets them from the
// store instead; one a few small ops behind gets them from memory.
func TestSSEResumeLargeFromStore(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, viewID := ts.createDoc(t, "a") // rev 1
	ctx := guardCtx(t)
	c := ts.dial(t, id, ClientOptions{})
	big := strings.Repeat("é", maxCatchUpBytes/6)
	for range 4 { // revs 2..5, over maxCatchUpBytes together
		if err := c.EditFunc(func(text string) ot.Op {
			return ot.Op{}.Retain(utf8.RuneCountInString(text)).Insert(big)
		}); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Edit(ot.Op{ot.Insert("x")}.Retain(c.Len())); err != nil { // rev 6
		t.Fatal(err)
	}
	if err := c.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	far := openSSE(t, http.DefaultClient, viewEventsURL(ts.URL, viewID)+"?since=1", nil)
	for rev := int64(2); rev <= 6; rev++ {
		if m := far.nextEvent(t); m.Kind != "op" || m.ID != rev {
			t.Fatalf("resume from rev 1: got %v %d, want op %d", m.Kind, m.ID, rev)
		}
	}
	near := openSSE(t, http.DefaultClient, viewEventsURL(ts.URL, viewID)+"?since=4", nil)
	for rev := int64(5); rev <= 6; rev++ {
		if m := near.nextEvent(t); m.Kind != "op" || m.ID != rev {
			t.Errorf("resume from rev 4: got %v, want op %d", m, rev)
		}
	}
}
