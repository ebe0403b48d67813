package collab

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/collabd/collabd/ot"
)

// markedText is the reference the anchors are checked against: the text
// as a sequence of characters with zero-width markers between them, two
// per thread, to which each op is applied directly. The rule it applies
// is the protocol's for selections: a marker at a place where an op
// deletes or inserts (a run of deletes and inserts, from the position
// where the run starts to where its deletes end) ends up after the run's
// inserted text; a detached thread whose quote is in that text takes it.
type markedText struct {
	items []markItem
	// quote and detached, by thread number.
	quote    map[int]string
	detached map[int]bool
	// emptyBefore: the thread was created on an empty range, so it is
	// never detached.
	emptyBefore map[int]bool
}

type markItem struct {
	ch     rune
	thread int // for a marker: its thread, and end says which of the two
	end    bool
	marker bool
}

func newMarkedText(text string) *markedText {
	m := &markedText{quote: map[int]string{}, detached: map[int]bool{}, emptyBefore: map[int]bool{}}
	for _, r := range text {
		m.items = append(m.items, markItem{ch: r})
	}
	return m
}

// mark puts thread n's markers around code points [from, to).
func (m *markedText) mark(n, from, to int) {
	var out []markItem
	pos := 0
	for _, it := range m.items {
		if !it.marker {
			if pos == from {
				out = append(out, markItem{marker: true, thread: n})
			}
			if pos == to {
				out = append(out, markItem{marker: true, thread: n, end: true})
			}
			pos++
		}
		out = append(out, it)
	}
	if pos == from {
		out = append(out, markItem{marker: true, thread: n})
	}
	if pos == to {
		out = append(out, markItem{marker: true, thread: n, end: true})
	}
	m.items = out
	m.quote[n] = m.slice(from, to)
}

func (m *markedText) slice(from, to int) string {
	var b strings.Builder
	pos := 0
	for _, it := range m.items {
		if it.marker {
			continue
		}
		if pos >= from && pos < to {
			b.WriteRune(it.ch)
		}
		pos++
	}
	return b.String()
}

// apply applies op to the marked text.
func (m *markedText) apply(op ot.Op) {
	var out []markItem
	in := m.items
	k := 0 // next item of in
	var runIns []rune
	var runMarks []markItem
	// takeMarks moves the markers at the current place into runMarks.
	takeMarks := func() {
		for k < len(in) && in[k].marker {
			runMarks = append(runMarks, in[k])
			k++
		}
	}
	flush := func() {
		ins := string(runIns)
		var moved = map[int]bool{}
		for _, mk := range runMarks {
			if !mk.end && m.detached[mk.thread] && m.quote[mk.thread] != "" && strings.Contains(ins, m.quote[mk.thread]) {
				moved[mk.thread] = true
			}
		}
		// Reattached threads: their markers go around the quote's first
		// occurrence; others after the inserted text.
		cut := map[int]int{} // thread -> rune offset of quote in ins
		for th := range moved {
			cut[th] = len([]rune(ins[:strings.Index(ins, m.quote[th])]))
			m.detached[th] = false
		}
		for i, r := range runIns {
			for th, c := range cut {
				if c == i {
					out = append(out, markItem{marker: true, thread: th})
				}
				if c+len([]rune(m.quote[th])) == i {
					out = append(out, markItem{marker: true, thread: th, end: true})
				}
			}
			out = append(out, markItem{ch: r})
		}
		for th, c := range cut {
			if c+len([]rune(m.quote[th])) == len(runIns) {
				out = append(out, markItem{marker: true, thread: th, end: true})
			}
		}
		for _, mk := range runMarks {
			if moved[mk.thread] {
				continue
			}
			out = append(out, mk)
		}
		runIns, runMarks = runIns[:0], runMarks[:0]
	}
	for _, c := range op {
		switch {
		case c.N > 0:
			takeMarks()
			flush()
			for j := 0; j < c.N; j++ {
				out = append(out, in[k])
				k++
				if j < c.N-1 {
					for k < len(in) && in[k].marker {
						out = append(out, in[k])
						k++
					}
				}
			}
		case c.N < 0:
			for j := 0; j < -c.N; j++ {
				takeMarks()
				k++ // the deleted character
			}
		default:
			runIns = append(runIns, []rune(c.S)...)
		}
	}
	takeMarks()
	flush()
	m.items = out
	// A thread whose text is all deleted is detached.
	for th, r := range m.ranges() {
		if r[0] == r[1] && !m.emptyBefore[th] {
			m.detached[th] = true
		}
	}
}

// ranges returns each thread's range.
func (m *markedText) ranges() map[int]Range {
	out := map[int]Range{}
	pos := 0
	for _, it := range m.items {
		if !it.marker {
			pos++
			continue
		}
		r := out[it.thread]
		if it.end {
			r[1] = pos
		} else {
			r[0] = pos
		}
		out[it.thread] = r
	}
	return out
}

func (m *markedText) text() string { return m.slice(0, len(m.items)) }

// TestCommentAnchorsMatchReference moves anchors through random ops with
// commentSet.move and checks them, and their detached marks, against the
// marked text after every op.
func TestCommentAnchorsMatchReference(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 28))
		text := "hello brave new world"
		ref := newMarkedText(text)
		doc := ot.NewDoc(text)
		var cs commentSet
		for step := range 60 {
			n := doc.Len()
			if r.IntN(4) == 0 && len(cs.threads) < 12 {
				from := r.IntN(n + 1)
				to := from + r.IntN(min(n-from, 6)+1)
				th := len(cs.threads)
				ref.mark(th, from, to)
				ref.emptyBefore[th] = from == to
				cs.add(&thread{ID: fmt.Sprint(th), Quote: doc.Slice(from, to)}, Range{from, to})
			}
			var op ot.Op
			if r.IntN(5) == 0 && len(cs.threads) > 0 {
				// Put a detached thread's quote back where it sits, as an
				// undo, a restore or a revert does.
				i := r.IntN(len(cs.threads))
				p := cs.anchors[i][0]
				op = op.Retain(p).Insert("<" + cs.threads[i].Quote + ">").Retain(n - p)
			} else {
				op = randomOp(r, n)
				if r.IntN(6) == 0 && n > 0 { // a replace: delete and insert in one run
					p := r.IntN(n)
					d := 1 + r.IntN(min(n-p, 8))
					op = ot.Op{}.Retain(p).Insert("xy").Delete(d).Retain(n - p - d)
				}
			}
			op = op.Normalize()
			if err := doc.Apply(op); err != nil {
				t.Fatal(err)
			}
			ref.apply(op)
			cs.move(op)
			if got, want := doc.String(), ref.text(); got != want {
				t.Fatalf("seed %d step %d: reference text %q, doc %q", seed, step, want, got)
			}
			want := ref.ranges()
			for i, th := range cs.threads {
				var n int
				fmt.Sscan(th.ID, &n)
				if cs.anchors[i] != want[n] {
					t.Fatalf("seed %d step %d op %v: thread %d at %v, want %v (text %q)", seed, step, op, n, cs.anchors[i], want[n], doc.String())
				}
				if th.Detached != ref.detached[n] {
					t.Fatalf("seed %d step %d op %v: thread %d detached %v, want %v", seed, step, op, n, th.Detached, ref.detached[n])
				}
			}
		}
	}
}
