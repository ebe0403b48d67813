package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/search"
	"github.com/collabd/collabd/storage"
)

var workspaceArgs = []string{"-auth-header", "X-User", "-auth-groups-header", "X-Groups", "-trusted-proxies", "127.0.0.1", "-search-flush", "50ms"}

// asIn makes one request as user in groups ("" user: nobody signed in).
func asIn(t *testing.T, user, groups, method, url, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("X-User", user)
		req.Header.Set("X-Groups", groups)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type listed struct {
	ID, ViewID, Title, Owner, Role string
	Rev                            int64
	Updated                        time.Time
	Tags                           []string
	Snippet                        *string
	Trashed                        bool
}

func list(t *testing.T, user, groups, url string) []listed {
	t.Helper()
	code, body := asIn(t, user, groups, "GET", url, "")
	if code != 200 {
		t.Fatalf("GET %s as %s: got %d %s", url, user, code, body)
	}
	var out []listed
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
	return out
}

func create(t *testing.T, base, user, text string) (id, viewID string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"text": text})
	code, body := asIn(t, user, "", "POST", base+"/api/docs", string(b))
	if code != 201 {
		t.Fatalf("create: got %d %s", code, body)
	}
	var d struct{ ID, ViewID string }
	json.Unmarshal([]byte(body), &d)
	return d.ID, d.ViewID
}

// eventually polls f until it holds or 10 s pass (a correctness bound,
// not a speed assertion: the index is meant to follow within 2 s).
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatalf("%s: not within 10 s", what)
}

func viewIDs(ls []listed) string {
	var s []string
	for _, l := range ls {
		s = append(s, l.ViewID)
	}
	return strings.Join(s, ",")
}

// TestWorkspaceSearchAccess: a user finds, by word, phrase and prefix,
// the documents they own or that are shared with them or their group,
// never another's, not even in a snippet; a role below edit gets no edit
// id; losing access takes the document out at once; signed out is 401.
func TestWorkspaceSearchAccess(t *testing.T) {
	s := startServer(t, workspaceArgs...)
	u := s.URL + "/api/docs"
	mine, mineView := create(t, s.URL, "ann", "# Zebra crossing\nThe zebra project plan, with quarterly goals.")
	secret, secretView := create(t, s.URL, "bob", "Bob's zebra secret: the launch code is 1234")
	grp, grpView := create(t, s.URL, "carl", "Carl's group note about zebras and quarterly goals")
	if code, body := asIn(t, "carl", "", "PUT", u+"/"+grp+"/access", `{"link":"none","members":[{"group":"eng","role":"view"}]}`); code != 200 {
		t.Fatalf("share with a group: %d %s", code, body)
	}
	eventually(t, "ann's document searchable", func() bool { return len(list(t, "ann", "", u+"?q=zebra")) == 1 })

	if got := list(t, "ann", "", u+"?q=zebra"); got[0].ViewID != mineView || got[0].ID != mine || got[0].Title != "Zebra crossing" ||
		got[0].Role != "owner" || got[0].Snippet == nil || !strings.Contains(*got[0].Snippet, "<mark>zebra</mark>") {
		t.Errorf("ann's search: got %+v", got[0])
	}
	if got := list(t, "ann", "", u+"?q=launch+code"); len(got) != 0 {
		t.Errorf("ann finds bob's words: %+v", got)
	}
	// With group eng, ann sees carl's note, read-only: no edit id.
	eventually(t, "group note searchable", func() bool { return len(list(t, "ann", "eng", u+"?q=zebras")) == 1 })
	if got := list(t, "ann", "eng", u+"?q=quarterly+goals"); len(got) != 2 {
		t.Errorf("ann in eng, quarterly goals: got %s, want 2", viewIDs(got))
	} else {
		for _, d := range got {
			if d.ViewID == grpView && (d.ID != "" || d.Role != "view") {
				t.Errorf("a viewer's row: got id %q role %q, want no id and view", d.ID, d.Role)
			}
		}
	}
	if got := list(t, "ann", "eng", u+`?q="goals+with"`); len(got) != 0 {
		t.Errorf("a phrase not in any document: got %s", viewIDs(got))
	}
	if got := list(t, "ann", "eng", u+`?q="quarterly+goals"`); len(got) != 2 {
		t.Errorf("a phrase: got %s, want 2", viewIDs(got))
	}
	if got := list(t, "ann", "eng", u+"?q=zeb"); len(got) != 2 {
		t.Errorf("prefix zeb: got %s, want 2", viewIDs(got))
	}
	if got := list(t, "ann", "eng", u+"?scope=group"); len(got) != 1 || got[0].ViewID != grpView {
		t.Errorf("scope=group: got %s", viewIDs(got))
	}
	if got := list(t, "ann", "eng", u+"?scope=mine"); len(got) != 1 || got[0].ViewID != mineView {
		t.Errorf("scope=mine: got %s", viewIDs(got))
	}
	// Bob shares, then takes it back: the listing follows at once, even
	// before the index has caught up.
	if code, _ := asIn(t, "bob", "", "PUT", u+"/"+secret+"/access", `{"link":"none","members":[{"user":"ann","role":"edit"}]}`); code != 200 {
		t.Fatal("share")
	}
	eventually(t, "shared document listed", func() bool { return strings.Contains(viewIDs(list(t, "ann", "", u+"?scope=shared")), secretView) })
	if got := list(t, "ann", "", u+"?q=launch"); len(got) != 1 || got[0].ID != secret || got[0].Owner != "bob" || got[0].Role != "edit" {
		t.Errorf("shared for edit: got %+v", got)
	}
	if code, _ := asIn(t, "bob", "", "PUT", u+"/"+secret+"/access", `{"link":"none","members":[]}`); code != 200 {
		t.Fatal("unshare")
	}
	for _, q := range []string{"?q=launch", "?q=zebra", "", "?scope=shared"} {
		if got := list(t, "ann", "eng", u+q); strings.Contains(viewIDs(got), secretView) {
			t.Errorf("%s after losing access: still listed", q)
		}
	}
	// Signed out: nobody's documents.
	if code, body := asIn(t, "", "", "GET", u, ""); code != 401 {
		t.Errorf("signed out: got %d %s, want 401", code, body)
	}
	if code, _ := asIn(t, "ann", "", "GET", u+"?limit=0", ""); code != 400 {
		t.Errorf("limit=0: got %d, want 400", code)
	}
	if code, _ := asIn(t, "ann", "", "GET", u+"?q="+strings.Repeat("x", 2000), ""); code != 400 {
		t.Errorf("a 2000-byte query: got %d, want 400", code)
	}
}

