package collab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/collabd/collabd/ot"
)

// call makes a JSON request and decodes the answer into out (when not
// nil), returning the status.
func call(t *testing.T, method, url string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, data)
		}
	}
	return resp.StatusCode
}

type createdComment struct {
	ID    string `json:"id"`
	Range Range  `json:"range"`
	Rev   int64  `json:"rev"`
}

// getComments returns the document's threads.
func getComments(t *testing.T, base, id string) commentsAnswer {
	t.Helper()
	var out commentsAnswer
	if st := call(t, "GET", base+"/api/docs/"+id+"/comments", nil, &out); st != 200 {
		t.Fatalf("GET comments: got %d, want 200", st)
	}
	return out
}

// postOp applies an op over HTTP, made on revision rev.
func postOp(t *testing.T, base, id string, rev int64, op string) int64 {
	t.Helper()
	var out struct{ Rev int64 }
	body := json.RawMessage(fmt.Sprintf(`{"rev":%d,"op":%s}`, rev, op))
	if st := call(t, "POST", base+"/api/docs/"+id+"/ops", body, &out); st != 200 {
		t.Fatalf("POST ops %s: got %d", op, st)
	}
	return out.Rev
}

func TestCommentsHTTP(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, viewID := ts.createDoc(t, "hello brave world")
	base := ts.URL + "/api/docs/" + id + "/comments"
	client := uuid.NewString()

	var c createdComment
	if st := call(t, "POST", base, map[string]any{"rev": 1, "range": []int{6, 11}, "text": "why brave?", "client": client, "name": "Ada"}, &c); st != 201 {
		t.Fatalf("create: got %d, want 201", st)
	}
	if c.Range != (Range{6, 11}) || c.Rev != 1 || c.ID == "" {
		t.Fatalf("create: got %+v, want range [6,11] at rev 1", c)
	}
	// An insert before moves it; one inside widens it; a comment made on
	// an old revision is placed at the head.
	rev := postOp(t, ts.URL, id, 1, `["oh, ",17]`)
	rev = postOp(t, ts.URL, id, rev, `[13,"very ",8]`)
	var c2 createdComment
	if st := call(t, "POST", base, map[string]any{"rev": 1, "range": []int{12, 17}, "text": "world", "name": "Bob"}, &c2); st != 201 {
		t.Fatalf("create on rev 1: got %d", st)
	}
	if c2.Range != (Range{21, 26}) || c2.Rev != rev {
		t.Fatalf("comment made on rev 1: got %+v, want [21,26] at rev %d", c2, rev)
	}
	got := getComments(t, ts.URL, id)
	if len(got.Comments) != 2 || got.Comments[0].Range != (Range{10, 20}) || got.Comments[0].Name != "Ada" ||
		got.Comments[0].Author != ts.srv.author(client) || got.Comments[0].Text != "why brave?" {
		t.Fatalf("GET: got %+v, want Ada's thread on [10,20] first", got)
	}

	// Replies and resolution.
	var rp struct{ ID string }
	if st := call(t, "POST", base+"/"+c.ID+"/replies", map[string]any{"text": "why not", "name": "Bob"}, &rp); st != 201 || rp.ID == "" {
		t.Fatalf("reply: got %d %+v, want 201 with an id", st, rp)
	}
	if st := call(t, "PATCH", base+"/"+c.ID, map[string]any{"resolved": true}, nil); st != 200 {
		t.Fatalf("resolve: got %d, want 200", st)
	}
	got = getComments(t, ts.URL, id)
	if th := got.Comments[0]; !th.Resolved || len(th.Replies) != 1 || th.Replies[0].Text != "why not" || th.Replies[0].Name != "Bob" {
		t.Fatalf("after reply and resolve: got %+v", th)
	}

	// Only the author edits or deletes.
	if st := call(t, "PATCH", base+"/"+c.ID, map[string]any{"text": "hijack", "client": uuid.NewString()}, nil); st != 403 {
		t.Fatalf("edit by another client: got %d, want 403", st)
	}
	if st := call(t, "PATCH", base+"/"+c.ID, map[string]any{"text": "why so brave?", "client": client}, nil); st != 200 {
		t.Fatalf("edit by its author: got %d, want 200", st)
	}
	if st := call(t, "DELETE", base+"/"+c2.ID+"/replies/nope", nil, nil); st != 404 {
		t.Fatalf("delete unknown reply: got %d, want 404", st)
	}

	// Deleting the text detaches the thread at that place; putting the
	// text back (a revert, a restore, an undo) brings it back.
	postOp(t, ts.URL, id, rev, `[10,-10,6]`)
	got = getComments(t, ts.URL, id)
	if th := got.Comments[0]; th.Range != (Range{10, 10}) || !th.Detached || th.Text != "why so brave?" {
		t.Fatalf("after deleting its text: got %+v, want detached on [10,10]", th)
	}
	var restored struct{ Rev int64 }
	if st := call(t, "POST", ts.URL+"/api/docs/"+id+"/restore", map[string]any{"rev": 1}, &restored); st != 200 {
		t.Fatalf("restore: got %d", st)
	}
	got = getComments(t, ts.URL, id)
	for _, th := range got.Comments {
		if th.ID == c.ID && (th.Range != (Range{6, 11}) || th.Detached) {
			t.Fatalf("after restoring rev 1: got %+v, want back on [6,11]", th)
		}
	}

	// A run of an HTTP write that deletes the word detaches the thread;
	// reverting the run puts the word back, and the thread with it.
	var run struct {
		Rev int64
		Run string
	}
	if st := call(t, "PUT", ts.URL+"/api/docs/"+id+"/text", map[string]any{"text": "hello  world"}, &run); st != 200 {
		t.Fatalf("PUT text: got %d", st)
	}
	if th := threadOf(t, ts.URL, id, c.ID); !th.Detached || th.Range != (Range{6, 6}) {
		t.Fatalf("after a run deleted its word: got %+v, want detached on [6,6]", th)
	}
	if st := call(t, "POST", ts.URL+"/api/docs/"+id+"/revert", map[string]any{"run": run.Run}, nil); st != 200 {
		t.Fatalf("revert: got %d", st)
	}
	if th := threadOf(t, ts.URL, id, c.ID); th.Detached || th.Range != (Range{6, 11}) {
		t.Fatalf("after reverting that run: got %+v, want back on [6,11]", th)
	}

	// Viewers see the threads only once the owner allows it.
	vbase := ts.URL + "/api/view/" + viewID + "/comments"
	if st := call(t, "GET", vbase, nil, nil); st != 403 {
		t.Fatalf("viewer by default: got %d, want 403", st)
	}
	if st := call(t, "PUT", base+"/settings", map[string]any{"viewers": true}, nil); st != 200 {
		t.Fatalf("allow viewers: got %d", st)
	}
	var v commentsAnswer
	if st := call(t, "GET", vbase, nil, &v); st != 200 || len(v.Comments) != 2 {
		t.Fatalf("viewer once allowed: got %d with %d threads, want 200 with 2", st, len(v.Comments))
	}
	if b, _ := json.Marshal(v); strings.Contains(string(b), id) {
		t.Fatal("the view answer shows the edit id")
	}

	if st := call(t, "DELETE", base+"/"+c.ID+"?client="+client, nil, nil); st != 204 {
		t.Fatalf("delete by author: got %d, want 204", st)
	}
	if got := getComments(t, ts.URL, id); len(got.Comments) != 1 {
		t.Fatalf("after delete: %d threads, want 1", len(got.Comments))
	}
}

