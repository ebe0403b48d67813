package ot

import (
	"errors"
	"math"
	"testing"
)

func TestApply(t *testing.T) {
	tests := []struct {
		s       string
		op      Op
		want    string
		wantErr error
	}{
		{"", nil, "", nil},
		{"hello", Op{Retain(5), Insert(" world")}, "hello world", nil},
		{"hello", Op{Delete(1), Insert("H"), Retain(4)}, "Hello", nil},
		{"hello", Op{Insert("H"), Delete(1), Retain(4)}, "Hello", nil},
		{"é漢😀x", Op{Retain(2), Delete(1), Insert("字"), Retain(1)}, "é漢字x", nil},
		{"👩‍💻", Op{Retain(1), Delete(1), Retain(1)}, "👩💻", nil}, // code points, not graphemes
		{"abc", Op{Delete(3)}, "", nil},
		{"abc", Op{Retain(2)}, "", ErrLengthMismatch},
		{"abc", Op{Retain(4)}, "", ErrLengthMismatch},
		{"abc", Op{Retain(2), Delete(2)}, "", ErrLengthMismatch},
		{"😀", Op{Retain(2)}, "", ErrLengthMismatch}, // one code point, four bytes
		{"abc", Op{Retain(3), {}}, "", ErrBadComponent},
		{"abc", Op{Retain(3), Insert("\xff")}, "", ErrInvalidUTF8},
		// Valid ops far longer than the text: the length check must come
		// before anything is sized from the op's counts.
		{"é", Op{Retain(math.MaxInt)}, "", ErrLengthMismatch},
		{"", Op{Retain(1 << 40)}, "", ErrLengthMismatch},
		{"ab", Op{Retain(1 << 40), Insert("x")}, "", ErrLengthMismatch},
		{"ab", Op{Insert("x"), Delete(math.MaxInt)}, "", ErrLengthMismatch},
		{"é漢", Op{Delete(math.MaxInt - 1), Retain(1)}, "", ErrLengthMismatch},
	}
	for _, tt := range tests {
		got, err := Apply(tt.s, tt.op)
		if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
			t.Errorf("Apply(%q, %v) error got %v, want %v", tt.s, tt.op, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("Apply(%q, %v) got %q, want %q", tt.s, tt.op, got, tt.want)
		}
	}
}

