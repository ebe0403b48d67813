package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestProcs starts the binary: by default it runs with procsPerCPU
// processors per CPU the runtime gives it, and a GOMAXPROCS in the
// environment stands as it is.
func TestProcs(t *testing.T) {
	bin := clusterBin(t, false)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			env = append(env, kv)
		}
	}
	// procs starts bin under argv[0] if given (taskset), with extra in
	// its environment, and returns the processors it says it runs with.
	procs := func(argv []string, extra ...string) int {
		t.Helper()
		argv = append(argv, bin, "-addr", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "collab.db"))
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(env, extra...)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
		}()
		re := regexp.MustCompile(`msg=listening .* procs=(\d+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				n, _ := strconv.Atoi(m[1])
				return n
			}
		}
		t.Fatalf("no listening line with procs= on stderr (%v)", sc.Err())
		return 0
	}
	if n := procs(nil); n%procsPerCPU != 0 || n < procsPerCPU || n > procsPerCPU*runtime.NumCPU() {
		t.Errorf("without GOMAXPROCS: %d processors, want %d per CPU the runtime allows (%d CPUs)", n, procsPerCPU, runtime.NumCPU())
	}
	if n := procs(nil, "GOMAXPROCS=3"); n != 3 {
		t.Errorf("with GOMAXPROCS=3: %d processors", n)
	}
	if n := procs(nil, "GOMAXPROCS=1"); n != 1 {
		t.Errorf("with GOMAXPROCS=1: %d processors", n)
	}
	// On one CPU, exactly procsPerCPU.
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Skip("no taskset (util-linux) to run collabd on one CPU: the exact count is not checked")
	}
	if n := procs([]string{taskset, "-c", "0"}); n != procsPerCPU {
		t.Errorf("on one CPU: %d processors, want %d", n, procsPerCPU)
	}
}