func TestCommentsBadInput(t *testing.T) {
	ts := newTestServer(t, Options{MaxCommentBytes: 100, MaxComments: 2, CommentBurst: 1000, CommentRate: 1000})
	id, _ := ts.createDoc(t, "abc")
	base := ts.URL + "/api/docs/" + id + "/comments"
	for _, tc := range []struct {
		body any
		want int
	}{
		{map[string]any{"rev": 1, "range": []int{0, 4}, "text": "x"}, 400},
		{map[string]any{"rev": 1, "range": []int{2, 1}, "text": "x"}, 400},
		{map[string]any{"rev": 5, "range": []int{0, 1}, "text": "x"}, 400},
		{map[string]any{"rev": 1, "range": []int{0, 1}}, 400},
		{map[string]any{"rev": 1, "range": []int{0, 1}, "text": " "}, 400},
		{map[string]any{"rev": 1, "range": []int{0}, "text": "x"}, 400},
		{map[string]any{"rev": 1, "range": []int{0, 1}, "text": strings.Repeat("x", 101)}, 413},
		{map[string]any{"rev": 1, "range": []int{0, 1}, "text": "x", "client": "nope"}, 400},
		{map[string]any{"rev": 1, "range": []int{0, 1}, "text": "x"}, 201},
		{map[string]any{"rev": 1, "range": []int{0, 1}, "text": "x"}, 201},
		{map[string]any{"rev": 1, "range": []int{0, 1}, "text": "x"}, 413}, // MaxComments
	} {
		if st := call(t, "POST", base, tc.body, nil); st != tc.want {
			t.Errorf("POST %v: got %d, want %d", tc.body, st, tc.want)
		}
	}
	if st := call(t, "POST", base+"/nope/replies", map[string]any{"text": "x"}, nil); st != 404 {
		t.Errorf("reply to unknown thread: got %d, want 404", st)
	}
	if st := call(t, "POST", ts.URL+"/api/docs/"+uuid.NewString()+"/comments", map[string]any{"rev": 0, "range": []int{0, 0}, "text": "x"}, nil); st != 404 {
		t.Errorf("unknown document: got %d, want 404", st)
	}
}

