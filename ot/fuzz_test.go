package ot

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeOp checks that decoding never panics, accepts only valid JSON
// and valid ops, and that a decoded op survives an encode/decode round trip
// unchanged. It then feeds the op to every function that takes one (see
// checkOp): the decoder is where untrusted ops enter, so whatever it
// accepts, such as a retain of MaxInt, must be safe everywhere else.
// Seed corpus: testdata/fuzz/FuzzDecodeOp.
func FuzzDecodeOp(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var op Op
		if err := op.UnmarshalJSON(data); err != nil {
			if op != nil {
				t.Fatalf("decode %q failed with %v but set op to %v, want it unchanged", data, err, op)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("decode %q: accepted input that is not valid JSON", data)
		}
		if err := op.Validate(); err != nil {
			t.Fatalf("decode %q: got op %v failing Validate: %v", data, op, err)
		}
		enc := op.AppendJSON(nil)
		if !json.Valid(enc) {
			t.Fatalf("encode %v: got invalid JSON %q", op, enc)
		}
		var again Op
		if err := again.UnmarshalJSON(enc); err != nil {
			t.Fatalf("decode(encode(%v)) = decode(%q): got %v, want nil", op, enc, err)
		}
		if len(again) != len(op) {
			t.Fatalf("round trip of %q: got %v, want %v", data, again, op)
		}
		for i := range op {
			if again[i] != op[i] {
				t.Fatalf("round trip of %q: component %d got %+v, want %+v", data, i, again[i], op[i])
			}
		}
		checkOp(t, op)
	})
}

// fuzzRunes are single code points of 1 to 4 bytes, cycled to build a text
// of a given length.
var fuzzRunes = []rune("aé漢😀\n\"")

// maxFuzzText bounds the text built to match an op's base length; ops
// longer than that are checked only where no text is needed.
const maxFuzzText = 1 << 10

func fuzzText(n int) string {
	rs := make([]rune, n)
	for i := range rs {
		rs[i] = fuzzRunes[i%len(fuzzRunes)]
	}
	return string(rs)
}

// opsOn returns a few valid ops whose base length is n: the identity,
// deleting everything, an insert at the start and a replace in the middle.
// Some would not fit in an int for n near MaxInt; those are left out.
func opsOn(n int) []Op {
	var ops []Op
	for _, op := range []Op{
		Op{}.Retain(n),
		Op{}.Delete(n),
		Op{}.Insert("Z").Retain(n),
		Op{}.Retain(n / 2).Insert("Y").Delete(n - n/2),
	} {
		if op.Validate() == nil {
			ops = append(ops, op)
		}
	}
	return ops
}

// opsOnto returns a few valid ops whose target length is n, to compose
// before an op of base length n.
func opsOnto(n int) []Op {
	ops := []Op{Op{}.Retain(n)}
	if n < math.MaxInt-2 {
		ops = append(ops, Op{}.Retain(n/2).Delete(2).Retain(n-n/2))
	}
	if n > 0 {
		ops = append(ops, Op{}.Insert("X").Delete(1).Retain(n-1))
	}
	return ops
}

