package ot

import "unicode/utf8"

// codeUnit is the element type of a gapBuf: one element holds one code
// point, so a code-point position is a plain index. Doc picks the narrowest
// type its text fits in.
type codeUnit interface{ ~uint8 | ~uint16 | ~int32 }

// gapBuf is a gap buffer of code points: the text is buf[:gs] followed by
// buf[ge:], and the free gap buf[gs:ge] sits where the last edit happened,
// so typing and deleting at one place costs O(1) per code point. It knows
// nothing of widths: the caller (Doc) guarantees that every code point it
// inserts fits in T.
type gapBuf[T codeUnit] struct {
	buf    []T
	gs, ge int // the gap is buf[gs:ge]
}

// minGap is the smallest gap a gapBuf grows to, so a burst of
// single-character inserts does not reallocate each time.
const minGap = 64

// newGapBuf returns a gapBuf holding the n code points of text, which must
// all fit in T; invalid UTF-8 bytes become U+FFFD, one per byte.
func newGapBuf[T codeUnit](text string, n int) gapBuf[T] {
	buf := make([]T, n+max(minGap, n/4))
	i := 0
	for _, r := range text {
		buf[i] = T(r)
		i++
	}
	// The gap starts at the end: new text is usually appended first.
	return gapBuf[T]{buf: buf, gs: n, ge: len(buf)}
}

// widen returns a gapBuf of the wider type U holding g's text, with the gap
// in the same place.
func widen[U, T codeUnit](g *gapBuf[T]) gapBuf[U] {
	buf := make([]U, len(g.buf))
	for i, c := range g.buf[:g.gs] {
		buf[i] = U(c)
	}
	for i, c := range g.buf[g.ge:] {
		buf[g.ge+i] = U(c)
	}
	return gapBuf[U]{buf: buf, gs: g.gs, ge: g.ge}
}

// len returns the length of the text in code points.
func (g *gapBuf[T]) len() int { return len(g.buf) - (g.ge - g.gs) }

// moveGap moves the gap so that it starts at text position p, copying only
// the code points between the old and new gap positions. It is small
// enough to inline, so an edit right at the gap, the commonest case, costs
// no call.
func (g *gapBuf[T]) moveGap(p int) {
	if p != g.gs {
		g.shiftGap(p)
	}
}

// shiftGap is moveGap's work for p != gs.
func (g *gapBuf[T]) shiftGap(p int) {
	if p < g.gs {
		n := g.gs - p
		copy(g.buf[g.ge-n:g.ge], g.buf[p:g.gs])
		g.gs, g.ge = p, g.ge-n
		return
	}
	n := p - g.gs
	copy(g.buf[g.gs:g.gs+n], g.buf[g.ge:g.ge+n])
	g.gs, g.ge = p, g.ge+n
}

// delete removes the code points [pos, pos+n) and leaves the gap at pos.
// When the range touches the gap, as a backspace right after typing does,
// no code point moves: the gap just widens over the range.
func (g *gapBuf[T]) delete(pos, n int) {
	if pos <= g.gs && g.gs <= pos+n {
		g.ge += pos + n - g.gs
		g.gs = pos
		return
	}
	// Here pos > gs or pos+n < gs, so the gap must move.
	g.shiftGap(pos)
	g.ge += n
}

// insert writes s, valid UTF-8 whose code points fit in T, at the gap and
// returns how many code points it wrote.
func (g *gapBuf[T]) insert(s string) int {
	if len(s) > g.ge-g.gs {
		// The byte length bounds the rune count, so one check before
		// decoding is enough.
		g.grow(len(s))
	}
	dst := g.buf[g.gs:g.ge]
	k := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			dst[k] = T(b)
			i++
		} else {
			r, size := utf8.DecodeRuneInString(s[i:])
			dst[k] = T(r)
			i += size
		}
		k++
	}
	g.gs += k
	return k
}

// grow reallocates so the gap holds at least need more code points. The
// buffer at least doubles, so growth is amortised O(1) per inserted code
// point. It is rare, so it is kept out of line, keeping the fast path
// small.
//
//go:noinline
func (g *gapBuf[T]) grow(need int) {
	size := max(2*len(g.buf), g.len()+need+minGap)
	buf := make([]T, size)
	copy(buf, g.buf[:g.gs])
	tail := len(g.buf) - g.ge
	copy(buf[size-tail:], g.buf[g.ge:])
	g.buf, g.ge = buf, size-tail
}

