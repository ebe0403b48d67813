package collab

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

func revertURL(ts *testServer, id string) string { return ts.URL + "/api/docs/" + id + "/revert" }

// TestRevertKeepsOthersEdits: a run inserted a paragraph and deleted a
// word; an editor then typed inside the run's paragraph and elsewhere.
// Reverting the run takes out the run's text but not the editor's words
// inside it, and puts the deleted word back.
func TestRevertKeepsOthersEdits(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "keep this word.\n")
	ctx := guardCtx(t)
	c := ts.dial(t, id, ClientOptions{})
	run := mustWrite(t, "PUT", textURL(ts, id), map[string]any{"rev": 1, "text": "keep this.\nAGENT TEXT HERE\n"})
	if err := c.WaitRev(ctx, run.Rev); err != nil {
		t.Fatal(err)
	}
	// "keep this.\nAGENT TEXT HERE\n": Ada types inside the agent's text
	// and at the start.
	inside := strings.Index(c.Text(), "TEXT")
	if err := c.Edit(ot.Op{}.Insert("Ada: ").Retain(inside).Insert("ada ").Retain(c.Len() - inside)); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	// A write made on the run's revision, after Ada's: it lands too.
	mustWrite(t, "POST", opsURL(ts, id), map[string]any{"rev": run.Rev, "op": ot.Op{}.Retain(27).Insert("end\n")})
	code, _, b := httpWrite(t, "POST", revertURL(ts, id), map[string]any{"run": run.Run})
	if code != 200 {
		t.Fatalf("revert: got %d %s", code, b)
	}
	var got struct{ Rev int64 }
	json.Unmarshal(b, &got)
	want := "Ada: keep this word.\nada end\n"
	if err := c.WaitRev(ctx, got.Rev); err != nil {
		t.Fatal(err)
	}
	if d := ts.docState(t, id); d.Text != want || d.Rev != got.Rev {
		t.Errorf("after revert: got %q at %d, want %q at %d", d.Text, d.Rev, want, got.Rev)
	}
	if c.Text() != want {
		t.Errorf("editor after revert: got %q, want %q", c.Text(), want)
	}
	// Nothing left to revert: the head, no new revision.
	code, _, b = httpWrite(t, "POST", revertURL(ts, id), map[string]any{"run": run.Run})
	var again struct{ Rev int64 }
	json.Unmarshal(b, &again)
	if code != 200 || again.Rev != got.Rev {
		t.Errorf("second revert: got %d %s, want 200 with rev %d", code, b, got.Rev)
	}
	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{fmt.Sprintf(`{"run":%q}`, uuid.NewString()), 404, CodeNotFound},
		{`{"run":"nope"}`, 404, CodeNotFound},
		{`{}`, 400, CodeBadMessage},
		{`[]`, 400, CodeBadMessage},
	} {
		code, hdr, b := httpWrite(t, "POST", revertURL(ts, id), tc.body)
		wantAPIError(t, "revert "+tc.body, code, hdr, b, tc.status, tc.code)
	}
	code, hdr, b := httpWrite(t, "POST", revertURL(ts, id), map[string]any{"run": run.Run}, "Origin", "https://evil.example")
	wantAPIError(t, "revert from a foreign origin", code, hdr, b, 403, CodeForbidden)
}

// TestRevertWhileEditing: runs written and reverted while two editors
// type at random; everyone converges, and a run whose text nobody touched
// is gone after its revert.
func TestRevertWhileEditing(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "base text\n")
	ctx := guardCtx(t)
	a, b := ts.dial(t, id, ClientOptions{}), ts.dial(t, id, ClientOptions{})
	done := editConcurrently([]*Client{a, b}, 21, 120)
	rng := rand.New(rand.NewPCG(9, 9))
	var runs []string
	for i := range 10 {
		text, rev := serverText(t, ts.URL, id)
		n := len([]rune(text))
		at := rng.IntN(n + 1)
		w := mustWrite(t, "POST", opsURL(ts, id), map[string]any{"rev": rev, "op": ot.Op{}.Retain(at).Insert(fmt.Sprintf("{run %d}", i)).Retain(n - at)})
		runs = append(runs, w.Run)
		if i%2 == 1 {
			mustWrite(t, "POST", revertURL(ts, id), map[string]any{"run": runs[rng.IntN(len(runs))]})
		}
	}
	waitErr(t, "editing", done)
	// With the editors done, revert the remaining runs: no {run …} text
	// can survive, whatever the editors did around and inside it.
	for _, r := range runs {
		code, _, body := httpWrite(t, "POST", revertURL(ts, id), map[string]any{"run": r})
		if code != 200 {
			t.Fatalf("revert %s: got %d %s", r, code, body)
		}
	}
	text, head := serverText(t, ts.URL, id)
	for _, c := range []*Client{a, b} {
		if err := c.WaitRev(ctx, head); err != nil {
			t.Fatal(err)
		}
		if c.Text() != text {
			t.Errorf("editor: got %q, want the server's %q", c.Text(), text)
		}
	}
	for i := range runs {
		if m := fmt.Sprintf("{run %d}", i); strings.Contains(text, m) {
			t.Errorf("%s survived its revert: %q", m, text)
		}
	}
	if texts := replayOps(t, ts, id); texts[head] != text {
		t.Errorf("replay: got %q, want %q", texts[head], text)
	}
}

// TestRevertOfRevert: a revert is a run of its own, in /revisions, and
// reverting it brings the first run's text back.
func TestRevertOfRevert(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "a b")
	run := mustWrite(t, "POST", opsURL(ts, id), map[string]any{"rev": 1, "op": []any{1, " RUN", 2}})
	undo := mustWrite(t, "POST", revertURL(ts, id), map[string]any{"run": run.Run}, "Idempotency-Key", "undo-1")
	if d := ts.docState(t, id); d.Text != "a b" || d.Rev != undo.Rev {
		t.Fatalf("after revert: got %q at %d, want %q at %d", d.Text, d.Rev, "a b", undo.Rev)
	}
	// A retry of the revert with its key: the same answer, nothing new.
	if again := mustWrite(t, "POST", revertURL(ts, id), map[string]any{"run": run.Run}, "Idempotency-Key", "undo-1"); again.Rev != undo.Rev {
		t.Errorf("revert retried: got rev %d, want %d", again.Rev, undo.Rev)
	}
	var revs []map[string]any
	getJSONStatus(t, ts.URL+"/api/docs/"+id+"/revisions", 200, &revs)
	undoRun, _ := revs[len(revs)-1]["run"].(string)
	if len(revs) != 3 || undoRun == "" || undoRun == run.Run {
		t.Fatalf("revisions: got %v, want the revert as a run of its own", revs)
	}
	redo := mustWrite(t, "POST", revertURL(ts, id), map[string]any{"run": undoRun})
	if d := ts.docState(t, id); d.Text != "a RUN b" || d.Rev != redo.Rev {
		t.Errorf("after reverting the revert: got %q at %d, want %q at %d", d.Text, d.Rev, "a RUN b", redo.Rev)
	}
}
