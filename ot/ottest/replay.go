package ottest

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// MaxAgents is the most agents a Replay supports.
const MaxAgents = 4

// Splice is one change to a text, counted in code points: delete Del code
// points at Pos, then insert Ins at Pos. An edit is a list of splices,
// each applied to the text the previous ones left. On a text of n code
// points, one splice is the ot.Op
//
//	ot.Op{}.Retain(s.Pos).Insert(s.Ins).Delete(s.Del).Retain(n - s.Pos - s.Del)
//
// and a list is the composition of its splices' ops.
type Splice struct {
	Pos, Del int
	Ins      string
}

// Replay is the bookkeeping for replaying a concurrent trace through one
// OT client per agent and a central server, as "Replaying it through a
// central OT server" in the traces README describes. The caller drives it:
//
//   - for each transaction t in order, it waits (letting its clients
//     process messages) until Ready(t), telling the Replay what arrived
//     with Receive;
//   - then Edit(t) gives t's change on the text agent Agent(t) holds,
//     which the caller applies to that client and sends or buffers;
//   - Carry records which edits each op the client sends carries.
//
// Internally it keeps one list of every character ever inserted, in
// document order, with tombstones: a character is in a view (a clock: per
// agent, the last of its transactions included) when its inserter is and
// none of its deleters is. A view's text is the list filtered by the view.
// Any view still to be asked about includes a floor view (what every
// agent had when it last edited), so characters whose fate is settled in
// the floor are counted per chunk without looking at them, and dead ones
// are dropped: each edit costs time in the number of chunks, not of
// characters.
type Replay struct {
	tr     *Trace
	agents int
	agent  []int32   // per txn
	idx    []int32   // per txn: index among its agent's txns
	clock  [][]int32 // per txn: per agent, the last txn index in its causal past

	next    int       // the next txn to edit
	noop    [][]bool  // per agent, per txn index edited: it changed nothing locally
	last    []int32   // per agent: its last txn index edited (-1: none)
	carried [][]int32 // per agent, per seq: the last own txn index that op carries
	recv    [][]int32 // [a][x]: the last txn index of agent x that a has received
	latest  [][]int32 // per agent: the causal view of its last edit
	floor   []int32   // per agent x: min over agents a of latest[a][x]

	chunks []*chunk
	dirty  int // edits since the last settle
}

// noDel marks an agent that did not delete a character.
const noDel = math.MaxInt32

// gchar is one character of the global list.
type gchar struct {
	r        rune
	insAgent int32
	insIdx   int32
	del      [MaxAgents]int32 // per agent: the earliest of its txns deleting it, or noDel
	// settled: inserted within the floor and deleted by nobody, so it is
	// in every view still to be asked about (until someone deletes it).
	settled bool
}

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

// chunk is a run of the global list. Chunks keep between 1 and
// 2*chunkSize characters.
type chunk struct {
	chars     []gchar
	live      int // settled characters
	unsettled int // the others
}

const chunkSize = 64

// counts returns how many of the chunk's characters each view shows.
func (k *chunk) counts(v1, v2 []int32) (n1, n2 int) {
	n1, n2 = k.live, k.live
	if k.unsettled == 0 {
		return n1, n2
	}
	for i := range k.chars {
		if c := &k.chars[i]; !c.settled {
			if c.visible(v1) {
				n1++
			}
			if c.visible(v2) {
				n2++
			}
		}
	}
	return n1, n2
}

// settleEvery is how many edits pass between sweeps that settle
// characters against the floor and drop dead ones.
const settleEvery = 32