// TestWorkspaceEditsFollow: a committed edit is found, and the old words
// are not, once the indexer has had its flush.
func TestWorkspaceEditsFollow(t *testing.T) {
	s := startServer(t, workspaceArgs...)
	u := s.URL + "/api/docs"
	id, _ := create(t, s.URL, "ann", "first draft")
	eventually(t, "created", func() bool { return len(list(t, "ann", "", u+"?q=draft")) == 1 })
	if code, body := asIn(t, "ann", "", "PUT", u+"/"+id+"/text", `{"text":"second version about otters"}`); code != 200 {
		t.Fatalf("put text: %d %s", code, body)
	}
	eventually(t, "the edit searchable", func() bool { return len(list(t, "ann", "", u+"?q=otters")) == 1 })
	if got := list(t, "ann", "", u+"?q=draft"); len(got) != 0 {
		t.Errorf("the old text is still found: %+v", got)
	}
	if got := list(t, "ann", "", u); len(got) != 1 || got[0].Title != "second version about otters" || got[0].Rev != 2 {
		t.Errorf("list: got %+v", got)
	}
}

// TestWorkspaceTitlesTagsTrash: rename, tags, tag rename, trash, restore
// and purge, with their access checks.
func TestWorkspaceTitlesTagsTrash(t *testing.T) {
	s := startServer(t, workspaceArgs...)
	u := s.URL + "/api/docs"
	a, _ := create(t, s.URL, "ann", "## *Plan* for **spring**\nbody")
	b, _ := create(t, s.URL, "ann", "other")
	eventually(t, "listed", func() bool { return len(list(t, "ann", "", u)) == 2 })
	if got := list(t, "ann", "", u+"?q=spring"); len(got) != 1 || got[0].Title != "Plan for spring" {
		t.Errorf("title from the first line: got %+v", got)
	}
	code, body := asIn(t, "ann", "", "PATCH", u+"/"+a, `{"title":"Garden","tags":["home","todo","home"]}`)
	if code != 200 || !strings.Contains(body, `"title":"Garden"`) || !strings.Contains(body, `"tags":["home","todo"]`) {
		t.Errorf("patch: got %d %s", code, body)
	}
	if got := list(t, "ann", "", u+"?q=garden"); len(got) != 1 || got[0].ID != a {
		t.Errorf("search by the new title: got %+v", got)
	}
	asIn(t, "ann", "", "PATCH", u+"/"+b, `{"tags":["todo"]}`)
	if got := list(t, "ann", "", u+"?tag=todo"); len(got) != 2 {
		t.Errorf("tag=todo: got %d", len(got))
	}
	for _, c := range []struct{ body, want string }{
		{`{"title":"` + strings.Repeat("x", 201) + `"}`, "long title"},
		{`{"tags":["` + strings.Repeat("x", 65) + `"]}`, "long tag"},
		{`{"tags":["a\nb"]}`, "control character"},
		{`{"color":"red"}`, "unknown field"},
	} {
		if code, _ := asIn(t, "ann", "", "PATCH", u+"/"+a, c.body); code != 400 {
			t.Errorf("%s: got %d, want 400", c.want, code)
		}
	}
	if code, _ := asIn(t, "bob", "", "PATCH", u+"/"+a, `{"title":"mine now"}`); code != 404 {
		t.Errorf("another user renames: got %d, want 404", code)
	}
	for _, bad := range []string{`{"from":"todo","to":"todo"}`, `{"from":"","to":"x"}`, `{"from":"todo"}`} {
		if code, _ := asIn(t, "ann", "", "POST", s.URL+"/api/tags/rename", bad); code != 400 {
			t.Errorf("tag rename %s: got %d, want 400", bad, code)
		}
	}
	if code, body := asIn(t, "ann", "", "POST", s.URL+"/api/tags/rename", `{"from":"todo","to":"later"}`); code != 200 || body != `{"changed":2}` {
		t.Errorf("tag rename: got %d %s", code, body)
	}
	if got := list(t, "ann", "", u+"?tag=later"); len(got) != 2 {
		t.Errorf("tag=later after the rename: got %d", len(got))
	}
	// Trash: out of lists and search, in ?trash=true, back on restore.
	if code, _ := asIn(t, "ann", "", "PUT", u+"/"+a+"/access", `{"link":"none","members":[{"user":"ed","role":"edit"}]}`); code != 200 {
		t.Fatal("share")
	}
	if code, _ := asIn(t, "ed", "", "POST", u+"/"+a+"/trash", ""); code != 403 {
		t.Errorf("an editor trashes: got %d, want 403", code)
	}
	if code, body := asIn(t, "ann", "", "POST", u+"/"+a+"/trash", ""); code != 200 || !strings.Contains(body, `"trashed":true`) {
		t.Errorf("trash: got %d %s", code, body)
	}
	if got := list(t, "ann", "", u+"?q=garden"); len(got) != 0 {
		t.Errorf("a trashed document is found: %+v", got)
	}
	if got := list(t, "ann", "", u+"?trash=true"); len(got) != 1 || got[0].ID != a || !got[0].Trashed {
		t.Errorf("the trash: got %+v", got)
	}
	if code, _ := asIn(t, "ann", "", "DELETE", u+"/"+a+"/trash", ""); code != 200 {
		t.Errorf("restore: got %d", code)
	}
	if got := list(t, "ann", "", u+"?q=garden"); len(got) != 1 {
		t.Errorf("restored, not found: %+v", got)
	}
	// Purge: gone from the index too.
	if code, _ := asIn(t, "ann", "", "DELETE", u+"/"+b, ""); code != 204 {
		t.Errorf("purge: got %d", code)
	}
	eventually(t, "purged document out of the list", func() bool { return len(list(t, "ann", "", u)) == 1 })
}

