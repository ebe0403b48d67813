package main

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadAgainstCollabd builds collabd from this tree, starts it on a
// free loopback port and runs a short load against it: the report must
// show acknowledged keystrokes, delivered SSE events and convergence.
func TestLoadAgainstCollabd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the load run, which builds and starts collabd")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "collabd")
	if out, err := exec.Command("go", "build", "-o", bin, "../collabd").CombinedOutput(); err != nil {
		t.Fatalf("go build collabd: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := exec.CommandContext(ctx, bin, "-addr", "127.0.0.1:0", "-data", filepath.Join(dir, "collab.db"))
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		srv.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	_, url, ok := strings.Cut(strings.TrimSpace(line), " on ")
	if err != nil || !ok {
		t.Fatalf("collabd printed %q (%v), want \"collabd listening on URL\"", line, err)
	}

	var out bytes.Buffer
	start := time.Now()
	err = run(context.Background(), []string{"-url", url, "-docs", "3", "-editors", "3", "-viewers", "2",
		"-rate", "20", "-duration", "2s"}, &out, &out)
	t.Logf("load took %v:\n%s", time.Since(start).Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, want := range []string{"keystroke to ack (", "SSE op events delivered: ", "converged: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "SSE op events delivered: 0\n") {
		t.Error("viewers received no op events")
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-docs", "0"},
		{"-rate", "0"},
		{"extra"},
		{"-url", "http://127.0.0.1:1", "-duration", "1ms"}, // nothing listens on port 1
	} {
		if err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("run %q: got nil error", args)
		}
	}
}
