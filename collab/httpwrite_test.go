package collab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

// writeResp is the answer of an HTTP write.
type writeResp struct {
	Rev int64  `json:"rev"`
	Run string `json:"run"`
}

// httpWrite makes an HTTP write with a JSON body and optional headers
// (name, value pairs) and returns the status, headers and body.
func httpWrite(t *testing.T, method, url string, body any, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	b, ok := body.(string)
	if !ok {
		j, _ := json.Marshal(body)
		b = string(j)
	}
	req, err := http.NewRequestWithContext(guardCtx(t), method, url, strings.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header, out.Bytes()
}

// mustWrite is httpWrite that wants 200 and returns the answer.
func mustWrite(t *testing.T, method, url string, body any, hdr ...string) writeResp {
	t.Helper()
	code, _, b := httpWrite(t, method, url, body, hdr...)
	if code != http.StatusOK {
		t.Fatalf("%s %s %v: got %d %s, want 200", method, url, body, code, b)
	}
	var out writeResp
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(out.Run); out.Run != "" && err != nil {
		t.Errorf("run %q is not a UUID", out.Run)
	}
	return out
}

func opsURL(ts *testServer, id string) string  { return ts.URL + "/api/docs/" + id + "/ops" }
func textURL(ts *testServer, id string) string { return ts.URL + "/api/docs/" + id + "/text" }

// TestHTTPWriteOps: an op made on an old revision is transformed over
// what editors committed since; a no-op makes no revision; the run is in
// /revisions and names the op's author.
func TestHTTPWriteOps(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "hello")
	ctx := guardCtx(t)
	c := ts.dial(t, id, ClientOptions{})
	if err := c.Edit(ot.Op{}.Insert(">> ").Retain(5)); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	// Made on rev 1 ("hello"): appends, after the editor's rev 2.
	got := mustWrite(t, "POST", opsURL(ts, id), map[string]any{"rev": 1, "op": []any{5, " world"}, "name": "bot"})
	if got.Rev != 3 || got.Run == "" {
		t.Fatalf("write: got %+v, want rev 3 and a run", got)
	}
	if err := c.WaitRev(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if c.Text() != ">> hello world" {
		t.Errorf("editor: got %q", c.Text())
	}
	// Deleting on rev 1 what is already gone, from rev 2 on: nothing.
	noop := mustWrite(t, "POST", opsURL(ts, id), map[string]any{"rev": 3, "op": []any{14}})
	if noop.Rev != 3 {
		t.Errorf("no-op write: got rev %d, want the head 3", noop.Rev)
	}
	ops := ts.allOps(t, id, 100)
	if len(ops) != 3 || ops[2].Author == "" || ops[2].Author == c.Author() {
		t.Fatalf("ops: got %+v, want 3, the last by the run's own author", ops)
	}
	var revs []map[string]any
	getJSONStatus(t, ts.URL+"/api/docs/"+id+"/revisions", 200, &revs)
	if len(revs) != 3 || revs[2]["run"] != got.Run || revs[1]["run"] != nil {
		t.Errorf("revisions: got %v, want run %s on rev 3 only", revs, got.Run)
	}
}

// TestHTTPWriteAgainstEditors: HTTP writes made on stale revisions while
// two WebSocket editors type: everyone converges, each write's text is
// there once, and the op log replays to the final text.
func TestHTTPWriteAgainstEditors(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "start\n")
	ctx := guardCtx(t)
	a, b := ts.dial(t, id, ClientOptions{}), ts.dial(t, id, ClientOptions{})
	done := editConcurrently([]*Client{a, b}, 3, 150)
	rng := rand.New(rand.NewPCG(4, 5))
	var marks []string
	for i := range 20 {
		text, rev := serverText(t, ts.URL, id)
		time.Sleep(time.Duration(rng.IntN(10)) * time.Millisecond)
		mark := fmt.Sprintf("<%d>", i)
		marks = append(marks, mark)
		n := len([]rune(text))
		if i%2 == 0 {
			at := rng.IntN(n + 1)
			mustWrite(t, "POST", opsURL(ts, id), map[string]any{"rev": rev, "op": ot.Op{}.Retain(at).Insert(mark).Retain(n - at)})
		} else {
			at := rng.IntN(len(text) + 1)
			for !utf8ValidCut(text, at) {
				at--
			}
			mustWrite(t, "PUT", textURL(ts, id), map[string]any{"rev": rev, "text": text[:at] + mark + text[at:]})
		}
	}
	waitErr(t, "editing", done)
	text, head := serverText(t, ts.URL, id)
	for _, c := range []*Client{a, b} {
		if err := c.WaitRev(ctx, head); err != nil {
			t.Fatal(err)
		}
		if c.Text() != text {
			t.Errorf("editor: got %q, want the server's %q", c.Text(), text)
		}
	}
	if texts := replayOps(t, ts, id); texts[head] != text {
		t.Errorf("replay: got %q, want %q", texts[head], text)
	}
	// The editors delete at random, so a mark may be cut; none is doubled.
	for _, m := range marks {
		if strings.Count(text, m) > 1 {
			t.Errorf("mark %s is in %q more than once", m, text)
		}
	}
}

