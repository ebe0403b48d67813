package main

// In-process cluster scenarios (docs/scaling.md, "How it fits the code"):
// one NATS server with JetStream in the test process, and two or three
// collabd "nodes" in the same process, each its own NATS connection,
// jetstream.Store (own node id, short lease TTL), jsCluster and
// collab.Server behind an httptest.Server. Unlike cluster_test.go, which
// runs the real binary, these reach into a node (its store, its NATS
// connection) to check what the protocol promises at the moments that
// matter: an ack against the log, a welcome against the client's op in
// flight, a follower promoting itself with editors typing.
//
// Every identifier here starts with inproc, so that this file stays clear
// of the multi-process helpers.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/collab/client"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage/jetstream"
)

// inprocLeaseTTL is the nodes' lease TTL: short, so that a node whose
// NATS connection dies loses its documents quickly.
const inprocLeaseTTL = time.Second

// inprocPace spaces the ops of an editor typing without end, under the
// server's default rate limit of 100 messages a second.
const inprocPace = 15 * time.Millisecond

// inprocNode is one collabd node of an in-process cluster.
type inprocNode struct {
	t    *testing.T
	name string
	nc   *nats.Conn
	st   *jetstream.Store
	cl   *jsCluster
	srv  *collab.Server
	http *httptest.Server
	logs *inprocLog

	once sync.Once
}

// inprocLog keeps a node's log lines, shown when the test fails.
type inprocLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *inprocLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *inprocLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// inprocCluster starts a NATS server and n nodes on it, named n0, n1,
// ..., and a store of the test's own (on its own connection) to check
// what JetStream holds.
func inprocCluster(t *testing.T, n int) ([]*inprocNode, *jetstream.Store) {
	t.Helper()
	return inprocClusterOpts(t, n, collab.Options{})
}

// inprocClusterOpts is inprocCluster with opts for every node's server
// (AuthorKey and Logger are the cluster's).
func inprocClusterOpts(t *testing.T, n int, opts collab.Options) ([]*inprocNode, *jetstream.Store) {
	t.Helper()
	url := startNATS(t)
	nodes := make([]*inprocNode, n)
	for i := range nodes {
		nodes[i] = startInprocNodeOpts(t, url, fmt.Sprintf("n%d", i), opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, err := jetstream.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	chk, err := jetstream.New(ctx, nc, jetstream.Options{LeaseTTL: inprocLeaseTTL, NodeID: "checker"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chk.Close)
	return nodes, chk
}

func startInprocNode(t *testing.T, url, name string) *inprocNode {
	t.Helper()
	return startInprocNodeOpts(t, url, name, collab.Options{})
}

func startInprocNodeOpts(t *testing.T, url, name string, opts collab.Options) *inprocNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := &inprocNode{t: t, name: name, logs: &inprocLog{}}
	log := slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
	nc, err := jetstream.Connect(url)
	if err != nil {
		t.Fatalf("%s: connect: %v", name, err)
	}
	st, err := jetstream.New(ctx, nc, jetstream.Options{LeaseTTL: inprocLeaseTTL, NodeID: name, Logger: log})
	if err != nil {
		nc.Close()
		t.Fatalf("%s: jetstream: %v", name, err)
	}
	key, err := st.SharedKey(ctx, "author", 32)
	if err != nil {
		t.Fatalf("%s: author key: %v", name, err)
	}
	n.nc, n.st = nc, st
	n.cl = newJSCluster(st, log.With("component", "cluster"))
	opts.AuthorKey, opts.Logger = key, log
	n.srv = collab.New(jsStore{st: st, jsCluster: n.cl}, opts)
	mux := http.NewServeMux()
	mux.Handle("/api/", n.srv)
	n.http = httptest.NewServer(mux)
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			t.Logf("--- log of node %s:\n%s", name, n.logs.String())
		}
	})
	return n
}

// stop shuts the node down in the reverse order of start-up. Idempotent.
func (n *inprocNode) stop() {
	n.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := n.srv.Close(ctx); err != nil {
			n.t.Logf("%s: close: %v", n.name, err)
		}
		n.http.CloseClientConnections()
		n.http.Close()
		n.cl.close()
		n.st.Close()
		n.nc.Close()
	})
}

func (n *inprocNode) wsURL(id string) string {
	return "ws" + strings.TrimPrefix(n.http.URL, "http") + "/api/docs/" + id + "/ws"
}

// inprocCtx is a test's context, with a guard against hangs.
func inprocCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// inprocCreate creates a document through node n and returns its edit id.
func inprocCreate(t *testing.T, n *inprocNode, text string) string {
	t.Helper()
	resp, err := http.Post(n.http.URL+"/api/docs", "application/json", bytes.NewReader(mustMarshal(map[string]string{"text": text})))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create on %s: %d %v", n.name, resp.StatusCode, err)
	}
	return out.ID
}