// checkOp runs a valid op through Apply, Doc, Invert, Compose, Transform
// and TransformIndex. None may panic; on a text of the wrong length each
// must fail with ErrLengthMismatch, and on the right one they must agree
// with each other.
func checkOp(t *testing.T, op Op) {
	t.Helper()
	base, target := op.BaseLen(), op.TargetLen()
	texts := []string{"", "a", "é漢😀"}
	if base <= maxFuzzText {
		texts = append(texts, fuzzText(base))
	}
	for _, s := range texts {
		if utf8.RuneCountInString(s) == base {
			checkOpOnText(t, op, s)
			continue
		}
		if got, err := Apply(s, op); !errors.Is(err, ErrLengthMismatch) {
			t.Fatalf("Apply(%q, %v) got %q, %v, want ErrLengthMismatch", s, op, got, err)
		}
		d := NewDoc(s)
		if err := d.Apply(op); !errors.Is(err, ErrLengthMismatch) {
			t.Fatalf("NewDoc(%q).Apply(%v) got %v, want ErrLengthMismatch", s, op, err)
		}
		if got := d.String(); got != s {
			t.Fatalf("NewDoc(%q).Apply(%v) failed but left %q, want the text unchanged", s, op, got)
		}
		if inv, err := Invert(op, s); !errors.Is(err, ErrLengthMismatch) {
			t.Fatalf("Invert(%v, %q) got %v, %v, want ErrLengthMismatch", op, s, inv, err)
		}
	}

	// Compose and Transform need no text, so they also see ops far longer
	// than any text, where an overflow would show.
	for _, b := range opsOn(target) {
		ab, err := Compose(op, b)
		if err != nil {
			t.Fatalf("Compose(%v, %v): %v", op, b, err)
		}
		checkResult(t, "Compose", op, b, ab, base, b.TargetLen())
	}
	for _, a := range opsOnto(base) {
		ab, err := Compose(a, op)
		if err != nil {
			t.Fatalf("Compose(%v, %v): %v", a, op, err)
		}
		checkResult(t, "Compose", a, op, ab, a.BaseLen(), target)
	}
	for _, b := range append(opsOn(base), op) {
		checkTransform(t, op, b)
		checkTransform(t, b, op)
	}
	if target < math.MaxInt {
		if _, err := Compose(op, Op{Retain(target + 1)}); !errors.Is(err, ErrLengthMismatch) {
			t.Fatalf("Compose(%v, [%d]) got %v, want ErrLengthMismatch", op, target+1, err)
		}
	}
	if base < math.MaxInt {
		if _, _, err := Transform(op, Op{Retain(base + 1)}); !errors.Is(err, ErrLengthMismatch) {
			t.Fatalf("Transform(%v, [%d]) got %v, want ErrLengthMismatch", op, base+1, err)
		}
	}

	// Positions in [0, base], ascending, must land in [0, target] in
	// order, with the end mapped to the end.
	prev := 0
	positions := []int{-1, 0, 1, base / 2, base - 1, base}
	slices.Sort(positions)
	for _, pos := range positions {
		if pos > base {
			continue
		}
		got := TransformIndex(op, pos)
		if got < prev || got > target {
			t.Fatalf("TransformIndex(%v, %d) got %d, want within [%d, %d]", op, pos, got, prev, target)
		}
		prev = got
	}
	if got := TransformIndex(op, base); got != target {
		t.Fatalf("TransformIndex(%v, end %d) got %d, want %d", op, base, got, target)
	}
}

// checkResult checks an op made from a and b: valid, canonical and of the
// expected lengths.
func checkResult(t *testing.T, what string, a, b, got Op, wantBase, wantTarget int) {
	t.Helper()
	if err := got.Validate(); err != nil {
		t.Fatalf("%s(%v, %v) got %v failing Validate: %v", what, a, b, got, err)
	}
	if !got.isCanonical() {
		t.Fatalf("%s(%v, %v) got %v, not canonical", what, a, b, got)
	}
	if gb, gt := got.BaseLen(), got.TargetLen(); gb != wantBase || gt != wantTarget {
		t.Fatalf("%s(%v, %v) got %v of lengths %d -> %d, want %d -> %d", what, a, b, got, gb, gt, wantBase, wantTarget)
	}
}

// checkTransform checks that Transform(a, b) either succeeds with results
// that fit together, or reports that the merged text would not fit in an
// int, which only ops near MaxInt can cause.
func checkTransform(t *testing.T, a, b Op) {
	t.Helper()
	a1, b1, err := Transform(a, b)
	if errors.Is(err, ErrOverflow) && a.TargetLen() > math.MaxInt-b.TargetLen() {
		return
	}
	if err != nil {
		t.Fatalf("Transform(%v, %v): %v", a, b, err)
	}
	checkResult(t, "Transform a1", a, b, a1, b.TargetLen(), a1.TargetLen())
	checkResult(t, "Transform b1", a, b, b1, a.TargetLen(), a1.TargetLen())
}

