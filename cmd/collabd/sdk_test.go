package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/collabd/collabd/collab/client"
	"github.com/collabd/collabd/ot"
)

// sdkTestDir holds the SDK's Node tests and their npm project.
var sdkTestDir = filepath.Join("..", "..", "frontend", "sdk", "test")

// sdkNode returns node, or skips saying what is missing: node itself, or
// the npm packages of frontend/sdk/test (make test-deps installs them).
func sdkNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: skipping the SDK's Node tests")
	}
	if _, err := os.Stat(filepath.Join(sdkTestDir, "node_modules", "ws")); err != nil {
		t.Skip("frontend/sdk/test/node_modules is missing (make test-deps runs npm ci there): skipping the SDK's Node tests")
	}
	return node
}

// TestSDKNode runs frontend/sdk/test/sdk.test.mjs, the SDK in Node
// against two real servers, one with access tokens: editing by code
// point, change and presence events, convergence through dropped
// connections, offline edits, IndexedDB persistence (fake-indexeddb),
// the SSE viewer, HTTP writes and history, and token refresh.
func TestSDKNode(t *testing.T) {
	node := sdkNode(t)
	open := startServer(t, loopbackArgs()...)
	secret := "sdk-test-secret-0123456789abcdef0123456789"
	keyFile := filepath.Join(t.TempDir(), "jwt.key")
	if err := os.WriteFile(keyFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	auth := startServer(t, append(loopbackArgs(), "-auth-key-file", keyFile, "-auth-leeway", "0s")...)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "sdk.test.mjs", "monaco.test.mjs")
	cmd.Dir = sdkTestDir
	cmd.Env = append(os.Environ(), "COLLABD_URL="+open.URL, "COLLABD_AUTH_URL="+auth.URL, "COLLABD_SECRET="+secret)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test sdk.test.mjs: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// TestSDKTypes checks the SDK's API against its hand-written .d.ts:
// frontend/sdk/test/usage.ts uses every call as the docs show them, and
// tsc --noEmit must accept it (and reject misuse, marked with
// @ts-expect-error there).
func TestSDKTypes(t *testing.T) {
	node := sdkNode(t)
	tsc := filepath.Join(sdkTestDir, "node_modules", "typescript", "bin", "tsc")
	if _, err := os.Stat(tsc); err != nil {
		t.Skip("typescript is not installed in frontend/sdk/test (make test-deps): skipping the .d.ts check")
	}
	cmd := exec.Command(node, filepath.Join("node_modules", "typescript", "bin", "tsc"), "--noEmit", "-p", "tsconfig.json")
	cmd.Dir = sdkTestDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tsc --noEmit: %v\n%s", err, out)
	}
}

// TestSDKConvergesWithGo: SDK documents in Node and collab/client editors
// in Go type into one document at once, with connections cut on both
// sides; all end with the server's text.
func TestSDKConvergesWithGo(t *testing.T) {
	node := sdkNode(t)
	s := startServer(t, loopbackArgs()...)
	id := createDoc(t, s.URL, "shared")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	wsURL := "ws" + strings.TrimPrefix(s.URL, "http") + "/api/docs/" + id + "/ws"
	var gos []*client.Client
	for i := range 2 {
		c, err := client.Dial(ctx, wsURL, client.Options{Name: fmt.Sprintf("go%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		gos = append(gos, c)
	}

	cmd := exec.CommandContext(ctx, node, "converge.mjs")
	cmd.Dir = sdkTestDir
	cmd.Env = append(os.Environ(), "COLLABD_URL="+s.URL, "DOC="+id, "N=2", "EDITS=150")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func(prefix string) string {
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("converge.mjs ended before %s; stderr:\n%s", prefix, stderr.String())
				}
				if rest, ok := strings.CutPrefix(l, prefix); ok {
					return strings.TrimSpace(rest)
				}
				t.Logf("node: %s", l)
			case <-ctx.Done():
				t.Fatalf("no %s from converge.mjs; stderr:\n%s", prefix, stderr.String())
			}
		}
	}

	// The Go editors type until the Node side is done, each dropping its
	// connection now and then and resuming.
	head := goTypists(t, ctx, s.URL, id, gos, typing{
		seed:  7,
		pause: func(rng *rand.Rand) time.Duration { return time.Duration(rng.IntN(4)) * time.Millisecond },
		edit: func(rng *rand.Rand, n int) ot.Op {
			p := rng.IntN(n + 1)
			if n > 4 && rng.IntN(3) == 0 {
				p = min(p, n-1)
				return ot.Op{}.Retain(p).Delete(1).Retain(n - p - 1)
			}
			return ot.Op{}.Retain(p).Insert([]string{"g", "ö", "🙂"}[rng.IntN(3)]).Retain(n - p)
		},
		reconnectEvery: 41,
		until:          func() { next("@typed") },
	})
	io.WriteString(stdin, fmt.Sprintf("@head %d\n", head.Rev))
	var texts []string
	if err := json.Unmarshal([]byte(next("@text")), &texts); err != nil {
		t.Fatal(err)
	}
	for i, txt := range texts {
		if txt != head.Text {
			t.Errorf("SDK document %d's text differs from the server's:\n got %q\nwant %q", i, txt, head.Text)
		}
	}
	if head.Rev < 200 {
		t.Errorf("only %d revisions: the editors did not type concurrently", head.Rev)
	}
}

