package collab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// restartableServer serves a collab Server that can be replaced by a
// fresh one on the same store, as a process restart would, while the
// listener stays up. Requests that arrive during a restart wait for the
// new Server. It records the Last-Event-ID of every SSE request.
type restartableServer struct {
	store *memStore
	opts  Options

	// mu guards the fields below.
	mu           sync.Mutex
	srv          *Server
	ready        chan struct{} // closed while srv serves
	lastEventIDs []string
}

func newRestartableServer(store *memStore, opts Options) *restartableServer {
	ready := make(chan struct{})
	close(ready)
	return &restartableServer{store: store, opts: opts, srv: New(store, opts), ready: ready}
}

func (rs *restartableServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for {
		rs.mu.Lock()
		srv, ready := rs.srv, rs.ready
		rs.mu.Unlock()
		select {
		case <-ready:
		case <-r.Context().Done():
			return
		}
		if srv != rs.current() {
			continue // restarted meanwhile
		}
		if strings.HasSuffix(r.URL.Path, "/events") {
			rs.mu.Lock()
			rs.lastEventIDs = append(rs.lastEventIDs, r.Header.Get("Last-Event-ID"))
			rs.mu.Unlock()
		}
		srv.ServeHTTP(w, r)
		return
	}
}

func (rs *restartableServer) current() *Server {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.srv
}

// restart closes the Server, which ends every stream and session, and
// starts a new one on the same store.
func (rs *restartableServer) restart(ctx context.Context) error {
	rs.mu.Lock()
	old, ready := rs.srv, make(chan struct{})
	rs.ready = ready
	rs.mu.Unlock()
	err := old.Close(ctx)
	rs.mu.Lock()
	rs.srv = New(rs.store, rs.opts)
	rs.mu.Unlock()
	close(ready)
	return err
}

func (rs *restartableServer) close(ctx context.Context) error { return rs.current().Close(ctx) }

// nodeLine is one line the Node watcher prints.
type nodeLine struct {
	Type    string  `json:"type"`
	ID      string  `json:"id"`
	Rev     int64   `json:"rev"`
	Text    *string `json:"text"`
	Message string  `json:"message"`
}

// nodeDir holds the Node watcher and its pinned dependencies.
var nodeDir = filepath.Join("testdata", "sse-node")

// installNodeDeps runs npm ci when the watcher's dependencies are not
// installed yet, and skips the test when Node, npm or the registry is
// not at hand.
func installNodeDeps(t *testing.T) (node string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; skipping the black-box test with the eventsource npm package")
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "eventsource", "package.json")); err == nil {
		return node
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm is not installed; skipping the black-box test with the eventsource npm package")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = nodeDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("npm ci in %s failed (offline?), so the eventsource test cannot run: %v\n%s", nodeDir, err, out)
	}
	return node
}

