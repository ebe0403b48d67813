package client_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/collabd/collabd/collab/client"
	"github.com/collabd/collabd/ot"
	"github.com/golang-jwt/jwt/v5"
)

// TestNoServerDependency: importing the client must not pull in the
// server (collab), its storage, or anything of ours but ot and the wire
// messages (collab/wire).
func TestNoServerDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/collabd/collabd/collab/client").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/collabd/collabd/") && p != "github.com/collabd/collabd/ot" && p != "github.com/collabd/collabd/collab/client" &&
			p != "github.com/collabd/collabd/collab/wire" {
			t.Errorf("collab/client depends on %s", p)
		}
	}
}

// TestInsertDeleteAndChanges: Insert and Delete count code points, refuse
// positions outside the text, and every applied op reaches OnChange in
// order, local ones marked, remote ones with their author.
func TestInsertDeleteAndChanges(t *testing.T) {
	server, stop := startServer()
	defer stop()
	id := createDoc(server, "h😀llo")
	ctx := guardCtx(t)
	a, err := client.Open(ctx, server+"/", id, client.Options{Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := client.Open(ctx, strings.Replace(server, "http://", "ws://", 1), id, client.Options{Name: "B"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	var mu sync.Mutex
	var got []client.Change
	remove := b.OnChange(func(c client.Change) { mu.Lock(); got = append(got, c); mu.Unlock() })
	var peers [][]client.Peer
	b.OnPresence(func(p []client.Peer) { mu.Lock(); peers = append(peers, p); mu.Unlock() })

	if err := a.SetSelection([]client.Range{{1, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(ctx, func(v client.View) bool { p := v.Peers(); return len(p) == 1 && len(p[0].Ranges) == 1 }); err != nil {
		t.Fatal(err)
	}
	if err := a.Insert(2, "é"); err != nil { // after the emoji: code points
		t.Fatal(err)
	}
	if err := a.Delete(0, 1); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func() error{
		func() error { return a.Insert(7, "x") },
		func() error { return a.Insert(-1, "x") },
		func() error { return a.Delete(5, 2) },
	} {
		if err := bad(); !errors.Is(err, client.ErrOutOfRange) {
			t.Errorf("out of range edit: got %v, want ErrOutOfRange", err)
		}
	}
	if err := a.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitRev(ctx, a.Rev()); err != nil {
		t.Fatal(err)
	}
	if err := b.Insert(b.Len(), "!"); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := b.Text(), "😀éllo!"; got != want {
		t.Fatalf("b's text %q, want %q", got, want)
	}
	if err := a.WaitRev(ctx, b.Rev()); err != nil {
		t.Fatal(err)
	}
	if st := serverText(t, server, id); st != "😀éllo!" || a.Text() != st {
		t.Fatalf("server %q, a %q, want both 😀éllo!", st, a.Text())
	}
	mu.Lock()
	defer mu.Unlock()
	// Replaying the changes on the text b opened with gives b's text.
	text := "h😀llo"
	for i, c := range got {
		if c.Local != (c.Author == b.Author()) || (!c.Local && c.Author != a.Author()) {
			t.Errorf("change %d: local %v by %s (a %s, b %s)", i, c.Local, c.Author, a.Author(), b.Author())
		}
		if text, err = ot.Apply(text, c.Op); err != nil {
			t.Fatalf("change %d %v: %v", i, c.Op, err)
		}
	}
	if text != b.Text() || len(got) < 2 || !got[len(got)-1].Local {
		t.Errorf("changes %v replay to %q, want %q ending with b's own", got, text, b.Text())
	}
	remove()
	if !slices.ContainsFunc(peers, func(p []client.Peer) bool {
		return len(p) == 1 && p[0].Name == "A" && slices.Equal(p[0].Ranges, []client.Range{{1, 1}})
	}) {
		t.Errorf("presence events %v never showed A", peers)
	}
}

// TestListenerMayEdit: a listener that edits from inside OnChange neither
// deadlocks nor reorders the changes others see.
func TestListenerMayEdit(t *testing.T) {
	server, stop := startServer()
	defer stop()
	id := createDoc(server, "")
	ctx := guardCtx(t)
	a, err := client.Open(ctx, server, id, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	n := 0
	a.OnChange(func(c client.Change) {
		if n++; n < 5 {
			a.Insert(0, "x")
		}
	})
	if err := a.Insert(0, "y"); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.Text(); got != "xxxxy" {
		t.Fatalf("text %q, want xxxxy", got)
	}
}

// TestTokenReconnect: with access tokens on, Open sends the token; a
// session whose token expired is closed, and SetToken with a fresh one
// lets Reconnect resume it, with the edit made meanwhile.
func TestTokenReconnect(t *testing.T) {
	dir := t.TempDir()
	secret := []byte("0123456789abcdef0123456789abcdef")
	keyFile := filepath.Join(dir, "jwt.key")
	if err := os.WriteFile(keyFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	server, stop := startServer("-auth-key-file", keyFile, "-auth-leeway", "0s")
	defer stop()
	mint := func(doc, role string, ttl time.Duration) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"doc": doc, "role": role, "name": "Ada", "exp": time.Now().Add(ttl).Unix(),
		}).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	req, _ := http.NewRequest("POST", server+"/api/docs", strings.NewReader(`{"text":"abc"}`))
	req.Header.Set("Authorization", "Bearer "+mint("*", "create", time.Minute))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create with a token: status %d", resp.StatusCode)
	}
	id := created.ID
	ctx := guardCtx(t)
	if _, err := client.Open(ctx, server, id, client.Options{}); err == nil {
		t.Fatal("Open without a token succeeded")
	}
	a, err := client.Open(ctx, server, id, client.Options{Token: mint(id, "edit", 2*time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Wait(ctx, func(client.View) bool { return false }); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Fatalf("after expiry: got %v, want unauthorized", err)
	}
	if err := a.Insert(3, "d"); err != nil {
		t.Fatal(err)
	}
	a.SetToken(mint(id, "edit", time.Minute))
	if err := a.Reconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Text() != "abcd" {
		t.Fatalf("text %q, want abcd", a.Text())
	}
}

// TestListenerQueueBound: while a slow listener runs on an editing
// goroutine, the remote ops queued behind it stay within maxQueued (the
// reader waits instead of reading on), and once it returns every change
// is delivered, in order.
func TestListenerQueueBound(t *testing.T) {
	defer client.SetMaxQueued(client.SetMaxQueued(8))
	server, stop := startServer()
	defer stop()
	id := createDoc(server, "")
	ctx := guardCtx(t)
	a, err := client.Open(ctx, server, id, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := client.Open(ctx, server, id, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	defer free() // before the Closes: a failing test does not hang
	var mu sync.Mutex
	text := ""
	first := true
	a.OnChange(func(c client.Change) {
		if first {
			first = false
			<-release // a slow listener, on the goroutine of a's own edit
		}
		mu.Lock()
		defer mu.Unlock()
		var err error
		if text, err = ot.Apply(text, c.Op); err != nil {
			t.Errorf("change %v does not apply: %v", c.Op, err)
		}
	})
	go a.Insert(0, "a")
	const edits = 400
	maxSeen := 0
	for range edits {
		if err := b.Insert(b.Len(), "b"); err != nil {
			t.Fatal(err)
		}
		// One op each: b's edits would otherwise compose while in flight.
		if err := b.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
		maxSeen = max(maxSeen, client.Queued(a))
	}
	if err := b.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let a's reader run into the bound
	maxSeen = max(maxSeen, client.Queued(a))
	// One frame's messages may join the queue before the reader waits.
	if maxSeen > 8+128 { // the server batches up to 128 messages a frame
		t.Errorf("%d events queued behind a slow listener, want at most the bound and a frame", maxSeen)
	}
	if maxSeen < 8 {
		t.Errorf("only %d events queued: the listener was not slow while ops arrived", maxSeen)
	}
	free()
	if err := a.WaitRev(ctx, b.Rev()); err != nil {
		t.Fatal(err)
	}
	for client.Queued(a) > 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if text != a.Text() || len([]rune(text)) != edits+1 {
		t.Errorf("the changes delivered build %q, a has %q", text, a.Text())
	}
}

// TestCloseWithStuckListener: Close ends the session even while a
// listener never returns and the reader waits on the queue's bound.
func TestCloseWithStuckListener(t *testing.T) {
	defer client.SetMaxQueued(client.SetMaxQueued(2))
	server, stop := startServer()
	defer stop()
	id := createDoc(server, "")
	ctx := guardCtx(t)
	a, err := client.Open(ctx, server, id, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := client.Open(ctx, server, id, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	stuck := make(chan struct{})
	defer close(stuck)
	a.OnChange(func(c client.Change) {
		if c.Local {
			<-stuck
		}
	})
	go a.Insert(0, "a")
	for range 20 {
		b.Insert(0, "b")
		if err := b.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Close hung behind a stuck listener")
	}
}
