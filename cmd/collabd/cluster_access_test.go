package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// TestClusterAccess: with sign-in on in cluster mode, access records are
// shared by the nodes (JetStream key-value), a change saved on one node
// closes the sessions it no longer allows on another (4403), and a
// rotation on one node leaves the old ids dead on every node and the
// document whole under its new ids.
func TestClusterAccess(t *testing.T) {
	skipShortCluster(t)
	c := startCluster(t, clusterOpts{nodes: 2, race: clusterRaceBuild(),
		extra: []string{"-trusted-proxies", "127.0.0.1/32", "-auth-header", "X-User", "-auth-groups-header", "X-Groups"}})
	a, b := c.nodes[0], c.nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), clusterGuard)
	defer cancel()

	code, body := as(t, "olga", "POST", a.URL+"/api/docs", `{"text":"cluster plans"}`)
	if code != 201 {
		t.Fatalf("create on %s: got %d %s", a.name, code, body)
	}
	var doc struct{ ID, ViewID string }
	json.Unmarshal([]byte(body), &doc)
	if code, _ := as(t, "bob", "GET", b.URL+"/api/docs/"+doc.ID+"/text", ""); code != 404 {
		t.Errorf("bob on %s before the share: got %d, want 404", b.name, code)
	}
	if code, body := as(t, "olga", "PUT", a.URL+"/api/docs/"+doc.ID+"/access", `{"link":"none","members":[{"user":"bob","role":"edit"}]}`); code != 200 {
		t.Fatalf("share on %s: got %d %s", a.name, code, body)
	}
	if code, body := as(t, "bob", "GET", b.URL+"/api/docs/"+doc.ID+"/text", ""); code != 200 || body != "cluster plans" {
		t.Errorf("bob on %s after the share: got %d %s", b.name, code, body)
	}

	dial := func(n *clusterNode, id string) *websocket.Conn {
		t.Helper()
		hdr := http.Header{"X-User": {"bob"}}
		ws, _, err := websocket.Dial(ctx, n.wsURL(id), &websocket.DialOptions{HTTPHeader: hdr})
		if err != nil {
			t.Fatalf("bob's session on %s: %v", n.name, err)
		}
		t.Cleanup(func() { ws.CloseNow() })
		ws.Write(ctx, websocket.MessageText, []byte(`{"type":"hello","client":"1d3f6a0e-5c2b-4e8f-9a7d-0b1c2d3e4f50","name":"bob"}`))
		if _, m, err := ws.Read(ctx); err != nil || !strings.Contains(string(m), `"welcome"`) {
			t.Fatalf("bob's welcome on %s: %s %v", n.name, m, err)
		}
		return ws
	}
	closeCode := func(ws *websocket.Conn) websocket.StatusCode {
		for {
			if _, _, err := ws.Read(ctx); err != nil {
				return websocket.CloseStatus(err)
			}
		}
	}

	ws := dial(b, doc.ID)
	if code, body := as(t, "olga", "PUT", a.URL+"/api/docs/"+doc.ID+"/access", `{"link":"none","members":[]}`); code != 200 {
		t.Fatalf("unshare on %s: got %d %s", a.name, code, body)
	}
	if got := closeCode(ws); got != 4403 {
		t.Errorf("bob's session on %s after the unshare on %s: closed %d, want 4403", b.name, a.name, got)
	}

	// Rotation on a: the old ids die on b too.
	as(t, "olga", "PUT", a.URL+"/api/docs/"+doc.ID+"/access", `{"link":"none","members":[{"user":"bob","role":"edit"}]}`)
	ws = dial(b, doc.ID)
	code, body = as(t, "olga", "POST", a.URL+"/api/docs/"+doc.ID+"/access/rotate", "")
	if code != 200 {
		t.Fatalf("rotate on %s: got %d %s", a.name, code, body)
	}
	var ids struct{ ID, ViewID string }
	json.Unmarshal([]byte(body), &ids)
	if got := closeCode(ws); got != 4403 && got != 4404 {
		t.Errorf("bob's session on %s after the rotation: closed %d, want 4403 or 4404", b.name, got)
	}
	for _, n := range []*clusterNode{a, b} {
		if code, _ := as(t, "bob", "GET", n.URL+"/api/docs/"+doc.ID+"/text", ""); code != 404 {
			t.Errorf("the old id on %s: got %d, want 404", n.name, code)
		}
		if code, body := as(t, "bob", "GET", n.URL+"/api/docs/"+ids.ID+"/text", ""); code != 200 || body != "cluster plans" {
			t.Errorf("the new id on %s: got %d %s", n.name, code, body)
		}
	}

	// Rotation asked of the node that does not hold the document: b
	// forwards it to a, where bob edits, and the old ids die on both.
	ws = dial(a, ids.ID)
	if o := c.owner(t, ctx, ids.ID); o != a {
		t.Fatalf("the owner after bob's session on %s: %v", a.name, o)
	}
	code, body = as(t, "olga", "POST", b.URL+"/api/docs/"+ids.ID+"/access/rotate", "")
	if code != 200 {
		t.Fatalf("rotate through %s: got %d %s", b.name, code, body)
	}
	var ids2 struct{ ID, ViewID string }
	json.Unmarshal([]byte(body), &ids2)
	if got := closeCode(ws); got != 4403 && got != 4404 {
		t.Errorf("bob's session on %s after the rotation through %s: closed %d, want 4403 or 4404", a.name, b.name, got)
	}
	for _, n := range []*clusterNode{a, b} {
		if code, _ := as(t, "bob", "GET", n.URL+"/api/docs/"+ids.ID+"/text", ""); code != 404 {
			t.Errorf("the old id on %s after the forwarded rotation: got %d, want 404", n.name, code)
		}
		if code, body := as(t, "bob", "GET", n.URL+"/api/docs/"+ids2.ID+"/text", ""); code != 200 || body != "cluster plans" {
			t.Errorf("the new id on %s after the forwarded rotation: got %d %s", n.name, code, body)
		}
	}
}
