package ot

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"
)

// Tests of Doc's storage: the gap buffer at each width, widening, and the
// single-splice fast path, each checked against a naive model, a []rune
// edited by slicing.

// Alphabets by width, so a document stays narrow for a while and then
// widens at a random point with the gap wherever the editing left it.
var (
	asciiPieces  = []string{"a", "b", "c", " ", "\n", "~", "\x00", "\x7f"}
	bmpPieces    = []string{"é", "ÿ", "\u0100", "漢", "\uFFFD", "\uFFFF"}
	astralPieces = []string{"😀", "\U00010000", "\U0010FFFF"}
)

// phaseText returns n code points drawn from the alphabets allowed in
// phase 0 (ASCII), 1 (also the BMP) or 2 (everything).
func phaseText(r *rand.Rand, phase, n int) string {
	var sb strings.Builder
	for range n {
		switch k := r.IntN(10); {
		case phase >= 2 && k == 0:
			sb.WriteString(astralPieces[r.IntN(len(astralPieces))])
		case phase >= 1 && k <= 2:
			sb.WriteString(bmpPieces[r.IntN(len(bmpPieces))])
		default:
			sb.WriteString(asciiPieces[r.IntN(len(asciiPieces))])
		}
	}
	return sb.String()
}

// oneSplice returns the canonical op deleting del code points at pos of a
// text of n and inserting ins there.
func oneSplice(n, pos, del int, ins string) Op {
	return Op{}.Retain(pos).Insert(ins).Delete(del).Retain(n - pos - del)
}

// randDocOp returns a random op for a text of n code points: mostly single
// splices near the last edit (as typing makes), sometimes multi-edit or
// non-canonical ops, and sometimes an invalid one.
func randDocOp(r *rand.Rand, phase, n, last int) Op {
	switch k := r.IntN(20); {
	case k < 12: // one splice close to the last one
		pos := min(max(last+r.IntN(9)-4, 0), n)
		if r.IntN(8) == 0 {
			pos = r.IntN(n + 1) // or anywhere
		}
		del := 0
		if r.IntN(3) == 0 {
			del = r.IntN(min(n-pos, 5) + 1)
		}
		ins := ""
		if r.IntN(4) != 0 {
			ins = phaseText(r, phase, 1+r.IntN(1+r.IntN(70)))
		}
		return oneSplice(n, pos, del, ins)
	case k < 14: // a big replace, so the gap must grow
		pos := r.IntN(n + 1)
		return oneSplice(n, pos, r.IntN(n-pos+1), phaseText(r, phase, 100+r.IntN(300)))
	case k < 17: // several edits, or non-canonical
		var op Op
		for pos := 0; pos < n; {
			c := 1 + r.IntN(min(n-pos, 8))
			switch r.IntN(4) {
			case 0, 1:
				op = append(op, Retain(c))
				pos += c
			case 2:
				op = append(op, Delete(c))
				pos += c
			default:
				op = append(op, Insert(phaseText(r, phase, 1+r.IntN(4))))
			}
		}
		if r.IntN(3) == 0 {
			op = append(op, Insert(phaseText(r, phase, 1+r.IntN(3))))
		}
		return op
	default: // invalid, in one of many ways
		pos := r.IntN(n + 1)
		del := r.IntN(n - pos + 1)
		ins := phaseText(r, phase, 1+r.IntN(3))
		switch r.IntN(12) {
		case 9, 10, 11:
			// A near miss: one count of a splice off by a little, which
			// can also make it empty or turn a retain into a delete.
			switch r.IntN(3) {
			case 0:
				ins = ""
			case 1:
				ins = string([]rune(ins)[:1])
			}
			op := oneSplice(n, pos, del, ins)
			if len(op) == 0 {
				return Op{Retain(1)}
			}
			c := &op[r.IntN(len(op))]
			if c.N == 0 {
				c.N = r.IntN(3) - 1 // mixed, or empty
				if c.N == 0 {
					c.S = ""
				}
			} else {
				c.N += []int{-2, -1, 1, 2}[r.IntN(4)]
			}
			return op
		case 0:
			return oneSplice(n+1+r.IntN(3), pos, del, ins) // too long
		case 1:
			if n == 0 {
				return Op{Retain(1)}
			}
			return oneSplice(n-1, min(pos, n-1), 0, ins) // too short
		case 2:
			return oneSplice(n, pos, del, ins+"\xff") // invalid UTF-8
		case 3:
			return append(oneSplice(n, pos, del, ins), Component{}) // empty component
		case 4:
			return Op{{N: pos + 1, S: "x"}, Retain(n - pos)} // mixed
		case 5:
			return Op{Retain(pos), {N: -del - 1, S: "x"}, Retain(n - pos)} // mixed
		case 6:
			return Op{Retain(math.MaxInt), Retain(math.MaxInt)} // overflow
		case 7:
			return Op{{N: math.MinInt}, Retain(n)}
		default:
			return Op{Retain(pos), Delete(del), Insert(ins), Insert("\xc3"), Retain(n - pos - del)}
		}
	}
}

