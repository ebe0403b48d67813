package main

// Harness for the multi-process cluster tests and benchmarks (issue 12,
// docs/scaling.md): a NATS server with JetStream inside the test process,
// one TCP proxy per node in front of it (so that a test can cut one node
// from NATS and heal it), and collabd nodes as separate processes of the
// real binary, each behind its own proxy.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/collabd/collabd/collab/client"
	"github.com/collabd/collabd/ot"
)

// clusterGuard bounds every wait of the cluster tests. It only turns a
// hang into a failure; no test depends on how fast anything is.
const clusterGuard = 30 * time.Second

// clusterRaceBuild reports whether this test binary was built with -race:
// the nodes are then built with -race too, and a data race in a node
// fails the test that ran it.
func clusterRaceBuild() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// clusterBins holds the collabd binaries built by this test process,
// plain and with -race, each built once.
var clusterBins struct {
	mu    sync.Mutex
	built map[bool]clusterBuild
}

type clusterBuild struct {
	path, skip string
	err        error
}

// clusterBin builds the collabd binary once per test process (plain, or
// with -race when race is set) and checks that it has cluster mode;
// without it the test is skipped, saying so. The binary goes to a
// directory of the system's temporary directory named after this
// working tree, so that repeated runs overwrite one file instead of
// leaving one behind each.
func clusterBin(tb testing.TB, race bool) string {
	tb.Helper()
	clusterBins.mu.Lock()
	defer clusterBins.mu.Unlock()
	b, ok := clusterBins.built[race]
	if !ok {
		b = buildCollabd(race)
		if clusterBins.built == nil {
			clusterBins.built = map[bool]clusterBuild{}
		}
		clusterBins.built[race] = b
	}
	switch {
	case b.err != nil:
		tb.Fatal(b.err)
	case b.skip != "":
		tb.Skip(b.skip)
	}
	return b.path
}

func buildCollabd(race bool) clusterBuild {
	wd, err := os.Getwd()
	if err != nil {
		return clusterBuild{err: err}
	}
	sum := sha256.Sum256([]byte(wd))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("collabd-cluster-%x", sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return clusterBuild{err: err}
	}
	bin := filepath.Join(dir, "collabd")
	args := []string{"build", "-o", bin}
	if race {
		bin += "-race"
		args = []string{"build", "-race", "-o", bin}
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		return clusterBuild{err: fmt.Errorf("go build: %v\n%s", err, out)}
	}
	var usage bytes.Buffer
	cmd := exec.Command(bin, "-help")
	cmd.Stdout, cmd.Stderr = &usage, &usage
	cmd.Run()
	if !strings.Contains(usage.String(), "-nats URL") {
		return clusterBuild{path: bin, skip: "this collabd has no -nats flag: cluster mode is not wired into the binary yet"}
	}
	return clusterBuild{path: bin}
}

// skipShortCluster skips a cluster test under -short.
func skipShortCluster(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the multi-process cluster test (three collabd processes on NATS JetStream)")
	}
}

// testNATS is a NATS server with JetStream running in the test process,
// on loopback and a temporary directory, fsyncing every write
// (sync_interval: always), with max_payload 8 MB as docs/scaling.md says
// a cluster needs.
type testNATS struct {
	srv *natsserver.Server
	// all is every server of a three-server cluster (startTestNATSR3);
	// srv is the first of them.
	all []*natsserver.Server
}