// NewReplay prepares the replay of a concurrent trace, which must start
// from the empty text (StartContent "") with 1 to MaxAgents agents, each
// agent's transactions in its own causal order.
func NewReplay(tr *Trace) (*Replay, error) {
	n := tr.NumAgents
	if n < 1 || n > MaxAgents {
		return nil, fmt.Errorf("trace has %d agents; Replay supports 1 to %d", n, MaxAgents)
	}
	if tr.StartContent != "" {
		return nil, fmt.Errorf("trace starts with %d bytes of text; Replay supports only the empty start", len(tr.StartContent))
	}
	r := &Replay{
		tr: tr, agents: n,
		agent: make([]int32, len(tr.Txns)), idx: make([]int32, len(tr.Txns)),
		clock: make([][]int32, len(tr.Txns)),
		noop:  make([][]bool, n), last: make([]int32, n), carried: make([][]int32, n),
		recv: make([][]int32, n), latest: make([][]int32, n), floor: make([]int32, n),
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
		// parents themselves.
		c := make([]int32, n)
		for x := range c {
			c[x] = -1
		}
		for _, p := range txn.Parents {
			if p < 0 || p >= t {
				return nil, fmt.Errorf("txn %d: parent %d is not an earlier txn", t, p)
			}
			for x, v := range r.clock[p] {
				c[x] = max(c[x], v)
			}
			c[r.agent[p]] = max(c[r.agent[p]], r.idx[p])
		}
		// The floor relies on this: an agent's next txn includes
		// everything its previous one did.
		if c[a] != r.idx[t]-1 {
			return nil, fmt.Errorf("txn %d: agent %d's previous txn is not in its causal past", t, a)
		}
		r.clock[t] = c
	}
	for a := range n {
		r.last[a] = -1
		r.carried[a] = []int32{-1} // seq 0 carries nothing
		r.recv[a] = slices.Repeat([]int32{-1}, n)
		r.latest[a] = slices.Repeat([]int32{-1}, n)
		r.floor[a] = -1
	}
	return r, nil
}

// Len returns the number of transactions, and Agents the number of agents.
func (r *Replay) Len() int    { return len(r.agent) }
func (r *Replay) Agents() int { return r.agents }

// Agent returns the agent that typed transaction t.
func (r *Replay) Agent(t int) int { return int(r.agent[t]) }

// Carry records that agent a sends (or will send) op seq carrying every
// edit a has made so far. Call it when the client sends the op, or, where
// sending happens out of sight, after each edit with the seq that will
// carry it: the client's last seq plus one (an edit made while an op is in
// flight waits in the buffer that becomes the next seq).
func (r *Replay) Carry(a int, seq int64) {
	for int64(len(r.carried[a])) <= seq {
		r.carried[a] = append(r.carried[a], -1)
	}
	r.carried[a][seq] = max(r.carried[a][seq], r.last[a])
}

// Receive records that agent a has applied op seq of agent x (not its own:
// acks change nothing here).
func (r *Replay) Receive(a, x int, seq int64) error {
	if seq < 1 || seq >= int64(len(r.carried[x])) || r.carried[x][seq] < 0 {
		return fmt.Errorf("agent %d received seq %d of agent %d, which Carry never recorded", a, seq, x)
	}
	r.recv[a][x] = max(r.recv[a][x], r.carried[x][seq])
	return nil
}

// has reports whether agent a has every txn of agent x up to index want.
func (r *Replay) has(a, x int, want int32) bool {
	if r.skipNoops(x, r.recv[a][x]) >= want {
		return true // the common case, without looking at characters
	}
	return r.heard(a, x) >= want
}

// skipNoops returns got moved past the txns of agent x right after it that
// changed nothing: they were never sent, and there is nothing in them
// anyone could miss.
func (r *Replay) skipNoops(x int, got int32) int32 {
	for int(got+1) < len(r.noop[x]) && r.noop[x][got+1] {
		got++
	}
	return got
}

// heard returns the last txn of agent x that agent a's text reflects: the
// last one a received, moved past txns that changed nothing (skipNoops)
// and past runs of txns that change nothing a's text shows (cancelled).
func (r *Replay) heard(a, x int) int32 {
	got := r.skipNoops(x, r.recv[a][x])
	if got < r.last[x] {
		got = r.skipNoops(x, r.cancelled(a, x, got))
	}
	return got
}

