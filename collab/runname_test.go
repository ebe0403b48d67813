package collab

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestHTTPWriteNames: a run's ops carry the name of its writer into
// /revisions: the access token's name, which wins over the body's, or
// else the body's. A token's name also gives the author id, the same for
// every run of that agent and different from another agent's; each run
// keeps its own run id. An Idempotency-Key is its writer's; a named run
// is reverted by its run id like any other.
func TestHTTPWriteNames(t *testing.T) {
	k := newTestKeys(t)
	ts := newTestServer(t, Options{Auth: k.auth(t, "create-secret", 0)})
	id, _ := ts.createDocAuth(t, "abc", "create-secret")
	bearer := func(name string) []string {
		c := claims(id, "edit")
		if name != "" {
			c["name"] = name
		}
		return []string{"Authorization", "Bearer " + k.sign(t, "HS256", c)}
	}
	smith, other, anon := bearer("Agent Smith"), bearer("Other Bot"), bearer("")
	op := func(rev int64, n int, s string) map[string]any {
		return map[string]any{"rev": rev, "op": []any{n, s}, "name": "ignored"}
	}
	s1 := mustWrite(t, "POST", opsURL(ts, id), op(1, 3, "1"), smith...)                                               // rev 2
	s2 := mustWrite(t, "PUT", textURL(ts, id), map[string]any{"text": "abc12"}, smith...)                             // rev 3
	o1 := mustWrite(t, "POST", opsURL(ts, id), op(3, 5, "3"), other...)                                               // rev 4
	b1 := mustWrite(t, "POST", opsURL(ts, id), map[string]any{"rev": 4, "op": []any{6, "4"}, "name": "bot"}, anon...) // rev 5
	n1 := mustWrite(t, "POST", opsURL(ts, id), map[string]any{"rev": 5, "op": []any{7, "5"}}, anon...)                // rev 6
	if s1.Run == s2.Run || s1.Run == o1.Run {
		t.Fatalf("runs %s %s %s: want each its own", s1.Run, s2.Run, o1.Run)
	}
	tok := smith[1][len("Bearer "):]
	var revs []revisionJSON
	getJSONStatus(t, ts.URL+"/api/docs/"+id+"/revisions?from=1&token="+tok, 200, &revs)
	if len(revs) != 5 {
		t.Fatalf("revisions: got %+v, want 5", revs)
	}
	for i, want := range []struct{ run, name string }{
		{s1.Run, "Agent Smith"}, {s2.Run, "Agent Smith"}, {o1.Run, "Other Bot"}, {b1.Run, "bot"}, {n1.Run, ""},
	} {
		if revs[i].Run != want.run || revs[i].Name != want.name {
			t.Errorf("rev %d: got run %s name %q, want run %s name %q", revs[i].Rev, revs[i].Run, revs[i].Name, want.run, want.name)
		}
	}
	a := func(i int) string { return revs[i].Author }
	if a(0) == "" || a(0) != a(1) {
		t.Errorf("Agent Smith's two runs: authors %q and %q, want one", a(0), a(1))
	}
	if a(2) == a(0) || a(3) == a(0) || a(3) == a(4) || a(2) == a(3) {
		t.Errorf("authors %q: want Agent Smith's, Other Bot's and each unnamed run's apart", []string{a(0), a(2), a(3), a(4)})
	}
	// A stream by Agent Smith: its author id too; by a name in the
	// query: that name.
	for _, tc := range []struct {
		hdr       []string
		query     string
		name      string
		smithsOwn bool
	}{{smith, "?name=ignored", "Agent Smith", true}, {anon, "?name=Streamer", "Streamer", false}} {
		req, _ := http.NewRequestWithContext(guardCtx(t), "POST", ts.URL+"/api/docs/"+id+"/stream"+tc.query, strings.NewReader("~"))
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		req.Header.Set(tc.hdr[0], tc.hdr[1])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("stream %s: %d", tc.query, resp.StatusCode)
		}
		var rows []revisionJSON
		getJSONStatus(t, ts.URL+"/api/docs/"+id+"/revisions?token="+tok, 200, &rows)
		last := rows[len(rows)-1]
		if last.Name != tc.name || (last.Author == a(0)) != tc.smithsOwn || last.Run == "" {
			t.Errorf("stream %s: its revision %+v, want name %q, Agent Smith's author %v", tc.query, last, tc.name, tc.smithsOwn)
		}
	}
	// The same Idempotency-Key: the same run for the same agent, another
	// (applied) for another agent.
	k1 := mustWrite(t, "POST", opsURL(ts, id), op(6, 8, "x"), append(smith, "Idempotency-Key", "k")...)
	k2 := mustWrite(t, "POST", opsURL(ts, id), op(6, 8, "x"), append(smith, "Idempotency-Key", "k")...)
	k3 := mustWrite(t, "POST", opsURL(ts, id), op(6, 8, "y"), append(other, "Idempotency-Key", "k")...)
	if k1 != k2 || k3.Run == k1.Run || k3.Rev != k1.Rev+1 {
		t.Errorf("Idempotency-Key k: got %+v, %+v (Agent Smith) and %+v (Other Bot), want the first two one answer and the third another run", k1, k2, k3)
	}
	// A named run is reverted by its run id; the revert carries the
	// reverter's name.
	code, _, b := httpWrite(t, "POST", revertURL(ts, id), map[string]any{"run": s2.Run}, other...)
	if code != 200 {
		t.Fatalf("revert Agent Smith's run: got %d %s", code, b)
	}
	var d struct{ Text string }
	if getJSONStatus(t, ts.URL+"/api/docs/"+id+"?token="+tok, 200, &d); d.Text != "abc1345~~xy" {
		t.Errorf("after the revert: got %q, want %q", d.Text, "abc1345~~xy")
	}
	otherAuthor := a(2)
	var last []revisionJSON
	getJSONStatus(t, ts.URL+"/api/docs/"+id+"/revisions?from=10&token="+tok, 200, &last)
	if len(last) != 1 || last[0].Name != "Other Bot" || last[0].Author != otherAuthor || last[0].Reverts != s2.Run {
		t.Errorf("the revert's revision: got %+v, want Other Bot's", last)
	}
}
