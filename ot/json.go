package ot

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSON form of an op is hand-rolled rather than left to encoding/json:
// a component is either a number or a string, which encoding/json can only
// express through []any and reflection, and every op on the wire goes
// through here, so a direct scanner is both stricter and much cheaper.

// MarshalJSON encodes op in the protocol form, e.g. [5," world"]. A nil op
// encodes as [].
func (op Op) MarshalJSON() ([]byte, error) {
	return op.AppendJSON(make([]byte, 0, op.jsonSizeHint())), nil
}

// jsonSizeHint estimates the encoded size so MarshalJSON allocates once in
// the common case (no escapes, short counts).
func (op Op) jsonSizeHint() int {
	n := 2
	for _, c := range op {
		if c.N != 0 {
			n += 8
		} else {
			n += len(c.S) + 3
		}
	}
	return n
}

// AppendJSON appends the JSON form of op to dst and returns the extended
// buffer. It allocates only when dst must grow. Invalid UTF-8 in inserted
// text (which Validate rejects) is written as U+FFFD so the output is always
// valid JSON.
func (op Op) AppendJSON(dst []byte) []byte {
	dst = append(dst, '[')
	for i, c := range op {
		// Commas go before every component but the first, so no trailing
		// comma needs trimming.
		if i > 0 {
			dst = append(dst, ',')
		}
		// A mixed or zero component (invalid anyway) encodes as its count,
		// so encoding never fails and never drops a component.
		if c.N != 0 || c.S == "" {
			dst = strconv.AppendInt(dst, int64(c.N), 10)
		} else {
			dst = appendString(dst, c.S)
		}
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. It escapes only what JSON
// requires, plus U+2028 and U+2029, which are line terminators in
// JavaScript source and would break a client that evals or embeds the text.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is pending, needing no escape
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			// Plain ASCII stays pending and is copied in one go below.
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				// Other control characters have no short escape.
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// UnmarshalJSON decodes the protocol form of an op: a JSON array whose
// elements are non-zero integers and non-empty strings. It is strict: it
// rejects null and any other non-array, floats and exponents ("1.0", "1e3"),
// zero and "-0", empty strings, invalid UTF-8, integers or length sums that
// overflow an int, and trailing data. Errors wrap ErrSyntax,
// ErrBadComponent, ErrInvalidUTF8 or ErrOverflow. A decoded op always passes
// Validate. Escaped lone surrogates ("\ud800") cannot be represented in
// UTF-8 and decode to U+FFFD, as encoding/json does. UnmarshalJSON never
// panics; on error *op is left unchanged.
func (op *Op) UnmarshalJSON(b []byte) error {
	d := decoder{b: b}
	out, err := d.op()
	if err != nil {
		return err
	}
	*op = out
	return nil
}

// decoder is a single-pass scanner over one JSON op.
type decoder struct {
	b []byte
	i int
}

// errorf wraps a sentinel with the byte offset, which is what a client
// author needs to find the problem in a message.
func (d *decoder) errorf(sentinel error, what string) error {
	return fmt.Errorf("decode op at offset %d: %s: %w", d.i, what, sentinel)
}

// skipSpace skips JSON's four whitespace bytes and nothing else.
func (d *decoder) skipSpace() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// op scans the whole input. Base and target lengths are summed as
// components arrive, so an op whose lengths overflow is refused here and
// every later caller can add lengths freely.
func (d *decoder) op() (Op, error) {
	d.skipSpace()
	if d.i >= len(d.b) || d.b[d.i] != '[' {
		return nil, d.errorf(ErrSyntax, "want array")
	}
	d.i++
	// Most ops have a handful of components; a small start avoids regrowth
	// without a counting pre-pass.
	out := make(Op, 0, 4)
	var base, target int
	d.skipSpace()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return out, d.end()
	}
	for {
		d.skipSpace()
		if d.i >= len(d.b) {
			return nil, d.errorf(ErrSyntax, "unexpected end")
		}
		// The first byte decides the kind: a quote starts an insert,
		// anything else must be a number.
		var c Component
		if d.b[d.i] == '"' {
			s, err := d.str()
			if err != nil {
				return nil, err
			}
			if s == "" {
				return nil, d.errorf(ErrBadComponent, "empty insert")
			}
			n := utf8.RuneCountInString(s) // str guarantees valid UTF-8
			if target > math.MaxInt-n {
				return nil, d.errorf(ErrOverflow, "target length")
			}
			target += n
			c.S = s
		} else {
			n, err := d.num()
			if err != nil {
				return nil, err
			}
			if n > 0 {
				if base > math.MaxInt-n || target > math.MaxInt-n {
					return nil, d.errorf(ErrOverflow, "length")
				}
				base += n
				target += n
			} else {
				if base > math.MaxInt+n {
					return nil, d.errorf(ErrOverflow, "base length")
				}
				base -= n
			}
			c.N = n
		}
		out = append(out, c)
		d.skipSpace()
		if d.i >= len(d.b) {
			return nil, d.errorf(ErrSyntax, "unexpected end")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			return out, d.end()
		default:
			return nil, d.errorf(ErrSyntax, "want , or ]")
		}
	}
}

// end accepts only whitespace after the closing bracket.
func (d *decoder) end() error {
	d.skipSpace()
	if d.i != len(d.b) {
		return d.errorf(ErrSyntax, "trailing data")
	}
	return nil
}

// num scans a JSON integer: -?[1-9][0-9]*. Zero, leading zeros, fractions
// and exponents are rejected, as is any magnitude above math.MaxInt (so
// math.MinInt, whose negation overflows, is rejected too).
func (d *decoder) num() (int, error) {
	neg := false
	if d.b[d.i] == '-' {
		neg = true
		d.i++
	}
	start := d.i
	n := 0
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		dig := int(d.b[d.i] - '0')
		// n*10+dig > MaxInt, checked without overflowing.
		if n > (math.MaxInt-dig)/10 {
			return 0, d.errorf(ErrOverflow, "integer")
		}
		n = n*10 + dig
		d.i++
	}
	// Zero is a well-formed JSON number but a meaningless component, so it
	// gets ErrBadComponent; "0.5" and "01" are not integers at all.
	switch {
	case d.i == start:
		return 0, d.errorf(ErrSyntax, "want number or string")
	case d.b[start] == '0' && d.i-start == 1 && n == 0:
		if d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E') {
			return 0, d.errorf(ErrSyntax, "not an integer")
		}
		return 0, d.errorf(ErrBadComponent, "zero count")
	case d.b[start] == '0':
		return 0, d.errorf(ErrSyntax, "leading zero")
	}
	// A count must be exact; "1.0" or "1e3" would be guesswork.
	if d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		return 0, d.errorf(ErrSyntax, "not an integer")
	}
	if neg {
		n = -n
	}
	return n, nil
}