// TestNodeEventSource watches a document with Node's eventsource package
// while Go clients edit it, restarts the server under it, and checks that
// the EventSource resumes by itself with Last-Event-ID and that every
// text it computed, counting code points, is the server's.
func TestNodeEventSource(t *testing.T) {
	node := installNodeDeps(t)
	store := newMemStore()
	opts := Options{RateLimit: 1e6, RateBurst: 1e6}
	rs := newRestartableServer(store, opts)
	hs := httptest.NewServer(rs)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), sseGuard)
		defer cancel()
		rs.close(ctx)
		hs.Close()
	})
	id, viewID := createDocWith(t, http.DefaultClient, hs.URL, "héllo 😀\r\n")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "watch.mjs", viewEventsURL(hs.URL, viewID))
	cmd.Dir = nodeDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	lines := make(chan nodeLine, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var l nodeLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				l = nodeLine{Type: "fail", Message: "unparsable line: " + sc.Text()}
			}
			lines <- l
		}
		close(lines)
		waited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		stdin.Close()
		cancel()
		<-waited
	})

	var seen []nodeLine
	// await reads the watcher's lines until one satisfies ok.
	await := func(what string, ok func(nodeLine) bool) nodeLine {
		t.Helper()
		timeout := time.After(sseGuard)
		for {
			select {
			case l, open := <-lines:
				if !open {
					t.Fatalf("watcher exited while waiting for %s; stderr:\n%s", what, stderr.String())
				}
				seen = append(seen, l)
				if l.Type == "fail" {
					t.Fatalf("watcher failed: %s", l.Message)
				}
				if ok(l) {
					return l
				}
			case <-timeout:
				t.Fatalf("watcher: no %s within %s; stderr:\n%s", what, sseGuard, stderr.String())
			}
		}
	}
	isEvent := func(l nodeLine) bool { return l.Type == "snapshot" || l.Type == "op" }
	reaches := func(rev int64) func(nodeLine) bool {
		return func(l nodeLine) bool { return isEvent(l) && l.Rev >= rev }
	}
	wsURL := "ws" + strings.TrimPrefix(hs.URL, "http") + "/api/docs/" + id + "/ws"
	edit := func(seed uint64) (string, int64) {
		t.Helper()
		var editors []*Client
		for range 2 {
			c, err := Dial(ctx, wsURL, ClientOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			editors = append(editors, c)
		}
		waitErr(t, "editors", editConcurrently(editors, seed, 15))
		return serverText(t, hs.URL, id)
	}

	await("the snapshot", isEvent)
	text1, rev1 := edit(7)
	if l := await("rev "+strconv.FormatInt(rev1, 10), reaches(rev1)); l.Rev != rev1 || *l.Text != text1 {
		t.Fatalf("watcher at rev %d has %q; the server at rev %d has %q", l.Rev, *l.Text, rev1, text1)
	}

	// Restart the server: the stream ends; the EventSource waits its
	// retry time (2 s) and reconnects by itself. Editors make more edits
	// meanwhile, which the resume must bring, and no more.
	if err := rs.restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	text2, rev2 := edit(8)
	if l := await("rev "+strconv.FormatInt(rev2, 10), reaches(rev2)); l.Rev != rev2 || *l.Text != text2 {
		t.Fatalf("watcher at rev %d has %q; the server at rev %d has %q", l.Rev, *l.Text, rev2, text2)
	}
	stdin.Close()
	final := await("the final line", func(l nodeLine) bool { return l.Type == "final" })
	if final.Rev != rev2 || *final.Text != text2 {
		t.Fatalf("watcher ended at rev %d with %q, want rev %d with %q", final.Rev, *final.Text, rev2, text2)
	}
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("watcher exited with %v; stderr:\n%s", err, stderr.String())
		}
		waited <- nil // for the cleanup
	case <-time.After(sseGuard):
		t.Fatal("watcher did not exit after its final line")
	}

	// Every event, checked against the store: one snapshot, then each op
	// once, each text what the server had at that revision.
	var opens, snapshots int
	prev := int64(-1)
	for _, l := range seen {
		switch l.Type {
		case "open":
			opens++
		case "snapshot":
			snapshots++
		}
		if !isEvent(l) {
			continue
		}
		if l.Type == "op" && l.Rev != prev+1 {
			t.Errorf("watcher got op %d after rev %d", l.Rev, prev)
		}
		prev = l.Rev
		if want := textAt(t, store, id, l.Rev); *l.Text != want {
			t.Errorf("watcher at rev %d has %q, want %q", l.Rev, *l.Text, want)
		}
	}
	if opens != 2 || snapshots != 1 {
		t.Errorf("watcher opened %d times and got %d snapshots, want 2 opens and 1 snapshot", opens, snapshots)
	}
	rs.mu.Lock()
	ids := rs.lastEventIDs
	rs.mu.Unlock()
	if want := []string{"", strconv.FormatInt(rev1, 10)}; strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("the EventSource's requests had Last-Event-ID %q, want %q", ids, want)
	}
}
