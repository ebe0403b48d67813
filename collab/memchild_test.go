package collab

// The memory tests run the server in a child process, this package's
// test binary started again in child mode, so that what they measure is
// the server's memory alone and not that of the clients the test runs.
// Under -race the child is a copy of the test binary built without it:
// the race detector multiplies the memory of every goroutine.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// memChildEnv holds, in a child, the JSON of its Options.
const memChildEnv = "COLLAB_MEMTEST_CHILD"

func TestMain(m *testing.M) {
	if opts, ok := os.LookupEnv(memChildEnv); ok {
		os.Exit(runMemChild(opts))
	}
	code := m.Run()
	if childBinary.path != "" {
		os.RemoveAll(filepath.Dir(childBinary.path))
	}
	os.Exit(code)
}

// childOptions are the Options a child takes (the rest keep their
// defaults): Options as a whole holds funcs and loggers, which JSON cannot
// carry.
type childOptions struct {
	MaxEditors, MaxDocChars, MaxConns, MaxConnsPerAddr int
}

// childMem is what a child reports of its memory, after a full GC.
type childMem struct {
	HeapInuse  uint64 // bytes in heap spans in use
	StackInuse uint64 // bytes of goroutine stacks
	Goroutines int
	RSS, HWM   int64 // VmRSS and VmHWM from /proc, bytes
}

// Live is the Go memory the server holds: heap in use plus stacks.
func (m childMem) Live() int64 { return int64(m.HeapInuse + m.StackInuse) }

// runMemChild serves a Server on a memStore, with the timeouts
// cmd/collabd sets, until its standard input closes (the parent ended or
// died). GET /debug/mem collects garbage and reports childMem.
func runMemChild(optsJSON string) int {
	var co childOptions
	if err := json.Unmarshal([]byte(optsJSON), &co); err != nil {
		fmt.Fprintln(os.Stderr, "child options:", err)
		return 2
	}
	if os.Getenv("COLLAB_HEAP_PROFILE") != "" {
		runtime.MemProfileRate = 64
	}
	srv := New(newMemStore(), Options{MaxEditors: co.MaxEditors, MaxDocChars: co.MaxDocChars,
		MaxConns: co.MaxConns, MaxConnsPerAddr: co.MaxConnsPerAddr})
	mux := http.NewServeMux()
	mux.Handle("/", srv)
	mux.HandleFunc("GET /debug/mem", func(w http.ResponseWriter, r *http.Request) {
		// Each GC halves stacks that use under a quarter of themselves;
		// a few let grown ones shrink to what they hold.
		for range 4 {
			runtime.GC()
		}
		debug.FreeOSMemory() // a full GC, then memory back to the OS
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		m := childMem{HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse, Goroutines: runtime.NumGoroutine()}
		m.RSS, m.HWM, _ = readProcMem(os.Getpid())
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(m)
	})
	mux.HandleFunc("GET /debug/heap", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		pprof.Lookup("heap").WriteTo(w, 0)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		return 2
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
	go hs.Serve(ln)
	fmt.Printf("listening http://%s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Close(ctx)
	hs.Close()
	return 0
}

// readProcMem returns VmRSS and VmHWM of a process, in bytes.
func readProcMem(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			hwm = n << 10
		}
	}
	return rss, hwm, nil
}

// memChild is a running child server.
type memChild struct {
	URL   string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	http  *http.Client
}

// childBinary is the child built under -race, once per test binary;
// TestMain removes it.
var childBinary struct {
	once sync.Once
	path string
	err  error
}

// childExe returns the binary to run as a child: this one, or under
// -race, this package's tests built without the race detector.
func childExe(t testing.TB) string {
	if !raceBuild {
		return os.Args[0]
	}
	childBinary.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			childBinary.err = err
			return
		}
		dir, err := os.MkdirTemp("", "collab-memchild")
		if err != nil {
			childBinary.err = err
			return
		}
		childBinary.path = filepath.Join(dir, "collab.test")
		out, err := exec.Command(goBin, "test", "-c", "-o", childBinary.path, ".").CombinedOutput()
		if err != nil {
			childBinary.err = fmt.Errorf("go test -c: %v\n%s", err, out)
		}
	})
	if childBinary.err != nil {
		t.Skipf("cannot build a child without -race: %v", childBinary.err)
	}
	return childBinary.path
}

// startMemChild starts a child server with the childOptions fields of
// opts and stops it when the test ends.
func startMemChild(t testing.TB, opts Options) *memChild {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("memory is read from /proc, which only Linux has")
	}
	cfg, err := json.Marshal(childOptions{MaxEditors: opts.MaxEditors, MaxDocChars: opts.MaxDocChars,
		MaxConns: opts.MaxConns, MaxConnsPerAddr: opts.MaxConnsPerAddr})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(childExe(t), "-test.run=^$")
	cmd.Env = append(os.Environ(), memChildEnv+"="+string(cfg))
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
	c := &memChild{cmd: cmd, stdin: stdin, http: &http.Client{Timeout: guard}}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("child stderr:\n%s", stderr.Bytes())
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	_, url, ok := strings.Cut(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		t.Fatalf("child did not start: %q, %v\n%s", line, err, stderr.Bytes())
	}
	c.URL = url
	return c
}

// mem collects the child's garbage and reports its memory.
func (c *memChild) mem(t testing.TB) childMem {
	t.Helper()
	resp, err := c.http.Get(c.URL + "/debug/mem")
	if err != nil {
		t.Fatalf("child memory: %v", err)
	}
	defer resp.Body.Close()
	var m childMem
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("child memory: %v", err)
	}
	return m
}

// procMem reads the child's VmRSS and VmHWM without disturbing it.
func (c *memChild) procMem() (rss, hwm int64) {
	rss, hwm, _ = readProcMem(c.cmd.Process.Pid)
	return rss, hwm
}

// resetPeak sets the child's VmHWM back to its current RSS (Linux's
// clear_refs), so that a later peak is that of what follows.
func (c *memChild) resetPeak(t testing.TB) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", c.cmd.Process.Pid), []byte("5"), 0); err != nil {
		t.Logf("cannot reset the peak RSS (%v); it includes what came before", err)
	}
}

// mib formats a byte count.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// decodeJSON decodes a response body.
func decodeJSON(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}

// setRcvbuf returns a net.Dialer Control that sets SO_RCVBUF before the
// connection is made, so that the window the peer sees stays small: a
// viewer that stops reading then holds little in kernel buffers.
func setRcvbuf(n int) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		})
		if err != nil {
			return err
		}
		return serr
	}
}
