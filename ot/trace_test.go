package ot

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// Real editing traces from github.com/josephg/editing-traces (CC BY 4.0,
// Joseph Gentle; automerge-paper prepared by Martin Kleppmann). They are
// shared by the team and never copied into the repository; see
// ../../shared/traces/README.md.
var traceDir = filepath.Join("..", "..", "shared", "traces")

type tracePatch struct {
	pos, del int
	ins      string
}

// UnmarshalJSON decodes [pos, delCount, "inserted"].
func (p *tracePatch) UnmarshalJSON(b []byte) error {
	return json.Unmarshal(b, &[]any{&p.pos, &p.del, &p.ins})
}

type traceTxn struct {
	Parents []int        `json:"parents"`
	Agent   int          `json:"agent"`
	Patches []tracePatch `json:"patches"`
}

type trace struct {
	Kind         string     `json:"kind"`
	StartContent string     `json:"startContent"`
	EndContent   string     `json:"endContent"`
	NumAgents    int        `json:"numAgents"`
	Txns         []traceTxn `json:"txns"`
}

// Decoding a trace takes a while, so each is decoded once per test binary.
var (
	traceMu    sync.Mutex
	traceCache = map[string]*trace{}
)

// loadTrace returns the named trace, skipping the test or benchmark when the
// shared trace directory is not there.
func loadTrace(tb testing.TB, name string) *trace {
	tb.Helper()
	traceMu.Lock()
	defer traceMu.Unlock()
	if tr, ok := traceCache[name]; ok {
		return tr
	}
	f, err := os.Open(filepath.Join(traceDir, name))
	if errors.Is(err, fs.ErrNotExist) {
		tb.Skipf("trace %s not found in %s (shared editing traces absent); skipping", name, traceDir)
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatalf("trace %s: %v", name, err)
	}
	var tr trace
	if err := json.NewDecoder(zr).Decode(&tr); err != nil {
		tb.Fatalf("trace %s: %v", name, err)
	}
	traceCache[name] = &tr
	return &tr
}

// sequentialOps turns a sequential trace into one op per patch:
// [retain pos, insert s, delete n, retain rest], in canonical order. The
// components share one backing array to keep the garbage collector quiet
// during benchmarks.
func sequentialOps(tr *trace) ([]Op, error) {
	n := 0
	for _, txn := range tr.Txns {
		n += len(txn.Patches)
	}
	slab := make([]Component, 4*n)
	ops := make([]Op, 0, n)
	length := utf8.RuneCountInString(tr.StartContent)
	for i, txn := range tr.Txns {
		for _, p := range txn.Patches {
			if p.pos < 0 || p.del < 0 || p.pos+p.del > length {
				return nil, fmt.Errorf("txn %d: patch %v out of range of length %d", i, p, length)
			}
			op := Op(slab[:0:4]).Retain(p.pos).Insert(p.ins).Delete(p.del).Retain(length - p.pos - p.del)
			slab = slab[4:]
			ops = append(ops, op)
			length += utf8.RuneCountInString(p.ins) - p.del
		}
	}
	return ops, nil
}