func TestCommentsRateLimited(t *testing.T) {
	ts := newTestServer(t, Options{CommentRate: 0.001, CommentBurst: 3})
	id, _ := ts.createDoc(t, "abc")
	base := ts.URL + "/api/docs/" + id + "/comments"
	var last int
	for i := range 4 {
		last = call(t, "POST", base, map[string]any{"rev": 1, "range": []int{0, 1}, "text": "x"}, nil)
		if i < 3 && last != 201 {
			t.Fatalf("comment %d: got %d, want 201", i, last)
		}
	}
	if last != 429 {
		t.Fatalf("comment beyond the burst: got %d, want 429", last)
	}
}

func TestCommentsPerDocumentBytes(t *testing.T) {
	ts := newTestServer(t, Options{MaxCommentBytes: 1000, MaxCommentDocBytes: 3000, CommentBurst: 1000, CommentRate: 1000})
	id, _ := ts.createDoc(t, "abc")
	base := ts.URL + "/api/docs/" + id + "/comments"
	var c createdComment
	call(t, "POST", base, map[string]any{"rev": 1, "range": []int{0, 1}, "text": "x"}, &c)
	st := 0
	for i := 0; i < 10 && st != 413; i++ {
		st = call(t, "POST", base+"/"+c.ID+"/replies", map[string]any{"text": strings.Repeat("y", 900)}, nil)
	}
	if st != 413 {
		t.Fatalf("replies past MaxCommentDocBytes: got %d, want 413", st)
	}
	if n := ts.srv.commentBytes(t, id); n > 3000 {
		t.Fatalf("document holds %d bytes of comments, over its 3000", n)
	}
}

// commentBytes reads a document's comment byte count on its hub.
func (s *Server) commentBytes(t *testing.T, id string) int {
	h, err := s.acquire(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer s.release(h)
	n := -1
	m := commentReq{done: make(chan struct{}), do: func(h *hub, err error) { n = h.comments.bytes }}
	h.send(context.Background(), m)
	<-m.done
	return n
}

// TestCommentsOverWebSocket: a client that asks for comments gets them
// after its welcome and hears of every change; one that does not ask
// hears nothing of them.
func TestCommentsOverWebSocket(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "hello world")
	base := ts.URL + "/api/docs/" + id + "/comments"
	var c createdComment
	call(t, "POST", base, map[string]any{"rev": 1, "range": []int{0, 5}, "text": "first"}, &c)

	ctx := guardCtx(t)
	dial := func(features string) *rawConn {
		r := ts.raw(t, id)
		hello := fmt.Sprintf(`{"type":"hello","client":%q,"name":"x"%s}`, uuid.NewString(), features)
		if err := r.send(ctx, hello); err != nil {
			t.Fatal(err)
		}
		return r
	}
	read := func(r *rawConn) map[string]any {
		for {
			w, err := r.next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			json.Unmarshal([]byte(w.raw), &m)
			if m["type"] != "presence" && m["type"] != "leave" {
				return m
			}
		}
	}
	plain := dial("")
	opted := dial(`,"features":["comments"]`)
	if m := read(plain); m["type"] != "welcome" {
		t.Fatalf("plain client: got %v, want welcome", m)
	}
	if m := read(opted); m["type"] != "welcome" {
		t.Fatalf("opted-in client: got %v, want welcome", m)
	}
	m := read(opted)
	if m["type"] != "comments" || len(m["comments"].([]any)) != 1 {
		t.Fatalf("after welcome: got %v, want the one thread", m)
	}
	var rp struct{ ID string }
	call(t, "POST", base+"/"+c.ID+"/replies", map[string]any{"text": "re"}, &rp)
	call(t, "PATCH", base+"/"+c.ID, map[string]any{"resolved": true}, nil)
	for _, want := range []string{"replied", "resolved"} {
		m := read(opted)
		if m["type"] != "comment" || m["event"] != want || m["id"] != c.ID {
			t.Fatalf("got %v, want comment %s of %s", m, want, c.ID)
		}
		th := m["comment"].(map[string]any)
		if want == "resolved" && th["resolved"] != true {
			t.Fatalf("resolved message: thread %v not resolved", th)
		}
	}
	// The plain client's next message is the op, not a comment.
	postOp(t, ts.URL, id, 1, `["x",11]`)
	if m := read(plain); m["type"] != "op" {
		t.Fatalf("plain client: got %v, want the op (no comment messages)", m)
	}
}