// TestWorkspaceIndexCatchUp: an index that lost its latest batches (as
// a SIGKILL between commit and index loses them) catches up from the op
// log at start: edits it missed are found, deleted documents dropped.
func TestWorkspaceIndexCatchUp(t *testing.T) {
	data := filepath.Join(t.TempDir(), "collab.db")
	s := startServerAt(t, data, workspaceArgs...)
	u := s.URL + "/api/docs"
	a, _ := create(t, s.URL, "ann", "alpha")
	gone, _ := create(t, s.URL, "ann", "doomed words")
	eventually(t, "indexed", func() bool { return len(list(t, "ann", "", u)) == 2 })
	s.Stop(t)
	old := t.TempDir()
	copyDir(t, data+".search", old)

	s = startServerAt(t, data, workspaceArgs...)
	u = s.URL + "/api/docs"
	if code, _ := asIn(t, "ann", "", "PUT", u+"/"+a+"/text", `{"text":"alpha beta gamma"}`); code != 200 {
		t.Fatal("edit")
	}
	create(t, s.URL, "ann", "delta written later")
	if code, _ := asIn(t, "ann", "", "DELETE", u+"/"+gone, ""); code != 204 {
		t.Fatal("delete")
	}
	s.Stop(t)
	// The index as it was before those: what a crash would leave.
	os.RemoveAll(data + ".search")
	copyDir(t, old, data+".search")

	s = startServerAt(t, data, workspaceArgs...)
	u = s.URL + "/api/docs"
	eventually(t, "missed edit found", func() bool { return len(list(t, "ann", "", u+"?q=gamma")) == 1 })
	eventually(t, "missed document found", func() bool { return len(list(t, "ann", "", u+"?q=delta")) == 1 })
	if got := list(t, "ann", "", u); len(got) != 2 {
		t.Errorf("after catch-up: got %d documents, want 2", len(got))
	}
	s.Stop(t)
	idx, err := search.Open(data + ".search")
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	revs, err := idx.Revs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := revs[gone]; ok || len(revs) != 2 {
		t.Errorf("indexed after catch-up: %v, want 2 documents without the deleted one", revs)
	}
}