// modelApply applies op to rs the naive way, or returns the error Apply on
// strings gives.
func modelApply(rs []rune, op Op) ([]rune, error) {
	s, err := Apply(string(rs), op)
	if err != nil {
		return rs, err
	}
	return []rune(s), nil
}

// sentinel returns which of the package's sentinel errors err wraps.
func sentinel(err error) error {
	for _, s := range []error{ErrLengthMismatch, ErrBadComponent, ErrInvalidUTF8, ErrOverflow} {
		if errors.Is(err, s) {
			return s
		}
	}
	return err
}

// widthNeeded returns the width a Doc must have once it has held rs.
func widthNeeded(rs []rune) uint8 {
	var or rune
	for _, r := range rs {
		or |= r
	}
	return widthOf(or)
}

// TestPropDocWidths replays random edits against the model through the
// phases ASCII, BMP, everything, checking text, length, slices, errors, that
// a failed op changes nothing, and that the Doc is exactly as wide as what
// it has held needs (it widens once and never narrows).
func TestPropDocWidths(t *testing.T) {
	for _, seed := range seeds(200) {
		r := rand.New(rand.NewPCG(seed, 11))
		phase := 0
		if r.IntN(4) == 0 {
			phase = r.IntN(3) // sometimes start wide
		}
		model := []rune(phaseText(r, phase, r.IntN(50)))
		d := NewDoc(string(model))
		want := widthNeeded(model)
		last := r.IntN(len(model) + 1)
		for step := range 300 {
			if phase < 2 && r.IntN(100) == 0 {
				phase++
			}
			op := randDocOp(r, phase, len(model), last)
			next, wantErr := modelApply(model, op)
			err := d.Apply(op)
			if sentinel(err) != sentinel(wantErr) || (err == nil) != (wantErr == nil) {
				t.Fatalf("seed %d step %d: Apply(%v) on %d code points: error %v, want %v", seed, step, op, len(model), err, wantErr)
			}
			if err == nil {
				model = next
				want = max(want, widthNeeded(model))
				if len(op) > 0 && op[0].IsRetain() {
					last = op[0].N
				}
			}
			if got := d.String(); got != string(model) {
				t.Fatalf("seed %d step %d: after %v (error %v): got %q, want %q", seed, step, op, err, got, string(model))
			}
			if got := d.Len(); got != len(model) {
				t.Fatalf("seed %d step %d: Len got %d, want %d", seed, step, got, len(model))
			}
			if d.width != want {
				t.Fatalf("seed %d step %d: width %d, want %d", seed, step, d.width, want)
			}
			i := r.IntN(len(model) + 1)
			j := i + r.IntN(len(model)-i+1)
			if got := d.Slice(i, j); got != string(model[i:j]) {
				t.Fatalf("seed %d step %d: Slice(%d, %d) got %q, want %q", seed, step, i, j, got, string(model[i:j]))
			}
		}
	}
}

// gapText returns g's text as code points.
func gapText[T codeUnit](g *gapBuf[T]) []rune {
	rs := make([]rune, 0, g.len())
	for _, u := range g.buf[:g.gs] {
		rs = append(rs, rune(u))
	}
	for _, u := range g.buf[g.ge:] {
		rs = append(rs, rune(u))
	}
	return rs
}

// isSplice reports whether op is a valid single splice in canonical order
// that covers n code points.
func isSplice(op Op, n int) bool {
	if op.Validate() != nil || op.BaseLen() != n {
		return false
	}
	rank := 0 // retain, insert, delete, retain, in that order, each at most once
	for _, c := range op {
		k := 0
		switch {
		case c.IsRetain() && rank == 0:
			k = 1
		case c.IsRetain():
			k = 4
		case c.IsInsert():
			k = 2
		default:
			k = 3
		}
		if k <= rank {
			return false
		}
		rank = k
	}
	return true
}