// TestSDKBrowser drives the SDK's textarea and CodeMirror bindings in
// headless Chromium (frontend/test/browser/sdk.mjs): two people typing
// into one document through each, carets, remote selections and per-user
// undo. Skips without Chromium, node or the npm packages.
func TestSDKBrowser(t *testing.T) {
	dir := filepath.Join("..", "..", "frontend", "test", "browser")
	node, chromium := browserDeps(t, dir)
	if _, err := os.Stat(filepath.Join("..", "..", "frontend", "src", "node_modules", "esbuild")); err != nil {
		t.Skip("frontend/src/node_modules is missing (make test-deps): skipping the SDK browser test")
	}
	// The test pages are an embedder's site on another port of
	// 127.0.0.1: collabd lets that origin open editing sessions.
	s := startServer(t, append(loopbackArgs(), "-allowed-origins", "127.0.0.1:*")...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "sdk.mjs", s.URL)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("node sdk.mjs: %v", err)
	}
	for _, name := range []string{"textarea", "codemirror"} {
		if !strings.Contains(string(out), "ok "+name+"\n") {
			t.Errorf("scenario %s did not pass", name)
		}
	}
}

// TestSDKExample runs docs/examples/embed, the example application that
// signs people in its own way and mints tokens, against a collabd with
// access tokens on, and drives it in Chromium
// (frontend/test/browser/example.mjs).
func TestSDKExample(t *testing.T) {
	dir := filepath.Join("..", "..", "frontend", "test", "browser")
	node, chromium := browserDeps(t, dir)
	secret := "example-secret-0123456789abcdef0123456789"
	keyFile := filepath.Join(t.TempDir(), "jwt.key")
	if err := os.WriteFile(keyFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, append(loopbackArgs(), "-auth-key-file", keyFile, "-auth-leeway", "0s", "-allowed-origins", "127.0.0.1:*")...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	app := exec.CommandContext(ctx, node, filepath.Join("..", "..", "docs", "examples", "embed", "server.mjs"))
	app.Env = append(os.Environ(), "COLLABD_URL="+s.URL, "COLLABD_JWT_SECRET="+secret, "PORT=0", "TOKEN_SECONDS=3")
	out, err := app.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var appErr strings.Builder
	app.Stderr = &appErr
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { app.Process.Kill(); app.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	_, appURL, ok := strings.Cut(strings.TrimSpace(line), "example listening on ")
	if err != nil || !ok {
		t.Fatalf("example server said %q (%v); stderr:\n%s", line, err, appErr.String())
	}

	cmd := exec.CommandContext(ctx, node, "example.mjs", appURL)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium, "TOKEN_SECONDS=3")
	res, err := cmd.CombinedOutput()
	t.Logf("%s", res)
	if err != nil || !strings.Contains(string(res), "ok example") {
		t.Fatalf("node example.mjs: %v; example server's stderr:\n%s", err, appErr.String())
	}
}

// typing is how goTypists' clients type.
type typing struct {
	seed           uint64
	pause          func(rng *rand.Rand) time.Duration // before each edit
	edit           func(rng *rand.Rand, n int) ot.Op  // on a text of n code points
	reconnectEvery int                                // edits between drops and resumes
	until          func()                             // returns when they are to stop
}

// goTypists has each of gos type into document id as ty says until
// ty.until returns, then waits until every one is synced and holds the
// server's head text, and returns that head.
func goTypists(t *testing.T, ctx context.Context, base, id string, gos []*client.Client, ty typing) (head struct {
	Rev  int64
	Text string
}) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, len(gos))
	for i, c := range gos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), ty.seed))
			for k := 0; ; k++ {
				select {
				case <-stop:
					errs <- nil
					return
				case <-time.After(ty.pause(rng)):
				}
				err := c.EditLenFunc(func(n int) ot.Op { return ty.edit(rng, n) })
				if err == nil && k%ty.reconnectEvery == ty.reconnectEvery-1 {
					err = c.Reconnect(ctx)
				}
				if err != nil {
					errs <- fmt.Errorf("go client %d: %w", i, err)
					return
				}
			}
		}()
	}
	ty.until()
	close(stop)
	wg.Wait()
	for range gos {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range gos {
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get(base + "/api/docs/" + id)
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&head)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range gos {
		if err := c.WaitRev(ctx, head.Rev); err != nil {
			t.Fatal(err)
		}
		if got := c.Text(); got != head.Text {
			t.Errorf("go client %d's text differs from the server's:\n got %q\nwant %q", i, got, head.Text)
		}
	}
	return head
}