// TestReindexAndTrashExpiry: collabd reindex rebuilds a lost index from
// the data file; a document trashed more than -trash-days ago is purged,
// a younger one is kept.
func TestReindexAndTrashExpiry(t *testing.T) {
	data := filepath.Join(t.TempDir(), "collab.db")
	s := startServerAt(t, data, workspaceArgs...)
	old, _ := create(t, s.URL, "ann", "trashed long ago")
	young, _ := create(t, s.URL, "ann", "trashed yesterday")
	keep, _ := create(t, s.URL, "ann", "kept")
	s.Stop(t)
	os.RemoveAll(data + ".search")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"reindex", "-data", data}, &out, io.Discard); err != nil {
		t.Fatalf("reindex: %v", err)
	}
	if !strings.Contains(out.String(), "3 of 3 documents indexed") {
		t.Errorf("reindex said %q", out.String())
	}
	idx, err := search.Open(data + ".search")
	if err != nil {
		t.Fatal(err)
	}
	revs, _ := idx.Revs(t.Context())
	idx.Close()
	if len(revs) != 3 || revs[keep] != 1 {
		t.Errorf("reindexed: %v", revs)
	}

	db, err := storage.Open(data, storage.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	put := func(id string, ago time.Duration) {
		b, _ := json.Marshal(map[string]any{"trashed": time.Now().Add(-ago)})
		if err := db.KVPut(context.Background(), storage.KVDocInfo, id, b); err != nil {
			t.Fatal(err)
		}
	}
	put(old, 31*24*time.Hour)
	put(young, 24*time.Hour)
	db.Close()
	if err := run(t.Context(), []string{"reindex", "-data", data}, io.Discard, io.Discard); err != nil {
		t.Fatalf("reindex: %v", err)
	}
	s = startServerAt(t, data, workspaceArgs...)
	u := s.URL + "/api/docs"
	eventually(t, "expired document purged", func() bool {
		code, _ := asIn(t, "ann", "", "GET", u+"/"+old, "")
		return code == 404
	})
	if got := list(t, "ann", "", u+"?trash=true"); len(got) != 1 || got[0].ID != young {
		t.Errorf("the trash after the sweep: got %+v, want the younger one", got)
	}
	if got := list(t, "ann", "", u); len(got) != 1 || got[0].ID != keep {
		t.Errorf("the list: got %+v", got)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if fi.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, fi.Mode())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBrowserWorkspace runs the "workspace" scenario of
// frontend/test/browser/suite.mjs against a server with header sign-in,
// whose pages Chromium loads from 127.0.0.1 with X-User set.
func TestBrowserWorkspace(t *testing.T) {
	dir := filepath.Join("..", "..", "frontend", "test", "browser")
	node, chromium := browserDeps(t, dir)
	s := startServer(t, append(loopbackArgs(), workspaceArgs...)...)
	cmd := exec.Command(node, "suite.mjs", s.URL, "workspace")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	if shots := os.Getenv("SCREENSHOT_DIR"); shots != "" {
		abs, err := filepath.Abs(shots)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Env = append(cmd.Env, "SCREENSHOT_DIR="+abs)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.Stdin = strings.NewReader("")
	timer := time.AfterFunc(3*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node suite.mjs: %v\n%s", err, stderr.String())
	}
	ran := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var res struct {
			Scenario string
			Errors   []string
		}
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			t.Errorf("unexpected output from suite.mjs: %q", line)
			continue
		}
		ran++
		for _, e := range res.Errors {
			t.Errorf("%s: %s", res.Scenario, e)
		}
	}
	if ran != 1 {
		t.Errorf("suite.mjs ran %d scenarios, want 1\n%s", ran, stderr.String())
	}
}

// TestWorkspaceQueueLimit: with room for one waiting document, edits to
// many are still all indexed: past the limit the indexer forgets them
// and catches up from the store.
func TestWorkspaceQueueLimit(t *testing.T) {
	s := startServer(t, append(workspaceArgs, "-search-queue", "1", "-search-flush", "300ms")...)
	u := s.URL + "/api/docs"
	for i := range 8 {
		create(t, s.URL, "ann", fmt.Sprintf("note number%d of eight", i))
	}
	eventually(t, "all eight indexed", func() bool { return len(list(t, "ann", "", u+"?q=eight")) == 8 })
}

// TestWorkspaceFlags: the workspace's flags refuse values out of range.
func TestWorkspaceFlags(t *testing.T) {
	for _, args := range [][]string{{"-trash-days", "0"}, {"-search-flush", "1ms"}, {"-search-queue", "0"}} {
		if _, err := parseConfig(args, func(string) (string, bool) { return "", false }, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