// inprocOwner returns the node that holds document id's lease, waiting
// for one to.
func inprocOwner(t *testing.T, ctx context.Context, nodes []*inprocNode, id string) *inprocNode {
	t.Helper()
	for {
		who, err := nodes[0].st.Owner(ctx, id)
		if err == nil {
			for _, n := range nodes {
				if n.name == who {
					return n
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no owner of the document: %v (last: %q, %v)", ctx.Err(), who, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// inprocDial opens an editor on node n; the owner of a document is the
// node whose hub loaded it first, so the first editor decides.
func inprocDial(t *testing.T, ctx context.Context, n *inprocNode, id string, opts client.Options) *client.Client {
	t.Helper()
	c, err := client.Dial(ctx, n.wsURL(id), opts)
	if err != nil {
		t.Fatalf("dial %s: %v", n.name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// inprocRecords returns every record of document id, from the store.
func inprocRecords(t *testing.T, ctx context.Context, st *jetstream.Store, id string) []jetstream.Record {
	t.Helper()
	_, last, err := st.Meta(ctx, id)
	if err != nil {
		t.Fatalf("meta: %v", err)
	}
	var out []jetstream.Record
	for int64(len(out)) < last {
		page, err := st.Ops(ctx, id, int64(len(out)), 1000, 8<<20)
		if err != nil {
			t.Fatalf("ops after %d: %v", len(out), err)
		}
		if len(page) == 0 {
			t.Fatalf("log ends at %d, meta says %d", len(out), last)
		}
		for _, r := range page {
			if r.Rev != int64(len(out))+1 {
				t.Fatalf("log: rev %d after %d", r.Rev, len(out))
			}
			out = append(out, r)
		}
	}
	return out
}

// inprocCheckOnce checks that every seq 1..upTo of client appears exactly
// once in the log, in order, and that no other seq of it does.
func inprocCheckOnce(t *testing.T, recs []jetstream.Record, client string, upTo int64) {
	t.Helper()
	var seqs []int64
	for _, r := range recs {
		if r.Client == client {
			seqs = append(seqs, r.Seq)
		}
	}
	for i, s := range seqs {
		if s != int64(i)+1 {
			t.Fatalf("client %.8s: seqs in the log %v: want 1, 2, 3, ... each once", client, seqs)
		}
	}
	if int64(len(seqs)) < upTo {
		t.Fatalf("client %.8s: log has seqs up to %d, but %d were acked", client, len(seqs), upTo)
	}
}

// inprocWire is a raw WebSocket editor: it speaks the protocol by hand,
// so that a test sees every message (an ack twice, say) and controls
// exactly when an op and a hello go out.
type inprocWire struct {
	ws     *websocket.Conn
	client string
	msgs   chan inprocMsg
	closed chan struct{}
	// status is the close status, once closed.
	status websocket.StatusCode
}

// inprocMsg is a message from the server, every field any type uses.
type inprocMsg struct {
	Type    string          `json:"type"`
	Rev     int64           `json:"rev"`
	Seq     int64           `json:"seq"`
	LastSeq int64           `json:"lastSeq"`
	Op      ot.Op           `json:"op"`
	Ops     []inprocOpRec   `json:"ops"`
	Text    *string         `json:"text"`
	Author  string          `json:"author"`
	Peers   []client.Peer   `json:"peers"`
	Ranges  []client.Range  `json:"ranges"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Raw     json.RawMessage `json:"-"`
}

type inprocOpRec struct {
	Rev    int64  `json:"rev"`
	Op     ot.Op  `json:"op"`
	Author string `json:"author"`
	Seq    int64  `json:"seq"`
}

// inprocWireDial connects and says hello (rev < 0: no rev), returning
// the welcome.
func inprocWireDial(ctx context.Context, url, client string, rev int64) (*inprocWire, inprocMsg, error) {
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, inprocMsg{}, err
	}
	ws.SetReadLimit(64 << 20)
	h := map[string]any{"type": "hello", "client": client}
	if rev >= 0 {
		h["rev"] = rev
	}
	if err := ws.Write(ctx, websocket.MessageText, mustMarshal(h)); err != nil {
		ws.CloseNow()
		return nil, inprocMsg{}, err
	}
	w := &inprocWire{ws: ws, client: client, msgs: make(chan inprocMsg, 4096), closed: make(chan struct{})}
	go w.read()
	select {
	case m, ok := <-w.msgs:
		if !ok || m.Type != "welcome" {
			ws.CloseNow()
			return nil, m, fmt.Errorf("expected a welcome, got %+v (status %d)", m, w.status)
		}
		return w, m, nil
	case <-ctx.Done():
		ws.CloseNow()
		return nil, inprocMsg{}, ctx.Err()
	}
}

func (w *inprocWire) read() {
	defer close(w.closed)
	defer close(w.msgs)
	for {
		_, data, err := w.ws.Read(context.Background())
		if err != nil {
			w.status = websocket.CloseStatus(err)
			return
		}
		var raws []json.RawMessage
		if len(data) > 0 && data[0] == '[' {
			if json.Unmarshal(data, &raws) != nil {
				return
			}
		} else {
			raws = []json.RawMessage{data}
		}
		for _, raw := range raws {
			var m inprocMsg
			if json.Unmarshal(raw, &m) != nil {
				return
			}
			m.Raw = raw
			w.msgs <- m
		}
	}
}

func (w *inprocWire) send(ctx context.Context, v any) error {
	return w.ws.Write(ctx, websocket.MessageText, mustMarshal(v))
}

func (w *inprocWire) sendOp(ctx context.Context, rev, seq int64, op ot.Op) error {
	return w.send(ctx, map[string]any{"type": "op", "rev": rev, "seq": seq, "op": op})
}

// next returns the next message other than presence and leave.
func (w *inprocWire) next(ctx context.Context) (inprocMsg, error) {
	for {
		select {
		case m, ok := <-w.msgs:
			if !ok {
				return m, fmt.Errorf("connection closed (status %d)", w.status)
			}
			if m.Type == "presence" || m.Type == "leave" {
				continue
			}
			return m, nil
		case <-ctx.Done():
			return inprocMsg{}, ctx.Err()
		}
	}
}

func (w *inprocWire) close() {
	w.ws.Close(websocket.StatusNormalClosure, "bye")
	<-w.closed
}

func (w *inprocWire) drop() {
	w.ws.CloseNow()
	<-w.closed
}

// inprocInsert is the op inserting s at pos into a text of n code points.
func inprocInsert(n, pos int, s string) ot.Op {
	return ot.Op{}.Retain(pos).Insert(s).Retain(n - pos)
}

// inprocType makes c type count characters, one op at a time, each after
// the previous was acknowledged, at the end of its text. It reports the
// highest seq acknowledged, and the error that stopped it, if any.
func inprocType(ctx context.Context, c *client.Client, tag string, count int) (int64, error) {
	for i := range count {
		err := c.EditFunc(func(text string) ot.Op {
			n := len([]rune(text))
			return inprocInsert(n, n, fmt.Sprintf("%s%d ", tag, i))
		})
		if err != nil {
			_, acked := c.Seqs()
			return acked, err
		}
		if err := c.WaitSynced(ctx); err != nil {
			_, acked := c.Seqs()
			return acked, err
		}
	}
	_, acked := c.Seqs()
	return acked, nil
}

// inprocSSE is a reader of a document's event stream.
type inprocSSE struct {
	resp   *http.Response
	events chan inprocEvent
	done   chan struct{}
}

type inprocEvent struct {
	name string
	id   int64
	data string
}

func inprocOpenSSE(ctx context.Context, url string, lastID int64) (*inprocSSE, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if lastID >= 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(lastID, 10))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("events: %d %s", resp.StatusCode, b)
	}
	s := &inprocSSE{resp: resp, events: make(chan inprocEvent, 4096), done: make(chan struct{})}
	go s.read()
	return s, nil
}

func (s *inprocSSE) read() {
	defer close(s.done)
	defer close(s.events)
	sc := bufio.NewScanner(s.resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var ev inprocEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.name != "" {
				s.events <- ev
			}
			ev = inprocEvent{}
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			ev.id, _ = strconv.ParseInt(strings.TrimPrefix(line, "id: "), 10, 64)
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func (s *inprocSSE) close() {
	s.resp.Body.Close()
	<-s.done
}

// inprocViewer applies a stream's events to a text, checking that op
// events run without a gap or a repeat.
type inprocViewer struct {
	text  string
	rev   int64
	ops   int
	ready bool
	// base is the revision of the first snapshot: the ops after it are
	// the ones the viewer must see one by one.
	base int64
}

func (v *inprocViewer) apply(ev inprocEvent) error {
	switch ev.name {
	case "snapshot":
		var s struct {
			Rev  int64  `json:"rev"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal([]byte(ev.data), &s); err != nil {
			return err
		}
		if !v.ready {
			v.base = s.Rev
		}
		v.text, v.rev, v.ready = s.Text, s.Rev, true
	case "op":
		var o struct {
			Rev int64 `json:"rev"`
			Op  ot.Op `json:"op"`
		}
		if err := json.Unmarshal([]byte(ev.data), &o); err != nil {
			return err
		}
		if !v.ready {
			return fmt.Errorf("op %d before any snapshot", o.Rev)
		}
		if o.Rev != v.rev+1 || ev.id != o.Rev {
			return fmt.Errorf("op event %d (id %d) after rev %d: want %d", o.Rev, ev.id, v.rev, v.rev+1)
		}
		d := ot.NewDoc(v.text)
		if err := d.Apply(o.Op); err != nil {
			return fmt.Errorf("op %d: %v", o.Rev, err)
		}
		v.text, v.rev = d.String(), o.Rev
		v.ops++
	}
	return nil
}

// waitFor polls cond until it holds or ctx ends.
func inprocWaitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// inprocNewClient is a fresh client id.
func inprocNewClient() string { return uuid.NewString() }

// inprocOwnedDoc creates a document on nodes[0] and makes nodes[0] its
// owner by connecting an editor there first; the editor is returned.
func inprocOwnedDoc(t *testing.T, ctx context.Context, nodes []*inprocNode, text string) (string, *client.Client) {
	t.Helper()
	id := inprocCreate(t, nodes[0], text)
	c := inprocDial(t, ctx, nodes[0], id, client.Options{Name: "owner-editor"})
	if o := inprocOwner(t, ctx, nodes, id); o != nodes[0] {
		t.Fatalf("owner is %s, want %s", o.name, nodes[0].name)
	}
	return id, c
}

// inprocObserver collects the op messages a raw editor that never edits
// receives; anything else out of place (an ack, an error) is kept as its
// error.
type inprocObserver struct {
	w    *inprocWire
	mu   sync.Mutex
	ops  []inprocMsg
	err  error
	done chan struct{}
}

func inprocObserve(w *inprocWire) *inprocObserver {
	o := &inprocObserver{w: w, done: make(chan struct{})}
	go func() {
		defer close(o.done)
		for m := range w.msgs {
			o.mu.Lock()
			switch m.Type {
			case "op":
				o.ops = append(o.ops, m)
			case "presence", "leave":
			default:
				if o.err == nil {
					o.err = fmt.Errorf("observer got %s", m.Raw)
				}
			}
			o.mu.Unlock()
		}
	}()
	return o
}

// state returns the ops so far and the error, if any.
func (o *inprocObserver) state() ([]inprocMsg, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]inprocMsg(nil), o.ops...), o.err
}

// check waits until the observer has n ops and compares them with the
// log's records.
func (o *inprocObserver) check(t *testing.T, ctx context.Context, where string, recs []jetstream.Record, authors map[string]string) {
	t.Helper()
	inprocWaitFor(t, ctx, where+" observer's ops", func() bool {
		ops, err := o.state()
		return len(ops) >= len(recs) || err != nil
	})
	got, err := o.state()
	if err != nil {
		t.Fatalf("observer on %s: %v", where, err)
	}
	if len(got) != len(recs) {
		t.Fatalf("observer on %s got %d ops, want %d", where, len(got), len(recs))
	}
	for j, m := range got {
		r := recs[j]
		if m.Rev != r.Rev || m.Seq != r.Seq || m.Author != authors[r.Client] || m.Op.String() != r.Op.String() {
			t.Fatalf("observer on %s: message %d is rev %d seq %d by %.8s, log has rev %d seq %d by %.8s",
				where, j, m.Rev, m.Seq, m.Author, r.Rev, r.Seq, authors[r.Client])
		}
	}
}

// TestClusterInprocFollowerAcks: an editor on a follower is acknowledged
// only once its op is in JetStream, and editors on both nodes receive the
// ops in the log's order, each once.
func TestClusterInprocFollowerAcks(t *testing.T) {
	ctx := inprocCtx(t, 90*time.Second)
	nodes, chk := inprocCluster(t, 2)
	id, onOwner := inprocOwnedDoc(t, ctx, nodes, "")

	// Passive editors on both nodes see every op.
	var observers []*inprocObserver
	for _, n := range nodes {
		w, welcome, err := inprocWireDial(ctx, n.wsURL(id), inprocNewClient(), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer w.close()
		if welcome.Rev != 0 {
			t.Fatalf("welcome on %s at rev %d, want 0", n.name, welcome.Rev)
		}
		observers = append(observers, inprocObserve(w))
	}

	onFollower := inprocDial(t, ctx, nodes[1], id, client.Options{Name: "follower-editor"})
	const perEditor = 40
	var wg sync.WaitGroup
	wg.Add(1)
	var ownerErr error
	go func() {
		defer wg.Done()
		_, ownerErr = inprocType(ctx, onOwner, "o", perEditor)
	}()
	// The follower's editor checks each ack against JetStream at once.
	for i := range perEditor {
		err := onFollower.EditFunc(func(text string) ot.Op {
			n := len([]rune(text))
			return inprocInsert(n, 0, fmt.Sprintf("f%d ", i))
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := onFollower.WaitSynced(ctx); err != nil {
			t.Fatalf("follower editor, op %d: %v", i+1, err)
		}
		seq, rev, err := chk.ClientSeq(ctx, id, onFollower.ID())
		if err != nil {
			t.Fatal(err)
		}
		if seq != int64(i+1) {
			t.Fatalf("acked seq %d, but JetStream has seq %d of the client (at rev %d)", i+1, seq, rev)
		}
	}
	wg.Wait()
	if ownerErr != nil {
		t.Fatalf("owner editor: %v", ownerErr)
	}

	recs := inprocRecords(t, ctx, chk, id)
	if len(recs) != 2*perEditor {
		t.Fatalf("log has %d records, want %d", len(recs), 2*perEditor)
	}
	inprocCheckOnce(t, recs, onOwner.ID(), perEditor)
	inprocCheckOnce(t, recs, onFollower.ID(), perEditor)
	authors := map[string]string{onOwner.ID(): onOwner.Author(), onFollower.ID(): onFollower.Author()}
	want, _ := chk.Load(ctx, id)
	for _, c := range []*client.Client{onOwner, onFollower} {
		if err := c.WaitRev(ctx, int64(len(recs))); err != nil {
			t.Fatal(err)
		}
		if got := c.Text(); got != want.Text {
			t.Fatalf("editor text %q, store %q", got, want.Text)
		}
	}
	// Each observer has every op, in the log's order.
	for i, o := range observers {
		o.check(t, ctx, nodes[i].name, recs, authors)
	}
}

// TestClusterInprocJoinWhileInFlight: an editor on a follower sends an op
// and at once reconnects, to the same follower, another follower or the
// owner, while the op is on its way to the owner or in its batch. The
// welcome's lastSeq must be truthful (an op it covers is in the welcome's
// catch-up), the op must be acknowledged exactly once (on resend or not),
// and the log must hold every op exactly once.
func TestClusterInprocJoinWhileInFlight(t *testing.T) {
	ctx := inprocCtx(t, 120*time.Second)
	nodes, chk := inprocCluster(t, 3)
	id, onOwner := inprocOwnedDoc(t, ctx, nodes, "")
	onOwner.Close()

	client := inprocNewClient()
	text := ""
	var rev, seq int64
	at := nodes[1]
	w, welcome, err := inprocWireDial(ctx, at.wsURL(id), client, -1)
	if err != nil {
		t.Fatal(err)
	}
	author := welcome.Author
	const rounds = 60
	for round := range rounds {
		seq++
		piece := fmt.Sprintf("%d,", seq)
		if err := w.sendOp(ctx, rev, seq, inprocInsert(len([]rune(text)), 0, piece)); err != nil {
			t.Fatal(err)
		}
		// Cut at once, or after a moment (the op reached the owner, or its
		// batch is being written).
		if d := round % 4; d > 0 {
			time.Sleep(time.Duration(d) * time.Millisecond)
		}
		w.drop()
		to := nodes[1+round%2]
		if round%3 == 2 {
			to = nodes[0]
		}
		w, welcome, err = inprocWireDial(ctx, to.wsURL(id), client, rev)
		if err != nil {
			t.Fatalf("round %d: reconnect to %s: %v", round, to.name, err)
		}
		where := fmt.Sprintf("round %d (%s -> %s)", round, at.name, to.name)
		at = to
		if welcome.Text != nil {
			t.Fatalf("%s: welcome has the text, want catch-up ops after rev %d", where, rev)
		}
		var covered bool
		for _, o := range welcome.Ops {
			if o.Author == author && o.Seq == seq {
				covered = true
				rev = o.Rev
			} else {
				t.Fatalf("%s: catch-up has an op nobody else made: %+v", where, o)
			}
		}
		switch {
		case welcome.LastSeq == seq && !covered:
			t.Fatalf("%s: welcome claims lastSeq %d, but its catch-up after rev %d lacks the op (welcome rev %d)",
				where, seq, rev, welcome.Rev)
		case welcome.LastSeq == seq:
			if welcome.Rev < rev {
				t.Fatalf("%s: welcome at rev %d, before the op's rev %d", where, welcome.Rev, rev)
			}
		case welcome.LastSeq == seq-1 && !covered:
			// Not applied as far as the node knows: resend it, after a
			// moment now and then, so that its record may come first.
			if d := round % 3; d > 0 {
				time.Sleep(time.Duration(15*d) * time.Millisecond)
			}
			if err := w.sendOp(ctx, rev, seq, inprocInsert(len([]rune(text)), 0, piece)); err != nil {
				<-w.closed
				var got []string
				for m := range w.msgs {
					got = append(got, string(m.Raw))
				}
				t.Fatalf("%s: resend: %v; the connection had sent %q and closed with %d", where, err, got, w.status)
			}
			m, err := w.next(ctx)
			if err != nil {
				t.Fatalf("%s: waiting for the ack of the resent op: %v", where, err)
			}
			if m.Type != "ack" || m.Seq != seq || m.Rev != rev+1 {
				t.Fatalf("%s: got %s, want the ack of seq %d at rev %d", where, m.Raw, seq, rev+1)
			}
			rev = m.Rev
			// The op's record may have reached this node before the
			// resend did, and been acknowledged then: the resend must not
			// be acknowledged a second time. The next op's ack is the next
			// message.
			text = piece + text
			seq++
			piece = fmt.Sprintf("%d,", seq)
			if err := w.sendOp(ctx, rev, seq, inprocInsert(len([]rune(text)), 0, piece)); err != nil {
				t.Fatal(err)
			}
			if m, err = w.next(ctx); err != nil || m.Type != "ack" || m.Seq != seq || m.Rev != rev+1 {
				t.Fatalf("%s: after the resend's ack, got %s (%v); want the ack of the next op, seq %d at rev %d",
					where, m.Raw, err, seq, rev+1)
			}
			rev = m.Rev
		default:
			t.Fatalf("%s: welcome lastSeq %d (covered %v), sent seq %d", where, welcome.LastSeq, covered, seq)
		}
		text = piece + text
	}
	// A last op on the same connection: nothing else (a second ack of an
	// earlier op) may come before its ack.
	seq++
	if err := w.sendOp(ctx, rev, seq, inprocInsert(len([]rune(text)), 0, "end,")); err != nil {
		t.Fatal(err)
	}
	m, err := w.next(ctx)
	if err != nil || m.Type != "ack" || m.Seq != seq {
		t.Fatalf("last op: got %s, %v; want its ack", m.Raw, err)
	}
	w.close()
	text = "end," + text

	recs := inprocRecords(t, ctx, chk, id)
	inprocCheckOnce(t, recs, client, seq)
	d, err := chk.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Text != text {
		t.Fatalf("store text %q, want %q", d.Text, text)
	}
}

// TestClusterInprocOwnerStops: the owner node goes away while editors on
// the two followers type. One follower takes the document over in place:
// its editors and the other follower's keep their sessions, and every op
// acknowledged is in the log exactly once. The owner goes either by
// closing its collab.Server (its hub hands the lease over) or by losing
// its NATS connection (the lease expires).
func TestClusterInprocOwnerStops(t *testing.T) {
	for _, how := range []string{"server-close", "nats-close"} {
		t.Run(how, func(t *testing.T) {
			ctx := inprocCtx(t, 120*time.Second)
			nodes, chk := inprocCluster(t, 3)
			id, onOwner := inprocOwnedDoc(t, ctx, nodes, "")
			_ = onOwner
			editors := []*client.Client{
				inprocDial(t, ctx, nodes[1], id, client.Options{Name: "e1"}),
				inprocDial(t, ctx, nodes[2], id, client.Options{Name: "e2"}),
				inprocDial(t, ctx, nodes[2], id, client.Options{Name: "e3"}),
			}
			const perEditor = 120
			acked := make([]int64, len(editors))
			errs := make([]error, len(editors))
			var wg sync.WaitGroup
			for i, c := range editors {
				wg.Add(1)
				go func() {
					defer wg.Done()
					acked[i], errs[i] = inprocType(ctx, c, fmt.Sprintf("e%d.", i), perEditor)
				}()
			}
			// Stop the owner once every editor is well under way.
			inprocWaitFor(t, ctx, "editors to type", func() bool {
				for _, c := range editors {
					if _, a := c.Seqs(); a < 20 {
						return false
					}
				}
				return true
			})
			switch how {
			case "server-close":
				nodes[0].stop()
			case "nats-close":
				nodes[0].nc.Close()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("editor %d (on a follower) after %d acks: %v", i, acked[i], err)
				}
			}
			owner := inprocOwner(t, ctx, nodes[1:], id)
			t.Logf("new owner %s", owner.name)
			recs := inprocRecords(t, ctx, chk, id)
			for i, c := range editors {
				inprocCheckOnce(t, recs, c.ID(), acked[i])
				if acked[i] != perEditor {
					t.Fatalf("editor %d: %d acked, want %d", i, acked[i], perEditor)
				}
			}
			d, err := chk.Load(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range editors {
				if err := c.WaitRev(ctx, d.Rev); err != nil {
					t.Fatal(err)
				}
				if got := c.Text(); got != d.Text {
					t.Fatalf("editor %d has %q, the store %q", i, got, d.Text)
				}
			}
		})
	}
}

// inprocRuneIndex is strings.Index in code points.
func inprocRuneIndex(s, sub string) int {
	i := strings.Index(s, sub)
	if i < 0 {
		return -1
	}
	return len([]rune(s[:i]))
}

// inprocPeer returns c's view of the peer with author id, if any.
func inprocPeer(c *client.Client, author string) (client.Peer, int) {
	var found client.Peer
	n := 0
	for _, p := range c.Peers() {
		if p.Author == author {
			found = p
			n++
		}
	}
	return found, n
}

// TestClusterInprocPresence: a cursor set on one node is shown to an
// editor on the other at the right place, though that editor types at
// the same time and the cursor's revision may be ahead of its node's log;
// an editor that moves to the other node is not its own peer there, nor
// listed twice; one that leaves is removed on the other node.
func TestClusterInprocPresence(t *testing.T) {
	ctx := inprocCtx(t, 90*time.Second)
	nodes, _ := inprocCluster(t, 2)
	const marker = "MARK"
	id, x := inprocOwnedDoc(t, ctx, nodes, "hello "+marker+" world")
	y := inprocDial(t, ctx, nodes[1], id, client.Options{Name: "y"})

	// y types at the start of the text the whole time.
	stop := make(chan struct{})
	yDone := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				yDone <- nil
				return
			default:
			}
			if err := y.Edit(inprocInsert(y.Len(), 0, "y")); err != nil {
				yDone <- err
				return
			}
			if err := y.WaitSynced(ctx); err != nil {
				yDone <- err
				return
			}
			time.Sleep(inprocPace)
		}
	}()
	atMarker := func(c *client.Client, author string) func() bool {
		return func() bool {
			p, n := inprocPeer(c, author)
			at := inprocRuneIndex(c.Text(), marker)
			return n == 1 && len(p.Ranges) == 1 && p.Ranges[0] == client.Range{at, at}
		}
	}
	for round := range 20 {
		// x edits at the end, then at once puts its cursor before the
		// marker: the cursor's revision is one that y's node may not
		// have yet.
		if err := x.EditFunc(func(text string) ot.Op {
			n := len([]rune(text))
			return inprocInsert(n, n, "x")
		}); err != nil {
			t.Fatal(err)
		}
		if err := x.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
		at := inprocRuneIndex(x.Text(), marker)
		if err := x.SetCursor([]client.Range{{at, at}}); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		inprocWaitFor(t, rctx, fmt.Sprintf("round %d: y to see x's cursor before the marker", round), atMarker(y, x.Author()))
		cancel()
	}
	close(stop)
	if err := <-yDone; err != nil {
		t.Fatal(err)
	}
	if err := y.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	inprocWaitFor(t, ctx, "y to see x's cursor before the marker, all synced", atMarker(y, x.Author()))

	// The other way: x types on the owner the whole time, so that its
	// hub has a batch in flight when y's cursor, set on the follower,
	// arrives; x sees it at the right place.
	stop = make(chan struct{})
	xDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				xDone <- nil
				return
			default:
			}
			if err := x.Edit(inprocInsert(x.Len(), 0, "x")); err != nil {
				xDone <- err
				return
			}
			if err := x.WaitSynced(ctx); err != nil {
				xDone <- err
				return
			}
			time.Sleep(inprocPace)
		}
	}()
	for round := range 20 {
		if err := y.EditFunc(func(text string) ot.Op {
			n := len([]rune(text))
			return inprocInsert(n, n, "y")
		}); err != nil {
			t.Fatal(err)
		}
		if err := y.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
		at := inprocRuneIndex(y.Text(), marker) + len(marker)
		if err := y.SetCursor([]client.Range{{at, at}}); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		inprocWaitFor(t, rctx, fmt.Sprintf("round %d: x to see y's cursor after the marker", round), func() bool {
			p, n := inprocPeer(x, y.Author())
			at := inprocRuneIndex(x.Text(), marker) + len(marker)
			return n == 1 && len(p.Ranges) == 1 && p.Ranges[0] == client.Range{at, at}
		})
		cancel()
	}
	close(stop)
	if err := <-xDone; err != nil {
		t.Fatal(err)
	}

	// x moves to y's node, its old connection still open (as when its
	// network path died silently): it is not its own peer there, and a
	// new editor there lists it once.
	x2 := inprocDial(t, ctx, nodes[1], id, client.Options{ClientID: x.ID(), Name: "x"})
	if _, n := inprocPeer(x2, x2.Author()); n != 0 {
		t.Fatalf("x, moved to %s, is its own peer: %+v", nodes[1].name, x2.Peers())
	}
	z, welcome, err := inprocWireDial(ctx, nodes[1].wsURL(id), inprocNewClient(), -1)
	if err != nil {
		t.Fatal(err)
	}
	defer z.close()
	n := 0
	for _, p := range welcome.Peers {
		if p.Author == x.Author() {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("a new editor's welcome lists x %d times: %+v", n, welcome.Peers)
	}

	// An editor on the owner that leaves is removed on the follower.
	w := inprocDial(t, ctx, nodes[0], id, client.Options{Name: "w"})
	if err := w.SetCursor([]client.Range{{0, 1}}); err != nil {
		t.Fatal(err)
	}
	inprocWaitFor(t, ctx, "y to see w", func() bool { _, n := inprocPeer(y, w.Author()); return n == 1 })
	w.Close()
	inprocWaitFor(t, ctx, "y to see w leave", func() bool { _, n := inprocPeer(y, w.Author()); return n == 0 })
}

// TestClusterInprocSupersede: the same client id opening a session on
// another node closes its session on the first, whichever of them owns
// the document, and the new session goes on.
func TestClusterInprocSupersede(t *testing.T) {
	ctx := inprocCtx(t, 60*time.Second)
	nodes, _ := inprocCluster(t, 2)
	id, _ := inprocOwnedDoc(t, ctx, nodes, "abc")
	for _, move := range [][2]int{{0, 1}, {1, 0}} {
		from, to := nodes[move[0]], nodes[move[1]]
		clientID := inprocNewClient()
		old, _, err := inprocWireDial(ctx, from.wsURL(id), clientID, -1)
		if err != nil {
			t.Fatal(err)
		}
		c := inprocDial(t, ctx, to, id, client.Options{ClientID: clientID})
		select {
		case <-old.closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s -> %s: the session on %s is still open", from.name, to.name, from.name)
		}
		if old.status != websocket.StatusNormalClosure {
			t.Fatalf("%s -> %s: old session closed with %d, want %d (superseded)", from.name, to.name, old.status, websocket.StatusNormalClosure)
		}
		if err := c.Edit(inprocInsert(c.Len(), 0, "z")); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatalf("%s -> %s: new session: %v", from.name, to.name, err)
		}
	}
}

// inprocPost posts a JSON body and returns the status and body.
func inprocPost(t *testing.T, url string, body any) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(mustMarshal(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestClusterInprocRestoreDeleteOnFollower: POST /restore and DELETE
// through a node that does not own the document act on it everywhere.
func TestClusterInprocRestoreDeleteOnFollower(t *testing.T) {
	ctx := inprocCtx(t, 60*time.Second)
	nodes, chk := inprocCluster(t, 2)
	id, x := inprocOwnedDoc(t, ctx, nodes, "v0")
	y := inprocDial(t, ctx, nodes[1], id, client.Options{Name: "y"})
	for _, s := range []string{"a", "b", "c"} {
		if err := x.Edit(inprocInsert(x.Len(), x.Len(), s)); err != nil {
			t.Fatal(err)
		}
		if err := x.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	at1, err := chk.LoadAt(ctx, id, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, before, err := chk.Meta(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := before + 1
	code, body := inprocPost(t, nodes[1].http.URL+"/api/docs/"+id+"/restore", map[string]int64{"rev": 1})
	if code != http.StatusOK {
		t.Fatalf("restore through the follower: %d %s", code, body)
	}
	var out struct{ Rev int64 }
	if err := json.Unmarshal([]byte(body), &out); err != nil || out.Rev != want {
		t.Fatalf("restore answered %s (%v), want rev %d", body, err, want)
	}
	d, err := chk.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Rev != want || d.Text != at1.Text {
		t.Fatalf("store after the restore: rev %d %q, want rev %d %q", d.Rev, d.Text, want, at1.Text)
	}
	for _, c := range []*client.Client{x, y} {
		if err := c.WaitRev(ctx, want); err != nil {
			t.Fatal(err)
		}
		if c.Text() != at1.Text {
			t.Fatalf("editor has %q after the restore, want %q", c.Text(), at1.Text)
		}
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, nodes[1].http.URL+"/api/docs/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete through the follower: %d", resp.StatusCode)
	}
	for _, c := range []*client.Client{x, y} {
		err := c.Wait(ctx, func(client.View) bool { return false })
		var se *client.ServerError
		if !errors.As(err, &se) || se.Code != "not_found" {
			t.Fatalf("editor after the delete: %v, want not_found", err)
		}
	}
	if _, _, err := chk.Meta(ctx, id); !errors.Is(err, jetstream.ErrNotFound) {
		t.Fatalf("meta after the delete: %v, want ErrNotFound", err)
	}
	for _, n := range nodes {
		code, _, _ := httpGet(t, n.http.URL+"/api/docs/"+id)
		if code != http.StatusNotFound {
			t.Fatalf("GET on %s after the delete: %d, want 404", n.name, code)
		}
	}
}

// TestClusterInprocViewer: an SSE viewer on a follower sees every op once,
// in order, and resumes with Last-Event-ID on the owner and on another
// follower without a gap, a repeat or a new snapshot.
func TestClusterInprocViewer(t *testing.T) {
	ctx := inprocCtx(t, 90*time.Second)
	nodes, chk := inprocCluster(t, 3)
	id, x := inprocOwnedDoc(t, ctx, nodes, "start")
	y := inprocDial(t, ctx, nodes[1], id, client.Options{Name: "y"})

	const perEditor = 60
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, c := range []*client.Client{x, y} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = inprocType(ctx, c, fmt.Sprintf("%d.", i), perEditor)
		}()
	}
	typed := make(chan struct{})
	go func() { wg.Wait(); close(typed) }()

	var v inprocViewer
	// all reports whether the viewer has every op: typing is over and it
	// is at the log's end.
	all := func() bool {
		select {
		case <-typed:
			_, rev, err := chk.Meta(ctx, id)
			return err == nil && v.rev == rev
		default:
			return false
		}
	}
	// Follow on n1 (follower), then n0 (owner), then n2 (a follower
	// that loads the document for this viewer), each for a share of the
	// ops; the last until everything is typed and seen.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for leg, n := range []*inprocNode{nodes[1], nodes[0], nodes[2]} {
		last := int64(-1)
		if leg > 0 {
			last = v.rev
		}
		s, err := inprocOpenSSE(ctx, n.http.URL+"/api/docs/"+id+"/events", last)
		if err != nil {
			t.Fatal(err)
		}
		first := true
		for (leg < 2 && v.ops < (leg+1)*perEditor*2/3) || (leg == 2 && !all()) {
			select {
			case ev, ok := <-s.events:
				if !ok {
					t.Fatalf("viewer on %s: stream ended", n.name)
				}
				if first && leg > 0 && ev.name == "snapshot" {
					t.Fatalf("viewer resuming on %s from %d got a snapshot (rev %d), want the ops after it", n.name, last, ev.id)
				}
				first = false
				if err := v.apply(ev); err != nil {
					t.Fatalf("viewer on %s: %v", n.name, err)
				}
			case <-tick.C:
			case <-ctx.Done():
				t.Fatalf("viewer on %s at rev %d: %v", n.name, v.rev, ctx.Err())
			}
		}
		s.close()
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("editor %d: %v", i, err)
		}
	}
	d, err := chk.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// The editors start typing before the viewer connects, so its first
	// snapshot may already hold a few of their ops; every op after it
	// must have come as its own event.
	if v.text != d.Text || v.rev != d.Rev || int64(v.ops) != d.Rev-v.base || d.Rev != 1+2*perEditor {
		t.Fatalf("viewer at rev %d with %d ops after its snapshot at rev %d, %q; store at rev %d, %q; want %d ops in all", v.rev, v.ops, v.base, v.text, d.Rev, d.Text, 2*perEditor)
	}
}

// TestClusterInprocMoveToLaggingFollower: an editor on the owner, with an
// op in flight and the latest revisions applied, moves to a follower
// whose log may not have reached those revisions yet. It must get the
// ops it lacks (or none), never the whole text, which would drop its
// unacknowledged edit (ErrLostEdits).
func TestClusterInprocMoveToLaggingFollower(t *testing.T) {
	ctx := inprocCtx(t, 90*time.Second)
	nodes, chk := inprocCluster(t, 2)
	id, w := inprocOwnedDoc(t, ctx, nodes, "")
	// w types on the owner the whole time, so that the revisions move.
	stop := make(chan struct{})
	wDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				wDone <- nil
				return
			default:
			}
			if err := w.Edit(inprocInsert(w.Len(), 0, "w")); err != nil {
				wDone <- err
				return
			}
			if err := w.WaitSynced(ctx); err != nil {
				wDone <- err
				return
			}
			time.Sleep(inprocPace)
		}
	}()
	x := inprocDial(t, ctx, nodes[0], id, client.Options{Name: "x"})
	for round := range 40 {
		from, to := nodes[round%2], nodes[1-round%2]
		// Let x apply a few of w's ops where it is, then edit and move
		// at once.
		rev := x.Rev()
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		for x.Rev() < rev+2 && rctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		if x.Rev() < rev+2 {
			ws, wa := w.Seqs()
			xs, xa := x.Seqs()
			t.Fatalf("round %d: x on %s stays at rev %d (seqs %d/%d, err %v); w at rev %d (seqs %d/%d, err %v)",
				round, from.name, x.Rev(), xs, xa, x.Err(), w.Rev(), ws, wa, w.Err())
		}
		if err := x.EditFunc(func(text string) ot.Op {
			n := len([]rune(text))
			return inprocInsert(n, n, "x")
		}); err != nil {
			t.Fatal(err)
		}
		if err := x.ReconnectTo(ctx, to.wsURL(id)); err != nil {
			t.Fatalf("round %d: x from %s to %s at rev %d: %v", round, from.name, to.name, x.Rev(), err)
		}
		if err := x.WaitSynced(ctx); err != nil {
			t.Fatalf("round %d: x on %s: %v", round, to.name, err)
		}
	}
	close(stop)
	if err := <-wDone; err != nil {
		t.Fatal(err)
	}
	recs := inprocRecords(t, ctx, chk, id)
	inprocCheckOnce(t, recs, x.ID(), 40)
}

