package ot

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Apply returns s with op applied. op must be valid and cover s exactly,
// else the error wraps ErrLengthMismatch or a validation sentinel. For a
// document edited many times, Doc is much cheaper than repeated Apply.
func Apply(s string, op Op) (string, error) {
	// Validate before building anything, so a bad op costs no copying.
	base, target, err := op.lens()
	if err != nil {
		return "", err
	}
	// Check the length before sizing anything from the op's counts: a valid
	// op may retain up to MaxInt code points, and only the text bounds it.
	n := utf8.RuneCountInString(s)
	if base != n {
		return "", fmt.Errorf("apply: op covers %d code points, text has %d: %w", base, n, ErrLengthMismatch)
	}
	var sb strings.Builder
	// Exact for ASCII; a close guess otherwise. With base == n, target - n
	// is at most the inserted code points, so the hint is neither negative
	// nor larger than the text plus the op's own strings.
	sb.Grow(max(0, len(s)+(target-n)))
	pos := 0 // byte offset into s
	for _, c := range op {
		switch {
		case c.N > 0:
			end, ok := skipRunes(s, pos, c.N)
			if !ok {
				return "", fmt.Errorf("apply: op longer than text: %w", ErrLengthMismatch)
			}
			sb.WriteString(s[pos:end])
			pos = end
		case c.N < 0:
			end, ok := skipRunes(s, pos, -c.N)
			if !ok {
				return "", fmt.Errorf("apply: op longer than text: %w", ErrLengthMismatch)
			}
			pos = end
		default:
			sb.WriteString(c.S)
		}
	}
	// Text left over means the op does not cover the whole document.
	if pos != len(s) {
		return "", fmt.Errorf("apply: op shorter than text: %w", ErrLengthMismatch)
	}
	return sb.String(), nil
}

// skipRunes returns the byte offset n code points after byte offset pos in
// s, and false if s ends first.
func skipRunes(s string, pos, n int) (int, bool) {
	// Rune by rune: a count of code points has no shortcut to a byte
	// offset in UTF-8, but ASCII avoids the decoder.
	for ; n > 0; n-- {
		if pos >= len(s) {
			return pos, false
		}
		if s[pos] < utf8.RuneSelf {
			pos++
		} else {
			_, size := utf8.DecodeRuneInString(s[pos:])
			pos += size
		}
	}
	return pos, true
}

// cursor walks an op component by component, letting the caller consume a
// component partially. Retains and deletes are held as a positive count n;
// an insert as its remaining text s with n code points.
type cursor struct {
	op   Op
	i    int // next component to load
	kind byte
	n    int
	s    string
}

const (
	kDone byte = iota
	kRetain
	kInsert
	kDelete
)

func newCursor(op Op) cursor {
	c := cursor{op: op}
	c.next()
	return c
}

// next loads the following component, skipping zero-length ones.
func (c *cursor) next() {
	for c.i < len(c.op) {
		comp := c.op[c.i]
		c.i++
		switch {
		case comp.N > 0:
			c.kind, c.n, c.s = kRetain, comp.N, ""
			return
		case comp.N < 0:
			c.kind, c.n, c.s = kDelete, -comp.N, ""
			return
		case comp.S != "":
			c.kind, c.n, c.s = kInsert, utf8.RuneCountInString(comp.S), comp.S
			return
		}
	}
	c.kind, c.n, c.s = kDone, 0, ""
}

// take consumes m <= c.n code points of the current component and, for an
// insert, returns the consumed text.
func (c *cursor) take(m int) string {
	var head string
	if c.kind == kInsert {
		if m == c.n {
			head = c.s
		} else {
			cut := m
			if c.n != len(c.s) { // not pure ASCII: find the byte offset
				cut, _ = skipRunes(c.s, 0, m)
			}
			head, c.s = c.s[:cut], c.s[cut:]
		}
	}
	c.n -= m
	if c.n == 0 {
		c.next()
	}
	return head
}

// Compose returns the single op equivalent to applying a then b:
// Apply(Apply(s, a), b) == Apply(s, Compose(a, b)). It fails with
// ErrLengthMismatch unless a.TargetLen() == b.BaseLen(). The result is in
// canonical form.
func Compose(a, b Op) (Op, error) {
	_, at, err := a.lens()
	if err != nil {
		return nil, fmt.Errorf("compose: first op: %w", err)
	}
	bb, _, err := b.lens()
	if err != nil {
		return nil, fmt.Errorf("compose: second op: %w", err)
	}
	if at != bb {
		return nil, fmt.Errorf("compose: first op makes %d code points, second wants %d: %w", at, bb, ErrLengthMismatch)
	}
	out := make(Op, 0, len(a)+len(b))
	ca, cb := newCursor(a), newCursor(b)
	for {
		// a's deletes never reach b; b's inserts do not consume anything of a.
		if ca.kind == kDelete {
			out = out.Delete(ca.n)
			ca.next()
			continue
		}
		if cb.kind == kInsert {
			out = out.Insert(cb.s)
			cb.next()
			continue
		}
		if ca.kind == kDone || cb.kind == kDone {
			break // lengths were checked, so both end together
		}
		m := min(ca.n, cb.n)
		switch {
		case ca.kind == kRetain && cb.kind == kRetain:
			out = out.Retain(m)
		case ca.kind == kRetain && cb.kind == kDelete:
			out = out.Delete(m)
		case ca.kind == kInsert && cb.kind == kRetain:
			out = out.Insert(ca.take(m))
			cb.take(m)
			continue
		}
		// insert then delete cancels: nothing reaches the output.
		ca.take(m)
		cb.take(m)
	}
	return out, nil
}

