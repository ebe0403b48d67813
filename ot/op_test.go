package ot

import (
	"errors"
	"math"
	"testing"
)

func TestComponentKinds(t *testing.T) {
	tests := []struct {
		c             Component
		ret, ins, del bool
		wantN         int
		wantS         string
	}{
		{Retain(3), true, false, false, 3, ""},
		{Insert("é"), false, true, false, 0, "é"},
		{Delete(2), false, false, true, -2, ""},
		{Component{}, false, false, false, 0, ""},
	}
	for _, tt := range tests {
		if tt.c.IsRetain() != tt.ret || tt.c.IsInsert() != tt.ins || tt.c.IsDelete() != tt.del {
			t.Errorf("%+v: kinds got retain %v insert %v delete %v, want %v %v %v", tt.c,
				tt.c.IsRetain(), tt.c.IsInsert(), tt.c.IsDelete(), tt.ret, tt.ins, tt.del)
		}
		if tt.c.N != tt.wantN || tt.c.S != tt.wantS {
			t.Errorf("%+v: got N %d S %q, want N %d S %q", tt.c, tt.c.N, tt.c.S, tt.wantN, tt.wantS)
		}
	}
}

func TestLengths(t *testing.T) {
	tests := []struct {
		op           Op
		base, target int
		noop         bool
	}{
		{nil, 0, 0, true},
		{Op{Retain(5)}, 5, 5, true},
		{Op{Retain(5), Insert(" world")}, 5, 11, false},
		{Op{Delete(1), Insert("H"), Retain(4)}, 5, 5, false},
		{Op{Insert("😀👩‍💻漢é")}, 0, 6, false},
		{Op{Delete(3)}, 3, 0, false},
	}
	for _, tt := range tests {
		if got := tt.op.BaseLen(); got != tt.base {
			t.Errorf("%v.BaseLen() got %d, want %d", tt.op, got, tt.base)
		}
		if got := tt.op.TargetLen(); got != tt.target {
			t.Errorf("%v.TargetLen() got %d, want %d", tt.op, got, tt.target)
		}
		if got := tt.op.IsNoop(); got != tt.noop {
			t.Errorf("%v.IsNoop() got %v, want %v", tt.op, got, tt.noop)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		op   Op
		want error
	}{
		{"empty", Op{}, nil},
		{"nil", nil, nil},
		{"typical", Op{Retain(2), Insert("x"), Delete(1), Retain(3)}, nil},
		{"non-canonical is still valid", Op{Retain(1), Retain(1), Delete(1), Insert("a"), Insert("b")}, nil},
		{"zero component", Op{Retain(1), {}}, ErrBadComponent},
		{"mixed retain and text", Op{{N: 2, S: "x"}}, ErrBadComponent},
		{"mixed delete and text", Op{{N: -2, S: "x"}}, ErrBadComponent},
		{"invalid UTF-8", Op{Insert("a\xffb")}, ErrInvalidUTF8},
		{"truncated UTF-8", Op{Insert("\xe6\xbc")}, ErrInvalidUTF8},
		{"lone surrogate in UTF-8", Op{Insert("\xed\xa0\x80")}, ErrInvalidUTF8},
		{"retain sum overflows", Op{Retain(math.MaxInt), Retain(1)}, ErrOverflow},
		{"delete sum overflows", Op{Delete(math.MaxInt), Delete(1)}, ErrOverflow},
		{"MinInt delete", Op{{N: math.MinInt}}, ErrOverflow},
		{"target overflows", Op{Retain(math.MaxInt), Insert("x")}, ErrOverflow},
		{"largest", Op{Retain(math.MaxInt)}, nil},
	}
	for _, tt := range tests {
		if err := tt.op.Validate(); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: Validate(%#v) got %v, want %v", tt.name, tt.op, err, tt.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		op   Op
		want string
	}{
		{nil, "[]"},
		{Op{Retain(2), Retain(3)}, "[5]"},
		{Op{Delete(1), Insert("H"), Retain(4)}, `["H",-1,4]`},
		{Op{Delete(1), Insert("a"), Delete(2), Insert("b"), Retain(1)}, `["ab",-3,1]`},
		{Op{Retain(0), Insert(""), Retain(1), {}, Insert("x")}, `[1,"x"]`},
		{Op{Insert("a"), Insert("😀")}, `["a😀"]`},
		{Op{Retain(1), Delete(1), Retain(1)}, `[1,-1,1]`},
	}
	for _, tt := range tests {
		if got := tt.op.Normalize().String(); got != tt.want {
			t.Errorf("Normalize(%#v) got %s, want %s", tt.op, got, tt.want)
		}
	}
	// Normalize must not change its input.
	in := Op{Retain(1), Retain(1)}
	_ = in.Normalize()
	if in[0].N != 1 || len(in) != 2 {
		t.Errorf("Normalize changed its input: got %v, want [1,1]", in)
	}
}

func TestBuilders(t *testing.T) {
	got := Op(nil).Retain(2).Retain(1).Delete(1).Insert("a").Insert("b").Delete(2).Retain(0).Insert("").Delete(0).Retain(4)
	if want := `[3,"ab",-3,4]`; got.String() != want {
		t.Errorf("builder chain got %s, want %s", got, want)
	}
}
