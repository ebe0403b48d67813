package main

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// repoRoot is where the Makefile is, relative to this package.
const repoRoot = "../.."

// makeBuild runs `make build` into a temporary BIN and returns that
// directory. The Makefile is what a new user runs, so the tests drive it
// rather than go build.
func makeBuild(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed: skipping the Makefile tests")
	}
	bin := t.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "build", "BIN="+bin)
	cmd.Dir = repoRoot
	cmd.Env = userEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	return bin
}

// userEnv is this process's environment without what an enclosing make
// (`make test`) passes down, so that the make under test starts as a
// user's would.
func userEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MAKELEVEL" && k != "MFLAGS" {
			env = append(env, kv)
		}
	}
	return env
}

// makeRun is a `make run` in progress, with its output collected.
type makeRun struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	url  string
	done chan error
}

// startMakeRun starts `make run` in its own process group (as a shell
// would start a job), with env added to the environment and vars passed
// as make variables, and waits for collabd's "listening" line. With
// wrap, the make command line is run through it (e.g. `script` for a
// terminal).
func startMakeRun(t *testing.T, bin string, env, vars []string, wrap func(args []string) []string) *makeRun {
	t.Helper()
	args := append([]string{"make", "--no-print-directory", "run", "BIN=" + bin}, vars...)
	if wrap != nil {
		args = wrap(args)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = repoRoot
	cmd.Env = append(userEnv(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	out := &lockedBuffer{}
	cmd.Stdout = io.MultiWriter(out, pw)
	cmd.Stderr = out
	if wrap != nil {
		// script reads its stdin: keep it open, so that it does not see
		// end of file and hang up the terminal.
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stdin.Close() })
		out.stdin = stdin
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &makeRun{cmd: cmd, out: out, done: make(chan error, 1)}
	go func() {
		err := cmd.Wait()
		pw.Close()
		r.done <- err
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-r.done
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if _, url, ok := strings.Cut(sc.Text(), "collabd listening on "); ok {
				lines <- strings.TrimSpace(url)
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case r.url = <-lines:
	case err := <-r.done:
		r.done <- err
		t.Fatalf("make run ended before listening: %v\n%s", err, out)
	case <-time.After(60 * time.Second):
		t.Fatalf("make run did not listen within 60s:\n%s", out)
	}
	return r
}

// wait waits for make to end and returns its output and error.
func (r *makeRun) wait(t *testing.T) (string, error) {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return r.out.String(), err
	case <-time.After(30 * time.Second):
		t.Fatalf("make run did not end within 30s:\n%s", r.out)
		return "", nil
	}
}

// TestMakeRun: `make run` honours the COLLABD_* environment unless a make
// variable says otherwise, and ends cleanly when interrupted.
func TestMakeRun(t *testing.T) {
	t.Parallel()
	bin := makeBuild(t)
	healthy := func(t *testing.T, url string) {
		t.Helper()
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /healthz: got %d, want 200", resp.StatusCode)
		}
	}
	noMakeError := func(t *testing.T, out string) {
		t.Helper()
		if regexp.MustCompile(`make(\[\d+\])?: \*\*\*`).MatchString(out) {
			t.Errorf("make reported an error:\n%s", out)
		}
		if !strings.Contains(out, "shutting down") {
			t.Errorf("collabd did not log its shutdown:\n%s", out)
		}
	}

	t.Run("environment and SIGINT to the process group", func(t *testing.T) {
		dir := t.TempDir()
		data := filepath.Join(dir, "from-env.db")
		r := startMakeRun(t, bin, []string{"COLLABD_ADDR=127.0.0.1:0", "COLLABD_DATA=" + data, "COLLABD_LOG_LEVEL=info"}, nil, nil)
		healthy(t, r.url)
		if _, err := os.Stat(data); err != nil {
			t.Errorf("COLLABD_DATA was not used: %v", err)
		}
		// What a terminal's Ctrl-C does when there is no job control: the
		// whole group, make included, gets SIGINT.
		syscall.Kill(-r.cmd.Process.Pid, syscall.SIGINT)
		out, err := r.wait(t)
		// When the whole group gets SIGINT, GNU make sometimes loses the
		// race with its own job control and says "wait: No child
		// processes" (exit 2) after collabd has shut down: that is make's
		// bookkeeping, not the recipe failing. Anything else still counts.
		racy := regexp.MustCompile(`(?m)^make(\[\d+\])?: \*\*\* (wait: No child processes\.  Stop\.|Waiting for unfinished jobs\.\.\.\.)$`)
		makeRaced := racy.MatchString(out)
		noMakeError(t, racy.ReplaceAllString(out, ""))
		if makeRaced {
			return
		}
		// GNU make re-raises a SIGINT it received once its child is done,
		// so it ends by the signal; collabd itself exited 0, or make would
		// have said "*** [run] Error" above.
		var ee *exec.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGINT) {
			t.Errorf("make run: got %v, want exit 0 or make's own SIGINT", err)
		}
	})

	t.Run("DATA beats COLLABD_DATA", func(t *testing.T) {
		dir := t.TempDir()
		env, flag := filepath.Join(dir, "env.db"), filepath.Join(dir, "flag.db")
		r := startMakeRun(t, bin, []string{"COLLABD_ADDR=127.0.0.1:0", "COLLABD_DATA=" + env}, []string{"DATA=" + flag}, nil)
		healthy(t, r.url)
		if _, err := os.Stat(flag); err != nil {
			t.Errorf("DATA=%s was not used: %v", flag, err)
		}
		if _, err := os.Stat(env); err == nil {
			t.Errorf("COLLABD_DATA was used although DATA was set")
		}
		syscall.Kill(-r.cmd.Process.Pid, syscall.SIGINT)
		r.wait(t)
	})

	t.Run("Ctrl-C on a terminal", func(t *testing.T) {
		script, err := exec.LookPath("script")
		if err != nil {
			t.Skip("script (util-linux) is not installed: cannot give make a terminal")
		}
		if _, err := exec.LookPath("ps"); err != nil {
			t.Skip("ps is not installed: make run takes its plain path, tested above")
		}
		dir := t.TempDir()
		r := startMakeRun(t, bin, []string{"COLLABD_ADDR=127.0.0.1:0", "COLLABD_DATA=" + filepath.Join(dir, "tty.db")}, nil,
			func(args []string) []string {
				// -e: script exits with make's status.
				return []string{script, "-qefc", strings.Join(args, " "), "/dev/null"}
			})
		healthy(t, r.url)
		// ^C typed on the terminal.
		if _, err := r.out.stdin.Write([]byte{3}); err != nil {
			t.Fatal(err)
		}
		out, err := r.wait(t)
		noMakeError(t, out)
		if err != nil {
			t.Errorf("make run on a terminal, after Ctrl-C: got %v, want exit 0\n%s", err, out)
		}
	})
}

