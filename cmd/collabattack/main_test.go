package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAttacks runs each attack briefly against a collabd built from this
// tree, started on a free loopback port with limits small enough for the
// attack to meet them in seconds, and checks that it prints its figures.
func TestAttacks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server []string // collabd flags
		args   []string
		want   []string
	}{
		{"restore", nil,
			[]string{"restore", "-clients", "2", "-chars", "1000", "-duration", "1s", "-settle", "0s"},
			[]string{"answers:\n  ", "\n  200 ", "honest editor's ack latency: n=", "server CPU: ", "server VmRSS: ", "data file: "}},
		{"history", []string{"-max-doc-history", "100000"},
			[]string{"history", "-chars", "1000", "-ops", "1000", "-duration", "20s", "-settle", "0s"},
			[]string{"ops taken: ", "refused after ", "too_large", "data file: "}},
		{"frames", nil,
			[]string{"frames", "-mode", "cont", "-conns", "2", "-duration", "2s"},
			[]string{"mode cont: ", "sessions ended by:\n  close 4429 rate_limited", "server CPU: "}},
		{"frames-drip", []string{"-message-timeout", "1s"},
			[]string{"frames", "-mode", "drip", "-drip-every", "100ms", "-duration", "5s", "-honest=false"},
			[]string{"mode drip: ", "sessions ended by:\n  close 1013 "}},
		{"readers", nil,
			[]string{"readers", "-readers", "4", "-per-addr", "2", "-chars", "10000", "-duration", "1s"},
			[]string{"4 readers sent their requests", "readers' first lines:\n  HTTP/1.1 200 OK", "honest editor's ack latency: n=", "server VmRSS: "}},
		{"flood", nil,
			[]string{"flood", "-docs", "2", "-ops", "2", "-size", "1000", "-duration", "10s"},
			[]string{"created 2 documents", "4 ops of 1000 bytes acked", "all 2 ops acked", "server VmRSS: "}},
		{"conns", []string{"-max-conns", "20"},
			[]string{"conns", "-conns", "30", "-addrs", "3", "-per-doc", "10", "-duration", "10s", "-probe", "/healthz"},
			[]string{"30 of 30 sessions answered", "one more editor, from 127.0.0.3: ", "GET /healthz from 127.0.0.3: ", "\n  open ", "\n  503 "}},
		{"bigbody", []string{"-max-doc-chars", "1000"},
			[]string{"bigbody", "-bytes", "100000", "-requests", "2"},
			[]string{"2 requests of 100000 bytes", "413 too_large"}},
		{"outbox", nil,
			[]string{"outbox", "-chars", "1000", "-every", "50ms", "-duration", "1s", "-settle", "0s"},
			[]string{" edits in ", "data file: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, pid, data := startCollabd(t, tc.server...)
			args := append(tc.args, "-url", url, "-server-pid", strconv.Itoa(pid), "-data", data)
			var out, errOut bytes.Buffer
			err := run(context.Background(), args, &out, &errOut)
			t.Logf("collabattack %s:\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q", want)
				}
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, &out, &out); err != nil {
		t.Fatalf("help: %v", err)
	}
	list := out.String()
	for _, a := range attacks() {
		if !strings.Contains(list, "\n  "+a.name+" ") {
			t.Errorf("help does not list %s", a.name)
		}
		out.Reset()
		if err := run(context.Background(), []string{"help", a.name}, &out, &out); err != nil {
			t.Errorf("help %s: %v", a.name, err)
		}
		for _, want := range []string{"usage: collabattack " + a.name, "-url URL", "-server-pid pid", "-duration duration"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("help %s lacks %q", a.name, want)
			}
		}
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"nosuchattack"},
		{"help", "nosuchattack"},
		{"restore", "-url", "http://10.0.0.1:8080"},
		{"restore", "-url", "http://example.com:8080"},
		{"restore", "-url", "http://[::1]:8080"},
		{"restore", "-url", "https://127.0.0.1:8080"},
		{"restore", "-url", "http://127.0.0.1:8080/api"},
		{"restore", "-duration", "0s"},
		{"restore", "-clients", "0"},
		{"frames", "-mode", "burst"},
		{"conns", "-kind", "viewers"},
		{"restore", "extra"},
		{"restore", "-server-pid", "-1"},
		{"restore", "-server-pid", "999999999"},
	} {
		if err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("run %q: got nil error", args)
		}
	}
}

