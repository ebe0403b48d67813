package main

// Multi-process tests of cluster mode (issue 12, docs/scaling.md): three
// collabd processes of the real binary on one NATS JetStream server that
// runs in the test process, each node reaching it through its own proxy.
// cluster_helpers_test.go has the harness.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/collabd/collabd/collab/client"
	"github.com/collabd/collabd/ot"
)

// TestClusterProxyCutsNATS checks the harness's proxy on its own: a NATS
// connection through it works, is cut by Cut (and cannot come back while
// cut), and reconnects after Heal.
func TestClusterProxyCutsNATS(t *testing.T) {
	ns := startTestNATS(t)
	p := startNATSProxy(t, ns.addr())
	disconnected := make(chan struct{}, 8)
	reconnected := make(chan struct{}, 8)
	nc, err := nats.Connect(p.URL(),
		nats.ReconnectWait(50*time.Millisecond), nats.MaxReconnects(-1), nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { disconnected <- struct{}{} }),
		nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush through the proxy: %v", err)
	}
	p.Cut()
	select {
	case <-disconnected:
	case <-time.After(clusterGuard):
		t.Fatal("no disconnect after Cut")
	}
	// Several reconnect attempts go by while cut; none may succeed.
	time.Sleep(500 * time.Millisecond)
	if nc.IsConnected() {
		t.Fatal("connected through a cut proxy")
	}
	if err := nc.Publish("x", []byte("y")); err == nil {
		t.Error("publish through a cut proxy succeeded, want an error (no reconnect buffer)")
	}
	p.Heal()
	select {
	case <-reconnected:
	case <-time.After(clusterGuard):
		t.Fatal("no reconnect after Heal")
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush after Heal: %v", err)
	}
}

