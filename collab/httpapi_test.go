package collab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

// postDoc sends POST /api/docs with body and returns the status and body.
func postDoc(t *testing.T, ts *testServer, body string) (int, http.Header, []byte) {
	t.Helper()
	return doHTTP(t, http.MethodPost, ts.URL+"/api/docs", "application/json", strings.NewReader(body))
}

func TestAPICreateAndRead(t *testing.T) {
	ts := newTestServer(t, Options{})
	for _, tc := range []struct {
		body    string
		text    string
		wantRev int64
	}{
		{"", "", 0},
		{"{}", "", 0},
		{`{"text":""}`, "", 0},
		{`{"text":"héllo, 世界 😀\n"}`, "héllo, 世界 😀\n", 1},
	} {
		code, hdr, body := postDoc(t, ts, tc.body)
		if code != http.StatusCreated || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			t.Fatalf("POST %q: got %d %q (%s), want 201 JSON", tc.body, code, hdr.Get("Content-Type"), body)
		}
		var created map[string]any
		if err := json.Unmarshal(body, &created); err != nil {
			t.Fatal(err)
		}
		id, _ := created["id"].(string)
		viewID, _ := created["viewId"].(string)
		if len(created) != 3 || created["rev"] != float64(tc.wantRev) {
			t.Errorf("POST %q: got %s, want exactly {id, viewId, rev %d}", tc.body, body, tc.wantRev)
		}
		for _, u := range []string{id, viewID} {
			if p, err := uuid.Parse(u); err != nil || p.Version() != 4 || p.String() != u {
				t.Errorf("POST %q: id %q is not a canonical UUIDv4", tc.body, u)
			}
		}
		if id == viewID {
			t.Errorf("POST %q: the edit and view ids are both %s", tc.body, id)
		}

		var doc map[string]any
		getJSONStatus(t, ts.URL+"/api/docs/"+id, http.StatusOK, &doc)
		want := map[string]any{"id": id, "viewId": viewID, "rev": float64(tc.wantRev), "text": tc.text}
		if fmt.Sprint(doc) != fmt.Sprint(want) {
			t.Errorf("GET doc got %v, want %v", doc, want)
		}
		code, hdr, body = doHTTP(t, http.MethodGet, ts.URL+"/api/docs/"+id+"/text", "", nil)
		if code != http.StatusOK || hdr.Get("Content-Type") != "text/plain; charset=utf-8" || string(body) != tc.text {
			t.Errorf("GET text got %d %q %q, want 200 text/plain; charset=utf-8 %q", code, hdr.Get("Content-Type"), body, tc.text)
		}
		var view map[string]any
		getJSONStatus(t, ts.URL+"/api/view/"+viewID, http.StatusOK, &view)
		wantView := map[string]any{"viewId": viewID, "rev": float64(tc.wantRev), "text": tc.text}
		if fmt.Sprint(view) != fmt.Sprint(wantView) {
			t.Errorf("GET view got %v, want %v", view, wantView)
		}
	}
	var health map[string]string
	getJSONStatus(t, ts.URL+"/healthz", http.StatusOK, &health)
	if health["status"] != "ok" {
		t.Errorf("healthz got %v, want status ok", health)
	}
}

