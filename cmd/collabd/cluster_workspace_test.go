package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestClusterWorkspace: in cluster mode every node keeps its own search
// index from the stream, so a document created and edited through one
// node is found, with its snippet, through the others; a rename, tags,
// the trash and a share made on one node are seen on another; and a node
// that was down while others edited, renamed and shared catches its
// index up when it starts again.
func TestClusterWorkspace(t *testing.T) {
	skipShortCluster(t)
	c := startCluster(t, clusterOpts{nodes: 3, race: clusterRaceBuild(), extra: workspaceArgs})
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]
	docs := func(n *clusterNode) string { return n.URL + "/api/docs" }

	id, view := create(t, a.URL, "ann", "first draft")
	if code, body := asIn(t, "ann", "", "PUT", docs(a)+"/"+id+"/text", `{"text":"Field notes\nOtters swim in the river at dawn."}`); code != 200 {
		t.Fatalf("edit on %s: %d %s", a.name, code, body)
	}
	edited := time.Now()
	for _, n := range []*clusterNode{b, cc} {
		eventually(t, "the edit on "+a.name+" found on "+n.name, func() bool { return len(list(t, "ann", "", docs(n)+"?q=otters")) == 1 })
		// A figure for the log, not a bound: the machine is shared.
		t.Logf("the edit committed on %s found on %s after %v", a.name, n.name, time.Since(edited).Round(time.Millisecond))
		got := list(t, "ann", "", docs(n)+"?q=otters")[0]
		if got.ID != id || got.ViewID != view || got.Title != "Field notes" || got.Rev != 2 || got.Owner != "ann" ||
			got.Snippet == nil || !strings.Contains(*got.Snippet, "<mark>Otters</mark>") {
			t.Errorf("search on %s: got %+v", n.name, got)
		}
		if got := list(t, "ann", "", docs(n)+"?q=draft"); len(got) != 0 {
			t.Errorf("the old text found on %s: %+v", n.name, got)
		}
		if got := list(t, "bob", "", docs(n)+"?q=otters"); len(got) != 0 {
			t.Errorf("bob finds ann's document on %s: %+v", n.name, got)
		}
	}

	// Rename and tags on b, seen on c and a.
	if code, body := asIn(t, "ann", "", "PATCH", docs(b)+"/"+id, `{"title":"River log","tags":["nature"]}`); code != 200 {
		t.Fatalf("patch on %s: %d %s", b.name, code, body)
	}
	for _, n := range []*clusterNode{cc, a} {
		eventually(t, "the rename on "+b.name+" seen on "+n.name, func() bool {
			got := list(t, "ann", "", docs(n)+"?tag=nature")
			return len(got) == 1 && got[0].Title == "River log"
		})
		if got := list(t, "ann", "", docs(n)+"?q=log"); len(got) != 1 || got[0].ID != id {
			t.Errorf("search by the new title on %s: got %+v", n.name, got)
		}
	}

	// Trash on c: out of search on a and b, in their trash; restored on a.
	if code, body := asIn(t, "ann", "", "POST", docs(cc)+"/"+id+"/trash", ""); code != 200 {
		t.Fatalf("trash on %s: %d %s", cc.name, code, body)
	}
	for _, n := range []*clusterNode{a, b} {
		eventually(t, "the trash on "+cc.name+" seen on "+n.name, func() bool { return len(list(t, "ann", "", docs(n)+"?q=otters")) == 0 })
		if got := list(t, "ann", "", docs(n)+"?trash=true"); len(got) != 1 || got[0].ID != id || !got[0].Trashed {
			t.Errorf("the trash on %s: got %+v", n.name, got)
		}
	}
	if code, body := asIn(t, "ann", "", "DELETE", docs(a)+"/"+id+"/trash", ""); code != 200 {
		t.Fatalf("restore on %s: %d %s", a.name, code, body)
	}
	eventually(t, "the restore on "+a.name+" seen on "+b.name, func() bool { return len(list(t, "ann", "", docs(b)+"?q=otters")) == 1 })

	// c goes down; meanwhile a edits, b renames, a shares with bob and
	// creates another document, and b renames and shares a document
	// whose text does not change. c catches up when it starts again: the
	// edits from the stream, the renames and shares from the buckets,
	// from where its index had got to (a revision that did not move
	// says nothing of those).
	still, _ := create(t, a.URL, "ann", "Kestrels hover over the verge")
	eventually(t, "the unchanged document indexed on "+cc.name, func() bool { return len(list(t, "ann", "", docs(cc)+"?q=kestrels")) == 1 })
	cc.stop()
	if code, body := asIn(t, "ann", "", "PATCH", docs(b)+"/"+still, `{"title":"Raptors","tags":["birds"]}`); code != 200 {
		t.Fatalf("patch on %s: %d %s", b.name, code, body)
	}
	if code, body := asIn(t, "ann", "", "PUT", docs(b)+"/"+still+"/access", `{"link":"none","members":[{"user":"bob","role":"edit"}]}`); code != 200 {
		t.Fatalf("share on %s: %d %s", b.name, code, body)
	}
	if code, body := asIn(t, "ann", "", "PUT", docs(a)+"/"+id+"/text", `{"text":"Field notes\nBadgers dig under the old oak."}`); code != 200 {
		t.Fatalf("edit on %s: %d %s", a.name, code, body)
	}
	if code, body := asIn(t, "ann", "", "PATCH", docs(b)+"/"+id, `{"title":"Woodland log"}`); code != 200 {
		t.Fatalf("patch on %s: %d %s", b.name, code, body)
	}
	if code, body := asIn(t, "ann", "", "PUT", docs(a)+"/"+id+"/access", `{"link":"none","members":[{"user":"bob","role":"view"}]}`); code != 200 {
		t.Fatalf("share on %s: %d %s", a.name, code, body)
	}
	other, _ := create(t, b.URL, "ann", "Herons wait by the weir")
	cc.start()
	eventually(t, "the edit made while "+cc.name+" was down found there", func() bool {
		got := list(t, "bob", "", docs(cc)+"?q=badgers")
		return len(got) == 1 && got[0].Title == "Woodland log" && got[0].Role == "view"
	})
	eventually(t, "the rename and share made while "+cc.name+" was down seen there", func() bool {
		got := list(t, "bob", "", docs(cc)+"?q=kestrels")
		return len(got) == 1 && got[0].Title == "Raptors" && got[0].Role == "edit" && len(got[0].Tags) == 1
	})
	if got := list(t, "ann", "", docs(cc)+"?q=herons"); len(got) != 1 || got[0].ID != other || got[0].Snippet == nil || !strings.Contains(*got[0].Snippet, "<mark>Herons</mark>") {
		t.Errorf("the document created while %s was down: got %+v", cc.name, got)
	}
	if got := list(t, "ann", "", docs(cc)+"?q=otters"); len(got) != 0 {
		t.Errorf("the text replaced while %s was down is still found there: %+v", cc.name, got)
	}

	// A purge on b takes the document out of c's index too.
	if code, body := asIn(t, "ann", "", "DELETE", docs(b)+"/"+other, ""); code != 204 {
		t.Fatalf("purge on %s: %d %s", b.name, code, body)
	}
	eventually(t, "the purge on "+b.name+" seen on "+cc.name, func() bool {
		got := list(t, "ann", "", docs(cc))
		b, _ := json.Marshal(got)
		return len(got) == 2 && !strings.Contains(string(b), other)
	})
}