// Transform takes two ops a and b made concurrently on the same document and
// returns a1 and b1 such that Apply(Apply(s, a), b1) == Apply(Apply(s, b), a1):
// a1 is a rebased onto b, and b1 is b rebased onto a. When both insert at
// the same position, a's text goes first (to the left): pass the op that was
// committed first as a. The results are in canonical form. If the merged
// text would be longer than an int can count, it fails with ErrOverflow.
func Transform(a, b Op) (a1, b1 Op, err error) {
	ab, at, err := a.lens()
	if err != nil {
		return nil, nil, fmt.Errorf("transform: first op: %w", err)
	}
	bb, bt, err := b.lens()
	if err != nil {
		return nil, nil, fmt.Errorf("transform: second op: %w", err)
	}
	if ab != bb {
		return nil, nil, fmt.Errorf("transform: base lengths %d and %d: %w", ab, bb, ErrLengthMismatch)
	}
	// Every loop iteration below consumes at least one input component and
	// emits at most one component per output, so n components each are
	// enough. One allocation serves both results; the full slice
	// expressions keep a1's appends from running into b1.
	n := len(a) + len(b)
	buf := make(Op, 0, 2*n)
	a1, b1 = buf[0:0:n], buf[n:n:2*n]
	ca, cb := newCursor(a), newCursor(b)
	for {
		// The tie-break: a's insert is emitted before b's at equal position.
		if ca.kind == kInsert {
			a1 = a1.Insert(ca.s)
			b1 = b1.Retain(ca.n)
			ca.next()
			continue
		}
		if cb.kind == kInsert {
			a1 = a1.Retain(cb.n)
			b1 = b1.Insert(cb.s)
			cb.next()
			continue
		}
		if ca.kind == kDone || cb.kind == kDone {
			break // lengths were checked, so both end together
		}
		m := min(ca.n, cb.n)
		switch {
		case ca.kind == kRetain && cb.kind == kRetain:
			a1 = a1.Retain(m)
			b1 = b1.Retain(m)
		case ca.kind == kDelete && cb.kind == kRetain:
			a1 = a1.Delete(m)
		case ca.kind == kRetain && cb.kind == kDelete:
			b1 = b1.Delete(m)
		}
		// Both deleting the same text: it is gone either way.
		ca.take(m)
		cb.take(m)
	}
	// The merged text keeps at most b's target plus a's inserts, so it is
	// no longer than at+bt. Only when that sum overflows, which takes
	// counts no real text has, can the results' target length not fit in
	// an int; then check a1 (b1 has the same target, and both bases fit).
	if at > math.MaxInt-bt {
		if _, _, err := a1.lens(); err != nil {
			return nil, nil, fmt.Errorf("transform: merged text: %w", err)
		}
	}
	return a1, b1, nil
}

// Invert returns the op that undoes op, given the base text op was applied
// to: Apply(Apply(base, op), Invert(op, base)) == base.
func Invert(op Op, base string) (Op, error) {
	opBase, _, err := op.lens()
	if err != nil {
		return nil, fmt.Errorf("invert: %w", err)
	}
	// Fail before building half an inverse, as Apply does.
	if n := utf8.RuneCountInString(base); opBase != n {
		return nil, fmt.Errorf("invert: op covers %d code points, text has %d: %w", opBase, n, ErrLengthMismatch)
	}
	out := make(Op, 0, len(op))
	pos := 0 // byte offset into base
	for _, c := range op {
		switch {
		case c.N > 0:
			end, ok := skipRunes(base, pos, c.N)
			if !ok {
				return nil, fmt.Errorf("invert: op longer than text: %w", ErrLengthMismatch)
			}
			out = out.Retain(c.N)
			pos = end
		case c.N < 0:
			// The deleted text comes back from the base, which is why
			// Invert needs it: an op alone does not carry what it deletes.
			end, ok := skipRunes(base, pos, -c.N)
			if !ok {
				return nil, fmt.Errorf("invert: op longer than text: %w", ErrLengthMismatch)
			}
			out = out.Insert(base[pos:end])
			pos = end
		default:
			out = out.Delete(utf8.RuneCountInString(c.S))
		}
	}
	if pos != len(base) {
		return nil, fmt.Errorf("invert: op shorter than text: %w", ErrLengthMismatch)
	}
	return out, nil
}

// TransformIndex returns where the cursor position pos (a gap between code
// points, 0 being the start) lands after op. An insert at pos pushes it
// right, so a caret follows text typed at it; a delete covering pos moves it
// to where the deleted text was. The result lies in [0, op.TargetLen()] for
// pos in [0, op.BaseLen()]; op is assumed valid.
func TransformIndex(op Op, pos int) int {
	// A stale client position may be negative; clamp rather than fail,
	// since a cursor is advisory.
	if pos < 0 {
		pos = 0
	}
	out := pos
	i := 0        // position in the base
	runStart := 0 // base position where the current insert/delete run began
	for _, c := range op {
		switch {
		case c.N > 0:
			i += c.N
			runStart = i
			if i > pos {
				return out
			}
		case c.N < 0:
			if i < pos {
				out -= min(-c.N, pos-i)
			}
			i -= c.N
		default:
			// Judged at the run start so that ["x",-1] and [-1,"x"], the
			// same edit, move the cursor alike.
			if runStart <= pos {
				out += utf8.RuneCountInString(c.S)
			}
		}
	}
	return out
}

// TransformRanges maps each [anchor, head] selection through op, in place,
// and returns ranges. See TransformIndex.
func TransformRanges(op Op, ranges [][2]int) [][2]int {
	for i := range ranges {
		ranges[i][0] = TransformIndex(op, ranges[i][0])
		ranges[i][1] = TransformIndex(op, ranges[i][1])
	}
	return ranges
}
