package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// clusterAuthors is an answer of GET .../authors.
type clusterAuthors struct {
	Rev  int64 `json:"rev"`
	Runs []struct {
		Author string `json:"author"`
		Len    int    `json:"len"`
	} `json:"runs"`
	Names map[string]string `json:"names"`
}

// named writes the runs with their authors' names, "?" for unknown text.
func (a clusterAuthors) named() string {
	s := fmt.Sprintf("rev %d:", a.Rev)
	for _, r := range a.Runs {
		name := a.Names[r.Author]
		if r.Author == "" {
			name = "?"
		}
		s += fmt.Sprintf(" %s(%s)x%d", name, r.Author, r.Len)
	}
	return s
}

func getClusterAuthors(t *testing.T, ctx context.Context, n *inprocNode, id string, rev int64) clusterAuthors {
	t.Helper()
	url := fmt.Sprintf("%s/api/docs/%s/authors", n.http.URL, id)
	if rev >= 0 {
		url += fmt.Sprintf("?rev=%d", rev)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a clusterAuthors
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &a) != nil {
		t.Fatalf("authors?rev=%d on %s: %d %s", rev, n.name, resp.StatusCode, b)
	}
	return a
}

// TestClusterInprocAuthorsAfterOwnerLoss: who wrote what survives the
// loss of the node that worked it out. The owner answers /authors at
// every revision of a document whose text a revert and a restore brought
// back; then it stops, and the other node, and a node started afterwards,
// answer the same runs at every revision, the text brought back keeping
// the authors it had. Without checkpoints in JetStream the restored text
// would be unknown and the reverted text the reverter's there.
func TestClusterInprocAuthorsAfterOwnerLoss(t *testing.T) {
	ctx := inprocCtx(t, 90*time.Second)
	nodes, _ := inprocCluster(t, 2)
	id := inprocCreate(t, nodes[0], "")
	docURL := nodes[0].http.URL + "/api/docs/" + id
	type wrote struct {
		Rev int64  `json:"rev"`
		Run string `json:"run"`
	}
	write := func(path string, body any) wrote {
		t.Helper()
		code, out := inprocPost(t, docURL+path, body)
		var w wrote
		if code != http.StatusOK || json.Unmarshal([]byte(out), &w) != nil {
			t.Fatalf("POST %s %v: %d %s", path, body, code, out)
		}
		return w
	}
	a := write("/ops", map[string]any{"rev": 0, "op": []any{"hello world"}, "name": "ada"})
	b := write("/ops", map[string]any{"rev": a.Rev, "op": []any{"bob says ", 5, -6}, "name": "bob"})
	// carol reverts bob's edit: "world" comes back as ada's.
	r := write("/revert", map[string]any{"run": b.Run, "name": "carol"})
	c := write("/ops", map[string]any{"rev": r.Rev, "op": []any{11, " and more"}, "name": "cy"})
	d := write("/ops", map[string]any{"rev": c.Rev, "op": []any{-20}, "name": "dan"})
	// A restore of cy's revision: the text comes back as ada's and cy's.
	s := write("/restore", map[string]any{"rev": c.Rev})
	if s.Rev != d.Rev+1 {
		t.Fatalf("restore made rev %d, want %d", s.Rev, d.Rev+1)
	}
	e := write("/ops", map[string]any{"rev": s.Rev, "op": []any{20, "!"}, "name": "eve"})
	owner := inprocOwner(t, ctx, nodes, id)
	other := nodes[0]
	if owner == nodes[0] {
		other = nodes[1]
	}

	before := make([]string, e.Rev+1)
	for rev := range before {
		before[rev] = getClusterAuthors(t, ctx, owner, id, int64(rev)).named()
	}
	head := getClusterAuthors(t, ctx, owner, id, -1)
	var names []string
	for _, run := range head.Runs {
		names = append(names, fmt.Sprintf("%s x%d", head.Names[run.Author], run.Len))
	}
	if want := "[ada x11 cy x9 eve x1]"; fmt.Sprint(names) != want {
		t.Fatalf("the owner's authors at the head: %s, want %s", head.named(), want)
	}
	if at := getClusterAuthors(t, ctx, owner, id, r.Rev); len(at.Runs) != 1 || at.Names[at.Runs[0].Author] != "ada" {
		t.Fatalf("the owner's authors after the revert: %s, want ada's 11", at.named())
	}

	url := owner.nc.ConnectedUrl()
	owner.stop()
	late := startInprocNode(t, url, "late")
	for _, n := range []*inprocNode{other, late} {
		// The head first, as the editor's page asks, then old revisions
		// from the newest down.
		if got := getClusterAuthors(t, ctx, n, id, -1).named(); got != before[e.Rev] {
			t.Errorf("%s at the head: got %s, want %s", n.name, got, before[e.Rev])
		}
		for rev := e.Rev; rev >= 0; rev-- {
			if got := getClusterAuthors(t, ctx, n, id, rev).named(); got != before[rev] {
				t.Errorf("%s at rev %d: got %s, want %s", n.name, rev, got, before[rev])
			}
		}
	}
}
