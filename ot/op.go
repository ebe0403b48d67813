package ot

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// Sentinel errors. Functions wrap them with context, so compare with
// errors.Is.
var (
	// ErrLengthMismatch is returned when an op's base length differs from
	// the length of the document (or of the other op's target) it meets.
	ErrLengthMismatch = errors.New("ot: length mismatch")
	// ErrBadComponent is returned for a component that is zero (N == 0 and
	// S == ""), mixed (N != 0 and S != ""), or otherwise not one of
	// retain, insert and delete, including an empty string in JSON.
	ErrBadComponent = errors.New("ot: bad component")
	// ErrInvalidUTF8 is returned when inserted text is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("ot: invalid UTF-8")
	// ErrOverflow is returned when a count, or the sum of an op's counts,
	// does not fit in an int.
	ErrOverflow = errors.New("ot: count overflows")
	// ErrSyntax is returned when the JSON form of an op is malformed: not an
	// array, a float, an exponent, a leading zero, trailing data, and so on.
	ErrSyntax = errors.New("ot: syntax error in op")
)

// Component is one step of an Op. Exactly one of: N > 0 retains N code
// points; N < 0 deletes -N code points; N == 0 and S != "" inserts S.
// Keeping all three in one small struct (rather than an interface) lets an
// Op be a flat slice that is cheap to build, copy and walk.
type Component struct {
	N int
	S string
}

// Retain returns a component keeping the next n code points.
func Retain(n int) Component { return Component{N: n} }

// Insert returns a component inserting s.
func Insert(s string) Component { return Component{S: s} }

// Delete returns a component deleting the next n code points; n must be
// positive, and the component stores it as Component{N: -n}.
func Delete(n int) Component { return Component{N: -n} }

// IsRetain reports whether c retains code points.
func (c Component) IsRetain() bool { return c.N > 0 }

// IsInsert reports whether c inserts text.
func (c Component) IsInsert() bool { return c.N == 0 && c.S != "" }

// IsDelete reports whether c deletes code points.
func (c Component) IsDelete() bool { return c.N < 0 }

// Op is an edit covering the whole document it applies to: the sum of its
// retains and deletes equals the base document's length in code points.
// A nil or empty Op is the no-op on the empty document.
type Op []Component

// BaseLen returns the length, in code points, of the documents op applies to.
// It assumes op is valid; see Validate.
func (op Op) BaseLen() int {
	n := 0
	for _, c := range op {
		if c.N > 0 {
			n += c.N
		} else {
			n -= c.N
		}
	}
	return n
}

// TargetLen returns the length, in code points, of the document op produces.
// It assumes op is valid; see Validate.
func (op Op) TargetLen() int {
	n := 0
	for _, c := range op {
		if c.N > 0 {
			n += c.N
		} else if c.N == 0 {
			n += utf8.RuneCountInString(c.S)
		}
	}
	return n
}

// Validate reports whether op is well formed: every component exactly one of
// retain, insert or delete, inserted text valid UTF-8, and the base and target
// lengths representable in an int. It does not require canonical form.
func (op Op) Validate() error {
	_, _, err := op.lens()
	return err
}

// lens validates op and returns its base and target lengths in one pass, so
// the hot paths (Transform, Compose) walk the op only once before doing real
// work.
func (op Op) lens() (base, target int, err error) {
	base, target, _, err = op.scan()
	return base, target, err
}

// scan is lens that also returns the bitwise OR of every inserted code
// point, which tells Doc.Apply, in the same pass, whether the inserted text
// fits the width its buffer stores (an OR below 0x80 means all ASCII, below
// 0x10000 all in the Basic Multilingual Plane).
func (op Op) scan() (base, target int, or rune, err error) {
	for i, c := range op {
		switch {
		case c.N != 0 && c.S != "":
			return 0, 0, 0, fmt.Errorf("component %d is both count and text: %w", i, ErrBadComponent)
		case c.N > 0:
			if base > math.MaxInt-c.N || target > math.MaxInt-c.N {
				return 0, 0, 0, fmt.Errorf("component %d: %w", i, ErrOverflow)
			}
			base += c.N
			target += c.N
		case c.N < 0:
			// -MinInt does not exist, so it can never be a valid count.
			if c.N == math.MinInt || base > math.MaxInt+c.N {
				return 0, 0, 0, fmt.Errorf("component %d: %w", i, ErrOverflow)
			}
			base -= c.N
		case c.S == "":
			return 0, 0, 0, fmt.Errorf("component %d is empty: %w", i, ErrBadComponent)
		default:
			n, o, ok := countRunes(c.S)
			if !ok {
				return 0, 0, 0, fmt.Errorf("component %d: %w", i, ErrInvalidUTF8)
			}
			if target > math.MaxInt-n {
				return 0, 0, 0, fmt.Errorf("component %d: %w", i, ErrOverflow)
			}
			target += n
			or |= o
		}
	}
	return base, target, or, nil
}