// appendUTF8 appends the code points [start, end) of the text, which the
// caller has clamped, to b as UTF-8.
func (g *gapBuf[T]) appendUTF8(b []byte, start, end int) []byte {
	// Text positions below gs are buffer indexes; the rest shift by the gap.
	if start < g.gs {
		b = appendUnits(b, g.buf[start:min(end, g.gs)])
	}
	if end > g.gs {
		gap := g.ge - g.gs
		b = appendUnits(b, g.buf[max(start, g.gs)+gap:end+gap])
	}
	return b
}

func appendUnits[T codeUnit](b []byte, us []T) []byte {
	for _, u := range us {
		if u < utf8.RuneSelf {
			b = append(b, byte(u))
		} else {
			b = utf8.AppendRune(b, rune(u))
		}
	}
	return b
}

// applySplice applies op to g if op is one splice, the shape of nearly
// every op a single cursor makes by typing, deleting or replacing a
// selection: in canonical order an optional retain, an optional insert, an
// optional delete and an optional retain. It reports whether it did. If op
// has any other shape, is invalid, does not cover g's text or inserts a
// code point above maxUnit (2^k-1, the most T holds: the check ORs the
// inserted code points together), it changes nothing and returns false,
// and the caller validates and applies op the general way, which also
// finds the right error. Knowing the shape lets it validate op completely
// by looking at each component once, before changing anything, rather than
// in a separate pass.
func applySplice[T codeUnit](g *gapBuf[T], op Op, maxUnit rune) bool {
	rest := g.len() // code points of the old text not yet covered by op
	// The commonest shape of all, a keystroke or a backspace mid-text,
	// [retain, one ASCII character or a delete, retain], is tested as a
	// whole: that halves the cost of replaying a typing trace.
	if len(op) == 3 && op[0].S == "" && op[2].S == "" {
		pos, mid, post := op[0].N, op[1].N, op[2].N
		if pos > 0 && post > 0 && pos <= rest && post <= rest-pos {
			switch ins := op[1].S; {
			case mid < 0 && ins == "" && mid == pos+post-rest:
				// pos+post-rest lies in [-rest, 0], so it is no overflow,
				// and a count of MinInt never matches it.
				g.delete(pos, -mid)
				return true
			case mid == 0 && post == rest-pos && len(ins) == 1 && ins[0] < utf8.RuneSelf:
				g.moveGap(pos)
				if g.gs == g.ge {
					g.grow(1)
				}
				g.buf[g.gs] = T(ins[0])
				g.gs++
				return true
			}
		}
	}
	i, pos, del := 0, 0, 0
	var ins string
	if i < len(op) && op[i].N > 0 {
		if op[i].S != "" || op[i].N > rest {
			return false
		}
		pos = op[i].N
		rest -= pos
		i++
	}
	if i < len(op) && op[i].N == 0 {
		if ins = op[i].S; ins == "" {
			return false
		}
		i++
	}
	if i < len(op) && op[i].N < 0 {
		// -rest > MinInt, so a count of MinInt (which has no negation)
		// fails here too.
		if op[i].S != "" || op[i].N < -rest {
			return false
		}
		del = -op[i].N
		rest -= del
		i++
	}
	if i < len(op) {
		// The trailing retain covers exactly the rest; rest == 0 would make
		// it an empty component.
		if op[i].N != rest || rest == 0 || op[i].S != "" {
			return false
		}
		rest = 0
		i++
	}
	if i != len(op) || rest != 0 {
		return false
	}
	switch {
	case ins == "":
		if del != 0 {
			g.delete(pos, del)
		}
		// With only retains, the gap stays where the editing is.
	case len(ins) == 1 && ins[0] < utf8.RuneSelf:
		g.delete(pos, del)
		if g.gs == g.ge {
			g.grow(1)
		}
		g.buf[g.gs] = T(ins[0])
		g.gs++
	default:
		if _, or, ok := countRunes(ins); !ok || or > maxUnit {
			return false
		}
		g.delete(pos, del)
		g.insert(ins)
	}
	return true
}
