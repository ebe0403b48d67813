package ot

import (
	"fmt"
	"math"
	"unicode/utf8"
)

// Doc is a mutable text that applies ops in time proportional to the op's
// components, the inserted text and the distance between successive edits,
// not to the document's length. It is a gap buffer of code points (see
// gapBuf): the free gap sits where the last edit happened, so typing and
// deleting at one place costs O(1) per code point. Storing code points
// rather than UTF-8 makes a code-point position a plain index, which ops
// need constantly.
//
// Each code point takes the narrowest of one byte (while the text is all
// ASCII), two (while it is all in the Basic Multilingual Plane) or four.
// Most documents are mostly ASCII, and a quarter of the memory is a
// quarter of the bytes that moving the gap and reading the text touch; a
// Doc widens once, when the first wider code point arrives, and never
// narrows.
//
// A Doc is not safe for concurrent use.
type Doc struct {
	width uint8 // 1, 2 or 4: which of the buffers below holds the text
	b1    gapBuf[uint8]
	b2    gapBuf[uint16]
	b4    gapBuf[rune]
}

// widthOf returns the narrowest width, in bytes, that holds code points
// whose bitwise OR is or.
func widthOf(or rune) uint8 {
	switch {
	case or < utf8.RuneSelf:
		return 1
	case or <= 0xFFFF:
		return 2
	default:
		return 4
	}
}

// NewDoc returns a Doc holding text. Invalid UTF-8 bytes in text become
// U+FFFD, one per byte, matching how positions count them elsewhere.
func NewDoc(text string) *Doc {
	n := 0
	var or rune
	for _, r := range text {
		or |= r
		n++
	}
	d := &Doc{width: widthOf(or)}
	switch d.width {
	case 1:
		d.b1 = newGapBuf[uint8](text, n)
	case 2:
		d.b2 = newGapBuf[uint16](text, n)
	default:
		d.b4 = newGapBuf[rune](text, n)
	}
	return d
}

// Len returns the length of the text in code points.
func (d *Doc) Len() int {
	switch d.width {
	case 1:
		return d.b1.len()
	case 2:
		return d.b2.len()
	default:
		return d.b4.len()
	}
}

// Size returns the bytes that the text's buffer takes, its gap included:
// what holding the Doc costs, for a caller that budgets memory.
func (d *Doc) Size() int {
	switch d.width {
	case 1:
		return len(d.b1.buf)
	case 2:
		return 2 * len(d.b2.buf)
	default:
		return 4 * len(d.b4.buf)
	}
}

// String returns the text.
func (d *Doc) String() string { return d.Slice(0, d.Len()) }

// Slice returns the code points [start, end) of the text. Out-of-range
// bounds are clamped to [0, Len()] and an inverted range yields "", so a
// stale selection from a client cannot crash the caller.
func (d *Doc) Slice(start, end int) string {
	l := d.Len()
	start = min(max(start, 0), l)
	end = min(max(end, start), l)
	var b []byte
	switch d.width {
	case 1:
		// ASCII is its own UTF-8: two copies, no per-byte work.
		g := &d.b1
		b = make([]byte, 0, end-start)
		if start < g.gs {
			b = append(b, g.buf[start:min(end, g.gs)]...)
		}
		if end > g.gs {
			gap := g.ge - g.gs
			b = append(b, g.buf[max(start, g.gs)+gap:end+gap]...)
		}
	case 2:
		b = d.b2.appendUTF8(make([]byte, 0, end-start), start, end)
	default:
		b = d.b4.appendUTF8(make([]byte, 0, end-start), start, end)
	}
	return string(b)
}

// Apply applies op to the text. It validates op completely, so on error
// (wrapping ErrLengthMismatch or a validation sentinel) the Doc is unchanged.
// It allocates only when the gap must grow or the text must widen.
func (d *Doc) Apply(op Op) error {
	// Most ops are one edit at one place, and most text is ASCII.
	// applySplice does those, looking at each component once, and gives
	// up, changing nothing, on anything else. Testing for them first
	// keeps the commonest case one call deep.
	if d.width == 1 && applySplice(&d.b1, op, utf8.RuneSelf-1) {
		return nil
	}
	return d.apply(op)
}

// apply is Apply for everything but an ASCII splice on ASCII text.
func (d *Doc) apply(op Op) error {
	switch d.width {
	case 2:
		if applySplice(&d.b2, op, 0xFFFF) {
			return nil
		}
	case 4:
		if applySplice(&d.b4, op, math.MaxInt32) { // any code point fits
			return nil
		}
	}
	// Validate the whole op before touching the text, then apply it.
	base, _, or, err := op.scan()
	if err != nil {
		return err
	}
	if l := d.Len(); base != l {
		return fmt.Errorf("op covers %d code points, document has %d: %w", base, l, ErrLengthMismatch)
	}
	if w := widthOf(or); w > d.width {
		d.widen(w)
	}
	switch d.width {
	case 1:
		applyGap(&d.b1, op)
	case 2:
		applyGap(&d.b2, op)
	default:
		applyGap(&d.b4, op)
	}
	return nil
}

// applyGap applies op, valid, covering g's text and inserting only code
// points that fit in T, to g.
func applyGap[T codeUnit](g *gapBuf[T], op Op) {
	p := 0 // position in the text being built, i.e. output coordinates
	for _, c := range op {
		switch {
		case c.N > 0:
			p += c.N
		case c.N < 0:
			g.delete(p, -c.N)
		default:
			g.moveGap(p)
			p += g.insert(c.S)
		}
	}
}

// widen moves the text into the buffer of width w, which is wider than the
// current one, and frees the old buffer.
func (d *Doc) widen(w uint8) {
	switch {
	case d.width == 1 && w == 2:
		d.b2 = widen[uint16](&d.b1)
	case d.width == 1:
		d.b4 = widen[rune](&d.b1)
	default:
		d.b4 = widen[rune](&d.b2)
	}
	if w == 4 {
		d.b2 = gapBuf[uint16]{}
	}
	d.b1 = gapBuf[uint8]{}
	d.width = w
}
