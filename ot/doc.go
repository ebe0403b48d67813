package ot

import (
	"fmt"
	"unicode/utf8"
)

// Doc is a mutable text that applies ops in time proportional to the op's
// components, the inserted text and the distance between successive edits,
// not to the document's length. It is a gap buffer of code points: the text
// is buf[:gs] followed by buf[ge:], and the free gap buf[gs:ge] sits where
// the last edit happened, so typing and deleting at one place costs O(1)
// per code point. Storing runes (4 bytes each) rather than UTF-8 makes a
// code-point position a plain index, which ops need constantly.
//
// A Doc is not safe for concurrent use.
type Doc struct {
	buf    []rune
	gs, ge int // the gap is buf[gs:ge]
}

// minGap is the smallest gap a Doc grows to, so a burst of single-character
// inserts does not reallocate each time.
const minGap = 64

// NewDoc returns a Doc holding text. Invalid UTF-8 bytes in text become
// U+FFFD, one per byte, matching how positions count them elsewhere.
func NewDoc(text string) *Doc {
	n := utf8.RuneCountInString(text)
	buf := make([]rune, n+max(minGap, n/4))
	i := 0
	for _, r := range text {
		buf[i] = r
		i++
	}
	// The gap starts at the end: new text is usually appended first.
	return &Doc{buf: buf, gs: n, ge: len(buf)}
}

// Len returns the length of the text in code points.
func (d *Doc) Len() int { return len(d.buf) - (d.ge - d.gs) }

// String returns the text.
func (d *Doc) String() string { return d.Slice(0, d.Len()) }

// Slice returns the code points [start, end) of the text. Out-of-range
// bounds are clamped to [0, Len()] and an inverted range yields "", so a
// stale selection from a client cannot crash the caller.
func (d *Doc) Slice(start, end int) string {
	l := d.Len()
	start = min(max(start, 0), l)
	end = min(max(end, start), l)
	b := make([]byte, 0, end-start)
	// Logical positions below gs are buffer indexes; the rest shift by the gap.
	if start < d.gs {
		b = appendRunes(b, d.buf[start:min(end, d.gs)])
	}
	if end > d.gs {
		gap := d.ge - d.gs
		b = appendRunes(b, d.buf[max(start, d.gs)+gap:end+gap])
	}
	return string(b)
}

func appendRunes(b []byte, rs []rune) []byte {
	for _, r := range rs {
		if r < utf8.RuneSelf {
			b = append(b, byte(r))
		} else {
			b = utf8.AppendRune(b, r)
		}
	}
	return b
}

// Apply applies op to the text. It validates op completely first, so on error
// (wrapping ErrLengthMismatch or a validation sentinel) the Doc is unchanged.
// It allocates only when the gap must grow.
func (d *Doc) Apply(op Op) error {
	base, _, err := op.lens()
	if err != nil {
		return err
	}
	if l := d.Len(); base != l {
		return fmt.Errorf("op covers %d code points, document has %d: %w", base, l, ErrLengthMismatch)
	}
	p := 0 // position in the text being built, i.e. output coordinates
	for _, c := range op {
		switch {
		case c.N > 0:
			p += c.N
		case c.N < 0:
			d.moveGap(p)
			d.ge -= c.N
		default:
			d.moveGap(p)
			if n := len(c.S); n > d.ge-d.gs {
				// The byte length bounds the rune count, so one check
				// before decoding is enough.
				d.grow(n)
			}
			gs := d.gs
			for i := 0; i < len(c.S); {
				if b := c.S[i]; b < utf8.RuneSelf {
					d.buf[gs] = rune(b)
					i++
				} else {
					r, size := utf8.DecodeRuneInString(c.S[i:])
					d.buf[gs] = r
					i += size
				}
				gs++
			}
			p += gs - d.gs
			d.gs = gs
		}
	}
	return nil
}

// moveGap moves the gap so that it starts at text position p, copying only
// the code points between the old and new gap positions.
func (d *Doc) moveGap(p int) {
	switch {
	case p < d.gs:
		n := d.gs - p
		copy(d.buf[d.ge-n:d.ge], d.buf[p:d.gs])
		d.gs, d.ge = p, d.ge-n
	case p > d.gs:
		n := p - d.gs
		copy(d.buf[d.gs:d.gs+n], d.buf[d.ge:d.ge+n])
		d.gs, d.ge = p, d.ge+n
	}
}

// grow reallocates so the gap holds at least need more code points. The
// buffer at least doubles, so growth is amortised O(1) per inserted rune.
func (d *Doc) grow(need int) {
	l := d.Len()
	size := max(2*len(d.buf), l+need+minGap)
	buf := make([]rune, size)
	copy(buf, d.buf[:d.gs])
	tail := len(d.buf) - d.ge
	copy(buf[size-tail:], d.buf[d.ge:])
	d.buf, d.ge = buf, size-tail
}
