package ot

import (
	"fmt"
	"math"
)

// Rebaser transforms one op over a run of ops that were applied before it,
// as repeated calls b = Transform(a, b)'s second result would (the ops
// applied first win ties), but builds only the rebased side, and in two
// buffers it keeps between runs. A server rebases each op over the ops
// committed since the revision it was made on; with hundreds of editors
// on one document that is hundreds of ops per op, and Transform's pair
// of results, allocated afresh for each, was most of the cost. The zero
// value is ready to use; a Rebaser is not safe for concurrent use.
type Rebaser struct {
	cur, next Op
}

// Reset starts rebasing b, which is copied (b itself is never changed).
func (r *Rebaser) Reset(b Op) {
	r.cur = append(r.cur[:0], b...)
}

// Over rebases the op onto a, made on the same document: afterwards the op
// applies to a's result. Its errors are Transform's.
func (r *Rebaser) Over(a Op) error {
	ab, at, err := a.lens()
	if err != nil {
		return fmt.Errorf("transform: first op: %w", err)
	}
	bb, bt, err := r.cur.lens()
	if err != nil {
		return fmt.Errorf("transform: second op: %w", err)
	}
	if ab != bb {
		return fmt.Errorf("transform: base lengths %d and %d: %w", ab, bb, ErrLengthMismatch)
	}
	// Transform's loop, keeping only b1.
	out := r.next[:0]
	ca, cb := newCursor(a), newCursor(r.cur)
	for {
		if ca.kind == kInsert {
			out = out.Retain(ca.n)
			ca.next()
			continue
		}
		if cb.kind == kInsert {
			out = out.Insert(cb.s)
			cb.next()
			continue
		}
		if ca.kind == kDone || cb.kind == kDone {
			break
		}
		m := min(ca.n, cb.n)
		switch {
		case ca.kind == kRetain && cb.kind == kRetain:
			out = out.Retain(m)
		case ca.kind == kRetain && cb.kind == kDelete:
			out = out.Delete(m)
		}
		ca.take(m)
		cb.take(m)
	}
	if at > math.MaxInt-bt {
		if _, _, err := out.lens(); err != nil {
			return fmt.Errorf("transform: merged text: %w", err)
		}
	}
	// The old op's components are dropped, so that its strings are not
	// kept alive by the spare buffer.
	clear(r.cur)
	r.cur, r.next = out, r.cur[:0]
	return nil
}

// Op returns the rebased op, in a slice of its own.
func (r *Rebaser) Op() Op {
	return append(Op(nil), r.cur...)
}
