package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/collabd/collabd/collab/client"
	"github.com/collabd/collabd/ot"
)

// TestBrowser drives the embedded frontend in headless Chromium through
// frontend/test/browser/suite.mjs: two people typing at once (emoji, CJK,
// Enter, Backspace, select-and-delete, a 50 KB paste), typing at the same
// spot, undo of one's own edits only, offline editing across reloads, a
// server restart mid-typing, the viewer following and never seeing the
// edit id, the timeslider, and wrong links. Each scenario is a subtest.
// `make test` installs Chromium and playwright-core; without them the test
// skips. SCREENSHOT_DIR=dir also saves screenshots of every page at
// 1280x800 and 390x844.
func TestBrowser(t *testing.T) {
	dir := filepath.Join("..", "..", "frontend", "test", "browser")
	node, chromium := browserDeps(t, dir)

	data := filepath.Join(t.TempDir(), "collab.db")
	// Every page comes from 127.0.0.1, so the per-address caps are lifted.
	s := startServerAt(t, data, loopbackArgs()...)
	addr := strings.TrimPrefix(s.URL, "http://")

	args := []string{"suite.mjs", s.URL}
	if only := os.Getenv("BROWSER_SCENARIOS"); only != "" {
		args = append(args, strings.Fields(only)...)
	}
	cmd := exec.Command(node, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	if shots := os.Getenv("SCREENSHOT_DIR"); shots != "" {
		abs, err := filepath.Abs(shots)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Env = append(cmd.Env, "SCREENSHOT_DIR="+abs)
	}
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
	// The script cannot outlive the test: Chromium is its child.
	timer := time.AfterFunc(4*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()

	ran := 0
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "@restart" {
			// Stop the server and start it again on the same address and
			// data file, as an operator's restart would.
			s.Stop(t)
			s = startServerAt(t, data, append([]string{"-addr", addr}, loopbackArgs()...)...)
			fmt.Fprintln(stdin, "ok")
			continue
		}
		var res struct {
			Scenario string
			Errors   []string
			Skip     string
			MS       int
		}
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			t.Errorf("unexpected output from suite.mjs: %q", line)
			continue
		}
		ran++
		t.Run(res.Scenario, func(t *testing.T) {
			t.Logf("%d ms", res.MS)
			if res.Skip != "" {
				t.Skip(res.Skip)
			}
			for _, e := range res.Errors {
				t.Error(e)
			}
		})
	}
	io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Errorf("node suite.mjs: %v\n%s", err, stderr.String())
	}
	if ran == 0 {
		t.Errorf("suite.mjs ran no scenario\n%s", stderr.String())
	}
}

// loopbackArgs lift the per-address caps for tests whose clients all
// come from 127.0.0.1.
func loopbackArgs() []string {
	return []string{"-max-conns-per-addr", "100000", "-max-tcp-conns-per-addr", "100000", "-create-burst", "100000"}
}

// browserDeps returns node and Chromium, or skips the test saying which is
// missing.
func browserDeps(t *testing.T, dir string) (node, chromium string) {
	t.Helper()
	chromium = os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("no Chromium at %s (make test-deps installs Debian's chromium): skipping the browser test", chromium)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: skipping the browser test")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		t.Skipf("playwright-core is not installed in %s (make test-deps runs npm ci there): skipping the browser test", dir)
	}
	return node, chromium
}

// TestBrowserBenchmark runs frontend/test/browser/bench.mjs, the figures
// of docs/performance.md's "Frontend" section, when BROWSER_BENCH=1: the
// page's own work per keystroke at 10K, 100K and 1M code points, the
// keystroke-to-screen latency with 2 and 20 browser editors, and the
// bundle sizes. It asserts nothing about speed.
func TestBrowserBenchmark(t *testing.T) {
	if os.Getenv("BROWSER_BENCH") == "" {
		t.Skip("set BROWSER_BENCH=1 to run the frontend benchmark")
	}
	dir := filepath.Join("..", "..", "frontend", "test", "browser")
	node, chromium := browserDeps(t, dir)
	s := startServer(t, append([]string{"-max-message", "8388608", "-rate-limit", "1000", "-rate-burst", "2000"}, loopbackArgs()...)...)
	cmd := exec.Command(node, "bench.mjs", s.URL)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	var stderr strings.Builder
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
	var stopTypists func()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		// "@typists DOC N": N protocol-level editors type into DOC, each at
		// the end of its own line (line 3 onwards), three keys a second,
		// until "@stop". They stand for people on other machines.
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "@typists" {
			n, _ := strconv.Atoi(f[2])
			stopTypists = typists(t, s.URL, f[1], n)
			fmt.Fprintln(stdin, "ok")
			continue
		}
		if sc.Text() == "@stop" {
			stopTypists()
			fmt.Fprintln(stdin, "ok")
			continue
		}
		t.Logf("%s", sc.Text())
	}
	err = cmd.Wait()
	t.Log(stderr.String())
	if err != nil {
		t.Fatalf("node bench.mjs: %v", err)
	}
}

// typists starts n editors over the Go client, each typing at the end of
// line 3+i of the document, and returns the function that stops them.
func typists(t *testing.T, base, doc string, n int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range n {
		c, err := client.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/api/docs/"+doc+"/ws", client.Options{Name: fmt.Sprintf("typist %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			tick := time.NewTicker(330 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				err := c.EditFunc(func(text string) ot.Op {
					rs := []rune(text)
					line, pos := 0, len(rs)
					for j, r := range rs {
						if r == '\n' {
							if line == 2+i {
								pos = j
								break
							}
							line++
						}
					}
					return ot.Op{}.Retain(pos).Insert("b").Retain(len(rs) - pos)
				})
				if err != nil {
					return
				}
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
}

// TestBrowserCreateToken: on a server started with -create-token, the
// home page asks for the token on the first create, refuses a wrong one
// in words, and remembers the right one (suite.mjs's createtoken).
func TestBrowserCreateToken(t *testing.T) {
	dir := filepath.Join("..", "..", "frontend", "test", "browser")
	node, chromium := browserDeps(t, dir)
	const token = "team-secret-4b1d"
	s := startServer(t, append([]string{"-create-token", token}, loopbackArgs()...)...)
	cmd := exec.Command(node, "suite.mjs", s.URL, "createtoken")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium, "CREATE_TOKEN="+token)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node suite.mjs createtoken: %v\n%s", err, stderr.String())
	}
	var res struct {
		Scenario string
		Errors   []string
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &res); err != nil || res.Scenario != "createtoken" {
		t.Fatalf("unexpected output from suite.mjs: %q (%v)\n%s", out, err, stderr.String())
	}
	for _, e := range res.Errors {
		t.Error(e)
	}
}