// TestCommentsSurviveRestart: a new server on the same store finds the
// threads, moved through the ops committed after they were stored.
func TestCommentsSurviveRestart(t *testing.T) {
	store := newMemStore()
	srv := New(store, Options{})
	ts := &testServer{Server: httptest.NewServer(srv), srv: srv, store: store}
	id, _ := ts.createDoc(t, "hello world")
	var c createdComment
	call(t, "POST", ts.URL+"/api/docs/"+id+"/comments", map[string]any{"rev": 1, "range": []int{6, 11}, "text": "w"}, &c)
	rev := postOp(t, ts.URL, id, 1, `["abc ",11]`)
	for range 5 {
		rev = postOp(t, ts.URL, id, rev, `["-",`+fmt.Sprint(15+rev-2)+`]`)
	}
	// A crash: the hub never stores the moved anchors (Close would).
	ts.Close()
	srv2 := New(store, Options{})
	defer srv2.Close(context.Background())
	ts2 := httptest.NewServer(srv2)
	defer ts2.Close()
	got := getComments(t, ts2.URL, id)
	if len(got.Comments) != 1 || got.Comments[0].Range != (Range{15, 20}) {
		t.Fatalf("after restart: got %+v, want one thread on [15,20]", got)
	}
	srv.Close(context.Background())
	// Deleting the document deletes its comments.
	if st := call(t, "DELETE", ts2.URL+"/api/docs/"+id, nil, nil); st != 204 {
		t.Fatalf("delete: got %d", st)
	}
	if st := call(t, "GET", ts2.URL+"/api/docs/"+id+"/comments", nil, nil); st != 404 {
		t.Fatalf("comments of a deleted document: got %d, want 404", st)
	}
}

// TestCommentWebhooks: creating a thread and resolving it are events;
// reopening and replying are not.
func TestCommentWebhooks(t *testing.T) {
	rc := newReceiver(t, []byte("webhook-secret"))
	ts := webhookServer(t, rc, &memOutbox{}, WebhookOptions{Debounce: 20 * time.Millisecond})
	id, viewID := ts.createDoc(t, "hello")
	base := ts.URL + "/api/docs/" + id + "/comments"
	var c createdComment
	call(t, "POST", base, map[string]any{"rev": 1, "range": []int{0, 5}, "text": "hi", "name": "Ada"}, &c)
	call(t, "POST", base+"/"+c.ID+"/replies", map[string]any{"text": "re"}, nil)
	call(t, "PATCH", base+"/"+c.ID, map[string]any{"resolved": true}, nil)
	call(t, "PATCH", base+"/"+c.ID, map[string]any{"resolved": false}, nil)
	call(t, "PATCH", base+"/"+c.ID, map[string]any{"resolved": true}, nil)
	count := func(evs []webhookEvent, typ string) (n int) {
		for _, e := range evs {
			if e.Type == typ {
				n++
			}
		}
		return n
	}
	evs := rc.waitFor(t, "comment events", func(evs []webhookEvent) bool {
		return count(evs, EventCommentCreated) == 1 && count(evs, EventCommentResolved) == 2
	})
	for _, e := range evs {
		if e.Type != EventCommentCreated && e.Type != EventCommentResolved {
			continue
		}
		if e.Doc != id || e.ViewID != viewID || e.Comment == nil || e.Comment.ID != c.ID || e.Comment.Name != "Ada" || e.Comment.Range != (Range{0, 5}) {
			t.Fatalf("%s: got %+v (comment %+v), want thread %s of doc %s", e.Type, e, e.Comment, c.ID, id)
		}
		if e.Type == EventCommentResolved && !e.Comment.Resolved {
			t.Fatalf("resolved event of a thread not resolved: %+v", e.Comment)
		}
	}
}

