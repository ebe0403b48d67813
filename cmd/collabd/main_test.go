package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// server is a collabd started by run on a free port, as main would start it.
type server struct {
	URL      string
	AdminURL string // set when started with -admin-addr
	done     chan error
	stop     context.CancelFunc
}

// startServer calls run on 127.0.0.1:0 with a data file in t.TempDir() and
// waits until it is listening. The server is stopped when the test ends.
func startServer(t *testing.T, extraArgs ...string) *server {
	t.Helper()
	return startServerAt(t, filepath.Join(t.TempDir(), "collab.db"), extraArgs...)
}

func startServerAt(t *testing.T, dataPath string, extraArgs ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &server{done: make(chan error, 1), stop: cancel}
	args := append([]string{"-addr", "127.0.0.1:0", "-data", dataPath}, extraArgs...)
	go func() {
		err := run(ctx, args, pw, io.Discard)
		pw.CloseWithError(errors.New("run returned"))
		s.done <- err
	}()
	br := bufio.NewReader(pr)
	line, err := br.ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("server did not start: %v (run: %v)", err, <-s.done)
	}
	if slices.Contains(extraArgs, "-admin-addr") {
		admin, err := br.ReadString('\n')
		_, adminURL, ok := strings.Cut(strings.TrimSpace(admin), " admin on ")
		if err != nil || !ok {
			cancel()
			t.Fatalf("got second line %q (%v), want \"collabd admin on URL\"", admin, err)
		}
		s.AdminURL = adminURL
	}
	// Keep draining stdout so that run never blocks writing to it.
	go io.Copy(io.Discard, br)
	_, url, ok := strings.Cut(strings.TrimSpace(line), " on ")
	if !ok {
		t.Fatalf("got startup line %q, want \"collabd listening on URL\"", line)
	}
	s.URL = url
	t.Cleanup(func() { s.Stop(t) })
	return s
}

// Stop shuts the server down and checks that run returned cleanly. It may
// be called more than once.
func (s *server) Stop(t *testing.T) {
	t.Helper()
	if s.stop == nil {
		return
	}
	s.stop()
	s.stop = nil
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("run returned %v, want nil after shutdown", err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("run did not return within 20s of cancellation")
	}
}

func TestRunServesHealthzAndFrontend(t *testing.T) {
	s := startServer(t)
	for _, tc := range []struct {
		path, want string
	}{
		{"/healthz", `"ok"`},
		{"/", "collabd"},
	} {
		resp, err := http.Get(s.URL + tc.path)
		if err != nil {
			t.Fatalf("GET %s: %v", tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: got status %d, want 200", tc.path, resp.StatusCode)
		}
		if !strings.Contains(string(body), tc.want) {
			t.Errorf("GET %s: got body %q, want it to contain %q", tc.path, body, tc.want)
		}
	}
}

func TestParseConfigEnvAndFlags(t *testing.T) {
	env := map[string]string{"COLLABD_ADDR": "127.0.0.1:9999", "COLLABD_DATA": "/tmp/x.db"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := parseConfig([]string{"-data", "/tmp/y.db"}, lookup, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.addr != "127.0.0.1:9999" {
		t.Errorf("got addr %q, want the environment's 127.0.0.1:9999", cfg.addr)
	}
	if cfg.data != "/tmp/y.db" {
		t.Errorf("got data %q, want the flag's /tmp/y.db", cfg.data)
	}

	env["COLLABD_LOG_LEVEL"] = "loud"
	if _, err := parseConfig(nil, lookup, io.Discard); err == nil || !strings.Contains(err.Error(), "COLLABD_LOG_LEVEL") {
		t.Errorf("got error %v, want one naming COLLABD_LOG_LEVEL", err)
	}
	delete(env, "COLLABD_LOG_LEVEL")
	if _, err := parseConfig([]string{"-help"}, lookup, io.Discard); !errors.Is(err, errHelp) {
		t.Errorf("got %v for -help, want errHelp", err)
	}
}

// TestHelpNamesCommands: -help names every command run knows.
func TestHelpNamesCommands(t *testing.T) {
	var out strings.Builder
	parseConfig([]string{"-help"}, func(string) (string, bool) { return "", false }, &out)
	for _, c := range []string{"backup", "check", "migrate", "export", "import", "version"} {
		if !strings.Contains(out.String(), "collabd "+c) {
			t.Errorf("-help does not name `collabd %s`:\n%s", c, out.String())
		}
	}
}