// countRunes counts the code points of s, ORs them together and reports
// whether s is valid UTF-8, in a single pass with an ASCII fast path.
func countRunes(s string) (n int, or rune, ok bool) {
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			or |= rune(b)
			i++
			n++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return n, or, false
		}
		or |= r
		i += size
		n++
	}
	return n, or, true
}

// IsNoop reports whether op changes nothing: it holds only retains, or
// nothing at all.
func (op Op) IsNoop() bool {
	for _, c := range op {
		if c.N <= 0 {
			return false
		}
	}
	return true
}

// Normalize returns op in canonical form: zero-length components dropped,
// adjacent components of one kind merged, and within each run of inserts and
// deletes between two retains, the insert first. Two ops with the same
// effect on every document have the same canonical form, which makes ops
// comparable and keeps stored history small. If op is already canonical it is
// returned as is (sharing its backing array); otherwise a new Op is built
// and op is left untouched. Normalize expects a valid op; a mixed component
// counts as its N.
func (op Op) Normalize() Op {
	if op.isCanonical() {
		return op
	}
	out := make(Op, 0, len(op))
	for _, c := range op {
		switch {
		case c.N > 0:
			out = out.Retain(c.N)
		case c.N < 0:
			out = out.Delete(-c.N)
		default:
			out = out.Insert(c.S)
		}
	}
	return out
}

// isCanonical reports whether Normalize would leave op unchanged, so the
// common case costs no allocation.
func (op Op) isCanonical() bool {
	prev := 0 // 0 none, 1 retain, 2 insert, 3 delete
	for _, c := range op {
		k := 0
		switch {
		case c.N > 0:
			k = 1
		case c.N < 0:
			k = 3
		case c.S != "":
			k = 2
		default:
			return false // zero-length component
		}
		// Same kind twice, or an insert right after a delete.
		if k == prev || (k == 2 && prev == 3) {
			return false
		}
		prev = k
	}
	return true
}

// Retain appends a retain of n code points to op, merging with a trailing
// retain, and returns the result like append does. n <= 0 appends nothing.
// Retain, Insert and Delete are builders: merging may modify op's last
// components in place, so use them only on an Op you own.
func (op Op) Retain(n int) Op {
	if n <= 0 {
		return op
	}
	if l := len(op); l > 0 && op[l-1].N > 0 {
		op[l-1].N += n
		return op
	}
	return append(op, Component{N: n})
}

// Delete appends a delete of n code points to op, merging with a trailing
// delete, and returns the result like append does. n <= 0 appends nothing.
func (op Op) Delete(n int) Op {
	if n <= 0 {
		return op
	}
	if l := len(op); l > 0 && op[l-1].N < 0 {
		op[l-1].N -= n
		return op
	}
	return append(op, Component{N: -n})
}

// Insert appends an insert of s to op and returns the result like append
// does. It merges with a trailing insert, and when op ends with a delete it
// places the insert before that delete (both orders mean the same edit, and
// insert-first is the canonical one). An empty s appends nothing.
func (op Op) Insert(s string) Op {
	if s == "" {
		return op
	}
	l := len(op)
	if l > 0 && op[l-1].N < 0 {
		// Canonical order: the insert goes before the trailing delete.
		if l > 1 && op[l-2].N == 0 {
			op[l-2].S += s
			return op
		}
		op = append(op, op[l-1])
		op[l-1] = Component{S: s}
		return op
	}
	if l > 0 && op[l-1].N == 0 {
		op[l-1].S += s
		return op
	}
	return append(op, Component{S: s})
}

// String returns op in its JSON form, for logs and test failures.
func (op Op) String() string { return string(op.AppendJSON(nil)) }