// startTestNATSR3 runs three NATS servers with JetStream in the test
// process, routed to each other, and waits for a JetStream meta leader:
// what nodes run with -nats-replicas 3 on.
func startTestNATSR3(tb testing.TB) *testNATS {
	tb.Helper()
	ports := make([]int, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close() // free again for the server, which binds it below
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	ns := &testNATS{}
	for i := range ports {
		srv, err := natsserver.NewServer(&natsserver.Options{
			ServerName: fmt.Sprintf("nats%d", i),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   tb.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster:    natsserver.ClusterOpts{Name: "collab", Host: "127.0.0.1", Port: ports[i]},
			Routes:     natsserver.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			tb.Fatalf("nats server: %v", err)
		}
		srv.Start()
		tb.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
		ns.all = append(ns.all, srv)
	}
	for _, srv := range ns.all {
		if !srv.ReadyForConnections(10 * time.Second) {
			tb.Fatalf("%s not ready after 10s", srv.Name())
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		leader := false
		for _, srv := range ns.all {
			leader = leader || srv.JetStreamIsLeader()
		}
		if leader {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatal("no JetStream meta leader after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ns.srv = ns.all[0]
	return ns
}

// urls is every server's client URL, comma-separated.
func (ns *testNATS) urls() string {
	if len(ns.all) == 0 {
		return ns.srv.ClientURL()
	}
	var u []string
	for _, srv := range ns.all {
		u = append(u, srv.ClientURL())
	}
	return strings.Join(u, ",")
}

func startTestNATS(tb testing.TB) *testNATS {
	tb.Helper()
	srv, err := natsserver.NewServer(&natsserver.Options{
		ServerName: "collabd-cluster-test",
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   tb.TempDir(),
		// COLLABD_BENCH_NATS_SYNC=default measures with NATS's default
		// two-minute fsync (not durable), to see what fsync costs.
		SyncAlways: os.Getenv("COLLABD_BENCH_NATS_SYNC") != "default",
		MaxPayload: 8 << 20,
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		tb.Fatalf("nats server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		tb.Fatalf("nats server not ready after 10s")
	}
	tb.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return &testNATS{srv: srv}
}

// addr is the server's host:port.
func (ns *testNATS) addr() string { return ns.srv.Addr().String() }

// owner returns the node id holding document id's lease in the
// collab_owners bucket (docs/scaling.md), or "" when nobody holds it.
func (ns *testNATS) owner(ctx context.Context, id string) (string, error) {
	nc, err := nats.Connect(ns.srv.ClientURL())
	if err != nil {
		return "", err
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		return "", err
	}
	kv, err := js.KeyValue(ctx, "collab_owners")
	if err != nil {
		return "", fmt.Errorf("owners bucket: %w", err)
	}
	e, err := kv.Get(ctx, id)
	if errors.Is(err, natsjs.ErrKeyNotFound) || errors.Is(err, natsjs.ErrKeyDeleted) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return string(e.Value()), nil
}

// natsProxy forwards TCP connections from its own loopback port to the
// NATS server. Cut closes every forwarded connection and refuses new ones
// (accepts and closes them at once) until Heal, as a network split
// between one node and NATS would. One goroutine, run, owns the state;
// the methods talk to it over channels. Safe for concurrent use.
type natsProxy struct {
	ln     net.Listener
	target string
	conns  chan net.Conn       // accepted by acceptLoop
	ended  chan *proxyPair     // a pair finished copying
	ctl    chan proxyCtl       // cut or heal
	done   chan struct{}       // closed by Close
	wg     sync.WaitGroup      // run, acceptLoop and every copying goroutine
	pairs  map[*proxyPair]bool // owned by run
	closed sync.Once
}

type proxyPair struct{ client, upstream net.Conn }

type proxyCtl struct {
	cut   bool
	reply chan struct{}
}

func startNATSProxy(tb testing.TB, target string) *natsProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &natsProxy{
		ln:     ln,
		target: target,
		conns:  make(chan net.Conn),
		ended:  make(chan *proxyPair),
		ctl:    make(chan proxyCtl),
		done:   make(chan struct{}),
		pairs:  make(map[*proxyPair]bool),
	}
	p.wg.Add(2)
	go p.acceptLoop()
	go p.run()
	tb.Cleanup(p.Close)
	return p
}

// URL is the nats:// URL a node dials.
func (p *natsProxy) URL() string { return "nats://" + p.ln.Addr().String() }

func (p *natsProxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // Close closed the listener
		}
		select {
		case p.conns <- c:
		case <-p.done:
			c.Close()
			return
		}
	}
}

func (p *natsProxy) run() {
	defer p.wg.Done()
	cut := false
	closeAll := func() {
		for pr := range p.pairs {
			pr.client.Close()
			pr.upstream.Close()
		}
	}
	for {
		select {
		case c := <-p.conns:
			if cut {
				c.Close()
				continue
			}
			up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			pr := &proxyPair{client: c, upstream: up}
			p.pairs[pr] = true
			p.wg.Add(1)
			go p.copyPair(pr)
		case pr := <-p.ended:
			delete(p.pairs, pr)
		case m := <-p.ctl:
			cut = m.cut
			if cut {
				closeAll()
			}
			close(m.reply)
		case <-p.done:
			closeAll()
			// The copying goroutines still report their end.
			for len(p.pairs) > 0 {
				delete(p.pairs, <-p.ended)
			}
			return
		}
	}
}

// copyPair copies both ways until either side ends, then closes both and
// reports to run.
func (p *natsProxy) copyPair(pr *proxyPair) {
	defer p.wg.Done()
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	go pipe(pr.upstream, pr.client)
	go pipe(pr.client, pr.upstream)
	wg.Wait()
	p.ended <- pr // run receives until every pair has ended, also after done
}

func (p *natsProxy) send(cut bool) {
	m := proxyCtl{cut: cut, reply: make(chan struct{})}
	select {
	case p.ctl <- m:
		<-m.reply
	case <-p.done:
	}
}

// Cut closes every connection through the proxy and refuses new ones.
func (p *natsProxy) Cut() { p.send(true) }

// Heal lets connections through again.
func (p *natsProxy) Heal() { p.send(false) }

// Close stops the proxy and waits for its goroutines. It may be called
// more than once.
func (p *natsProxy) Close() {
	p.closed.Do(func() {
		close(p.done)
		p.ln.Close()
		p.wg.Wait()
	})
}

// clusterNode is one collabd process. Start and Kill may alternate: a
// node killed and started again has a new HTTP port but the same node id,
// proxy and directory.
type clusterNode struct {
	tb    testing.TB
	bin   string
	name  string   // also its -node-id
	args  []string // every flag but -addr
	dir   string
	proxy *natsProxy // nil for a single-node collabd

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	URL    string        // http://127.0.0.1:port of the current process
	logs   []string      // paths of the stderr of each process
}

// start runs the process and waits for its "listening on" line.
func (n *clusterNode) start() {
	n.tb.Helper()
	logPath := filepath.Join(n.dir, fmt.Sprintf("%s.%d.log", n.name, len(n.logs)))
	logf, err := os.Create(logPath)
	if err != nil {
		n.tb.Fatal(err)
	}
	defer logf.Close() // the child holds its own descriptor
	n.logs = append(n.logs, logPath)
	cmd := exec.Command(n.bin, append([]string{"-addr", "127.0.0.1:0"}, n.args...)...)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		n.tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		n.tb.Fatal(err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	br := bufio.NewReader(out)
	lines := make(chan string, 1)
	exited := n.exited
	go func() {
		line, _ := br.ReadString('\n')
		lines <- line
		// Wait only once stdout is drained, as exec.Cmd asks of pipes;
		// the copy ends when the process does.
		io.Copy(io.Discard, br)
		cmd.Wait()
		close(exited)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(clusterGuard):
	}
	_, url, ok := strings.Cut(strings.TrimSpace(line), " listening on ")
	if !ok {
		n.kill()
		n.tb.Fatalf("%s did not start: first line %q\n%s", n.name, line, n.logTail(40))
	}
	n.URL = url
}

// running reports whether the current process is alive.
func (n *clusterNode) running() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL, as a crash, and waits for the process to go.
func (n *clusterNode) kill() {
	if !n.running() {
		return
	}
	n.cmd.Process.Kill()
	<-n.exited
}

// stop asks for a graceful shutdown (SIGINT) and waits; it kills a node
// that takes longer than 20 s and says so.
func (n *clusterNode) stop() {
	if !n.running() {
		return
	}
	n.cmd.Process.Signal(os.Interrupt)
	select {
	case <-n.exited:
		if code := n.cmd.ProcessState.ExitCode(); code != 0 {
			n.tb.Errorf("%s exited with %d after SIGINT, want 0", n.name, code)
		}
	case <-time.After(20 * time.Second):
		n.tb.Errorf("%s did not stop within 20s of SIGINT; killing it", n.name)
		n.kill()
	}
}

// logTail returns the last lines of the node's stderr, of every process
// it ran, for a failure message.
func (n *clusterNode) logTail(lines int) string {
	var b strings.Builder
	for _, p := range n.logs {
		data, _ := os.ReadFile(p)
		all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(all) > lines {
			all = all[len(all)-lines:]
		}
		fmt.Fprintf(&b, "--- %s (%s) ---\n%s\n", n.name, filepath.Base(p), strings.Join(all, "\n"))
	}
	return b.String()
}

// checkLogs fails tb if any process of the node reported a data race or
// a panic.
func (n *clusterNode) checkLogs() {
	for _, p := range n.logs {
		data, _ := os.ReadFile(p)
		for _, bad := range []string{"WARNING: DATA RACE", "panic: "} {
			if i := bytes.Index(data, []byte(bad)); i >= 0 {
				end := min(len(data), i+4000)
				n.tb.Errorf("%s (%s) logged %q:\n%s", n.name, filepath.Base(p), bad, data[i:end])
			}
		}
	}
}

// wsURL is the editing endpoint of document id on this node.
func (n *clusterNode) wsURL(id string) string { return n.URL + "/api/docs/" + id + "/ws" }

// clusterOpts adjusts a cluster.
type clusterOpts struct {
	nodes int
	race  bool     // build the nodes with -race
	extra []string // more flags for every node
	// quiet logs at info rather than debug (for benchmarks).
	quiet bool
	// r3 runs three NATS servers and the nodes with -nats-replicas 3,
	// connected to all three directly (no proxies: Cut is not for them).
	r3 bool
}

// testCluster is a NATS server and collabd nodes on it, each through its
// own proxy. Everything stops at the test's cleanup.
type testCluster struct {
	tb    testing.TB
	nats  *testNATS
	nodes []*clusterNode
}

// nodeFlags lifts collabd's per-client limits, which the tests' many
// editors from one address would otherwise hit.
var nodeFlags = []string{
	"-rate-limit", "1000000", "-rate-burst", "1000000",
	"-max-conns", "100000", "-max-tcp-conns", "100000",
	"-max-conns-per-addr", "100000", "-max-tcp-conns-per-addr", "100000",
	"-max-editors", "100000",
	"-create-rate", "1000000", "-create-burst", "1000000",
	"-min-free-bytes", "-1",
}

func startCluster(tb testing.TB, o clusterOpts) *testCluster {
	tb.Helper()
	bin := clusterBin(tb, o.race)
	c := &testCluster{tb: tb}
	proxies := make([]*natsProxy, o.nodes)
	if o.r3 {
		c.nats = startTestNATSR3(tb)
	} else {
		c.nats = startTestNATS(tb)
		for i := range proxies {
			proxies[i] = startNATSProxy(tb, c.nats.addr())
		}
	}
	// Cleanups run last-registered first: the nodes stop before their
	// proxies and the NATS server, so that they shut down connected.
	tb.Cleanup(c.cleanup)
	for i, proxy := range proxies {
		name := fmt.Sprintf("node%d", i)
		dir := tb.TempDir()
		url := c.nats.urls()
		if proxy != nil {
			url = proxy.URL()
		}
		args := append([]string{
			"-data", filepath.Join(dir, "collab.db"),
			"-nats", url,
			"-node-id", name,
		}, nodeFlags...)
		if o.r3 {
			args = append(args, "-nats-replicas", "3")
		}
		level := "debug"
		if o.quiet {
			level = "info"
		}
		args = append(args, "-log-level", level)
		n := &clusterNode{tb: tb, bin: bin, name: name, dir: dir, proxy: proxy,
			args: append(args, o.extra...)}
		c.nodes = append(c.nodes, n)
		n.start()
	}
	return c
}

// startSingle runs one plain collabd (bbolt, no NATS) for comparison.
func startSingle(tb testing.TB, bin string, extra ...string) *clusterNode {
	tb.Helper()
	dir := tb.TempDir()
	args := append([]string{"-data", filepath.Join(dir, "collab.db")}, nodeFlags...)
	n := &clusterNode{tb: tb, bin: bin, name: "single", dir: dir, args: append(args, extra...)}
	n.start()
	tb.Cleanup(func() {
		n.stop()
		n.checkLogs()
		if tb.Failed() {
			tb.Logf("%s", n.logTail(60))
		}
	})
	return n
}

func (c *testCluster) cleanup() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.stop() }()
	}
	wg.Wait()
	for _, n := range c.nodes {
		n.checkLogs()
	}
	if c.tb.Failed() {
		for _, n := range c.nodes {
			c.tb.Logf("%s", n.logTail(60))
		}
	}
}

// byName returns the node whose -node-id is name, or nil.
func (c *testCluster) byName(name string) *clusterNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// createClusterDoc creates a document on node n with the given text.
func createClusterDoc(tb testing.TB, n *clusterNode, text string) (id, viewID string) {
	tb.Helper()
	id, viewID, err := postDoc(n, text)
	if err != nil {
		tb.Fatal(err)
	}
	return id, viewID
}

// postDoc is createClusterDoc for other goroutines than the test's.
func postDoc(n *clusterNode, text string) (id, viewID string, err error) {
	body, _ := json.Marshal(map[string]string{"text": text})
	resp, err := http.Post(n.URL+"/api/docs", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	var created struct{ ID, ViewID string }
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || resp.StatusCode != http.StatusCreated {
		return "", "", fmt.Errorf("create on %s: status %d, %v", n.name, resp.StatusCode, err)
	}
	return created.ID, created.ViewID, nil
}

// docState is a node's answer to GET /api/docs/{id}.
type docState struct {
	Rev  int64
	Text string
}

func getClusterDoc(ctx context.Context, n *clusterNode, id string) (docState, error) {
	var d docState
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.URL+"/api/docs/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return d, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return d, fmt.Errorf("GET doc on %s: %d %s", n.name, resp.StatusCode, b)
	}
	return d, json.NewDecoder(resp.Body).Decode(&d)
}

// getText is GET /api/docs/{id}/text on n.
func getClusterText(ctx context.Context, n *clusterNode, id string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.URL+"/api/docs/"+id+"/text", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET text on %s: %d %s", n.name, resp.StatusCode, b)
	}
	return string(b), err
}

// opRecord is one entry of GET /api/docs/{id}/ops.
type opRecord struct {
	Rev    int64
	Op     ot.Op
	Author string
	Seq    int64
}

// allOps reads the whole op log of id from n, page by page.
func allOps(ctx context.Context, n *clusterNode, id string) ([]opRecord, error) {
	var all []opRecord
	for {
		from := int64(0)
		if len(all) > 0 {
			from = all[len(all)-1].Rev
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.URL+"/api/docs/"+id+"/ops?from="+strconv.FormatInt(from, 10), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		var page []opRecord
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("ops page from %d on %s: status %d, %v", from, n.name, resp.StatusCode, err)
		}
		if len(page) == 0 {
			return all, nil
		}
		all = append(all, page...)
	}
}

// checkOpLog checks that the op log of id on n has revisions 1..rev with
// no gap, that replaying it gives text, and that every author's seqs run
// 1, 2, 3... with nothing repeated or skipped (the op that made revision
// 1 is the create's, with no author seq to check).
func checkOpLog(t *testing.T, ctx context.Context, n *clusterNode, id string, want docState) {
	t.Helper()
	ops, err := allOps(ctx, n, id)
	if err != nil {
		t.Errorf("%s: %v", n.name, err)
		return
	}
	doc := ot.NewDoc("")
	seqs := map[string]int64{}
	for i, op := range ops {
		if op.Rev != int64(i+1) {
			t.Errorf("%s: op log entry %d has rev %d, want %d (a gap or a duplicate)", n.name, i, op.Rev, i+1)
			return
		}
		if err := doc.Apply(op.Op); err != nil {
			t.Errorf("%s: op %d does not apply: %v", n.name, op.Rev, err)
			return
		}
		if op.Author == "" || op.Seq == 0 {
			continue
		}
		if op.Seq != seqs[op.Author]+1 {
			t.Errorf("%s: op %d: author %s seq %d after %d", n.name, op.Rev, op.Author, op.Seq, seqs[op.Author])
		}
		seqs[op.Author] = op.Seq
	}
	if int64(len(ops)) != want.Rev {
		t.Errorf("%s: op log has %d ops, want rev %d", n.name, len(ops), want.Rev)
	}
	if got := doc.String(); got != want.Text {
		t.Errorf("%s: replaying the op log gives\n %q\nwant\n %q", n.name, got, want.Text)
	}
}

// waitNodesAgree waits until every running node answers GET doc with
// want's revision, then checks that each one's /text is want.Text.
func waitNodesAgree(t *testing.T, ctx context.Context, nodes []*clusterNode, id string, want docState) {
	t.Helper()
	for _, n := range nodes {
		if !n.running() {
			continue
		}
		var got docState
		var err error
		for {
			got, err = getClusterDoc(ctx, n, id)
			if err == nil && got.Rev >= want.Rev || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil || got.Rev != want.Rev {
			t.Errorf("%s: GET doc gives rev %d (%v), want %d", n.name, got.Rev, err, want.Rev)
			continue
		}
		text, err := getClusterText(ctx, n, id)
		if err != nil {
			t.Errorf("%s: %v", n.name, err)
		} else if text != want.Text {
			t.Errorf("%s: GET text differs:\n got %q\nwant %q", n.name, text, want.Text)
		}
	}
}

// sseFeed reads one SSE stream in a goroutine and hands its events over
// a channel; the channel closes when the stream ends.
type sseFeed struct {
	events chan sseFeedEvent
	cancel context.CancelFunc
	done   chan struct{}
}

// sseFeedEvent is one event of collabd's feed, decoded.
type sseFeedEvent struct {
	Kind string // snapshot or op
	ID   int64
	Rev  int64 // from the data
	Text string
	Op   ot.Op
	Err  error // the stream failed to parse; the last event
}

// openSSE opens url (with Last-Event-ID when lastID >= 0) and checks the
// response's status and content type.
func openSSE(ctx context.Context, url string, lastID int64) (*sseFeed, error) {
	ctx, cancel := context.WithCancel(ctx)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if lastID >= 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(lastID, 10))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET %s: status %d, content type %q", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	f := &sseFeed{events: make(chan sseFeedEvent, 1024), cancel: cancel, done: make(chan struct{})}
	go f.read(ctx, resp.Body)
	return f, nil
}

func (f *sseFeed) read(ctx context.Context, body io.ReadCloser) {
	defer close(f.done)
	defer close(f.events)
	defer body.Close()
	send := func(e sseFeedEvent) bool {
		select {
		case f.events <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}
	br := bufio.NewReader(body)
	var typ, id string
	var data strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if data.Len() == 0 {
				typ, id = "", ""
				continue
			}
			e := sseFeedEvent{Kind: typ}
			var perr error
			if e.ID, perr = strconv.ParseInt(id, 10, 64); perr != nil {
				send(sseFeedEvent{Err: fmt.Errorf("event %q with id %q", typ, id)})
				return
			}
			var d struct {
				Rev  int64
				Text string
				Op   ot.Op
			}
			if perr = json.Unmarshal([]byte(data.String()), &d); perr != nil {
				send(sseFeedEvent{Err: fmt.Errorf("event %q data %q: %v", typ, data.String(), perr)})
				return
			}
			e.Rev, e.Text, e.Op = d.Rev, d.Text, d.Op
			if !send(e) {
				return
			}
			typ, id = "", ""
			data.Reset()
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry:"):
		case strings.HasPrefix(line, "event:"):
			typ = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "id:"):
			id = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
}

// Close ends the stream and waits for the reader.
func (f *sseFeed) Close() {
	f.cancel()
	<-f.done
}

// Typists edit one document through client.Client so that the end text
// proves what happened: typist i's k-th insert is the code point
// typistBase+i*4096+k, used by no other edit, and the only other edits
// insert or delete filler dashes. So the final text must hold every
// acknowledged insert exactly once, and without the inserts and dashes
// it must be the document's starting text.
const typistBase = 0x20000

type typist struct {
	i    int
	c    *client.Client
	rng  *rand.Rand
	made int // inserts made (all acknowledged once the client is synced)
	node *clusterNode
	// slowest is the longest sync so far, and where it began and ended:
	// a stall is reported by the tests, which never fail on time alone.
	slowest          time.Duration
	slowFrom, slowTo string
}

func newTypist(ctx context.Context, i int, n *clusterNode, id string, seed uint64) (*typist, error) {
	c, err := client.Dial(ctx, n.wsURL(id), client.Options{Name: fmt.Sprintf("typist %d", i)})
	if err != nil {
		return nil, fmt.Errorf("typist %d: dial %s: %w", i, n.name, err)
	}
	return &typist{i: i, c: c, rng: rand.New(rand.NewPCG(seed, uint64(i))), node: n}, nil
}

// edit makes one random edit: mostly a unique insert, sometimes a dash
// inserted or deleted.
func (ty *typist) edit() error {
	switch p := ty.rng.IntN(10); {
	case p < 2:
		return ty.c.EditFunc(func(text string) ot.Op {
			var dashes []int
			n := 0
			for _, r := range text {
				if r == '-' {
					dashes = append(dashes, n)
				}
				n++
			}
			if len(dashes) == 0 {
				return nil
			}
			pos := dashes[ty.rng.IntN(len(dashes))]
			return ot.Op{}.Retain(pos).Delete(1).Retain(n - pos - 1)
		})
	case p < 4:
		return ty.insert("-")
	default:
		if ty.made >= 4096 {
			return ty.insert("-")
		}
		r := rune(typistBase + ty.i*4096 + ty.made)
		ty.made++
		return ty.insert(string(r))
	}
}

func (ty *typist) insert(s string) error {
	return ty.c.EditFunc(func(text string) ot.Op {
		n := utf8.RuneCountInString(text)
		pos := ty.rng.IntN(n + 1)
		return ot.Op{}.Retain(pos).Insert(s).Retain(n - pos)
	})
}

// burst makes one to three edits: one goes out, the rest wait in the
// client's buffer for its ack.
func (ty *typist) burst() error {
	for range 1 + ty.rng.IntN(3) {
		if err := ty.edit(); err != nil {
			return fmt.Errorf("typist %d: edit: %w", ty.i, err)
		}
	}
	return nil
}

// fatalClientErr tells an error of the protocol (a gap, an unexpected
// ack, an error message other than shutting_down), which fails a test,
// from a connection that ended, which a reconnect handles.
func fatalClientErr(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ot.ErrRevision) || errors.Is(err, ot.ErrUnexpectedAck) || errors.Is(err, client.ErrLostEdits) {
		return true
	}
	var se *client.ServerError
	if errors.As(err, &se) {
		return se.Code != "shutting_down"
	}
	return false
}

// reconnect moves the typist to a running node of nodes picked at
// random, retrying (a node may be dead or still starting) until ctx ends.
func (ty *typist) reconnect(ctx context.Context, nodes []*clusterNode, id string) error {
	for {
		var up []*clusterNode
		for _, n := range nodes {
			if n.running() {
				up = append(up, n)
			}
		}
		n := up[ty.rng.IntN(len(up))]
		err := ty.c.ReconnectTo(ctx, n.wsURL(id))
		if err == nil {
			ty.node = n
			return nil
		}
		if fatalClientErr(err) || ctx.Err() != nil {
			return fmt.Errorf("typist %d: reconnect to %s: %w", ty.i, n.name, err)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("typist %d: reconnect: %w (last: %v)", ty.i, ctx.Err(), err)
		}
	}
}

// sync waits until the typist's edits are all acknowledged, reconnecting
// (to any running node) whenever its connection ends.
func (ty *typist) sync(ctx context.Context, nodes []*clusterNode, id string) error {
	t0, from := time.Now(), ty.node.name
	defer func() {
		if d := time.Since(t0); d > ty.slowest {
			ty.slowest, ty.slowFrom, ty.slowTo = d, from, ty.node.name
		}
	}()
	for {
		err := ty.c.WaitSynced(ctx)
		if err == nil {
			return nil
		}
		if fatalClientErr(err) || ctx.Err() != nil {
			return fmt.Errorf("typist %d on %s: %w", ty.i, ty.node.name, err)
		}
		if err := ty.reconnect(ctx, nodes, id); err != nil {
			return err
		}
	}
}

// checkTypedText checks the end text against what the typists made:
// every insert exactly once, nothing else but dashes and the start text.
func checkTypedText(t *testing.T, text, start string, typists []*typist) {
	t.Helper()
	count := map[rune]int{}
	var rest []rune
	for _, r := range text {
		switch {
		case r >= typistBase:
			count[r]++
		case r != '-':
			rest = append(rest, r)
		}
	}
	if string(rest) != start {
		t.Errorf("text without the inserts and dashes is %q, want %q", string(rest), start)
	}
	total := 0
	for _, ty := range typists {
		for k := range ty.made {
			if n := count[rune(typistBase+ty.i*4096+k)]; n != 1 {
				t.Errorf("typist %d's insert %d is in the text %d times, want once", ty.i, k, n)
			}
		}
		total += ty.made
	}
	if len(count) != total {
		t.Errorf("text holds %d distinct inserts, want the %d made", len(count), total)
	}
}

// logStalls logs each typist's longest wait for its acks, and where.
func logStalls(t *testing.T, typists []*typist) {
	t.Helper()
	for _, ty := range typists {
		t.Logf("typist %d: longest sync %v (from %s, synced on %s)", ty.i, ty.slowest.Round(time.Millisecond), ty.slowFrom, ty.slowTo)
		ty.slowest = 0
	}
}

// logWarnings logs the last warnings and errors each node logged, for a
// test that provokes some (a cut from NATS) to show what the nodes did.
func (c *testCluster) logWarnings(t *testing.T, max int) {
	t.Helper()
	for _, n := range c.nodes {
		var lines []string
		for _, p := range n.logs {
			data, _ := os.ReadFile(p)
			for _, l := range strings.Split(string(data), "\n") {
				if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
					lines = append(lines, l)
				}
			}
		}
		if len(lines) > max {
			lines = append([]string{fmt.Sprintf("(%d earlier lines)", len(lines)-max)}, lines[len(lines)-max:]...)
		}
		t.Logf("%s: warnings and errors:\n%s", n.name, strings.Join(lines, "\n"))
	}
}