// typeUntil has each typist make bursts of edits until stop is closed
// (and at least min rounds), then sync. Each round is a burst followed,
// with probability drop (of 10), by a connection drop and a reconnect to
// a random running node (the op in flight resent from the client) and,
// otherwise, by waiting for the acks. rounds counts each typist's
// finished rounds.
func typeUntil(ctx context.Context, typists []*typist, nodes []*clusterNode, id string, drop int, stop <-chan struct{}, min int, rounds []atomic.Int64) error {
	errs := make(chan error, len(typists))
	var wg sync.WaitGroup
	for k, ty := range typists {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				for r := 0; ; r++ {
					if r >= min {
						select {
						case <-stop:
							return ty.sync(ctx, nodes, id)
						default:
						}
					}
					if err := ty.burst(); err != nil {
						return err
					}
					switch p := ty.rng.IntN(10); {
					case p < drop:
						ty.c.Drop()
						if ty.rng.IntN(2) == 0 {
							// Type while disconnected, too.
							if err := ty.burst(); err != nil {
								return err
							}
						}
						if err := ty.reconnect(ctx, nodes, id); err != nil {
							return err
						}
					default:
						if err := ty.sync(ctx, nodes, id); err != nil {
							return err
						}
					}
					rounds[k].Add(1)
				}
			}()
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// waitRounds waits until every typist has finished at least n rounds.
func waitRounds(ctx context.Context, rounds []atomic.Int64, n int64, failed <-chan error) error {
	for {
		ok := true
		for i := range rounds {
			ok = ok && rounds[i].Load() >= n
		}
		if ok {
			return nil
		}
		select {
		case err := <-failed:
			return fmt.Errorf("typing ended early: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d rounds: %w", n, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// checkConverged checks the end state once every typist is synced: all
// typists at the same revision with the same text, every running node
// serving that revision and text, every node's op log gapless with each
// author's seqs once and in order, and the text holding every insert
// exactly once.
func checkConverged(t *testing.T, ctx context.Context, nodes []*clusterNode, id, start string, typists []*typist) docState {
	t.Helper()
	// The last op's author was acknowledged at its revision, so once all
	// are synced the highest revision among them is the document's.
	var want docState
	for _, ty := range typists {
		want.Rev = max(want.Rev, ty.c.Rev())
	}
	for _, ty := range typists {
		if err := ty.c.WaitRev(ctx, want.Rev); err != nil {
			t.Fatalf("typist %d on %s: waiting for rev %d: %v", ty.i, ty.node.name, want.Rev, err)
		}
	}
	want.Text = typists[0].c.Text()
	for _, ty := range typists[1:] {
		if ok, text, rev := ty.c.Synced(); !ok || rev != want.Rev || text != want.Text {
			t.Errorf("typist %d on %s: synced %v at rev %d with text\n %q\nwant rev %d\n %q", ty.i, ty.node.name, ok, rev, text, want.Rev, want.Text)
		}
	}
	waitNodesAgree(t, ctx, nodes, id, want)
	for _, n := range nodes {
		if n.running() {
			checkOpLog(t, ctx, n, id, want)
		}
	}
	checkTypedText(t, want.Text, start, typists)
	return want
}

func dialTypists(t *testing.T, ctx context.Context, nodes []*clusterNode, id string, count int, seed uint64) []*typist {
	t.Helper()
	typists := make([]*typist, count)
	for i := range typists {
		ty, err := newTypist(ctx, i, nodes[i%len(nodes)], id, seed)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ty.c.Close() })
		typists[i] = ty
	}
	return typists
}

// TestClusterConverge: six editors spread over three nodes type at once,
// dropping their connections at random and reconnecting to a random node,
// in flight or with edits made while offline. They must converge with
// every node, on a gapless history holding every edit exactly once.
func TestClusterConverge(t *testing.T) {
	skipShortCluster(t)
	c := startCluster(t, clusterOpts{nodes: 3, race: clusterRaceBuild()})
	ctx, cancel := context.WithTimeout(context.Background(), 2*clusterGuard)
	defer cancel()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)

	const start = "start"
	id, _ := createClusterDoc(t, c.nodes[0], start)
	typists := dialTypists(t, ctx, c.nodes, id, 6, seed)
	rounds := make([]atomic.Int64, len(typists))
	stop := make(chan struct{})
	close(stop) // each typist types its minimum and stops
	if err := typeUntil(ctx, typists, c.nodes, id, 2, stop, 25, rounds); err != nil {
		t.Error(err)
		checkLogsAfterFailure(t, ctx, c, id)
		t.FailNow()
	}
	want := checkConverged(t, ctx, c.nodes, id, start, typists)
	made := 0
	for _, ty := range typists {
		made += ty.made
	}
	t.Logf("%d inserts (and dashes) became %d revisions", made, want.Rev)
}

// checkLogsAfterFailure checks, after typing failed, what the nodes have
// stored: whether their op logs agree with each other and are gapless,
// with each author's seqs once and in order, to tell a bad message to
// one client from a bad history.
func checkLogsAfterFailure(t *testing.T, ctx context.Context, c *testCluster, id string) {
	t.Helper()
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		d, err := getClusterDoc(ctx, n, id)
		if err != nil {
			t.Errorf("%s: %v", n.name, err)
			continue
		}
		t.Logf("%s: at rev %d", n.name, d.Rev)
		checkOpLog(t, ctx, n, id, d)
	}
}

// owner returns the node holding id's lease, read from the cluster's
// owners bucket; the empty string and nil when no node holds it.
func (c *testCluster) owner(t *testing.T, ctx context.Context, id string) *clusterNode {
	t.Helper()
	name, err := c.nats.owner(ctx, id)
	if err != nil {
		t.Fatalf("reading the owner of the document: %v", err)
	}
	if name == "" {
		return nil
	}
	n := c.byName(name)
	if n == nil {
		t.Fatalf("the owners bucket names %q, which is none of the nodes", name)
	}
	return n
}

// TestClusterOwnerKill: editors on all three nodes type; the document's
// owner is killed (SIGKILL) mid-typing; its editors reconnect to the
// survivors and everyone carries on. Nothing acknowledged may be lost
// and nothing applied twice; the killed node, started again, serves the
// same document.
func TestClusterOwnerKill(t *testing.T) {
	skipShortCluster(t)
	c := startCluster(t, clusterOpts{nodes: 3, race: clusterRaceBuild()})
	ctx, cancel := context.WithTimeout(context.Background(), 2*clusterGuard)
	defer cancel()
	const start = "start"
	id, typists, victim := typingOnOwner(t, ctx, c, start)
	rounds := make([]atomic.Int64, len(typists))
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- typeUntil(ctx, typists, c.nodes, id, 0, stop, 0, rounds) }()
	if err := waitRounds(ctx, rounds, 10, done); err != nil {
		t.Fatal(err)
	}
	// What is acknowledged now must survive: each typist's synced text
	// is not at hand mid-typing, but its acked seq is, and after the end
	// every insert made is checked to be there once.
	acked := make([]int64, len(typists))
	for i, ty := range typists {
		_, acked[i] = ty.c.Seqs()
	}
	killed := time.Now()
	victim.kill()
	before := make([]int64, len(rounds))
	for i := range rounds {
		before[i] = rounds[i].Load()
	}
	// Every typist, the victim's too, finishes rounds after the kill.
	for i := range rounds {
		for rounds[i].Load() < before[i]+10 {
			select {
			case err := <-done:
				t.Fatalf("typing ended early: %v", err)
			case <-ctx.Done():
				t.Fatalf("typist %d did not get 10 rounds acknowledged after the kill: %v", i, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	t.Logf("every typist had 10 more rounds acknowledged %v after the kill", time.Since(killed).Round(time.Millisecond))
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i, ty := range typists {
		if _, a := ty.c.Seqs(); a < acked[i] {
			t.Errorf("typist %d: acked seq went back from %d to %d", i, acked[i], a)
		}
	}
	if o := c.owner(t, ctx, id); o == victim {
		t.Errorf("the killed %s still holds the lease after its editors moved on", victim.name)
	} else if o != nil {
		t.Logf("new owner: %s", o.name)
	}
	want := checkConverged(t, ctx, c.nodes, id, start, typists)

	// The killed node comes back and serves the document as it is.
	victim.start()
	waitNodesAgree(t, ctx, []*clusterNode{victim}, id, want)
	late, err := newTypist(ctx, len(typists), victim, id, rand.Uint64())
	if err != nil {
		t.Fatal(err)
	}
	defer late.c.Close()
	if got := late.c.Text(); got != want.Text {
		t.Errorf("a new editor on the restarted %s got\n %q\nwant\n %q", victim.name, got, want.Text)
	}
	if err := late.burst(); err != nil {
		t.Fatal(err)
	}
	if err := late.sync(ctx, []*clusterNode{victim}, id); err != nil {
		t.Fatalf("an edit on the restarted %s: %v", victim.name, err)
	}
}

// TestClusterViewerThirdNode: editors on nodes 0 and 1, a viewer on node
// 2. The viewer sees a snapshot and then every op once, gapless; it
// reconnects mid-typing to node 1 with Last-Event-ID and resumes with the
// next op; it ends at the editors' text.
func TestClusterViewerThirdNode(t *testing.T) {
	skipShortCluster(t)
	c := startCluster(t, clusterOpts{nodes: 3, race: clusterRaceBuild()})
	ctx, cancel := context.WithTimeout(context.Background(), 2*clusterGuard)
	defer cancel()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)

	const start = "start"
	id, viewID := createClusterDoc(t, c.nodes[0], start)
	events := func(n *clusterNode) string { return n.URL + "/api/view/" + viewID + "/events" }
	feed, err := openSSE(ctx, events(c.nodes[2]), -1)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { feed.Close() }()
	next := func() sseFeedEvent {
		t.Helper()
		select {
		case e, ok := <-feed.events:
			if !ok {
				t.Fatal("the viewer's stream ended")
			}
			if e.Err != nil {
				t.Fatal(e.Err)
			}
			if e.ID != e.Rev {
				t.Fatalf("event %s has id %d and rev %d, want them equal", e.Kind, e.ID, e.Rev)
			}
			return e
		case <-ctx.Done():
			t.Fatalf("viewer: %v", ctx.Err())
		}
		panic("unreachable")
	}
	first := next()
	if first.Kind != "snapshot" {
		t.Fatalf("viewer's first event is %q, want snapshot", first.Kind)
	}
	doc := ot.NewDoc(first.Text)
	rev := first.Rev
	apply := func(e sseFeedEvent) {
		t.Helper()
		if e.Kind != "op" {
			t.Fatalf("viewer got %q event at %d after rev %d, want op", e.Kind, e.ID, rev)
		}
		if e.Rev != rev+1 {
			t.Fatalf("viewer got op %d after rev %d, want %d (a gap or a duplicate)", e.Rev, rev, rev+1)
		}
		if err := doc.Apply(e.Op); err != nil {
			t.Fatalf("viewer: op %d: %v", e.Rev, err)
		}
		rev = e.Rev
	}

	typists := dialTypists(t, ctx, c.nodes[:2], id, 2, seed)
	rounds := make([]atomic.Int64, len(typists))
	stop := make(chan struct{})
	close(stop)
	done := make(chan error, 1)
	go func() { done <- typeUntil(ctx, typists, c.nodes[:2], id, 0, stop, 30, rounds) }()

	// Some ops on node 2, then the viewer moves to node 1 mid-typing.
	for rev < first.Rev+8 {
		apply(next())
	}
	feed.Close()
	feed, err = openSSE(ctx, events(c.nodes[1]), rev)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("viewer resumed on %s after rev %d", c.nodes[1].name, rev)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := checkConverged(t, ctx, c.nodes, id, start, typists)
	for rev < want.Rev {
		apply(next())
	}
	if got := doc.String(); got != want.Text {
		t.Errorf("viewer's text at rev %d is\n %q\nwant\n %q", rev, got, want.Text)
	}
	select {
	case e, ok := <-feed.events:
		if ok {
			t.Errorf("viewer got %s %d after the last rev %d", e.Kind, e.ID, want.Rev)
		}
	case <-time.After(300 * time.Millisecond):
	}
}

// TestClusterCutFromNATS cuts one node from NATS (its proxy drops every
// connection and refuses new ones), first a node that does not own the
// document, then its owner. While cut, an op sent to the node is not
// acknowledged (its editor may instead be disconnected), and editors on
// the other nodes keep working, after a failover when the owner was cut.
// After the heal the node serves again, and everything converges.
func TestClusterCutFromNATS(t *testing.T) {
	skipShortCluster(t)
	c := startCluster(t, clusterOpts{nodes: 3, race: clusterRaceBuild()})
	ctx, cancel := context.WithTimeout(context.Background(), 3*clusterGuard)
	defer cancel()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)

	const start = "start"
	id, _ := createClusterDoc(t, c.nodes[0], start)
	typists := dialTypists(t, ctx, c.nodes, id, 6, seed)
	if err := typists[0].burst(); err != nil {
		t.Fatal(err)
	}
	if err := typists[0].sync(ctx, c.nodes, id); err != nil {
		t.Fatal(err)
	}

	// cutPhase cuts node n, checks that its editors get no ack for an op
	// sent during the cut while the others type, heals and syncs.
	cutPhase := func(what string, n *clusterNode) {
		t.Helper()
		var on, off []*typist
		var others []*clusterNode
		for _, ty := range typists {
			if ty.node == n {
				on = append(on, ty)
			} else {
				off = append(off, ty)
			}
		}
		for _, o := range c.nodes {
			if o != n {
				others = append(others, o)
			}
		}
		if len(on) == 0 {
			t.Fatalf("%s: no typist on %s", what, n.name)
		}
		for _, ty := range typists {
			if err := ty.sync(ctx, c.nodes, id); err != nil {
				t.Fatal(err)
			}
		}
		n.proxy.Cut()
		cutAt := time.Now()
		sent := make([]int64, len(on))
		for k, ty := range on {
			if err := ty.insert("-"); err != nil {
				t.Fatal(err)
			}
			var acked int64
			if sent[k], acked = ty.c.Seqs(); sent[k] <= acked {
				t.Fatalf("%s: typist %d: seq %d assigned and %d acked right after an edit, want one op in flight", what, ty.i, sent[k], acked)
			}
		}
		// The others type meanwhile, and must be acknowledged: on the
		// same owner, or on a new one once the cut owner's lease is gone.
		rounds := make([]atomic.Int64, len(off))
		stop := make(chan struct{})
		close(stop)
		offDone := make(chan error, 1)
		var offTook time.Duration
		go func() {
			err := typeUntil(ctx, off, others, id, 0, stop, 10, rounds)
			offTook = time.Since(cutAt)
			offDone <- err
		}()
		// For 3 s (more than the 2 s lease), no ack for the cut node's
		// editors. A disconnect is allowed.
		disconnected := make([]bool, len(on))
		ackedInCut := make([]bool, len(on))
		for time.Since(cutAt) < 3*time.Second {
			for k, ty := range on {
				if _, acked := ty.c.Seqs(); acked >= sent[k] && !ackedInCut[k] {
					ackedInCut[k] = true
					t.Errorf("%s: typist %d on %s (cut from NATS) got seq %d acknowledged %v after the cut", what, ty.i, n.name, sent[k], time.Since(cutAt).Round(time.Millisecond))
				}
				if !disconnected[k] && !connected(ctx, ty.c) {
					disconnected[k] = true
					t.Logf("%s: typist %d was disconnected by %s %v after the cut: %v", what, ty.i, n.name, time.Since(cutAt).Round(time.Millisecond), ty.c.Err())
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := <-offDone; err != nil {
			t.Fatalf("%s: the editors of the other nodes: %v", what, err)
		}
		t.Logf("%s: the other nodes' editors had 10 rounds acknowledged %v after the cut", what, offTook.Round(time.Millisecond))
		if t.Failed() {
			t.FailNow()
		}
		n.proxy.Heal()
		healAt := time.Now()
		// The cut node's editors sync through it again.
		for _, ty := range on {
			if err := ty.sync(ctx, []*clusterNode{n}, id); err != nil {
				t.Fatalf("%s: after the heal: %v", what, err)
			}
		}
		t.Logf("%s: %s acknowledged its editors' ops %v after the heal", what, n.name, time.Since(healAt).Round(time.Millisecond))
		stop2 := make(chan struct{})
		close(stop2)
		if err := typeUntil(ctx, typists, c.nodes, id, 0, stop2, 5, make([]atomic.Int64, len(typists))); err != nil {
			t.Fatalf("%s: after the heal: %v", what, err)
		}
		t.Logf("%s: every editor had 5 more rounds acknowledged %v after the heal", what, time.Since(healAt).Round(time.Millisecond))
		logStalls(t, typists)
		checkConverged(t, ctx, c.nodes, id, start, typists)
		t.Logf("%s: converged %v after the heal", what, time.Since(healAt).Round(time.Millisecond))
	}

	owner := c.owner(t, ctx, id)
	if owner == nil {
		t.Fatal("no node holds the document's lease after an acknowledged op")
	}
	var follower *clusterNode
	for _, n := range c.nodes {
		if n != owner {
			follower = n
			break
		}
	}
	t.Logf("owner %s, cutting %s first", owner.name, follower.name)
	cutPhase("follower cut", follower)
	if t.Failed() {
		return
	}
	owner = c.owner(t, ctx, id)
	if owner == nil {
		t.Fatal("no node holds the document's lease after the first heal")
	}
	t.Logf("owner now %s: cutting it", owner.name)
	cutPhase("owner cut", owner)
	if o := c.owner(t, ctx, id); o != nil {
		t.Logf("owner at the end: %s", o.name)
	}
	c.logWarnings(t, 30)
}

// connected reports whether c's connection is up: Wait ends at once with
// an error when it is not, and at its deadline when it is.
func connected(ctx context.Context, c *client.Client) bool {
	wctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	err := c.Wait(wctx, func(client.View) bool { return false })
	return errors.Is(err, context.DeadlineExceeded)
}

// TestClusterOwnerPause: the document's owner is paused (SIGSTOP) while
// editors on all three nodes type. A paused process keeps its NATS
// subscriptions until the server gives up on it, minutes later, but its
// lease lapses: the other nodes must take the document over when it does,
// and their editors carry on while it is paused. Once resumed (SIGCONT)
// the old owner must not take the document back or ack anything on a
// lapsed lease; everyone converges with nothing lost or applied twice.
func TestClusterOwnerPause(t *testing.T) {
	skipShortCluster(t)
	c := startCluster(t, clusterOpts{nodes: 3, race: clusterRaceBuild()})
	ctx, cancel := context.WithTimeout(context.Background(), 2*clusterGuard)
	defer cancel()
	const start = "start"
	id, typists, victim := typingOnOwner(t, ctx, c, start)
	rounds := make([]atomic.Int64, len(typists))
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- typeUntil(ctx, typists, c.nodes, id, 0, stop, 0, rounds) }()
	if err := waitRounds(ctx, rounds, 5, done); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	if err := victim.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			victim.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer resume()

	// The typists on the other nodes finish 5 rounds more while the owner
	// is still paused: the document moved.
	var others []int
	for i, ty := range typists {
		if ty.node != victim {
			others = append(others, i)
		}
	}
	before := make([]int64, len(rounds))
	for i := range rounds {
		before[i] = rounds[i].Load()
	}
	var first time.Duration
	for _, i := range others {
		for rounds[i].Load() < before[i]+5 {
			select {
			case err := <-done:
				t.Fatalf("typing ended early: %v", err)
			case <-ctx.Done():
				t.Fatalf("typist %d on %s: no 5 rounds acknowledged while the owner was paused (%v): it was never replaced", i, typists[i].node.name, ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
			if first == 0 && rounds[i].Load() > before[i] {
				first = time.Since(paused)
			}
		}
	}
	t.Logf("owner paused: first round acknowledged elsewhere after %v, 5 rounds each after %v",
		first.Round(time.Millisecond), time.Since(paused).Round(time.Millisecond))
	if o := c.owner(t, ctx, id); o == nil || o == victim {
		t.Fatalf("the lease after the takeover: %v, want another node than %s", o, victim.name)
	}

	// Resumed: it lost its lease while paused and must not take it back.
	resume()
	for i := range rounds {
		before[i] = rounds[i].Load()
	}
	for _, i := range others {
		for rounds[i].Load() < before[i]+5 {
			select {
			case err := <-done:
				t.Fatalf("typing ended early: %v", err)
			case <-ctx.Done():
				t.Fatalf("typist %d: no 5 rounds after the old owner resumed: %v", i, ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if o := c.owner(t, ctx, id); o == victim {
		t.Errorf("the resumed %s took the lease back", victim.name)
	}
	checkConverged(t, ctx, c.nodes, id, start, typists)
}

// TestClusterR3Runs: what an operator would run: three NATS servers with
// three replicas and three nodes, six editors spread over them dropping
// their connections at random and resuming on a random node. Each run
// types for a while and then checks what every client and node holds: the
// same text, a gapless history with each edit once (a rollback or a lost
// op fails it). The longest wait for an ack of each typist is logged: the
// figures in docs/scaling.md come from
//
//	COLLABD_R3_RUNS=10 COLLABD_R3_SECONDS=30 go test -count=1 -v -run TestClusterR3Runs ./cmd/collabd
//
// By default one run of 8 s.
func TestClusterR3Runs(t *testing.T) {
	skipShortCluster(t)
	runs, secs := 1, 8
	if n, err := strconv.Atoi(os.Getenv("COLLABD_R3_RUNS")); err == nil && n > 0 {
		runs = n
	}
	if n, err := strconv.Atoi(os.Getenv("COLLABD_R3_SECONDS")); err == nil && n > 0 {
		secs = n
	}
	c := startCluster(t, clusterOpts{nodes: 3, race: clusterRaceBuild(), r3: true, quiet: true})
	var worst time.Duration
	for run := range runs {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second+2*clusterGuard)
		seed := rand.Uint64()
		const start = "start"
		id, _ := createClusterDoc(t, c.nodes[run%3], start)
		typists := dialTypists(t, ctx, c.nodes, id, 6, seed)
		rounds := make([]atomic.Int64, len(typists))
		stop := make(chan struct{})
		timer := time.AfterFunc(time.Duration(secs)*time.Second, func() { close(stop) })
		err := typeUntil(ctx, typists, c.nodes, id, 2, stop, 5, rounds)
		timer.Stop()
		if err != nil {
			t.Errorf("run %d (seed %d): %v", run, seed, err)
			checkLogsAfterFailure(t, ctx, c, id)
			cancel()
			t.FailNow()
		}
		want := checkConverged(t, ctx, c.nodes, id, start, typists)
		var slow time.Duration
		var total int64
		for i, ty := range typists {
			slow = max(slow, ty.slowest)
			total += rounds[i].Load()
		}
		worst = max(worst, slow)
		t.Logf("run %d (seed %d): %d revisions, %d rounds, longest wait for acks %v", run, seed, want.Rev, total, slow.Round(time.Millisecond))
		for _, ty := range typists {
			ty.c.Close()
		}
		cancel()
	}
	t.Logf("%d runs of %d s: longest wait for acks %v", runs, secs, worst.Round(time.Millisecond))
}

// typingOnOwner creates a document with text start on the first node,
// dials six typists spread over the nodes, has the first make an op (its
// node then owns the document in practice) and returns the document, the
// typists and the node the owners bucket names.
func typingOnOwner(t *testing.T, ctx context.Context, c *testCluster, start string) (string, []*typist, *clusterNode) {
	t.Helper()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	id, _ := createClusterDoc(t, c.nodes[0], start)
	typists := dialTypists(t, ctx, c.nodes, id, 6, seed)
	if err := typists[0].burst(); err != nil {
		t.Fatal(err)
	}
	if err := typists[0].sync(ctx, c.nodes, id); err != nil {
		t.Fatal(err)
	}
	victim := c.owner(t, ctx, id)
	if victim == nil {
		t.Fatal("no node holds the document's lease after an acknowledged op")
	}
	t.Logf("owner: %s", victim.name)
	return id, typists, victim
}