// cancelled returns the last txn j of agent x such that counting x's txns
// (got, j] into agent a's view leaves the characters it shows unchanged,
// or got if there is none. Such a run can never reach a as a change, and
// x's client may send nothing for it: text typed and deleted again while
// an op was in flight leaves a buffer that does nothing, which the client
// drops. Without this, a would wait forever for txns that no op carries.
//
// Where one of x's ops ends inside the run (see Carry), a may yet receive
// it, so the view must be unchanged up to there as well: then receiving it
// changes nothing a's view does not already count, and a's view never
// moves back, which the floor relies on.
func (r *Replay) cancelled(a, x int, got int32) int32 {
	view := make([]int32, r.agents)
	for w := range view {
		switch w {
		case a:
			view[w] = r.last[a]
		case x:
			view[w] = got
		default:
			view[w] = r.skipNoops(w, r.recv[a][w])
		}
	}
	// Counting x up to j changes the view when j reaches a txn deleting a
	// character it shows (from there on, so end bounds j), or when one of
	// x's characters inserted in (got, j] is not deleted again by j: bad
	// spans [insert, delete).
	end := r.last[x] + 1
	var bad [][2]int32
	// A settled character is inserted within the floor; when got is too,
	// none is x's inserted after got, and settled ones are deleted by
	// nobody, so chunks of settled characters alone cannot matter.
	skipSettled := got >= r.floor[x]
	for _, ch := range r.chunks {
		if skipSettled && ch.unsettled == 0 {
			continue
		}
		for i := range ch.chars {
			c := &ch.chars[i]
			if int(c.insAgent) == x && c.insIdx > got {
				if !r.deletedByOthers(c, view, x) && c.del[x] > c.insIdx {
					bad = append(bad, [2]int32{c.insIdx, min(c.del[x], end)})
				}
				continue
			}
			if d := c.del[x]; d > got && d < end && c.visible(view) {
				end = d
			}
		}
	}
	bad = mergeSpans(bad)
	// An op of x ending at q in (got, end) that a has yet to receive:
	// j may pass q only if q is not bad itself.
	for s := len(r.carried[x]) - 1; s > 0; s-- {
		q := r.carried[x][s]
		if q < 0 {
			continue
		}
		if q <= got {
			break
		}
		if q < end && inSpans(bad, q) {
			end = q
		}
	}
	// The last j before end that no span covers.
	j := end - 1
	for i := len(bad) - 1; i >= 0 && j > got; i-- {
		if j >= bad[i][1] {
			break
		}
		if j >= bad[i][0] {
			j = bad[i][0] - 1
		}
	}
	return max(j, got)
}

// mergeSpans sorts spans [from, to) and merges those that overlap or
// touch, in place.
func mergeSpans(spans [][2]int32) [][2]int32 {
	slices.SortFunc(spans, func(p, q [2]int32) int { return cmp.Compare(p[0], q[0]) })
	out := spans[:0]
	for _, sp := range spans {
		if n := len(out); n > 0 && sp[0] <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], sp[1])
			continue
		}
		out = append(out, sp)
	}
	return out
}

// deletedByOthers reports whether an agent other than x deletes c within
// view, so that c is hidden however much of x the view counts.
func (r *Replay) deletedByOthers(c *gchar, view []int32, x int) bool {
	for w, v := range view {
		if w != x && c.del[w] <= v {
			return true
		}
	}
	return false
}

// inSpans reports whether j lies in one of the spans [from, to), merged.
func inSpans(spans [][2]int32, j int32) bool {
	for _, sp := range spans {
		if sp[0] <= j && j < sp[1] {
			return true
		}
	}
	return false
}

// Ready reports whether the agent of transaction t has received every
// other agent's transaction in t's causal past.
func (r *Replay) Ready(t int) bool {
	a := int(r.agent[t])
	for x := range r.agents {
		if x != a && !r.has(a, x, r.clock[t][x]) {
			return false
		}
	}
	return true
}

