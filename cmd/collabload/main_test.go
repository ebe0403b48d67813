package main

import (
	"bufio"
	"bytes"
	"context"
	"math"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/collab/client"
)

// TestLoadAgainstCollabd builds collabd from this tree, starts it on a
// free loopback port and runs a short load against it: the report must
// show acknowledged keystrokes, delivered SSE events and convergence.
func TestLoadAgainstCollabd(t *testing.T) {
	url, _, _ := startCollabd(t)
	var out bytes.Buffer
	start := time.Now()
	err := run(context.Background(), []string{"-url", url, "-docs", "3", "-editors", "3", "-viewers", "2",
		"-rate", "20", "-duration", "2s"}, &out, &out)
	t.Logf("load took %v:\n%s", time.Since(start).Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, want := range []string{"keystroke to ack (", "SSE op events delivered: ", "converged: ", "collabload CPU: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "SSE op events delivered: 0\n") {
		t.Error("viewers received no op events")
	}
}

// TestLightLoad runs light editors with the server's pid and admin URL:
// lengths must converge and the report must carry the server's CPU and
// its latency histograms.
func TestLightLoad(t *testing.T) {
	url, pid, admin := startCollabd(t)
	var out bytes.Buffer
	err := run(context.Background(), []string{"-url", url, "-docs", "2", "-editors", "4", "-rate", "20",
		"-duration", "2s", "-light", "-server-pid", strconv.Itoa(pid), "-admin-url", admin}, &out, &out)
	t.Logf("report:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, want := range []string{"keystroke to ack (", "converged: ", "server CPU: ", "per revision; RSS ",
		"op received to ack written   n=", "transform and apply          n=", "storage transaction          n=",
		"ack in the send queue        n=", " in the server's lifetime", "processors (GOMAXPROCS)      "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestHTTPWritesLoad runs HTTP writers (issue 24's POST /ops benchmark,
// short): the report must give acked writes with their latencies and the
// server's CPU per acked write, with nothing refused, and every acked
// write must be in the document (the run checks it and fails otherwise).
func TestHTTPWritesLoad(t *testing.T) {
	url, pid, _ := startCollabd(t, "-write-rate", "-1")
	var out bytes.Buffer
	err := run(context.Background(), []string{"-url", url, "-docs", "2", "-editors", "0", "-http-writes", "6",
		"-viewers", "1", "-duration", "2s", "-server-pid", strconv.Itoa(pid)}, &out, &out)
	t.Logf("report:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, want := range []string{"HTTP writes: 6 keep-alive clients", "refused 0\n", "write to its answer (durable) (",
		"server CPU per acked HTTP write: ", "converged: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	acked := reportInt(t, out.String(), "acked ")
	if acked < 1 || acked != reportInt(t, out.String(), "server revisions: ") {
		t.Errorf("acked %d writes; want at least one, each a revision", acked)
	}
}

// TestStreamLoad runs a stream into a document with editors typing and
// viewers watching (issue 24's stream benchmark, short): every viewer must
// have seen every token, and the latency line must be there.
func TestStreamLoad(t *testing.T) {
	url, _, _ := startCollabd(t)
	var out bytes.Buffer
	err := run(context.Background(), []string{"-url", url, "-docs", "1", "-editors", "3", "-rate", "5",
		"-viewers", "4", "-stream-rate", "20", "-duration", "2s"}, &out, &out)
	t.Logf("report:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, want := range []string{"token in body to viewer's event (", "keystroke to ack (", "converged: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	tokens := reportInt(t, out.String(), "streams: ")
	seen := reportInt(t, out.String(), " commits; ")
	if tokens < 1 || seen != 4*tokens {
		t.Errorf("%d tokens written, %d (token, viewer) pairs seen; want 4 viewers × every token", tokens, seen)
	}
}

// reportInt reads the integer that follows prefix in a report.
func reportInt(t *testing.T, report, prefix string) int {
	t.Helper()
	_, rest, ok := strings.Cut(report, prefix)
	if !ok {
		t.Fatalf("report lacks %q", prefix)
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	n, err := strconv.Atoi(rest[:max(end, 0)])
	if err != nil {
		t.Fatalf("report: %q not followed by a number", prefix)
	}
	return n
}

// startCollabd builds and starts collabd on free loopback ports, with
// extra flags, and returns its URL, pid and admin URL.
func startCollabd(t *testing.T, flags ...string) (string, int, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the load run, which builds and starts collabd")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "collabd")
	if out, err := exec.Command("go", "build", "-o", bin, "../collabd").CombinedOutput(); err != nil {
		t.Fatalf("go build collabd: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := l.Addr().String()
	l.Close()
	srv := exec.CommandContext(ctx, bin, append([]string{"-addr", "127.0.0.1:0", "-admin-addr", adminAddr, "-data", filepath.Join(dir, "collab.db")}, flags...)...)
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
	return url, srv.Process.Pid, "http://" + adminAddr
}

func TestQuantileFromBuckets(t *testing.T) {
	text := `# TYPE x histogram
x_seconds_bucket{le="0.001"} 50
x_seconds_bucket{le="0.002"} 90
x_seconds_bucket{le="0.004"} 100
x_seconds_bucket{le="+Inf"} 100
x_seconds_sum 0.1
x_seconds_count 100
`
	h := parseHistograms(strings.NewReader(text), nil)["x_seconds"]
	if h == nil {
		t.Fatal("histogram not parsed")
	}
	for _, tc := range []struct{ q, want float64 }{{0.25, 0.0005}, {0.5, 0.001}, {0.7, 0.0015}, {0.95, 0.003}, {1, 0.004}} {
		if got := h.quantile(tc.q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
}

func TestLenDelta(t *testing.T) {
	var dec client.FrameDecoder
	for _, tc := range []struct {
		op   string
		want int
	}{{`[3,"ab",-2,1]`, 0}, {`["é😀"]`, 2}, {`["\u00e9\ud83d\ude00"]`, 2}, {`[-4,2]`, -4}, {`[5]`, 0}} {
		msgs, err := dec.Decode([]byte(`{"type":"op","rev":1,"seq":1,"author":"a","op":` + tc.op + `}`))
		if err != nil || len(msgs) != 1 {
			t.Fatalf("%s: %d messages, %v", tc.op, len(msgs), err)
		}
		if got, err := msgs[0].OpLenDelta(); err != nil || got != tc.want {
			t.Errorf("OpLenDelta(%s) = %d, %v; want %d", tc.op, got, err, tc.want)
		}
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-docs", "0"},
		{"-editors", "0"},
		{"-http-writes", "2"}, // with editors
		{"-editors", "0", "-http-writes", "2", "-stream-rate", "5"},
		{"-stream-rate", "5", "-light"},
		{"-rate", "0"},
		{"extra"},
		{"-url", "http://127.0.0.1:1", "-duration", "1ms"}, // nothing listens on port 1
	} {
		if err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("run %q: got nil error", args)
		}
	}
}