func TestTraceSequential(t *testing.T) {
	for _, name := range []string{"automerge-paper.json.gz", "rustcode.json.gz"} {
		t.Run(name, func(t *testing.T) {
			tr := loadTrace(t, name)
			ops, err := sequentialOps(tr)
			if err != nil {
				t.Fatal(err)
			}
			d := NewDoc(tr.StartContent)
			// Cross-check Doc against Apply on strings over a prefix; the
			// whole trace would take seconds that way.
			s := tr.StartContent
			for i, op := range ops {
				if err := d.Apply(op); err != nil {
					t.Fatalf("op %d %v: %v", i, op, err)
				}
				if i < 2000 {
					if s, err = Apply(s, op); err != nil {
						t.Fatalf("Apply op %d: %v", i, err)
					}
					if got := d.String(); got != s {
						t.Fatalf("after op %d: Doc got %q, want %q", i, got, s)
					}
				}
			}
			if got := d.String(); got != tr.EndContent {
				t.Fatalf("end text: got %d code points, want %d; first difference at byte %d",
					d.Len(), utf8.RuneCountInString(tr.EndContent), firstDiff(got, tr.EndContent))
			}
		})
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// The concurrent trace is replayed through one Client per agent and the
// in-memory server, following "Replaying it through a central OT server" in
// the traces README. The bookkeeping (vector clocks and a global character
// list with tombstones) decides what each agent's edit means on the text
// that agent actually has; it records a script of deliveries and local ops
// that the benchmark replays without the bookkeeping.

const maxAgents = 4

// gchar is one character of the global list: who inserted it and, per agent,
// the earliest of that agent's transactions that deleted it.
type gchar struct {
	r        rune
	insAgent int32
	insIdx   int32
	del      [maxAgents]int32 // math.MaxInt32: not deleted by that agent
}

// visible reports whether c is in the text seen by a view: a clock giving,
// per agent, the index of the last of its transactions included.
func (c *gchar) visible(view []int32) bool {
	if view[c.insAgent] < c.insIdx {
		return false
	}
	for x, v := range view {
		if c.del[x] <= v {
			return false
		}
	}
	return true
}

// scriptStep is one recorded event: a delivery to peer, or a local op.
type scriptStep struct {
	peer    int
	local   Op
	isLocal bool
}

type concurrentReplay struct {
	tr     *trace
	agents int
	agent  []int32   // per txn
	idx    []int32   // per txn: index among its agent's txns
	clock  [][]int32 // per txn: per agent, last txn index in its causal past
	noop   [][]bool  // per agent, per txn index: its local op changed nothing
	list   glist
	net    *simNet
	sent   [][]int32 // per agent, per seq: last own txn index the op carries
	last   []int32   // per agent: last own txn index applied locally
	recv   [][]int32 // [a][x]: last txn index of x that a has received
	script []scriptStep
	// rng, when set, makes an agent read a random part of its arrived
	// messages before each edit (eager reads), so acks come back sooner
	// and more edits become their own revision. Otherwise agents read
	// only when they must, and edits pile up in the buffer and compose.
	rng     *rand.Rand
	checkEv int // compare texts with the global list every checkEv txns; 0 never
}

func newConcurrentReplay(tr *trace) (*concurrentReplay, error) {
	if tr.NumAgents < 1 || tr.NumAgents > maxAgents {
		return nil, fmt.Errorf("trace has %d agents, replay supports 1 to %d", tr.NumAgents, maxAgents)
	}
	n := tr.NumAgents
	r := &concurrentReplay{
		tr: tr, agents: n,
		agent: make([]int32, len(tr.Txns)), idx: make([]int32, len(tr.Txns)),
		clock: make([][]int32, len(tr.Txns)),
		noop:  make([][]bool, n), sent: make([][]int32, n),
		last: make([]int32, n), recv: make([][]int32, n),
		net: newSimNet(n, ""),
	}
	count := make([]int32, n)
	for t, txn := range tr.Txns {
		a := txn.Agent
		if a < 0 || a >= n {
			return nil, fmt.Errorf("txn %d: agent %d out of range", t, a)
		}
		r.agent[t], r.idx[t] = int32(a), count[a]
		count[a]++
		// The causal past is the union of the parents' pasts and the
		// parents themselves; an agent's own txns come in order.
		c := make([]int32, n)
		for x := range c {
			c[x] = -1
		}
		for _, p := range txn.Parents {
			if p < 0 || p >= t {
				return nil, fmt.Errorf("txn %d: parent %d is not earlier", t, p)
			}
			for x, v := range r.clock[p] {
				c[x] = max(c[x], v)
			}
			c[r.agent[p]] = max(c[r.agent[p]], r.idx[p])
		}
		r.clock[t] = c
	}
	for a := range n {
		r.last[a] = -1
		r.sent[a] = []int32{-1} // seq 0 carries nothing
		r.recv[a] = make([]int32, n)
		for x := range r.recv[a] {
			r.recv[a][x] = -1
		}
	}
	r.net.onSend = func(peer int, p *Pending) {
		// Every send carries all local edits so far: the in-flight op is
		// only replaced once acked, and the buffer is sent whole.
		if int64(len(r.sent[peer])) != p.Seq {
			panic(fmt.Sprintf("agent %d sent seq %d, want %d", peer, p.Seq, len(r.sent[peer])))
		}
		r.sent[peer] = append(r.sent[peer], r.last[peer])
	}
	return r, nil
}

// deliver hands peer a its next message and notes which txns it received.
func (r *concurrentReplay) deliver(a int) error {
	r.script = append(r.script, scriptStep{peer: a})
	m, err := r.net.deliver(a)
	if err != nil {
		return err
	}
	if !m.ack {
		r.recv[a][m.client] = max(r.recv[a][m.client], r.sent[m.client][m.seq])
	}
	return nil
}

// has reports whether agent a has everything of agent x up to txn index
// want, counting trailing txns whose local op was a no-op as had: they were
// never sent, and changed nothing anyone could miss.
func (r *concurrentReplay) has(a, x int, want int32) bool {
	got := r.recv[a][x]
	for got < want && r.noop[x][got+1] {
		got++
	}
	return got >= want
}

// localView is what agent a's text holds while it edits txn t: its own txns
// up to t and what it has received of the others.
func (r *concurrentReplay) localView(a int, t int) []int32 {
	v := make([]int32, r.agents)
	for x := range v {
		if x == a {
			v[x] = r.idx[t]
			continue
		}
		got := r.recv[a][x]
		for int(got+1) < len(r.noop[x]) && r.noop[x][got+1] {
			got++
		}
		v[x] = got
	}
	return v
}

func (r *concurrentReplay) text(view []int32) string {
	var sb strings.Builder
	for _, b := range r.list.blocks {
		for i := range b.chars {
			if b.chars[i].visible(view) {
				sb.WriteRune(b.chars[i].r)
			}
		}
	}
	return sb.String()
}

func (r *concurrentReplay) run() error {
	for t, txn := range r.tr.Txns {
		a := int(r.agent[t])
		// With eager reads, a first reads part of what has arrived. Then
		// it waits until it has every other agent's txn in t's causal
		// past, letting the others run only when a has nothing to read.
		k := 0
		if r.rng != nil {
			k = r.rng.IntN(r.net.peers[a].pending() + 1)
		}
		for ; k > 0; k-- {
			if err := r.deliver(a); err != nil {
				return fmt.Errorf("txn %d: %w", t, err)
			}
		}
		for x := 0; x < r.agents; x++ {
			if x == a {
				continue
			}
			for !r.has(a, x, r.clock[t][x]) {
				if err := r.step(a); err != nil {
					return fmt.Errorf("txn %d: %w", t, err)
				}
			}
		}
		cview := slices.Clone(r.clock[t])
		cview[a] = r.idx[t]
		lview := r.localView(a, t)
		localLen := r.net.peers[a].doc.Len()
		var op Op
		for _, p := range txn.Patches {
			pop, err := r.patch(t, p, cview, lview, &localLen)
			if err != nil {
				return fmt.Errorf("txn %d: %w", t, err)
			}
			if op == nil {
				op = pop
			} else if op, err = Compose(op, pop); err != nil {
				return fmt.Errorf("txn %d: %w", t, err)
			}
		}
		if op == nil {
			op = Op{}.Retain(localLen)
		}
		r.noop[a] = append(r.noop[a], op.IsNoop())
		r.last[a] = r.idx[t]
		r.script = append(r.script, scriptStep{peer: a, local: op, isLocal: true})
		if err := r.net.local(a, op); err != nil {
			return fmt.Errorf("txn %d: %w", t, err)
		}
		if r.checkEv > 0 && t%r.checkEv == 0 {
			if got, want := r.net.peers[a].doc.String(), r.text(lview); got != want {
				return fmt.Errorf("after txn %d agent %d text got %q, want %q", t, a, got, want)
			}
		}
	}
	// Let everything in flight arrive.
	for busy := true; busy; {
		busy = false
		for a := range r.agents {
			for r.net.peers[a].pending() > 0 {
				busy = true
				if err := r.deliver(a); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// step delivers one message to agent a if it has any, else one to another
// agent, whose ack may release buffered edits that a is waiting for.
func (r *concurrentReplay) step(a int) error {
	if r.net.peers[a].pending() > 0 {
		return r.deliver(a)
	}
	for x := range r.agents {
		if x != a && r.net.peers[x].pending() > 0 {
			return r.deliver(x)
		}
	}
	return errors.New("deadlock: agent waits for ops nobody will send")
}

// patch applies one patch of txn t to the global list, positioned in the
// causal view cview, and returns the same change as an op on the agent's
// local text (view lview, length *localLen, updated).
func (r *concurrentReplay) patch(t int, p tracePatch, cview, lview []int32, localLen *int) (Op, error) {
	a, idx := r.agent[t], r.idx[t]
	var op Op
	if p.del > 0 {
		// Start at the causally visible character at index pos.
		it, lpos, ok := r.list.seekDelete(p.pos, cview, lview)
		if !ok {
			return nil, fmt.Errorf("delete at %d past the end", p.pos)
		}
		op = op.Retain(lpos)
		consumed, deleted := 0, 0
		for k := 0; k < p.del; it.next() {
			c, b := it.char()
			if c == nil {
				return nil, fmt.Errorf("delete [%d,+%d) past the end", p.pos, p.del)
			}
			lv, cv := c.visible(lview), c.visible(cview)
			switch {
			case cv:
				c.del[a] = min(c.del[a], idx)
				b.invalidate()
				k++
				if lv { // else a concurrent delete a has seen got there first
					op = op.Delete(1)
					consumed++
					deleted++
				}
			case lv: // a concurrent insert a has seen: keep it
				op = op.Retain(1)
				consumed++
			}
		}
		op = op.Retain(*localLen - lpos - consumed)
		*localLen -= deleted
	}
	if p.ins != "" {
		// Insert right after the causally visible character at pos-1.
		bi, off, lpos, ok := r.list.seekInsert(p.pos, cview, lview)
		if !ok {
			return nil, fmt.Errorf("insert at %d past the end", p.pos)
		}
		ins := make([]gchar, 0, len(p.ins))
		for _, ru := range p.ins {
			c := gchar{r: ru, insAgent: a, insIdx: idx}
			for x := range c.del {
				c.del[x] = math.MaxInt32
			}
			ins = append(ins, c)
		}
		r.list.insert(bi, off, ins)
		iop := Op{}.Retain(lpos).Insert(p.ins).Retain(*localLen - lpos)
		*localLen += len(ins)
		if op == nil {
			op = iop
		} else {
			var err error
			if op, err = Compose(op, iop); err != nil {
				return nil, err
			}
		}
	}
	if op == nil {
		op = Op{}.Retain(*localLen)
	}
	return op, nil
}

// glist is the global character list, in blocks that remember how many of
// their characters recent views saw. Without that the replay spends seconds
// rescanning settled text for every patch.
type glist struct {
	blocks []*gblock
}

const gblockSize = 128

type gblock struct {
	chars []gchar
	// A block's count is the same for every view whose entries fall, agent
	// by agent, in the same gaps between the txn indexes that insert or
	// delete its characters. cache holds two such counts (the causal and
	// the local view move independently), with their ranges [lo, hi).
	cache [2]gcount
	lru   int // the cache entry to replace next
}

type gcount struct {
	valid  bool
	lo, hi [maxAgents]int32
	n      int
}

// invalidate forgets cached counts after the block changes.
func (b *gblock) invalidate() { b.cache[0].valid, b.cache[1].valid = false, false }

// count returns how many characters of b view sees.
func (b *gblock) count(view []int32) int {
	for i := range b.cache {
		e := &b.cache[i]
		if !e.valid {
			continue
		}
		hit := true
		for x, v := range view {
			if v < e.lo[x] || v >= e.hi[x] {
				hit = false
				break
			}
		}
		if hit {
			b.lru = 1 - i
			return e.n
		}
	}
	e := &b.cache[b.lru]
	b.lru = 1 - b.lru
	e.valid, e.n = true, 0
	for x := range maxAgents {
		e.lo[x], e.hi[x] = math.MinInt32, math.MaxInt32
	}
	// narrow shrinks agent x's range so it excludes the threshold th.
	narrow := func(x int, th int32) {
		if th <= view[x] {
			e.lo[x] = max(e.lo[x], th)
		} else {
			e.hi[x] = min(e.hi[x], th)
		}
	}
	for i := range b.chars {
		c := &b.chars[i]
		if c.visible(view) {
			e.n++
		}
		narrow(int(c.insAgent), c.insIdx)
		for x := range view {
			if c.del[x] != math.MaxInt32 {
				narrow(x, c.del[x])
			}
		}
	}
	return e.n
}

// giter walks the list character by character.
type giter struct {
	l       *glist
	bi, off int
}

func (it *giter) char() (*gchar, *gblock) {
	if it.bi >= len(it.l.blocks) {
		return nil, nil
	}
	b := it.l.blocks[it.bi]
	return &b.chars[it.off], b
}

func (it *giter) next() {
	it.off++
	if it.off >= len(it.l.blocks[it.bi].chars) {
		it.bi, it.off = it.bi+1, 0
	}
}

// seekDelete finds the character visible in cview with pos such characters
// before it, and counts the characters before it visible in lview.
func (l *glist) seekDelete(pos int, cview, lview []int32) (it giter, lpos int, ok bool) {
	cpos := 0
	for bi, b := range l.blocks {
		if nc := b.count(cview); cpos+nc <= pos {
			cpos += nc
			lpos += b.count(lview)
			continue
		}
		for off := range b.chars {
			c := &b.chars[off]
			cv := c.visible(cview)
			if cv && cpos == pos {
				return giter{l: l, bi: bi, off: off}, lpos, true
			}
			if cv {
				cpos++
			}
			if c.visible(lview) {
				lpos++
			}
		}
	}
	return giter{}, 0, false
}

// seekInsert finds the place right after the character visible in cview
// with pos-1 such characters before it (the start for pos 0), and counts the
// characters before that place visible in lview.
func (l *glist) seekInsert(pos int, cview, lview []int32) (bi, off, lpos int, ok bool) {
	if pos == 0 {
		return 0, 0, 0, true
	}
	cpos := 0
	for bi, b := range l.blocks {
		if nc := b.count(cview); cpos+nc < pos {
			cpos += nc
			lpos += b.count(lview)
			continue
		}
		for off := range b.chars {
			c := &b.chars[off]
			if c.visible(lview) {
				lpos++
			}
			if c.visible(cview) {
				if cpos++; cpos == pos {
					return bi, off + 1, lpos, true
				}
			}
		}
	}
	return 0, 0, 0, false
}

// insert puts cs at offset off of block bi, splitting the block if it grows
// too big.
func (l *glist) insert(bi, off int, cs []gchar) {
	if len(l.blocks) == 0 {
		l.blocks = append(l.blocks, &gblock{})
	}
	b := l.blocks[bi]
	b.chars = slices.Insert(b.chars, off, cs...)
	b.invalidate()
	for len(b.chars) > 2*gblockSize {
		rest := &gblock{chars: slices.Clone(b.chars[gblockSize:])}
		b.chars = slices.Clip(b.chars[:gblockSize])
		bi++
		l.blocks = slices.Insert(l.blocks, bi, rest)
		b = rest
	}
}

// Scripts are recorded once per test binary and mode, for the benchmark.
var (
	scriptMu    sync.Mutex
	scriptCache = map[bool][]scriptStep{}
)

func friendsForeverScript(tb testing.TB, eager bool) (*trace, []scriptStep) {
	tb.Helper()
	tr := loadTrace(tb, "friendsforever.json.gz")
	scriptMu.Lock()
	defer scriptMu.Unlock()
	if scriptCache[eager] == nil {
		r, err := newConcurrentReplay(tr)
		if err != nil {
			tb.Fatal(err)
		}
		if eager {
			r.rng = rand.New(rand.NewPCG(1, 2))
		}
		if err := r.run(); err != nil {
			tb.Fatal(err)
		}
		scriptCache[eager] = r.script
	}
	return tr, scriptCache[eager]
}

// replayScript replays recorded steps through fresh clients and server.
func replayScript(agents int, script []scriptStep) (*simNet, error) {
	n := newSimNet(agents, "")
	for i, s := range script {
		var err error
		if s.isLocal {
			err = n.local(s.peer, s.local)
		} else {
			_, err = n.deliver(s.peer)
		}
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", i, err)
		}
	}
	return n, nil
}

func TestTraceFriendsForever(t *testing.T) {
	for _, eager := range []bool{false, true} {
		name := "lazy-reads"
		if eager {
			name = "eager-reads"
		}
		t.Run(name, func(t *testing.T) {
			tr := loadTrace(t, "friendsforever.json.gz")
			r, err := newConcurrentReplay(tr)
			if err != nil {
				t.Fatal(err)
			}
			if eager {
				r.rng = rand.New(rand.NewPCG(1, 2))
			}
			r.checkEv = 997
			if testing.Short() {
				r.checkEv = 0
			}
			if err := r.run(); err != nil {
				t.Fatal(err)
			}
			check := func(n *simNet) {
				t.Helper()
				if got := n.server.String(); got != tr.EndContent {
					t.Fatalf("server text: got %d code points, want %d; first difference at byte %d",
						n.server.Len(), utf8.RuneCountInString(tr.EndContent), firstDiff(got, tr.EndContent))
				}
				if err := n.converged(); err != nil {
					t.Fatal(err)
				}
			}
			check(r.net)
			t.Logf("%d txns became %d server revisions, %d of them rebased over concurrent ops",
				len(tr.Txns), r.net.rev(), r.net.rebased)

			// The recorded script must replay identically without the
			// bookkeeping, which is what the benchmark relies on.
			n, err := replayScript(tr.NumAgents, r.script)
			if err != nil {
				t.Fatal(err)
			}
			check(n)
			if got, want := n.rev(), r.net.rev(); got != want {
				t.Fatalf("script replay revisions got %d, want %d", got, want)
			}
		})
	}
}
