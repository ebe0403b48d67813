package ot

import (
	"errors"
	"flag"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// Randomized property tests. Each iteration uses its own seed, printed on
// failure; rerun one case with -seed=N.
var seedFlag = flag.Uint64("seed", 0, "run the randomized ot tests with only this seed")

// seeds returns the seeds a property test should run: the one from -seed, or
// n fixed ones so runs are reproducible.
func seeds(n int) []uint64 {
	if *seedFlag != 0 {
		return []uint64{*seedFlag}
	}
	if testing.Short() {
		n /= 10
	}
	s := make([]uint64, n)
	for i := range s {
		s[i] = uint64(i + 1)
	}
	return s
}

// pieces mixes ASCII, JSON-special characters, a 2-byte letter, CJK, an
// astral emoji and a multi-code-point emoji sequence.
var pieces = []string{"a", "b", "c", " ", "\n", "\"", "\\", "é", "漢", "字", "😀", "👩‍💻"}

func randText(r *rand.Rand, n int) string {
	var sb strings.Builder
	for range n {
		sb.WriteString(pieces[r.IntN(len(pieces))])
	}
	return sb.String()
}

// randOp returns a random valid op on a text of n code points. Half the time
// it is built with append rather than the merging builders, so the
// functions also see valid but non-canonical ops.
func randOp(r *rand.Rand, n int) Op {
	raw := r.IntN(2) == 0
	var op Op
	add := func(c Component) {
		if raw {
			op = append(op, c)
			return
		}
		switch {
		case c.IsRetain():
			op = op.Retain(c.N)
		case c.IsDelete():
			op = op.Delete(-c.N)
		default:
			op = op.Insert(c.S)
		}
	}
	for pos := 0; pos < n; {
		k := 1 + r.IntN(min(n-pos, 6))
		switch r.IntN(4) {
		case 0, 1:
			add(Retain(k))
			pos += k
		case 2:
			add(Delete(k))
			pos += k
		default:
			add(Insert(randText(r, 1+r.IntN(4))))
		}
	}
	if r.IntN(3) == 0 {
		add(Insert(randText(r, 1+r.IntN(3))))
	}
	return op
}

func mustApply(t *testing.T, seed uint64, s string, op Op) string {
	t.Helper()
	out, err := Apply(s, op)
	if err != nil {
		t.Fatalf("seed %d: Apply(%q, %v): %v", seed, s, op, err)
	}
	return out
}

func TestPropTransformConverges(t *testing.T) {
	for _, seed := range seeds(3000) {
		r := rand.New(rand.NewPCG(seed, 1))
		s := randText(r, r.IntN(12))
		n := utf8.RuneCountInString(s)
		a, b := randOp(r, n), randOp(r, n)
		a1, b1, err := Transform(a, b)
		if err != nil {
			t.Fatalf("seed %d: Transform(%v, %v): %v", seed, a, b, err)
		}
		left := mustApply(t, seed, mustApply(t, seed, s, a), b1)
		right := mustApply(t, seed, mustApply(t, seed, s, b), a1)
		if left != right {
			t.Fatalf("seed %d: base %q a %v b %v: a then b1 got %q, b then a1 got %q", seed, s, a, b, left, right)
		}
		// Results are canonical, so the wire and storage see one form.
		if !a1.isCanonical() || !b1.isCanonical() {
			t.Fatalf("seed %d: Transform results %v %v not canonical", seed, a1, b1)
		}
	}
}

func TestPropComposeAgreesWithApply(t *testing.T) {
	for _, seed := range seeds(3000) {
		r := rand.New(rand.NewPCG(seed, 2))
		s := randText(r, r.IntN(12))
		a := randOp(r, utf8.RuneCountInString(s))
		mid := mustApply(t, seed, s, a)
		b := randOp(r, utf8.RuneCountInString(mid))
		ab, err := Compose(a, b)
		if err != nil {
			t.Fatalf("seed %d: Compose(%v, %v): %v", seed, a, b, err)
		}
		got := mustApply(t, seed, s, ab)
		want := mustApply(t, seed, mid, b)
		if got != want {
			t.Fatalf("seed %d: base %q a %v b %v: compose %v got %q, want %q", seed, s, a, b, ab, got, want)
		}
		if !ab.isCanonical() {
			t.Fatalf("seed %d: Compose result %v not canonical", seed, ab)
		}
	}
}

func TestPropInvertUndoes(t *testing.T) {
	for _, seed := range seeds(3000) {
		r := rand.New(rand.NewPCG(seed, 4))
		s := randText(r, r.IntN(12))
		op := randOp(r, utf8.RuneCountInString(s))
		inv, err := Invert(op, s)
		if err != nil {
			t.Fatalf("seed %d: Invert(%v, %q): %v", seed, op, s, err)
		}
		if got := mustApply(t, seed, mustApply(t, seed, s, op), inv); got != s {
			t.Fatalf("seed %d: op %v inverse %v: got %q, want %q", seed, op, inv, got, s)
		}
	}
}

func TestPropDocAgreesWithApply(t *testing.T) {
	for _, seed := range seeds(300) {
		r := rand.New(rand.NewPCG(seed, 5))
		s := randText(r, r.IntN(40))
		d := NewDoc(s)
		for step := range 40 {
			op := randOp(r, utf8.RuneCountInString(s))
			if err := d.Apply(op); err != nil {
				t.Fatalf("seed %d step %d: Doc.Apply(%v): %v", seed, step, op, err)
			}
			s = mustApply(t, seed, s, op)
			if got := d.String(); got != s {
				t.Fatalf("seed %d step %d: op %v: Doc got %q, want %q", seed, step, op, got, s)
			}
			if got, want := d.Len(), utf8.RuneCountInString(s); got != want {
				t.Fatalf("seed %d step %d: Len got %d, want %d", seed, step, got, want)
			}
			rs := []rune(s)
			i := r.IntN(len(rs) + 1)
			j := i + r.IntN(len(rs)-i+1)
			if got, want := d.Slice(i, j), string(rs[i:j]); got != want {
				t.Fatalf("seed %d step %d: Slice(%d, %d) got %q, want %q", seed, step, i, j, got, want)
			}
		}
	}
}

// TestPropTransformIndex checks TransformIndex against where characters
// actually go: the code point right of the cursor, if it survives, stays
// right of it; positions keep their order; the ends map to the ends.
func TestPropTransformIndex(t *testing.T) {
	for _, seed := range seeds(3000) {
		r := rand.New(rand.NewPCG(seed, 6))
		n := r.IntN(12)
		op := randOp(r, n)
		// newIndex[i] is where base code point i ends up, or -1 if deleted.
		newIndex := make([]int, n)
		in, out := 0, 0
		for _, c := range op {
			switch {
			case c.IsRetain():
				for range c.N {
					newIndex[in] = out
					in++
					out++
				}
			case c.IsDelete():
				for range -c.N {
					newIndex[in] = -1
					in++
				}
			default:
				out += utf8.RuneCountInString(c.S)
			}
		}
		prev := 0
		for pos := 0; pos <= n; pos++ {
			got := TransformIndex(op, pos)
			if got < prev || got > op.TargetLen() {
				t.Fatalf("seed %d: op %v: TransformIndex(%d) got %d, want within [%d, %d]", seed, op, pos, got, prev, op.TargetLen())
			}
			prev = got
			if pos < n && newIndex[pos] >= 0 && got != newIndex[pos] {
				t.Fatalf("seed %d: op %v: TransformIndex(%d) got %d, want %d (surviving code point)", seed, op, pos, got, newIndex[pos])
			}
		}
		if got := TransformIndex(op, n); got != op.TargetLen() {
			t.Fatalf("seed %d: op %v: TransformIndex(end) got %d, want %d", seed, op, got, op.TargetLen())
		}
	}
}

// TestPropNormalize checks that Normalize keeps the effect, yields canonical
// form and is idempotent.
func TestPropNormalize(t *testing.T) {
	for _, seed := range seeds(2000) {
		r := rand.New(rand.NewPCG(seed, 7))
		s := randText(r, r.IntN(12))
		op := randOp(r, utf8.RuneCountInString(s))
		norm := op.Normalize()
		if !norm.isCanonical() {
			t.Fatalf("seed %d: Normalize(%v) got %v, not canonical", seed, op, norm)
		}
		if got, want := mustApply(t, seed, s, norm), mustApply(t, seed, s, op); got != want {
			t.Fatalf("seed %d: Normalize(%v) = %v: got %q, want %q", seed, op, norm, got, want)
		}
		if again := norm.Normalize(); again.String() != norm.String() {
			t.Fatalf("seed %d: Normalize not idempotent: got %v, want %v", seed, again, norm)
		}
	}
}

// Rebaser must give exactly what repeated Transform calls give: the hub
// uses one in place of the other.
func TestPropRebaserAgreesWithTransform(t *testing.T) {
	var rb Rebaser // reused across seeds, as the hub reuses its own
	for _, seed := range seeds(3000) {
		r := rand.New(rand.NewPCG(seed, 7))
		s := randText(r, r.IntN(12))
		n := utf8.RuneCountInString(s)
		b := randOp(r, n)
		orig := append(Op(nil), b...)
		want := b
		rb.Reset(b)
		for range r.IntN(6) {
			a := randOp(r, n)
			var err error
			if _, want, err = Transform(a, want); err != nil {
				t.Fatalf("seed %d: Transform: %v", seed, err)
			}
			if err := rb.Over(a); err != nil {
				t.Fatalf("seed %d: Over(%v): %v", seed, a, err)
			}
			n = a.TargetLen()
			s = mustApply(t, seed, s, a)
		}
		got := rb.Op()
		if got.String() != want.String() || len(got) != len(want) {
			t.Fatalf("seed %d: Rebaser gave %v, Transform %v", seed, got, want)
		}
		if b.String() != orig.String() {
			t.Fatalf("seed %d: Reset changed its argument: %v, was %v", seed, b, orig)
		}
		mustApply(t, seed, s, got)
	}
}

func TestRebaserErrors(t *testing.T) {
	var rb Rebaser
	rb.Reset(Op{Retain(3)})
	if err := rb.Over(Op{Retain(2)}); !errors.Is(err, ErrLengthMismatch) {
		t.Fatalf("Over with a shorter op: %v, want ErrLengthMismatch", err)
	}
	rb.Reset(Op{Component{N: 0}})
	if err := rb.Over(Op{}); !errors.Is(err, ErrBadComponent) {
		t.Fatalf("Over with a bad op: %v, want ErrBadComponent", err)
	}
}