// checkOpOnText checks op on a text s it covers.
func checkOpOnText(t *testing.T, op Op, s string) {
	t.Helper()
	got, err := Apply(s, op)
	if err != nil {
		t.Fatalf("Apply(%q, %v): %v", s, op, err)
	}
	if n, want := utf8.RuneCountInString(got), op.TargetLen(); n != want {
		t.Fatalf("Apply(%q, %v) got %q of %d code points, want %d", s, op, got, n, want)
	}
	d := NewDoc(s)
	if err := d.Apply(op); err != nil {
		t.Fatalf("NewDoc(%q).Apply(%v): %v", s, op, err)
	}
	if dt := d.String(); dt != got {
		t.Fatalf("NewDoc(%q).Apply(%v) got %q, want %q as Apply gives", s, op, dt, got)
	}
	if norm, err := Apply(s, op.Normalize()); err != nil || norm != got {
		t.Fatalf("Apply(%q, Normalize(%v)) got %q, %v, want %q", s, op, norm, err, got)
	}
	inv, err := Invert(op, s)
	if err != nil {
		t.Fatalf("Invert(%v, %q): %v", op, s, err)
	}
	if back, err := Apply(got, inv); err != nil || back != s {
		t.Fatalf("Apply(Apply(%q, %v), Invert = %v) got %q, %v, want %q", s, op, inv, back, err, s)
	}
	for _, b := range opsOn(op.TargetLen()) {
		ab, err := Compose(op, b)
		if err != nil {
			t.Fatalf("Compose(%v, %v): %v", op, b, err)
		}
		want, err := Apply(got, b)
		if err != nil {
			t.Fatalf("Apply(%q, %v): %v", got, b, err)
		}
		if one, err := Apply(s, ab); err != nil || one != want {
			t.Fatalf("Apply(%q, Compose(%v, %v) = %v) got %q, %v, want %q", s, op, b, ab, one, err, want)
		}
	}
	for _, b := range append(opsOn(op.BaseLen()), op) {
		a1, b1, err := Transform(op, b)
		if err != nil {
			t.Fatalf("Transform(%v, %v): %v", op, b, err)
		}
		sb, err := Apply(s, b)
		if err != nil {
			t.Fatalf("Apply(%q, %v): %v", s, b, err)
		}
		left, err1 := Apply(got, b1)
		right, err2 := Apply(sb, a1)
		if err1 != nil || err2 != nil || left != right {
			t.Fatalf("on %q, a %v b %v: a then b1 %v got %q, %v; b then a1 %v got %q, %v; want equal texts",
				s, op, b, b1, left, err1, a1, right, err2)
		}
	}
}

// bytesSource feeds the fuzz input to math/rand as its random stream, so
// the fuzzer's mutations steer the generated text and ops. Once the input
// runs out it continues with a PCG seeded from the input: math/rand's
// bounded draws loop forever on a constant stream.
type bytesSource struct {
	data []byte
	pcg  *rand.PCG
}

func (s *bytesSource) Uint64() uint64 {
	if len(s.data) > 0 {
		var b [8]byte
		n := copy(b[:], s.data)
		s.data = s.data[n:]
		return binary.LittleEndian.Uint64(b[:])
	}
	return s.pcg.Uint64()
}

func newBytesRand(data []byte) *rand.Rand {
	h := fnv.New64a()
	h.Write(data)
	return rand.New(&bytesSource{data: data, pcg: rand.NewPCG(h.Sum64(), 9)})
}

// FuzzTransform derives a base text and two concurrent ops from the input
// and checks convergence (TP1), plus Compose and Invert on the same ops.
// Seed corpus: testdata/fuzz/FuzzTransform.
func FuzzTransform(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newBytesRand(data)
		s := randText(r, r.IntN(16))
		n := utf8.RuneCountInString(s)
		a, b := randOp(r, n), randOp(r, n)
		a1, b1, err := Transform(a, b)
		if err != nil {
			t.Fatalf("Transform(%v, %v): %v", a, b, err)
		}
		sa, err := Apply(s, a)
		if err != nil {
			t.Fatalf("Apply(%q, %v): %v", s, a, err)
		}
		sb, err := Apply(s, b)
		if err != nil {
			t.Fatalf("Apply(%q, %v): %v", s, b, err)
		}
		left, err := Apply(sa, b1)
		if err != nil {
			t.Fatalf("Apply(%q, b1 %v): %v", sa, b1, err)
		}
		right, err := Apply(sb, a1)
		if err != nil {
			t.Fatalf("Apply(%q, a1 %v): %v", sb, a1, err)
		}
		if left != right {
			t.Fatalf("base %q a %v b %v: a then b1 got %q, b then a1 got %q", s, a, b, left, right)
		}
		// Composing a with b1 must land on the same text in one step.
		ab1, err := Compose(a, b1)
		if err != nil {
			t.Fatalf("Compose(%v, %v): %v", a, b1, err)
		}
		if got, err := Apply(s, ab1); err != nil || got != left {
			t.Fatalf("Apply(%q, Compose(a, b1) %v) got %q, %v, want %q", s, ab1, got, err, left)
		}
		inv, err := Invert(a, s)
		if err != nil {
			t.Fatalf("Invert(%v, %q): %v", a, s, err)
		}
		if got, err := Apply(sa, inv); err != nil || got != s {
			t.Fatalf("undo of %v on %q got %q, %v, want %q", a, s, got, err, s)
		}
	})
}