// TestAPIOps pages through the op log with from and limit.
func TestAPIOps(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "0")
	ctx := guardCtx(t)
	c := ts.dial(t, id, ClientOptions{})
	for i := 1; i <= 6; i++ {
		if err := c.Edit(ot.Op{ot.Retain(i), ot.Insert(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// rev 1 made the document; revs 2..7 are the client's seqs 1..6.
	revs := func(recs []OpRecord) []int64 {
		var out []int64
		for _, r := range recs {
			out = append(out, r.Rev)
		}
		return out
	}
	for _, tc := range []struct {
		query string
		want  []int64
	}{
		{"", []int64{1, 2, 3, 4, 5, 6, 7}},
		{"?from=0&limit=2", []int64{1, 2}},
		{"?from=2&limit=2", []int64{3, 4}},
		{"?from=4", []int64{5, 6, 7}},
		{"?from=6&limit=5000", []int64{7}},
		{"?from=7", nil},
		{"?from=99", nil},
	} {
		var recs []OpRecord
		body := getJSONStatus(t, ts.URL+"/api/docs/"+id+"/ops"+tc.query, http.StatusOK, &recs)
		if fmt.Sprint(revs(recs)) != fmt.Sprint(tc.want) {
			t.Errorf("ops%s: got revs %v, want %v", tc.query, revs(recs), tc.want)
		}
		if recs == nil && string(bytes.TrimSpace(body)) != "[]" {
			t.Errorf("ops%s: got %s, want []", tc.query, body)
		}
	}
	var raw []map[string]any
	getJSONStatus(t, ts.URL+"/api/docs/"+id+"/ops?from=1&limit=1", http.StatusOK, &raw)
	if len(raw) != 1 {
		t.Fatalf("got %d records, want 1", len(raw))
	}
	r := raw[0]
	if r["rev"] != float64(2) || r["author"] != c.Author() || r["seq"] != float64(1) || fmt.Sprint(r["op"]) != "[1 1]" {
		t.Errorf("op 2 got %v, want rev 2, author %s, seq 1, op [1,\"1\"]", r, c.Author())
	}
	if _, ok := r["client"]; ok {
		t.Errorf("op 2 has a client field: %v", r)
	}
	if ts, ok := r["time"].(string); !ok {
		t.Errorf("op 2 has no time: %v", r)
	} else if tm, err := time.Parse(time.RFC3339Nano, ts); err != nil || time.Since(tm) > time.Hour || time.Since(tm) < -time.Hour {
		t.Errorf("op 2 time %q: not a recent RFC 3339 time (%v)", ts, err)
	}
}

// TestAPIErrors checks the status and the {"error":{"code","message"}}
// body of every kind of bad request.
func TestAPIErrors(t *testing.T) {
	ts := newTestServer(t, Options{MaxDocChars: 10})
	id, viewID := ts.createDoc(t, "doc")
	unknown := uuid.NewString()
	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/api/docs/" + unknown, "", 404, CodeNotFound},
		{"GET", "/api/docs/" + unknown + "/text", "", 404, CodeNotFound},
		{"GET", "/api/docs/" + unknown + "/ops", "", 404, CodeNotFound},
		{"GET", "/api/docs/not-a-uuid", "", 404, CodeNotFound},
		{"GET", "/api/view/" + unknown, "", 404, CodeNotFound},
		{"GET", "/api/view/not-a-uuid", "", 404, CodeNotFound},
		{"GET", "/api/view/" + id, "", 404, CodeNotFound},
		{"GET", "/api/nothing/here", "", 404, CodeNotFound},
		{"DELETE", "/api/docs/" + unknown, "", 404, CodeNotFound},
		{"DELETE", "/api/docs/not-a-uuid", "", 404, CodeNotFound},
		{"PUT", "/api/docs/" + id, "", 404, CodeNotFound},

		{"GET", "/api/docs/" + id + "/ops?from=-1", "", 400, CodeBadMessage},
		{"GET", "/api/docs/" + id + "/ops?from=abc", "", 400, CodeBadMessage},
		{"GET", "/api/docs/" + id + "/ops?limit=0", "", 400, CodeBadMessage},
		{"GET", "/api/docs/" + id + "/ops?limit=ten", "", 400, CodeBadMessage},
		{"POST", "/api/docs", "not json", 400, CodeBadMessage},
		{"POST", "/api/docs", `{"text": 5}`, 400, CodeBadMessage},
		{"POST", "/api/docs", `["text"]`, 400, CodeBadMessage},
		{"POST", "/api/docs", "{\"text\": \"\xff\"}", 400, CodeBadMessage},

		// Eleven code points, over MaxDocChars; then a body over the
		// byte limit the server derives from it.
		{"POST", "/api/docs", `{"text":"😀😀😀😀😀😀😀😀😀😀😀"}`, 413, CodeTooLarge},
		{"POST", "/api/docs", `{"text":"` + strings.Repeat("a", 4000) + `"}`, 413, CodeTooLarge},
	} {
		var body *strings.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		var code int
		var hdr http.Header
		var got []byte
		if body != nil {
			code, hdr, got = doHTTP(t, tc.method, ts.URL+tc.path, "application/json", body)
		} else {
			code, hdr, got = doHTTP(t, tc.method, ts.URL+tc.path, "", nil)
		}
		what := tc.method + " " + tc.path
		if tc.body != "" {
			what += " " + truncate(tc.body, 30)
		}
		wantAPIError(t, what, code, hdr, got, tc.status, tc.code)
		if strings.Contains(string(got), viewID) && strings.Contains(tc.path, "/view/") {
			t.Errorf("%s: answer %s shows the view id", what, got)
		}
	}
	// None of that disturbed the document.
	if d := ts.docState(t, id); d.Text != "doc" || d.Rev != 1 {
		t.Errorf("document got rev %d %q, want rev 1 %q", d.Rev, d.Text, "doc")
	}
}