// TestApplySplice checks the fast path on its own at each width: it takes
// every valid single splice that fits the width, agreeing with the model,
// and on anything else returns false with the text and the gap untouched.
func TestApplySplice(t *testing.T) {
	for _, seed := range seeds(300) {
		r := rand.New(rand.NewPCG(seed, 12))
		phase := r.IntN(3)
		text := phaseText(r, phase, r.IntN(30))
		switch phase {
		case 0:
			checkSplices(t, seed, r, newGapBuf[uint8](text, utf8.RuneCountInString(text)), utf8.RuneSelf-1, phase)
		case 1:
			checkSplices(t, seed, r, newGapBuf[uint16](text, utf8.RuneCountInString(text)), 0xFFFF, phase)
		default:
			checkSplices(t, seed, r, newGapBuf[rune](text, utf8.RuneCountInString(text)), math.MaxInt32, phase)
		}
	}
}

func checkSplices[T codeUnit](t *testing.T, seed uint64, r *rand.Rand, g gapBuf[T], maxUnit rune, phase int) {
	t.Helper()
	model := gapText(&g)
	last := 0
	for step := range 100 {
		// Ops from one phase up may not fit.
		op := randDocOp(r, min(phase+r.IntN(2), 2), len(model), last)
		gs, ge := g.gs, g.ge
		fits := widthNeeded([]rune(op.insertedText())) <= uint8(unsafe.Sizeof(T(0)))
		took := applySplice(&g, op, maxUnit)
		if want := isSplice(op, len(model)) && fits; took != want {
			t.Fatalf("seed %d step %d: applySplice(%v) on %d code points, max %U: got %v, want %v", seed, step, op, len(model), maxUnit, took, want)
		}
		if !took {
			if g.gs != gs || g.ge != ge || string(gapText(&g)) != string(model) {
				t.Fatalf("seed %d step %d: applySplice(%v) declined but changed the buffer", seed, step, op)
			}
			continue
		}
		var err error
		if model, err = modelApply(model, op); err != nil {
			t.Fatalf("seed %d step %d: applySplice took %v, which the model rejects: %v", seed, step, op, err)
		}
		if got := gapText(&g); string(got) != string(model) {
			t.Fatalf("seed %d step %d: applySplice(%v) got %q, want %q", seed, step, op, string(got), string(model))
		}
		if len(op) > 0 && op[0].IsRetain() {
			last = op[0].N
		}
	}
}

// insertedText returns op's inserted strings, concatenated.
func (op Op) insertedText() string {
	var sb strings.Builder
	for _, c := range op {
		if c.N == 0 {
			sb.WriteString(c.S)
		}
	}
	return sb.String()
}

// TestDocGapEdges pins cases the random tests reach only by luck: an
// insert into a gap that is exactly full, widening with the gap in the
// middle, and ops that are not one splice.
func TestDocGapEdges(t *testing.T) {
	d := NewDoc("")
	var want strings.Builder
	// Fill the gap exactly, then one more: the fast path must grow.
	for i := range minGap + 1 {
		if err := d.Apply(Op{Retain(i), Insert("x")}.Normalize()); err != nil {
			t.Fatal(err)
		}
		want.WriteString("x")
	}
	if got := d.String(); got != want.String() {
		t.Fatalf("after filling the gap got %q, want %q", got, want.String())
	}
	n := d.Len()
	steps := []struct {
		op    Op
		width uint8
		want  string
	}{
		{Op{Retain(10), Insert("é"), Retain(n - 10)}, 2, strings.Repeat("x", 10) + "é" + strings.Repeat("x", n-10)},
		{Op{Retain(3), Delete(2), Retain(6), Insert("😀"), Retain(n - 10)}, 4, "xxx" + strings.Repeat("x", 5) + "é😀" + strings.Repeat("x", n-10)},
		// Delete before insert is valid but not canonical: the slow path.
		{Op{Delete(1), Insert("ab"), Retain(n - 1)}, 4, "ab" + strings.Repeat("x", 7) + "é😀" + strings.Repeat("x", n-10)},
	}
	for i, s := range steps {
		if err := d.Apply(s.op); err != nil {
			t.Fatalf("step %d: Apply(%v): %v", i, s.op, err)
		}
		if got := d.String(); got != s.want || d.width != s.width {
			t.Fatalf("step %d: Apply(%v) got %q at width %d, want %q at width %d", i, s.op, got, d.width, s.want, s.width)
		}
	}
}

// TestDocStringASCII checks that an all-ASCII Doc is stored one byte per
// code point and reads back through both halves of the gap.
func TestDocStringASCII(t *testing.T) {
	d := NewDoc("hello world")
	if d.width != 1 {
		t.Fatalf("width %d, want 1", d.width)
	}
	if err := d.Apply(Op{Retain(5), Insert(","), Retain(6)}); err != nil {
		t.Fatal(err)
	}
	if got, want := d.String(), "hello, world"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got, want := d.Slice(3, 9), "lo, wo"; got != want {
		t.Fatalf("Slice got %q, want %q", got, want)
	}
}
