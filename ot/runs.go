package ot

import (
	"fmt"
	"unicode/utf8"
)

// Run is Len code points that share one Label: in collabd, who wrote them.
type Run struct {
	Label string
	Len   int
}

// Runs labels every code point of a document, run-length encoded: no run
// is empty and no two adjacent runs share a label. Applying an op costs
// about the runs before its last change plus the runs it touches, not the
// document's length, so it can follow every op of a document. Labels are
// kept as small numbers inside, so that moving runs moves no pointers.
//
// The zero value labels the empty document. A Runs is not safe for
// concurrent use.
type Runs struct {
	runs   []run
	n      int
	labels []string         // by id
	ids    map[string]int32 // by label
}

type run struct {
	id  int32
	len int
}

// NewRuns returns the runs of rs, with empty runs dropped and adjacent
// runs of one label joined.
func NewRuns(rs []Run) *Runs {
	r := &Runs{runs: make([]run, 0, len(rs))}
	for _, x := range rs {
		r.push(x)
	}
	return r
}

// id returns label's number, giving it one if it has none.
func (r *Runs) id(label string) int32 {
	if id, ok := r.ids[label]; ok {
		return id
	}
	if r.ids == nil {
		r.ids = make(map[string]int32)
	}
	id := int32(len(r.labels))
	r.labels = append(r.labels, label)
	r.ids[label] = id
	return id
}

func (r *Runs) push(x Run) {
	if x.Len <= 0 {
		return
	}
	r.n += x.Len
	id := r.id(x.Label)
	if k := len(r.runs); k > 0 && r.runs[k-1].id == id {
		r.runs[k-1].len += x.Len
		return
	}
	r.runs = append(r.runs, run{id, x.Len})
}

// Len returns the number of code points labelled.
func (r *Runs) Len() int { return r.n }

// Runs returns the runs in order, in a new slice.
func (r *Runs) Runs() []Run {
	out := make([]Run, len(r.runs))
	for i, x := range r.runs {
		out[i] = Run{r.labels[x.id], x.len}
	}
	return out
}

// Clone returns a copy of r that shares nothing with it.
func (r *Runs) Clone() *Runs {
	return NewRuns(r.Runs())
}

// Slice returns the runs of code points [from, to), which must lie within
// r.
func (r *Runs) Slice(from, to int) []Run {
	var out []Run
	pos := 0
	for _, x := range r.runs {
		end := pos + x.len
		if end > from && pos < to {
			lo, hi := max(pos, from), min(end, to)
			out = append(out, Run{r.labels[x.id], hi - lo})
		}
		if end >= to {
			break
		}
		pos = end
	}
	return out
}

// Apply applies op, labelling the code points it inserts with label.
func (r *Runs) Apply(op Op, label string) error {
	n := 0
	for _, c := range op {
		if c.IsInsert() {
			n += utf8.RuneCountInString(c.S)
		}
	}
	return r.ApplyLabeled(op, []Run{{label, n}})
}

// ApplyLabeled applies op, labelling the code points it inserts, all its
// inserts one after the other, with inserted, which must cover exactly
// that many code points. On an error r is unchanged only when the error is
// a length mismatch found before any change.
func (r *Runs) ApplyLabeled(op Op, inserted []Run) error {
	if b := op.BaseLen(); b != r.n {
		return fmt.Errorf("runs of %d code points, op for %d: %w", r.n, b, ErrLengthMismatch)
	}
	total := 0
	for _, x := range inserted {
		total += max(x.Len, 0)
	}
	ins := 0
	for _, c := range op {
		if c.IsInsert() {
			ins += utf8.RuneCountInString(c.S)
		}
	}
	if total != ins {
		return fmt.Errorf("labels for %d inserted code points, op inserts %d: %w", total, ins, ErrLengthMismatch)
	}
	a := applier{r: r, labels: inserted}
	last := len(op) - 1
	for last >= 0 && op[last].IsRetain() {
		last-- // a trailing retain changes nothing
	}
	for _, c := range op[:last+1] {
		switch {
		case c.N > 0:
			a.retain(c.N)
		case c.N < 0:
			a.delete(-c.N)
		default:
			a.insert(utf8.RuneCountInString(c.S))
		}
	}
	return nil
}

// applier walks a Runs with a cursor: code point off of run i.
type applier struct {
	r      *Runs
	i, off int
	labels []Run // what is left of the labels of inserted text
	lOff   int   // code points of labels[0] already used
}

func (a *applier) retain(n int) {
	rs := a.r.runs
	for n > 0 {
		rem := rs[a.i].len - a.off
		if n < rem {
			a.off += n
			return
		}
		n -= rem
		a.i++
		a.off = 0
	}
}

// split makes the cursor fall on a run's start.
func (a *applier) split() {
	if a.off == 0 {
		return
	}
	x := a.r.runs[a.i]
	a.r.runs = insertRun(a.r.runs, a.i+1, run{x.id, x.len - a.off})
	a.r.runs[a.i].len = a.off
	a.i++
	a.off = 0
}

// merge joins runs b-1 and b if they share a label, keeping the cursor on
// the same code point.
func (a *applier) merge(b int) {
	rs := a.r.runs
	if b <= 0 || b >= len(rs) || rs[b-1].id != rs[b].id {
		return
	}
	switch {
	case a.i == b:
		a.i, a.off = b-1, a.off+rs[b-1].len
	case a.i > b:
		a.i--
	}
	rs[b-1].len += rs[b].len
	a.r.runs = append(rs[:b], rs[b+1:]...)
}

// grow inserts n code points of label id at the cursor without moving
// any run, when a run of that label is at the cursor; it reports whether
// it could.
func (a *applier) grow(id int32, n int) bool {
	rs := a.r.runs
	switch {
	case a.off > 0 && rs[a.i].id == id: // inside a run of the label
		rs[a.i].len += n
		a.off += n
	case a.off == 0 && a.i > 0 && rs[a.i-1].id == id: // at the end of one
		rs[a.i-1].len += n
	case a.off == 0 && a.i < len(rs) && rs[a.i].id == id: // at the start of one
		rs[a.i].len += n
		a.off = n
	default:
		return false
	}
	return true
}

func (a *applier) insert(n int) {
	a.r.n += n
	for n > 0 {
		l := a.labels[0]
		take := min(n, l.Len-a.lOff)
		if take > 0 {
			id := a.r.id(l.Label)
			if !a.grow(id, take) {
				a.split()
				a.r.runs = insertRun(a.r.runs, a.i, run{id, take})
				a.i++
				a.merge(a.i - 1)
				a.merge(a.i)
			}
			n -= take
		}
		if a.lOff += max(take, 0); a.lOff >= l.Len {
			a.labels, a.lOff = a.labels[1:], 0
		}
	}
}

func (a *applier) delete(n int) {
	a.r.n -= n
	rs := a.r.runs
	if a.off > 0 {
		if rem := rs[a.i].len - a.off; n < rem {
			rs[a.i].len -= n
			return
		}
		n -= rs[a.i].len - a.off
		rs[a.i].len = a.off
		a.i++
		a.off = 0
	}
	j := a.i
	for n > 0 && rs[j].len <= n {
		n -= rs[j].len
		j++
	}
	if n > 0 {
		rs[j].len -= n
	}
	if j > a.i {
		a.r.runs = append(rs[:a.i], rs[j:]...)
	}
	a.merge(a.i)
}

// insertRun inserts x at index i of rs.
func insertRun(rs []run, i int, x run) []run {
	rs = append(rs, run{})
	copy(rs[i+1:], rs[i:])
	rs[i] = x
	return rs
}
