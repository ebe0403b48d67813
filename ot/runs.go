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
// document's length, so it can follow every op of a document.
//
// The zero value labels the empty document. A Runs is not safe for
// concurrent use.
type Runs struct {
	runs []Run
	n    int
}

// NewRuns returns the runs of rs, with empty runs dropped and adjacent
// runs of one label joined.
func NewRuns(rs []Run) *Runs {
	r := &Runs{runs: make([]Run, 0, len(rs))}
	for _, x := range rs {
		r.push(x)
	}
	return r
}

func (r *Runs) push(x Run) {
	if x.Len <= 0 {
		return
	}
	r.n += x.Len
	if k := len(r.runs); k > 0 && r.runs[k-1].Label == x.Label {
		r.runs[k-1].Len += x.Len
		return
	}
	r.runs = append(r.runs, x)
}

// Len returns the number of code points labelled.
func (r *Runs) Len() int { return r.n }

// Runs returns the runs in order. The caller must not change them.
func (r *Runs) Runs() []Run { return r.runs }

// Clone returns a copy of r that shares nothing with it.
func (r *Runs) Clone() *Runs {
	return &Runs{runs: append([]Run(nil), r.runs...), n: r.n}
}

// Slice returns the runs of code points [from, to), which must lie within
// r.
func (r *Runs) Slice(from, to int) []Run {
	var out []Run
	pos := 0
	for _, x := range r.runs {
		end := pos + x.Len
		if end > from && pos < to {
			lo, hi := max(pos, from), min(end, to)
			out = append(out, Run{x.Label, hi - lo})
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
		rem := rs[a.i].Len - a.off
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
	a.r.runs = insertRuns(a.r.runs, a.i+1, Run{x.Label, x.Len - a.off})
	a.r.runs[a.i].Len = a.off
	a.i++
	a.off = 0
}

// merge joins runs b-1 and b if they share a label, keeping the cursor on
// the same code point.
func (a *applier) merge(b int) {
	rs := a.r.runs
	if b <= 0 || b >= len(rs) || rs[b-1].Label != rs[b].Label {
		return
	}
	switch {
	case a.i == b:
		a.i, a.off = b-1, a.off+rs[b-1].Len
	case a.i > b:
		a.i--
	}
	rs[b-1].Len += rs[b].Len
	a.r.runs = append(rs[:b], rs[b+1:]...)
}

func (a *applier) insert(n int) {
	a.r.n += n
	a.split()
	start := a.i
	for n > 0 {
		l := a.labels[0]
		take := min(n, l.Len-a.lOff)
		if take > 0 {
			a.r.runs = insertRuns(a.r.runs, a.i, Run{l.Label, take})
			a.i++
			// Labels given as adjacent runs of one label join at once.
			a.merge(a.i - 1)
		}
		n -= take
		if a.lOff += take; a.lOff >= l.Len {
			a.labels, a.lOff = a.labels[1:], 0
		}
	}
	a.merge(a.i)
	a.merge(start)
}

func (a *applier) delete(n int) {
	a.r.n -= n
	rs := a.r.runs
	if a.off > 0 {
		if rem := rs[a.i].Len - a.off; n < rem {
			rs[a.i].Len -= n
			return
		}
		n -= rs[a.i].Len - a.off
		rs[a.i].Len = a.off
		a.i++
		a.off = 0
	}
	j := a.i
	for n > 0 && rs[j].Len <= n {
		n -= rs[j].Len
		j++
	}
	if n > 0 {
		rs[j].Len -= n
	}
	a.r.runs = append(rs[:a.i], rs[j:]...)
	a.merge(a.i)
}

// insertRuns inserts x at index i of rs.
func insertRuns(rs []Run, i int, x Run) []Run {
	rs = append(rs, Run{})
	copy(rs[i+1:], rs[i:])
	rs[i] = x
	return rs
}
