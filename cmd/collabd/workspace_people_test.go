package main

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/collab/client"
	"github.com/collabd/collabd/ot"
)

// peopleRow is what a workspace row says of people.
type peopleRow struct {
	ViewID string
	Rev    int64
	Editor *struct{ Name, Author string }
	// Present is a pointer so that a row without the field fails.
	Present *[]string
}

// TestWorkspaceEditorAndPresent: a workspace row names who made its
// latest revision (signed in, their user name; none for the server's
// initial text) and who has the document open on this node,
// as they come and go; PATCH's answer carries them too.
func TestWorkspaceEditorAndPresent(t *testing.T) {
	s := startServer(t, workspaceArgs...)
	u := s.URL + "/api/docs"
	id, viewID := create(t, s.URL, "ann", "notes")
	if code, body := asIn(t, "ann", "", "PUT", u+"/"+id+"/access", `{"link":"none","members":[{"user":"bob","role":"edit"}]}`); code != 200 {
		t.Fatalf("share: %d %s", code, body)
	}
	row := func(user string) peopleRow {
		t.Helper()
		code, body := asIn(t, user, "", "GET", u, "")
		if code != 200 {
			t.Fatalf("list as %s: %d %s", user, code, body)
		}
		var rows []peopleRow
		if err := json.Unmarshal([]byte(body), &rows); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.ViewID == viewID {
				if r.Present == nil {
					t.Fatalf("a row without present: %s", body)
				}
				return r
			}
		}
		return peopleRow{}
	}
	eventually(t, "listed", func() bool { return row("ann").Rev == 1 })
	if r := row("ann"); r.Editor != nil || len(*r.Present) != 0 {
		t.Errorf("a new document: got editor %+v present %v, want none", r.Editor, *r.Present)
	}
	if code, body := asIn(t, "ann", "", "PUT", u+"/"+id+"/text", `{"text":"notes, by a script","name":"Release bot"}`); code != 200 {
		t.Fatalf("put text: %d %s", code, body)
	}
	eventually(t, "the write indexed", func() bool { return row("ann").Rev == 2 })
	// Signed in, a writer's name is their user name, whatever the body
	// says, as it is an editor's.
	if r := row("bob"); r.Editor == nil || r.Editor.Name != "ann" || r.Editor.Author == "" {
		t.Errorf("after an HTTP write: got editor %+v, want ann", r.Editor)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dial := func(user, name string) *client.Client {
		t.Helper()
		c, err := client.Dial(ctx, s.URL+"/api/docs/"+id+"/ws", client.Options{Name: name, HTTPHeader: http.Header{"X-User": {user}}})
		if err != nil {
			t.Fatalf("%s dials: %v", user, err)
		}
		return c
	}
	ann, bob := dial("ann", "Ann"), dial("bob", "Bob")
	defer ann.Close()
	present := func(want ...string) func() bool {
		return func() bool { return reflect.DeepEqual(*row("ann").Present, append([]string{}, want...)) }
	}
	eventually(t, "both present", present("ann", "bob"))
	if err := bob.EditLenFunc(func(n int) ot.Op { return ot.Op{}.Retain(n).Insert("!") }); err != nil {
		t.Fatal(err)
	}
	if err := bob.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob's edit indexed", func() bool { return row("ann").Rev == 3 })
	if r := row("ann"); r.Editor == nil || r.Editor.Name != "bob" || r.Editor.Author != bob.Author() {
		t.Errorf("after bob's edit: got editor %+v, want bob with author %s", r.Editor, bob.Author())
	}
	bob.Close()
	eventually(t, "bob gone", present("ann"))
	code, body := asIn(t, "ann", "", "PATCH", u+"/"+id, `{"tags":["x"]}`)
	if code != 200 || !strings.Contains(body, `"present":["ann"]`) || !strings.Contains(body, `"name":"bob"`) {
		t.Errorf("PATCH: got %d %s, want present ann and editor bob", code, body)
	}
	ann.Close()
	eventually(t, "nobody present", present())
}