func TestCompose(t *testing.T) {
	tests := []struct {
		a, b    Op
		want    string
		wantErr error
	}{
		{nil, nil, `[]`, nil},
		{Op{Insert("ab")}, Op{Retain(2), Insert("c")}, `["abc"]`, nil},
		{Op{Insert("abc")}, Op{Retain(1), Delete(1), Retain(1)}, `["ac"]`, nil},
		{Op{Insert("abc")}, Op{Delete(3)}, `[]`, nil},
		{Op{Retain(3), Insert("😀é")}, Op{Retain(4), Delete(1)}, `[3,"😀"]`, nil},
		{Op{Delete(1), Retain(2)}, Op{Insert("x"), Retain(2)}, `["x",-1,2]`, nil},
		{Op{Retain(1), Delete(1), Retain(1)}, Op{Delete(1), Retain(1)}, `[-2,1]`, nil},
		{Op{Retain(5), Insert(" world")}, Op{Delete(1), Insert("H"), Retain(10)}, `["H",-1,4," world"]`, nil},
		{Op{Retain(2)}, Op{Retain(3)}, "", ErrLengthMismatch},
		{Op{Insert("a")}, Op{Retain(2)}, "", ErrLengthMismatch},
		{Op{{}}, Op{}, "", ErrBadComponent},
		{Op{}, Op{Insert("\xff")}, "", ErrInvalidUTF8},
	}
	for _, tt := range tests {
		got, err := Compose(tt.a, tt.b)
		if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
			t.Errorf("Compose(%v, %v) error got %v, want %v", tt.a, tt.b, err, tt.wantErr)
			continue
		}
		if err == nil && got.String() != tt.want {
			t.Errorf("Compose(%v, %v) got %v, want %s", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestTransform(t *testing.T) {
	tests := []struct {
		name     string
		base     string
		a, b     Op
		wantA1   string
		wantB1   string
		wantText string
		wantErr  error
		huge     bool
	}{
		{name: "tie: a's insert goes left", base: "ab",
			a: Op{Retain(1), Insert("A")}.Retain(1), b: Op{Retain(1), Insert("B")}.Retain(1),
			wantA1: `[1,"A",2]`, wantB1: `[2,"B",1]`, wantText: "aABb"},
		{name: "tie at start", base: "",
			a: Op{Insert("first")}, b: Op{Insert("second")},
			wantA1: `["first",6]`, wantB1: `[5,"second"]`, wantText: "firstsecond"},
		{name: "tie with astral text", base: "x",
			a: Op{Insert("😀")}.Retain(1), b: Op{Insert("漢")}.Retain(1),
			wantA1: `["😀",2]`, wantB1: `[1,"漢",1]`, wantText: "😀漢x"},
		{name: "insert against delete covering it", base: "abcd",
			a: Op{Retain(2), Insert("X"), Retain(2)}, b: Op{Retain(1), Delete(2), Retain(1)},
			wantA1: `[1,"X",1]`, wantB1: `[1,-1,1,-1,1]`, wantText: "aXd"},
		{name: "same delete", base: "abc",
			a: Op{Retain(1), Delete(1), Retain(1)}, b: Op{Retain(1), Delete(1), Retain(1)},
			wantA1: `[2]`, wantB1: `[2]`, wantText: "ac"},
		{name: "overlapping deletes", base: "abcdef",
			a: Op{Retain(1), Delete(3), Retain(2)}, b: Op{Retain(2), Delete(3), Retain(1)},
			wantA1: `[1,-1,1]`, wantB1: `[1,-1,1]`, wantText: "af"},
		{name: "paper example", base: "hello",
			a: Op{Delete(1), Insert("H"), Retain(4)}, b: Op{Retain(5), Insert(" world")},
			wantA1: `["H",-1,10]`, wantB1: `[5," world"]`, wantText: "Hello world"},
		{name: "length mismatch", base: "abc", a: Op{Retain(3)}, b: Op{Retain(2)}, wantErr: ErrLengthMismatch},
		{name: "bad component", base: "abc", a: Op{Retain(3)}, b: Op{Retain(3), {}}, wantErr: ErrBadComponent},
		// Valid ops too long for any text, as a client can send: Transform
		// must not return an op whose length overflows. (No base text:
		// huge is set, and the texts are not checked.)
		{name: "huge: both insert at the end", huge: true,
			a: Op{Retain(math.MaxInt - 1), Insert("a")}, b: Op{Retain(math.MaxInt - 1), Insert("b")}, wantErr: ErrOverflow},
		{name: "huge: inserts at both ends", huge: true,
			a: Op{Retain(math.MaxInt - 1), Insert("a")}, b: Op{Insert("b"), Retain(math.MaxInt - 1)}, wantErr: ErrOverflow},
		// The targets sum past MaxInt, but the shared delete keeps the
		// merged text at exactly MaxInt.
		{name: "huge: shared delete makes room", huge: true,
			a: Op{Retain(math.MaxInt - 1), Delete(1)}, b: Op{Insert("b"), Retain(math.MaxInt - 1), Delete(1)},
			wantA1: `[9223372036854775807]`, wantB1: `["b",9223372036854775806]`},
	}
	for _, tt := range tests {
		a1, b1, err := Transform(tt.a, tt.b)
		if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
			t.Errorf("%s: error got %v, want %v", tt.name, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if got := a1.String(); got != tt.wantA1 {
			t.Errorf("%s: a1 got %s, want %s", tt.name, got, tt.wantA1)
		}
		if got := b1.String(); got != tt.wantB1 {
			t.Errorf("%s: b1 got %s, want %s", tt.name, got, tt.wantB1)
		}
		if tt.huge {
			continue
		}
		left, _ := Apply(tt.base, tt.a)
		left, _ = Apply(left, b1)
		right, _ := Apply(tt.base, tt.b)
		right, _ = Apply(right, a1)
		if left != tt.wantText || right != tt.wantText {
			t.Errorf("%s: texts got %q and %q, want %q", tt.name, left, right, tt.wantText)
		}
	}
}

func TestInvert(t *testing.T) {
	tests := []struct {
		base    string
		op      Op
		want    string
		wantErr error
	}{
		{"hello", Op{Retain(5), Insert(" world")}, `[5,-6]`, nil},
		{"hello", Op{Delete(1), Insert("H"), Retain(4)}, `["h",-1,4]`, nil},
		{"é漢😀", Op{Retain(1), Delete(2)}, `[1,"漢😀"]`, nil},
		{"", Op{Insert("x")}, `[-1]`, nil},
		{"abc", Op{Retain(2)}, "", ErrLengthMismatch},
		{"abc", Op{Retain(4)}, "", ErrLengthMismatch},
		{"abc", Op{Delete(4)}, "", ErrLengthMismatch},
		{"abc", Op{{N: 1, S: "x"}}, "", ErrBadComponent},
		{"é", Op{Retain(math.MaxInt)}, "", ErrLengthMismatch},
		{"", Op{Retain(1 << 40)}, "", ErrLengthMismatch},
		{"ab", Op{Insert("x"), Delete(math.MaxInt)}, "", ErrLengthMismatch},
	}
	for _, tt := range tests {
		got, err := Invert(tt.op, tt.base)
		if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
			t.Errorf("Invert(%v, %q) error got %v, want %v", tt.op, tt.base, err, tt.wantErr)
			continue
		}
		if err == nil && got.String() != tt.want {
			t.Errorf("Invert(%v, %q) got %v, want %s", tt.op, tt.base, got, tt.want)
		}
	}
}

func TestTransformIndex(t *testing.T) {
	tests := []struct {
		name string
		op   Op
		pos  int
		want int
	}{
		{"before an insert", Op{Retain(3), Insert("xy"), Retain(2)}, 2, 2},
		{"insert at pos pushes right", Op{Retain(3), Insert("xy"), Retain(2)}, 3, 5},
		{"after an insert", Op{Retain(3), Insert("xy"), Retain(2)}, 4, 6},
		{"insert at start", Op{Insert("😀"), Retain(2)}, 0, 1},
		{"insert at end", Op{Retain(2), Insert("é")}, 2, 3},
		{"before a delete", Op{Retain(1), Delete(2), Retain(2)}, 1, 1},
		{"inside a delete", Op{Retain(1), Delete(2), Retain(2)}, 2, 1},
		{"at the delete's end", Op{Retain(1), Delete(2), Retain(2)}, 3, 1},
		{"after a delete", Op{Retain(1), Delete(2), Retain(2)}, 4, 2},
		{"replace, cursor inside", Op{Retain(1), Insert("XYZ"), Delete(2), Retain(1)}, 2, 4},
		{"replace written delete first", Op{Retain(1), Delete(2), Insert("XYZ"), Retain(1)}, 2, 4},
		{"replace at its start, insert first", Op{Insert("H"), Delete(1), Retain(4)}, 0, 1},
		{"replace at its start, delete first", Op{Delete(1), Insert("H"), Retain(4)}, 0, 1},
		{"negative clamps to 0", Op{Retain(2)}, -3, 0},
		{"noop", Op{Retain(5)}, 4, 4},
	}
	for _, tt := range tests {
		if got := TransformIndex(tt.op, tt.pos); got != tt.want {
			t.Errorf("%s: TransformIndex(%v, %d) got %d, want %d", tt.name, tt.op, tt.pos, got, tt.want)
		}
	}
}

func TestTransformRanges(t *testing.T) {
	op := Op{Retain(1), Insert("ab"), Retain(2), Delete(2)}
	ranges := [][2]int{{0, 1}, {1, 3}, {5, 2}}
	got := TransformRanges(op, ranges)
	want := [][2]int{{0, 3}, {3, 5}, {5, 4}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("range %d got %v, want %v", i, got[i], want[i])
		}
	}
	if &got[0] != &ranges[0] {
		t.Errorf("TransformRanges got a new slice, want the input updated in place")
	}
}
