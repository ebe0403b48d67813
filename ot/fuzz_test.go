package ot

import (
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeOp checks that decoding never panics, accepts only valid JSON
// and valid ops, and that a decoded op survives an encode/decode round trip
// unchanged. Seed corpus: testdata/fuzz/FuzzDecodeOp.
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
	})
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