func utf8ValidCut(s string, i int) bool { return i == 0 || i == len(s) || (s[i]&0xc0) != 0x80 }

// TestHTTPWritePutTextKeepsOthersEdits: a PUT made on rev R changes only
// what its text changed; an editor's edit elsewhere after R survives.
func TestHTTPWritePutTextKeepsOthersEdits(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "title\nfirst line\nsecond line\n")
	ctx := guardCtx(t)
	c := ts.dial(t, id, ClientOptions{})
	if err := c.EditFunc(func(s string) ot.Op { return ot.Op{}.Retain(len([]rune(s))).Insert("added by Ada\n") }); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	got := mustWrite(t, "PUT", textURL(ts, id), map[string]any{"rev": 1, "text": "title\nfirst line, edited\nsecond line\n"})
	want := "title\nfirst line, edited\nsecond line\nadded by Ada\n"
	if d := ts.docState(t, id); d.Text != want || d.Rev != got.Rev {
		t.Errorf("after PUT: got %q at %d, want %q at %d", d.Text, d.Rev, want, got.Rev)
	}
	// Without rev: against the head.
	got = mustWrite(t, "PUT", textURL(ts, id), map[string]any{"text": "fresh"})
	if d := ts.docState(t, id); d.Text != "fresh" || d.Rev != got.Rev {
		t.Errorf("PUT without rev: got %q at %d, want %q at %d", d.Text, d.Rev, "fresh", got.Rev)
	}
	// The same text again: no revision.
	if again := mustWrite(t, "PUT", textURL(ts, id), map[string]any{"text": "fresh"}); again.Rev != got.Rev {
		t.Errorf("PUT of the same text: got rev %d, want %d", again.Rev, got.Rev)
	}
}