// TestClusterInprocRestoreRefusedOnFollower: a restore made through a
// follower is sequenced, and admitted, by the owner; when the owner
// refuses it (here: past -max-doc-history), the follower answers 507
// too_large as the owner would have, not 503 "try again".
func TestClusterInprocRestoreRefusedOnFollower(t *testing.T) {
	ctx := inprocCtx(t, 60*time.Second)
	nodes, _ := inprocClusterOpts(t, 2, collab.Options{MaxDocHistory: 10_000})
	id, x := inprocOwnedDoc(t, ctx, nodes, strings.Repeat("a", 4000))
	if err := x.Edit(inprocInsert(x.Len(), x.Len(), strings.Repeat("b", 4000))); err != nil {
		t.Fatal(err)
	}
	if err := x.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	url := nodes[1].http.URL + "/api/docs/" + id + "/restore"
	if code, body := inprocPost(t, url, map[string]int64{"rev": 0}); code != http.StatusOK {
		t.Fatalf("restore of the empty rev 0 (deletes all) through the follower: %d %s", code, body)
	}
	code, body := inprocPost(t, url, map[string]int64{"rev": 2})
	if code != http.StatusInsufficientStorage || !strings.Contains(body, collab.CodeTooLarge) {
		t.Errorf("restore of 8,000 characters past the owner's budget, through the follower: got %d %s, want 507 too_large", code, body)
	}
}