// TestCommentRoleToken: a comment token reads and writes comments and
// the view endpoints, never the text's edit endpoints; a view token
// cannot comment.
func TestCommentRoleToken(t *testing.T) {
	key := bytes.Repeat([]byte("k"), 32)
	a, err := NewAuth(AuthOptions{HMACSecret: key})
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, Options{Auth: a})
	id := uuid.NewString()
	viewID := uuid.NewString()
	if err := ts.store.Create(t.Context(), DocMeta{ID: id, ViewID: viewID}, &Record{Rev: 1, Op: ot.Op{ot.Insert("hello")}}); err != nil {
		t.Fatal(err)
	}
	tok := func(role string) string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"doc": id, "role": role, "name": "Tok",
			"exp": time.Now().Add(time.Hour).Unix()}).SignedString(key)
		return s
	}
	do := func(method, path, token string, body string) int {
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	comment, view := tok(RoleComment), tok(RoleView)
	for _, tc := range []struct {
		method, path, token, body string
		want                      int
	}{
		{"POST", "/api/docs/" + id + "/comments", comment, `{"rev":1,"range":[0,5],"text":"x"}`, 201},
		{"GET", "/api/docs/" + id + "/comments", comment, "", 200},
		{"GET", "/api/view/" + viewID, comment, "", 200},
		{"POST", "/api/docs/" + id + "/ops", comment, `{"rev":1,"op":["x",5]}`, 403},
		{"GET", "/api/docs/" + id + "/ws", comment, "", 403},
		{"PUT", "/api/docs/" + id + "/comments/settings", comment, `{"viewers":true}`, 403},
		{"POST", "/api/docs/" + id + "/comments", view, `{"rev":1,"range":[0,5],"text":"x"}`, 403},
		{"GET", "/api/docs/" + id + "/comments", view, "", 403},
	} {
		if got := do(tc.method, tc.path, tc.token, tc.body); got != tc.want {
			t.Errorf("%s %s with a %s token: got %d, want %d", tc.method, tc.path,
				map[string]string{comment: "comment", view: "view"}[tc.token], got, tc.want)
		}
	}
	if got := getCommentsAuth(t, ts, id, comment); got.Comments[0].Name != "Tok" {
		t.Errorf("a comment made with a token is named %q, want the token's name Tok", got.Comments[0].Name)
	}
}