func TestTarget(t *testing.T) {
	for _, tc := range []struct{ url, base string }{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
		{"http://localhost:9", "http://127.0.0.1:9"},
		{"http://127.8.9.10", "http://127.8.9.10:80"},
	} {
		tg, err := newTarget(tc.url)
		if err != nil || tg.base != tc.base {
			t.Errorf("newTarget(%q) = %v, %v; want base %s", tc.url, tg, err, tc.base)
		}
	}
	if _, err := newTarget("http://192.0.2.1:80"); !errors.Is(err, errNotLoopback) {
		t.Errorf("newTarget of a non-loopback address: got %v, want errNotLoopback", err)
	}
}

// TestDialerRefusesOtherAddresses: whatever asks (a redirect, a proxy
// setting), no connection leaves loopback. The check runs before the
// connect, so nothing is sent.
func TestDialerRefusesOtherAddresses(t *testing.T) {
	_, err := dialer(attackerAddr(0), nil).Dial("tcp", "192.0.2.1:80")
	if !errors.Is(err, errNotLoopback) {
		t.Errorf("dial 192.0.2.1: got %v, want errNotLoopback", err)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536} {
		payload := bytes.Repeat([]byte("z"), n)
		f := frame(opText, true, payload)
		// A client frame is masked (with a zero key): strip the mask bit
		// and key to read it as a server frame.
		f[1] &^= 0x80
		hdr := 2 + map[bool]int{true: 2}[n >= 126 && n < 1<<16] + map[bool]int{true: 8}[n >= 1<<16]
		f = append(f[:hdr], f[hdr+4:]...)
		op, got, err := readFrame(bufio.NewReader(bytes.NewReader(f)))
		if err != nil || op != opText || !bytes.Equal(got, payload) {
			t.Errorf("%d bytes: got op %d, %d bytes, %v", n, op, len(got), err)
		}
	}
}

func TestLatencies(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 200; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	if got, want := latencies(lat), "n=200 p50 100ms p99 198ms max 200ms"; got != want {
		t.Errorf("latencies = %q, want %q", got, want)
	}
	if got := latencies(nil); got != "none" {
		t.Errorf("latencies(nil) = %q, want none", got)
	}
}

// collabdBin is the collabd built once for all tests.
var collabdBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "collabattack-test-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "collabd")
	if out, err := exec.Command("go", "build", "-o", bin, "../collabd").CombinedOutput(); err != nil {
		return "", errors.New("go build collabd: " + err.Error() + "\n" + string(out))
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := collabdBin(); err == nil {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// startCollabd starts collabd with extra flags on a free loopback port
// and returns its URL, pid and data file. It is stopped when the test
// ends.
func startCollabd(t *testing.T, extra ...string) (string, int, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the attacks, which build and start collabd")
	}
	bin, err := collabdBin()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "collab.db")
	secret := filepath.Join(dir, "webhook.secret")
	if err := os.WriteFile(secret, []byte(strings.Repeat("s", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	// Webhooks to a closed port, with texts, for the outbox attack; the
	// other attacks do not mind.
	args := append([]string{"-addr", "127.0.0.1:0", "-data", data, "-log-level", "error",
		"-webhook-url", "http://127.0.0.1:1/hook", "-webhook-secret-file", secret, "-webhook-text",
		"-webhook-debounce", "100ms"}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	srv := exec.CommandContext(ctx, bin, args...)
	srv.Stderr = os.Stderr
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
	if _, _, err := net.SplitHostPort(strings.TrimPrefix(url, "http://")); err != nil {
		t.Fatalf("collabd listens on %q: %v", url, err)
	}
	return url, srv.Process.Pid, data
}