// str scans a JSON string starting at its opening quote. Text without escapes
// is converted in one allocation; escapes switch to a byte buffer.
func (d *decoder) str() (string, error) {
	d.i++ // opening quote
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := string(d.b[start:d.i])
			d.i++
			return s, nil
		case c == '\\':
			return d.strEscaped(start)
		case c < 0x20:
			// JSON requires control characters to be escaped.
			return "", d.errorf(ErrSyntax, "control character in string")
		case c < utf8.RuneSelf:
			d.i++
		default:
			// Raw non-ASCII must be valid UTF-8: positions count code
			// points, which invalid bytes do not have.
			r, size := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && size == 1 {
				return "", d.errorf(ErrInvalidUTF8, "string")
			}
			d.i += size
		}
	}
	return "", d.errorf(ErrSyntax, "unterminated string")
}

// strEscaped finishes a string that contains escapes; d.b[start:d.i] has
// already been scanned and needs no unescaping.
func (d *decoder) strEscaped(start int) (string, error) {
	// Unescaping only shrinks text, so the raw string's length bounds the
	// result; find its end rather than sizing by the rest of the input,
	// which may be a large op.
	end := d.i
	for end < len(d.b) && d.b[end] != '"' {
		if d.b[end] == '\\' {
			end++
		}
		end++
	}
	buf := make([]byte, 0, min(end, len(d.b))-start)
	buf = append(buf, d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return string(buf), nil
		case c == '\\':
			d.i++
			if d.i >= len(d.b) {
				return "", d.errorf(ErrSyntax, "unterminated string")
			}
			e := d.b[d.i]
			d.i++
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := d.hex4()
				if !ok {
					return "", d.errorf(ErrSyntax, "bad \\u escape")
				}
				if utf16.IsSurrogate(r) {
					// A high surrogate followed by an escaped low one is an
					// astral code point; anything else is a lone surrogate.
					r2 := utf8.RuneError
					if d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
						save := d.i
						d.i += 2
						if lo, ok := d.hex4(); ok {
							if p := utf16.DecodeRune(r, lo); p != utf8.RuneError {
								r2 = p
							} else {
								d.i = save // not a pair: rescan it alone
							}
						} else {
							return "", d.errorf(ErrSyntax, "bad \\u escape")
						}
					}
					r = r2
				}
				buf = utf8.AppendRune(buf, r)
			default:
				return "", d.errorf(ErrSyntax, "bad escape")
			}
		case c < 0x20:
			return "", d.errorf(ErrSyntax, "control character in string")
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			d.i++
		default:
			r, size := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && size == 1 {
				return "", d.errorf(ErrInvalidUTF8, "string")
			}
			buf = append(buf, d.b[d.i:d.i+size]...)
			d.i += size
		}
	}
	return "", d.errorf(ErrSyntax, "unterminated string")
}

// hex4 reads four hex digits after \u.
func (d *decoder) hex4() (rune, bool) {
	if d.i+4 > len(d.b) {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	d.i += 4
	return r, true
}
