package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/collab/client"
	"github.com/collabd/collabd/ot"
)

// TestSDKMonacoBrowser drives the SDK's Monaco binding with the real
// monaco-editor in headless Chromium (frontend/test/browser/monaco.mjs):
// two people type into one document through two Monaco editors at once,
// emoji and other astral characters included, while two Go clients type
// into it too; all end with the server's text, and each editor shows the
// other's caret at the other's own position. Skips without Chromium, node,
// or the npm packages of frontend/test/browser (make test-deps).
func TestSDKMonacoBrowser(t *testing.T) {
	dir := filepath.Join("..", "..", "frontend", "test", "browser")
	node, chromium := browserDeps(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "monaco-editor", "min", "vs", "loader.js")); err != nil {
		t.Skipf("monaco-editor is not installed in %s (make test-deps runs npm ci there): skipping the Monaco browser test", dir)
	}
	s := startServer(t, append(loopbackArgs(), "-allowed-origins", "127.0.0.1:*")...)
	id := createDoc(t, s.URL, "shared text\n")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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

	cmd := exec.CommandContext(ctx, node, "monaco.mjs", s.URL)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium, "DOC="+id)
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
					cmd.Wait()
					t.Fatalf("monaco.mjs ended before %s; stderr:\n%s", prefix, stderr.String())
				}
				if rest, ok := strings.CutPrefix(l, prefix); ok {
					return strings.TrimSpace(rest)
				}
				t.Logf("node: %s", l)
			case <-ctx.Done():
				t.Fatalf("no %s from monaco.mjs; stderr:\n%s", prefix, stderr.String())
			}
		}
	}

	// The Go clients insert characters the browsers never type (so the
	// script can find the browsers' words between them), an astral one
	// among them, anywhere, until the browsers are done; now and then
	// each drops its connection and resumes.
	head := goTypists(t, ctx, s.URL, id, gos, typing{
		seed:  29,
		pause: func(rng *rand.Rand) time.Duration { return time.Duration(5+rng.IntN(20)) * time.Millisecond },
		edit: func(rng *rand.Rand, n int) ot.Op {
			p := rng.IntN(n + 1)
			return ot.Op{}.Retain(p).Insert([]string{"·", "ж", "🌊"}[rng.IntN(3)]).Retain(n - p)
		},
		reconnectEvery: 53,
		until:          func() { next("@typed") },
	})
	io.WriteString(stdin, fmt.Sprintf("@head %d\n", head.Rev))
	stdin.Close()
	var texts []string
	if err := json.Unmarshal([]byte(next("@text")), &texts); err != nil {
		t.Fatal(err)
	}
	if len(texts) != 2 {
		t.Fatalf("got %d editors' texts, want 2", len(texts))
	}
	for i, txt := range texts {
		if txt != head.Text {
			t.Errorf("Monaco editor %d's text differs from the server's:\n got %q\nwant %q", i, txt, head.Text)
		}
	}
	next("ok monaco")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("monaco.mjs: %v; stderr:\n%s", err, stderr.String())
	}
	if !strings.ContainsRune(head.Text, '🌊') || !strings.Contains(head.Text, "🦀") {
		t.Errorf("the text %q lacks the astral characters typed", head.Text)
	}
}