func getCommentsAuth(t *testing.T, ts *testServer, id, token string) commentsAnswer {
	t.Helper()
	req, _ := http.NewRequest("GET", ts.URL+"/api/docs/"+id+"/comments", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out commentsAnswer
	json.NewDecoder(resp.Body).Decode(&out)
	return out
}

// TestCommentsCountInMemoryBudget: threads are charged to the server's
// memory budget, and once it is spent new ones are refused (503) rather
// than grown past it.
func TestCommentsCountInMemoryBudget(t *testing.T) {
	ts := newTestServer(t, Options{MemoryBudget: 256 << 10, IdleUnload: time.Hour, CommentRate: 1000, CommentBurst: 1000})
	id, _ := ts.createDoc(t, "abc")
	ts.dial(t, id, ClientOptions{}) // an editor: the document cannot be unloaded to make room
	base := ts.URL + "/api/docs/" + id + "/comments"
	big := strings.Repeat("z", 10<<10)
	st, n := 0, 0
	for ; n < 100; n++ {
		if st = call(t, "POST", base, map[string]any{"rev": 1, "range": []int{0, 1}, "text": big}, nil); st != 201 {
			break
		}
	}
	if st != 503 {
		t.Fatalf("after %d threads of 10 KiB on a 256 KiB budget: got %d, want 503", n, st)
	}
	if n < 5 {
		t.Fatalf("refused after %d threads: the budget should hold a few", n)
	}
	if used := ts.srv.mem.used.Load(); used > 2*256<<10 {
		t.Fatalf("memory charged %d, over twice the budget", used)
	}
}

// threadOf returns thread cid of document id.
func threadOf(t *testing.T, base, id, cid string) thread {
	t.Helper()
	for _, th := range getComments(t, base, id).Comments {
		if th.ID == cid {
			return th
		}
	}
	t.Fatalf("no thread %s", cid)
	return thread{}
}

// TestCommentFromAheadJoinsAtItsRevision: a record written at a revision
// this server has not applied yet (another node's, in cluster mode) is
// not placed on older text; it joins once the document reaches it.
func TestCommentFromAheadJoinsAtItsRevision(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "hello world")
	rec := mustJSON(thread{ID: uuid.NewString(), Range: Range{2, 4}, Text: "from ahead", Rev: 2, Time: time.Now().UTC()})
	var th thread
	json.Unmarshal(rec, &th)
	if err := ts.store.PutComments(t.Context(), id, map[string][]byte{th.ID: rec}, nil); err != nil {
		t.Fatal(err)
	}
	if got := getComments(t, ts.URL, id); len(got.Comments) != 0 {
		t.Fatalf("at rev 1: got %+v, want no thread yet", got.Comments)
	}
	postOp(t, ts.URL, id, 1, `["ab",11]`) // rev 2: the record's range is at it
	postOp(t, ts.URL, id, 2, `["c",13]`)  // rev 3 moves it
	if got := getComments(t, ts.URL, id); len(got.Comments) != 1 || got.Comments[0].Range != (Range{3, 5}) {
		t.Fatalf("at rev 3: got %+v, want the thread on [3,5]", got.Comments)
	}
}

// TestCommentAnchorsStoredInBackground: while a document is open and
// edited, the hub stores all anchors every commentSaveEvery revisions,
// off its goroutine; a server that starts after a crash moves them from
// there, not from each thread's older record.
func TestCommentAnchorsStoredInBackground(t *testing.T) {
	store := newMemStore()
	srv := New(store, Options{IdleUnload: 100 * time.Millisecond, RateLimit: 1e6, RateBurst: 1e6})
	ts := &testServer{Server: httptest.NewServer(srv), srv: srv, store: store}
	defer func() { ts.Close(); srv.Close(context.Background()) }()
	id, _ := ts.createDoc(t, "hello world")
	var c createdComment
	call(t, "POST", ts.URL+"/api/docs/"+id+"/comments", map[string]any{"rev": 1, "range": []int{6, 11}, "text": "w"}, &c)
	ed := ts.dial(t, id, ClientOptions{}) // keeps the document open
	ctx := guardCtx(t)
	for range commentSaveEvery + 10 {
		if err := ed.Edit(ot.Op{}.Insert("x").Retain(ed.Len())); err != nil {
			t.Fatal(err)
		}
		if err := ed.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var rec anchorsRecord
	deadline := time.Now().Add(10 * time.Second)
	for rec.Rev < commentSaveEvery {
		recs, _ := store.Comments(ctx, id)
		json.Unmarshal(recs[anchorsKey], &rec)
		if time.Now().After(deadline) {
			t.Fatalf("no anchors record past rev %d: got %+v", commentSaveEvery, rec)
		}
		time.Sleep(20 * time.Millisecond)
	}
	shift := int(rec.Rev - 1)
	if a := rec.Anchors[c.ID]; a != [3]int{6 + shift, 11 + shift, 0} {
		t.Fatalf("stored anchors at rev %d: got %v, want [%d %d 0]", rec.Rev, a, 6+shift, 11+shift)
	}
	// After a crash (this server never stores again), another finds the
	// thread where the ops put it.
	srv2 := New(store, Options{})
	defer srv2.Close(context.Background())
	ts2 := httptest.NewServer(srv2)
	defer ts2.Close()
	n := commentSaveEvery + 10
	if got := threadOf(t, ts2.URL, id, c.ID); got.Range != (Range{6 + n, 11 + n}) {
		t.Fatalf("after the crash: got %v, want [%d,%d]", got.Range, 6+n, 11+n)
	}
}