// TestVersionStampsRevision builds collabd with `make build` in a fresh
// clone of this repository (Go finds no commit in a linked worktree) and
// checks that `collabd version` and `collabd -version` name its commit.
func TestVersionStampsRevision(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	head, err := exec.Command("git", "-C", repoRoot, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout (%v): nothing to stamp", err)
	}
	clone := filepath.Join(t.TempDir(), "src")
	if out, err := exec.Command("git", "clone", "-q", "--no-checkout", repoRoot, clone).CombinedOutput(); err != nil {
		t.Skipf("cannot clone the repository: %v\n%s", err, out)
	}
	if out, err := exec.Command("git", "-C", clone, "checkout", "-q", strings.TrimSpace(string(head))).CombinedOutput(); err != nil {
		t.Fatalf("checkout: %v\n%s", err, out)
	}
	bin := filepath.Join(clone, "bin")
	cmd := exec.Command("make", "--no-print-directory", "build")
	cmd.Dir = clone
	// The machine's default may be GOFLAGS=-buildvcs=false: the Makefile
	// must override it.
	cmd.Env = append(userEnv(), "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build in a clone: %v\n%s", err, out)
	}
	want := "revision " + strings.TrimSpace(string(head))
	for _, args := range [][]string{{"version"}, {"-version"}} {
		out, err := exec.Command(filepath.Join(bin, "collabd"), args...).Output()
		if err != nil {
			t.Fatalf("collabd %s: %v", args[0], err)
		}
		if !strings.Contains(string(out), want) || !strings.HasPrefix(string(out), "collabd v") {
			t.Errorf("collabd %s: got %q, want a module version and %q", args[0], out, want)
		}
	}
}

// lockedBuffer collects a child's output from several writers; stdin is
// the child's standard input, when the test writes to it.
type lockedBuffer struct {
	mu    sync.Mutex
	b     strings.Builder
	stdin io.WriteCloser
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