// TestClusterInprocNoRollback: an editor whose op was committed but
// whose ack it never saw moves to a follower whose log lags behind it
// for longer than a join is held. Its welcome must not be behind the
// revision it resumes from (the text at an older revision would roll it
// back and drop its edit): it gets the ops it lacks, its own among them,
// and then every later op without a gap. A client claiming a revision
// nobody has still gets the text, after the hold, rather than waiting
// for ever.
func TestClusterInprocNoRollback(t *testing.T) {
	ctx := inprocCtx(t, 60*time.Second)
	nodes, _ := inprocCluster(t, 2)
	id, w := inprocOwnedDoc(t, ctx, nodes, "")
	if _, err := inprocType(ctx, w, "w", 2); err != nil {
		t.Fatal(err)
	}
	// A watcher on n1 makes it follow the document; then its log stalls.
	watch, _, err := inprocWireDial(ctx, nodes[1].wsURL(id), inprocNewClient(), -1)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.drop()
	gate := make(chan struct{})
	nodes[1].cl.gate.Store(&gate)
	release := sync.OnceFunc(func() { close(gate) })
	defer release()
	if _, err := inprocType(ctx, w, "v", 5); err != nil {
		t.Fatal(err)
	}

	// x joins the owner, sends an op and is acked; it then reconnects to
	// n1 as if the ack had been lost, resuming from the revision its op
	// was made on.
	xClient := inprocNewClient()
	x, xw, err := inprocWireDial(ctx, nodes[0].wsURL(id), xClient, -1)
	if err != nil {
		t.Fatal(err)
	}
	base := xw.Rev
	if err := x.sendOp(ctx, base, 1, inprocInsert(len([]rune(*xw.Text)), 0, "x")); err != nil {
		t.Fatal(err)
	}
	if m, err := x.next(ctx); err != nil || m.Type != "ack" || m.Rev != base+1 {
		t.Fatalf("x on the owner: got %+v, %v; want the ack of rev %d", m, err, base+1)
	}
	x.drop()

	type joined struct {
		w   *inprocWire
		msg inprocMsg
		err error
	}
	join := func(client string, rev int64) chan joined {
		out := make(chan joined, 1)
		go func() {
			c, m, err := inprocWireDial(ctx, nodes[1].wsURL(id), client, rev)
			out <- joined{c, m, err}
		}()
		return out
	}
	xc, yc := join(xClient, base), join(inprocNewClient(), base+1000)
	xj, yj := <-xc, <-yc
	if xj.err != nil {
		t.Fatalf("x on the lagging follower: %v", xj.err)
	}
	defer xj.w.drop()
	xm := xj.msg
	if xm.Text != nil || xm.Rev < base+1 || xm.LastSeq != 1 {
		t.Fatalf("x resuming from rev %d got a welcome at rev %d, text %v, lastSeq %d; want the catch-up to rev %d or later, lastSeq 1",
			base, xm.Rev, xm.Text != nil, xm.LastSeq, base+1)
	}
	if int64(len(xm.Ops)) != xm.Rev-base || xm.Ops[0].Rev != base+1 || xm.Ops[0].Seq != 1 {
		t.Fatalf("x's catch-up from rev %d to %d: %+v; want its own op first", base, xm.Rev, xm.Ops)
	}
	if yj.err != nil {
		t.Fatalf("y claiming a revision nobody has: %v", yj.err)
	}
	defer yj.w.drop()
	if yj.msg.Text == nil || yj.msg.Rev != base+1 {
		t.Fatalf("y claiming rev %d got a welcome at rev %d, text %v; want the text at rev %d", base+1000, yj.msg.Rev, yj.msg.Text != nil, base+1)
	}

	// A viewer resuming there from a revision the log there has not
	// reached gets no snapshot at an older revision either.
	if _, err := inprocType(ctx, w, "t", 1); err != nil {
		t.Fatal(err)
	}
	sse, err := inprocOpenSSE(ctx, nodes[1].http.URL+"/api/docs/"+id+"/events", base+2)
	if err != nil {
		t.Fatal(err)
	}
	defer sse.close()

	// The log flows again: x and the viewer get every later op, in
	// order, once.
	release()
	if _, err := inprocType(ctx, w, "u", 3); err != nil {
		t.Fatal(err)
	}
	for rev := xm.Rev + 1; rev <= base+5; rev++ {
		m, err := xj.w.next(ctx)
		if err != nil || m.Type != "op" || m.Rev != rev {
			t.Fatalf("x after its welcome at rev %d: got %+v, %v; want the op of rev %d", xm.Rev, m, err, rev)
		}
	}
	for rev := base + 3; rev <= base+5; rev++ {
		var ev inprocEvent
		select {
		case ev = <-sse.events:
		case <-ctx.Done():
			t.Fatalf("viewer: waiting for rev %d: %v", rev, ctx.Err())
		}
		if ev.name != "op" || ev.id != rev {
			t.Fatalf("viewer resuming from rev %d: got %s event %d, want the op of rev %d", base+2, ev.name, ev.id, rev)
		}
	}
}