// TestHTTPWriteIdempotent: a retry with the same key, sequential or at
// once, gets the first answer and applies nothing; another key or another
// document is another write.
func TestHTTPWriteIdempotent(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "x")
	body := map[string]any{"rev": 1, "op": []any{1, "!"}}
	first := mustWrite(t, "POST", opsURL(ts, id), body, "Idempotency-Key", "key-1")
	again := mustWrite(t, "POST", opsURL(ts, id), body, "Idempotency-Key", "key-1")
	if again != first {
		t.Errorf("retry: got %+v, want the first answer %+v", again, first)
	}
	// Ten at once with a new key: one revision.
	var wg sync.WaitGroup
	answers := make([]writeResp, 10)
	codes := make([]int, 10)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("PUT", textURL(ts, id), strings.NewReader(`{"rev":2,"text":"x!?"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", "key-2")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			codes[i] = resp.StatusCode
			json.NewDecoder(resp.Body).Decode(&answers[i])
		}()
	}
	wg.Wait()
	for i := range answers {
		if codes[i] != 200 || answers[i] != answers[0] {
			t.Errorf("concurrent retry %d: got %d %+v, want 200 %+v", i, codes[i], answers[i], answers[0])
		}
	}
	if d := ts.docState(t, id); d.Text != "x!?" || d.Rev != 3 {
		t.Errorf("after retries: got %q at %d, want %q at 3", d.Text, d.Rev, "x!?")
	}
	other := mustWrite(t, "POST", opsURL(ts, id), map[string]any{"rev": 3, "op": []any{3, "."}}, "Idempotency-Key", "key-3")
	if other.Rev != 4 || other.Run == first.Run {
		t.Errorf("another key: got %+v, want rev 4 and a new run", other)
	}
	// The same key on another document is that document's own.
	id2, _ := ts.createDoc(t, "y")
	if r := mustWrite(t, "POST", opsURL(ts, id2), map[string]any{"rev": 1, "op": []any{1, "!"}}, "Idempotency-Key", "key-1"); r.Rev != 2 || r.Run == first.Run {
		t.Errorf("same key, other document: got %+v, want rev 2 and another run", r)
	}
	for _, k := range []string{strings.Repeat("k", 129), "tab\tkey", "é"} {
		code, hdr, b := httpWrite(t, "POST", opsURL(ts, id), body, "Idempotency-Key", k)
		wantAPIError(t, "key "+k, code, hdr, b, 400, CodeBadMessage)
	}
}

// TestHTTPWriteStrict: with strict, a write on anything but the head is
// refused 409 with the head in the body.
func TestHTTPWriteStrict(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "abc")
	mustWrite(t, "POST", opsURL(ts, id), map[string]any{"rev": 1, "op": []any{3, "d"}, "strict": true})
	for _, tc := range []struct {
		method string
		body   any
	}{
		{"POST", map[string]any{"rev": 1, "op": []any{3, "e"}, "strict": true}},
		{"PUT", map[string]any{"rev": 1, "text": "abce", "strict": true}},
	} {
		code, _, b := httpWrite(t, tc.method, ts.URL+"/api/docs/"+id+map[string]string{"POST": "/ops", "PUT": "/text"}[tc.method], tc.body)
		var e struct {
			Error struct{ Code string }
			Rev   int64
		}
		json.Unmarshal(b, &e)
		if code != http.StatusConflict || e.Error.Code != CodeConflict || e.Rev != 2 {
			t.Errorf("%s strict on an old rev: got %d %s, want 409 conflict with rev 2", tc.method, code, b)
		}
	}
	if d := ts.docState(t, id); d.Text != "abcd" || d.Rev != 2 {
		t.Errorf("after conflicts: got %q at %d", d.Text, d.Rev)
	}
}

// TestHTTPWriteBadInput: each bad request gets its documented status and
// code, and changes nothing.
func TestHTTPWriteBadInput(t *testing.T) {
	ts := newTestServer(t, Options{MaxDocChars: 100})
	id, viewID := ts.createDoc(t, "abc")
	for _, tc := range []struct {
		what, method, path, ctype, body string
		hdr                             []string
		status                          int
		code                            string
	}{
		{"negative rev", "POST", "/ops", "", `{"rev":-1,"op":[3]}`, nil, 400, CodeBadOp},
		{"future rev", "POST", "/ops", "", `{"rev":9,"op":[3]}`, nil, 400, CodeBadOp},
		{"length mismatch", "POST", "/ops", "", `{"rev":1,"op":[2,"x"]}`, nil, 400, CodeBadOp},
		{"bad component", "POST", "/ops", "", `{"rev":1,"op":[0,3]}`, nil, 400, CodeBadOp},
		{"op not an array", "POST", "/ops", "", `{"rev":1,"op":"x"}`, nil, 400, CodeBadOp},
		{"no rev", "POST", "/ops", "", `{"op":[3]}`, nil, 400, CodeBadMessage},
		{"no op", "POST", "/ops", "", `{"rev":1}`, nil, 400, CodeBadMessage},
		{"not JSON", "POST", "/ops", "", `nope`, nil, 400, CodeBadMessage},
		{"not JSON type", "POST", "/ops", "text/plain", `{"rev":1,"op":[3]}`, nil, 415, CodeBadMessage},
		{"foreign origin", "POST", "/ops", "", `{"rev":1,"op":[3,"x"]}`, []string{"Origin", "https://evil.example"}, 403, CodeForbidden},
		{"too long", "POST", "/ops", "", `{"rev":1,"op":[3,"` + strings.Repeat("x", 200) + `"]}`, nil, 413, CodeTooLarge},
		{"body too large", "POST", "/ops", "", `{"rev":1,"op":[3,"` + strings.Repeat("x", 5000) + `"]}`, nil, 413, CodeTooLarge},
		{"text too long", "PUT", "/text", "", `{"text":"` + strings.Repeat("x", 101) + `"}`, nil, 413, CodeTooLarge},
		{"PUT future rev", "PUT", "/text", "", `{"rev":9,"text":"x"}`, nil, 400, CodeBadOp},
		{"PUT no text", "PUT", "/text", "", `{"rev":1}`, nil, 400, CodeBadMessage},
		{"PUT foreign origin", "PUT", "/text", "", `{"text":"x"}`, []string{"Origin", "https://evil.example"}, 403, CodeForbidden},
		{"unknown doc", "POST", "/../" + uuid.NewString() + "/ops", "", `{"rev":0,"op":[]}`, nil, 404, CodeNotFound},
	} {
		url := ts.URL + "/api/docs/" + id + tc.path
		if strings.HasPrefix(tc.path, "/../") {
			url = ts.URL + "/api/docs/" + tc.path[4:]
		}
		req, _ := http.NewRequest(tc.method, url, strings.NewReader(tc.body))
		ct := tc.ctype
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
		for i := 0; i+1 < len(tc.hdr); i += 2 {
			req.Header.Set(tc.hdr[i], tc.hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		wantAPIError(t, tc.what, resp.StatusCode, resp.Header, b.Bytes(), tc.status, tc.code)
	}
	// By the view id there is no such endpoint.
	if code, _, _ := httpWrite(t, "POST", ts.URL+"/api/view/"+viewID+"/ops", `{"rev":1,"op":[3,"x"]}`); code != 404 && code != 405 {
		t.Errorf("write by view id: got %d, want 404 or 405", code)
	}
	if d := ts.docState(t, id); d.Text != "abc" || d.Rev != 1 {
		t.Errorf("after bad writes: got %q at %d", d.Text, d.Rev)
	}
}

// TestHTTPWriteDeepRebase: with a few ops of memory, a write made a
// thousand ops back is rebased over the store's ops and lands right.
func TestHTTPWriteDeepRebase(t *testing.T) {
	ts := newTestServer(t, Options{HistoryLimit: 4, MaxCatchUp: 10, RateLimit: 10000, RateBurst: 10000})
	id, _ := ts.createDoc(t, "end")
	ctx := guardCtx(t)
	c := ts.dial(t, id, ClientOptions{})
	for range 300 { // one op each, acknowledged before the next
		if err := c.Edit(ot.Op{}.Insert("a").Retain(c.Len())); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if d := ts.docState(t, id); d.Rev != 301 {
		t.Fatalf("setup: got rev %d, want 301", d.Rev)
	}
	got := mustWrite(t, "POST", opsURL(ts, id), map[string]any{"rev": 1, "op": []any{3, "!"}})
	d := ts.docState(t, id)
	if d.Text != strings.Repeat("a", 300)+"end!" || d.Rev != got.Rev {
		t.Errorf("deep rebase: got %q… at %d, want a×300 end! at %d", d.Text[len(d.Text)-8:], d.Rev, got.Rev)
	}
	// Past MaxWriteRebase: refused.
	ts2 := newTestServer(t, Options{HistoryLimit: 4, MaxCatchUp: 10, MaxWriteRebase: 100, RateLimit: 10000, RateBurst: 10000})
	id2, _ := ts2.createDoc(t, "end")
	c2 := ts2.dial(t, id2, ClientOptions{})
	for range 200 {
		if err := c2.Edit(ot.Op{}.Insert("a").Retain(c2.Len())); err != nil {
			t.Fatal(err)
		}
		if err := c2.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	code, hdr, b := httpWrite(t, "POST", opsURL(ts2, id2), map[string]any{"rev": 1, "op": []any{3, "!"}})
	wantAPIError(t, "past MaxWriteRebase", code, hdr, b, 400, CodeBadOp)
}

// TestHTTPWriteRateLimited: past WriteBurst, 429 with Retry-After.
func TestHTTPWriteRateLimited(t *testing.T) {
	ts := newTestServer(t, Options{WriteRate: 0.001, WriteBurst: 3})
	id, _ := ts.createDoc(t, "")
	for i := range 3 {
		mustWrite(t, "PUT", textURL(ts, id), map[string]any{"text": fmt.Sprint(i)})
	}
	code, hdr, b := httpWrite(t, "PUT", textURL(ts, id), map[string]any{"text": "no"})
	wantAPIError(t, "past the burst", code, hdr, b, 429, CodeRateLimited)
	if hdr.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// TestHTTPWriteTokens: with tokens on, an edit token writes; a view
// token, another document's token and no token are refused.
func TestHTTPWriteTokens(t *testing.T) {
	k := newTestKeys(t)
	ts := newTestServer(t, Options{Auth: k.auth(t, "create-secret", 0)})
	id, _ := ts.createDocAuth(t, "abc", "create-secret")
	other, _ := ts.createDocAuth(t, "abc", "create-secret")
	edit := claims(id, "edit")
	edit["name"] = "Agent Smith"
	for _, tc := range []struct {
		what, token string
		status      int
	}{
		{"no token", "", 401},
		{"view token", k.sign(t, "HS256", claims(id, "view")), 403},
		{"other document's token", k.sign(t, "HS256", claims(other, "edit")), 403},
		{"edit token", k.sign(t, "HS256", edit), 200},
	} {
		for _, ep := range []struct{ method, url, body string }{
			{"POST", opsURL(ts, id), `{"rev":1,"op":[3,"!"]}`},
			{"PUT", textURL(ts, id), `{"text":"abc?"}`},
		} {
			var hdr []string
			if tc.token != "" {
				hdr = []string{"Authorization", "Bearer " + tc.token}
			}
			code, _, b := httpWrite(t, ep.method, ep.url, ep.body, hdr...)
			if code != tc.status {
				t.Errorf("%s %s with %s: got %d %s, want %d", ep.method, ep.url, tc.what, code, b, tc.status)
			}
		}
	}
}

// TestWriteClient: the Go client's calls, each against a live editor.
func TestWriteClient(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "one\n")
	ctx := guardCtx(t)
	ed := ts.dial(t, id, ClientOptions{})
	wc := &WriteClient{BaseURL: ts.URL}
	r, err := wc.Ops(ctx, id, 1, ot.Op{}.Retain(4).Insert("two\n"), WriteOptions{Name: "bot", IdempotencyKey: "k"})
	if err != nil || r.Rev != 2 || r.Run == "" {
		t.Fatalf("Ops: got %+v, %v", r, err)
	}
	if again, err := wc.Ops(ctx, id, 1, ot.Op{}.Retain(4).Insert("two\n"), WriteOptions{Name: "bot", IdempotencyKey: "k"}); err != nil || again != r {
		t.Errorf("Ops retried: got %+v, %v, want %+v", again, err, r)
	}
	_, err = wc.Text(ctx, id, 1, "uno\n", WriteOptions{Strict: true})
	if we, ok := err.(*WriteError); !ok || we.Status != 409 || we.Code != CodeConflict || we.Rev != 2 {
		t.Errorf("strict Text on an old rev: got %v, want a 409 conflict at rev 2", err)
	}
	if r, err = wc.Text(ctx, id, 1, "uno\n", WriteOptions{}); err != nil || r.Rev != 3 {
		t.Fatalf("Text: got %+v, %v", r, err)
	}
	last, err := wc.Stream(ctx, id, -1, -1, "agent", strings.NewReader("three\n"), nil)
	if err != nil || !last.Done || last.Inserted != 6 {
		t.Fatalf("Stream: got %+v, %v", last, err)
	}
	if err := ed.WaitRev(ctx, last.Rev); err != nil {
		t.Fatal(err)
	}
	if ed.Text() != "uno\ntwo\nthree\n" {
		t.Errorf("editor: got %q", ed.Text())
	}
	if rev, err := wc.Revert(ctx, id, last.Run, ""); err != nil || rev != last.Rev+1 {
		t.Errorf("Revert: got %d, %v", rev, err)
	}
	if _, err := wc.Revert(ctx, id, uuid.NewString(), ""); err == nil || err.(*WriteError).Status != 404 {
		t.Errorf("Revert of an unknown run: got %v, want 404", err)
	}
}