// Waiting describes what the agent of transaction t still lacks, for
// failure messages.
func (r *Replay) Waiting(t int) string {
	a := int(r.agent[t])
	var b strings.Builder
	for x := range r.agents {
		if x != a && !r.has(a, x, r.clock[t][x]) {
			fmt.Fprintf(&b, "agent %d needs agent %d's txns up to #%d, has up to #%d (agent %d sent %d ops); ",
				a, x, r.clock[t][x], r.heard(a, x), x, len(r.carried[x])-1)
		}
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// localView is what agent a's text holds when its own last edit is txn
// index own: its own txns and those of the others it has received.
func (r *Replay) localView(a int, own int32) []int32 {
	v := make([]int32, r.agents)
	for x := range v {
		if x == a {
			v[x] = own
			continue
		}
		v[x] = r.heard(a, x)
	}
	return v
}

// LocalText returns the text agent a should hold now: a check on the
// client's text.
func (r *Replay) LocalText(a int) string {
	return r.text(r.localView(a, r.last[a]))
}

// Text returns the text holding every transaction edited so far; after
// the last one, it is the trace's EndContent.
func (r *Replay) Text() string {
	return r.text(slices.Clone(r.last))
}

func (r *Replay) text(view []int32) string {
	var b strings.Builder
	for _, k := range r.chunks {
		for i := range k.chars {
			if c := &k.chars[i]; c.visible(view) {
				b.WriteRune(c.r)
			}
		}
	}
	return b.String()
}

// Edit returns transaction t's change on the text its agent holds now: its
// own earlier transactions and what it has received. Transactions must be
// edited in order, each once Ready. Edit returns no splices for a
// transaction that changes nothing on that text (an insert and its
// deletion in one transaction, say); such a transaction needs no op.
func (r *Replay) Edit(t int) ([]Splice, error) {
	if t != r.next {
		return nil, fmt.Errorf("txn %d edited out of order: the next is %d", t, r.next)
	}
	if !r.Ready(t) {
		return nil, fmt.Errorf("txn %d edited before its causal past arrived: %s", t, r.Waiting(t))
	}
	a, idx := int(r.agent[t]), r.idx[t]
	cview := slices.Clone(r.clock[t])
	cview[a] = idx
	lview := r.localView(a, idx)
	e := edit{a: int32(a), idx: idx, cview: cview, lview: lview}
	for _, p := range r.tr.Txns[t].Patches {
		if err := r.patch(&e, p); err != nil {
			return nil, fmt.Errorf("txn %d: %w", t, err)
		}
	}
	noop := e.removed == 0 && e.inserted == 0
	r.noop[a] = append(r.noop[a], noop)
	r.last[a] = idx
	r.latest[a] = cview
	for x := range r.floor {
		r.floor[x] = r.latest[0][x]
		for b := 1; b < r.agents; b++ {
			r.floor[x] = min(r.floor[x], r.latest[b][x])
		}
	}
	r.next++
	if r.dirty++; r.dirty >= settleEvery {
		r.settle()
		r.dirty = 0
	}
	if noop {
		return nil, nil
	}
	return e.out, nil
}

// edit is the state of one Edit.
type edit struct {
	a, idx       int32
	cview, lview []int32 // causal and local views
	out          []Splice
	removed      int // characters that were on the local text and are deleted
	inserted     int // characters inserted and not deleted again
}

// patch applies one patch to the global list, positioned in the causal
// view, and appends the same change on the local text to e.out.
func (r *Replay) patch(e *edit, p Patch) error {
	if p.Del > 0 {
		ci, oi, lpos, ok := r.seekChar(p.Pos, e.cview, e.lview)
		if !ok {
			return fmt.Errorf("delete [%d,+%d) past the end", p.Pos, p.Del)
		}
		pos, run := lpos, 0
		for k := 0; k < p.Del; oi++ {
			if ci == len(r.chunks) {
				return fmt.Errorf("delete [%d,+%d) past the end", p.Pos, p.Del)
			}
			ch := r.chunks[ci]
			if oi == len(ch.chars) {
				ci, oi = ci+1, -1
				continue
			}
			c := &ch.chars[oi]
			lv, cv := c.visible(e.lview), c.visible(e.cview)
			switch {
			case cv:
				if c.settled {
					c.settled = false
					ch.live--
					ch.unsettled++
				}
				c.del[e.a] = min(c.del[e.a], e.idx)
				k++
				if !lv {
					break // a concurrent delete the agent has seen got there first
				}
				run++
				if c.insAgent == e.a && c.insIdx == e.idx {
					e.inserted--
				} else {
					e.removed++
				}
			case lv:
				// A concurrent insert the agent has seen: keep it.
				if run > 0 {
					e.out = append(e.out, Splice{Pos: pos, Del: run})
					run = 0
				}
				pos++
			}
		}
		if run > 0 {
			e.out = append(e.out, Splice{Pos: pos, Del: run})
		}
	}
	if p.Ins != "" {
		ci, oi, lpos, ok := r.seekAfter(p.Pos, e.cview, e.lview)
		if !ok {
			return fmt.Errorf("insert at %d past the end", p.Pos)
		}
		ins := make([]gchar, 0, len(p.Ins))
		for _, ru := range p.Ins {
			c := gchar{r: ru, insAgent: e.a, insIdx: e.idx}
			for x := range c.del {
				c.del[x] = noDel
			}
			ins = append(ins, c)
		}
		r.insert(ci, oi, ins)
		e.inserted += len(ins)
		e.out = append(e.out, Splice{Pos: lpos, Ins: p.Ins})
	}
	return nil
}

// seekChar finds the character at index pos of view cv, and how many
// characters of view lv precede it.
func (r *Replay) seekChar(pos int, cv, lv []int32) (ci, oi, lpos int, ok bool) {
	cpos := 0
	for ci, ch := range r.chunks {
		nc, nl := ch.counts(cv, lv)
		if cpos+nc <= pos {
			cpos, lpos = cpos+nc, lpos+nl
			continue
		}
		for oi := range ch.chars {
			c := &ch.chars[oi]
			inC := c.visible(cv)
			if inC && cpos == pos {
				return ci, oi, lpos, true
			}
			if inC {
				cpos++
			}
			if c.visible(lv) {
				lpos++
			}
		}
	}
	return 0, 0, 0, false
}

// seekAfter finds the place right after the character at index pos-1 of
// view cv (the start for pos 0), before any characters cv does not show,
// and how many characters of view lv precede it.
func (r *Replay) seekAfter(pos int, cv, lv []int32) (ci, oi, lpos int, ok bool) {
	if pos == 0 {
		return 0, 0, 0, true
	}
	cpos := 0
	for ci, ch := range r.chunks {
		nc, nl := ch.counts(cv, lv)
		if cpos+nc < pos {
			cpos, lpos = cpos+nc, lpos+nl
			continue
		}
		for oi := range ch.chars {
			c := &ch.chars[oi]
			if c.visible(lv) {
				lpos++
			}
			if c.visible(cv) {
				if cpos++; cpos == pos {
					return ci, oi + 1, lpos, true
				}
			}
		}
	}
	return 0, 0, 0, false
}

// insert puts new, unsettled characters at chunk ci, offset oi.
func (r *Replay) insert(ci, oi int, cs []gchar) {
	if len(r.chunks) == 0 {
		r.chunks = []*chunk{{}}
	}
	ch := r.chunks[ci]
	ch.chars = slices.Insert(ch.chars, oi, cs...)
	ch.unsettled += len(cs)
	if len(ch.chars) <= 2*chunkSize {
		return
	}
	var parts []*chunk
	for rest := ch.chars; len(rest) > 0; {
		n := min(chunkSize, len(rest))
		parts = append(parts, newChunk(slices.Clone(rest[:n])))
		rest = rest[n:]
	}
	r.chunks = slices.Replace(r.chunks, ci, ci+1, parts...)
}

func newChunk(cs []gchar) *chunk {
	k := &chunk{chars: cs}
	for i := range cs {
		if cs[i].settled {
			k.live++
		} else {
			k.unsettled++
		}
	}
	return k
}

// settle sweeps the unsettled characters against the floor: those
// inserted within it and deleted by nobody become settled, and those
// deleted within it, which no view still to come shows, are dropped.
func (r *Replay) settle() {
	kept := r.chunks[:0]
	for _, ch := range r.chunks {
		if ch.unsettled > 0 {
			cs := ch.chars[:0]
			for _, c := range ch.chars {
				if !c.settled && c.insIdx <= r.floor[c.insAgent] {
					deleted, dead := false, false
					for x, d := range c.del {
						deleted = deleted || d != noDel
						dead = dead || (x < r.agents && d <= r.floor[x])
					}
					switch {
					case dead:
						ch.unsettled--
						continue
					case !deleted:
						c.settled = true
						ch.unsettled--
						ch.live++
					}
				}
				cs = append(cs, c)
			}
			clear(ch.chars[len(cs):])
			ch.chars = cs
		}
		if len(ch.chars) > 0 {
			kept = append(kept, ch)
		}
	}
	clear(r.chunks[len(kept):])
	r.chunks = kept
}
