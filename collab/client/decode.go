package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/collabd/collabd/ot"
)

// A client of a busy document spends most of its time reading: with N
// editors typing, each one receives every op, N² messages in all, and
// with encoding/json a batch frame was decoded twice (into
// []json.RawMessage, then each message into a struct, walking every byte
// twice and allocating per message). FrameDecoder decodes a frame in one
// pass: op and ack messages, which are nearly all of the traffic, by a
// scanner written for them; anything else, or anything unusual in an op
// or ack (escaped or differently cased keys, null, non-integer numbers, a
// repeated key), by encoding/json, so the result is always what
// encoding/json would make of it. FuzzFrameDecoder holds it to that.

// Message is one message from the server, as FrameDecoder decodes it.
// Fields a message type does not have are zero.
type Message struct {
	Type    string
	Rev     int64
	Seq     int64
	Name    string
	Color   string
	Ranges  []Range
	Code    string
	Message string
	// Raw is the message's JSON: a slice of the frame, valid until the
	// decoder's next Decode.
	Raw []byte

	author    string // decoded by encoding/json
	authorRaw []byte // the author id as the scanner found it, unescaped
	op        ot.Op  // decoded by encoding/json
	opRaw     []byte // the op's JSON, left for Op to decode
}

// Author returns the author id the message names.
func (m *Message) Author() string {
	if m.authorRaw != nil {
		return string(m.authorRaw)
	}
	return m.author
}

// AuthorIs reports whether the message names author id a, without
// allocating: a client compares every op's author with its own.
func (m *Message) AuthorIs(a string) bool {
	if m.authorRaw != nil {
		return string(m.authorRaw) == a
	}
	return m.author == a
}

// Op returns the message's op (nil when it has none). An op the scanner
// found is decoded here, so an error is an error of this message.
func (m *Message) Op() (ot.Op, error) {
	if m.opRaw == nil {
		return m.op, nil
	}
	var op ot.Op
	if err := op.UnmarshalJSON(m.opRaw); err != nil {
		return nil, fmt.Errorf("bad message from server: %w", err)
	}
	return op, nil
}

// OpLenDelta returns how much the message's op changes the document's
// length, in code points: what a client that keeps no text needs. It
// errors exactly when Op does, and allocates nothing for an op of plain
// counts and unescaped inserts.
func (m *Message) OpLenDelta() (int, error) {
	if m.opRaw != nil {
		if d, ok := opLenDelta(m.opRaw); ok {
			return d, nil
		}
	}
	op, err := m.Op()
	if err != nil {
		return 0, err
	}
	return op.TargetLen() - op.BaseLen(), nil
}

// FrameDecoder decodes the server's frames. It reuses its memory from one
// frame to the next, so it is not safe for concurrent use.
type FrameDecoder struct {
	msgs []Message
	buf  bytes.Buffer // the frame Read read
}

// maxKeptFrame bounds the frame buffer a FrameDecoder keeps between
// frames.
const maxKeptFrame = 1 << 20

// ReadFrame reads the next frame from ws into the decoder's buffer, for
// Decode: reading into a buffer kept from frame to frame, rather than
// allocating one per frame as ws.Read does. The frame is valid until the
// next ReadFrame.
func (d *FrameDecoder) ReadFrame(ctx context.Context, ws *websocket.Conn) ([]byte, error) {
	if d.buf.Cap() > maxKeptFrame {
		d.buf = bytes.Buffer{}
	}
	d.buf.Reset()
	_, r, err := ws.Reader(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := d.buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return d.buf.Bytes(), nil
}

// errBadFrame is returned for a frame that is not JSON, or an empty array.
var errBadFrame = errors.New("bad frame from server")

// Decode splits a frame into its messages: a frame holding a JSON array
// holds those messages, in order; any other frame holds one. The result
// is valid until the next Decode. A frame that is not JSON, or an empty
// array, yields no message and an error. A message that is JSON but not
// a message (a field of the wrong type, say) yields the messages before
// it and the error, so that a caller handles what came first, as it would
// have had it decoded each message in turn.
func (d *FrameDecoder) Decode(frame []byte) ([]Message, error) {
	clear(d.msgs) // let go of the previous frame's strings and slices
	d.msgs = d.msgs[:0]
	bad := func() ([]Message, error) {
		clear(d.msgs)
		d.msgs = d.msgs[:0]
		return nil, fmt.Errorf("%w: %.200s", errBadFrame, frame)
	}
	i := skipSpace(frame, 0)
	if i >= len(frame) || frame[i] != '[' {
		end, msgErr, ok := d.element(frame, i, 1, false)
		if !ok || skipSpace(frame, end) != len(frame) {
			return bad()
		}
		if msgErr != nil {
			return nil, msgErr
		}
		return d.msgs, nil
	}
	i = skipSpace(frame, i+1)
	if i < len(frame) && frame[i] == ']' {
		return bad()
	}
	// After a message fails, the rest of the frame is only checked to be
	// JSON: a frame that is not is refused whole.
	var msgErr error
	for {
		end, err, ok := d.element(frame, i, 2, msgErr != nil)
		if !ok {
			return bad()
		}
		if msgErr == nil {
			msgErr = err
		}
		i = skipSpace(frame, end)
		if i < len(frame) && frame[i] == ',' {
			i = skipSpace(frame, i+1)
			continue
		}
		if i < len(frame) && frame[i] == ']' {
			break
		}
		return bad()
	}
	if skipSpace(frame, i+1) != len(frame) {
		return bad()
	}
	return d.msgs, msgErr
}

// element decodes the JSON value at b[i:], at nesting depth depth (one
// for a frame's only message, two inside a batch), and appends it to the
// messages, unless skip. It returns where the value ends, and the
// message's error (when it is JSON but not a message, which is then not
// appended); ok false means the value is not JSON, and so the frame is
// bad.
func (d *FrameDecoder) element(b []byte, i, depth int, skip bool) (end int, msgErr error, ok bool) {
	if !skip {
		var m Message
		if end, ok := d.fast(b, i, depth, &m); ok {
			m.Raw = b[i:end]
			d.msgs = append(d.msgs, m)
			return end, nil, true
		}
	}
	if end, ok = skipValue(b, i, depth); !ok || skip {
		return end, nil, ok
	}
	var sm serverMessage
	if err := json.Unmarshal(b[i:end], &sm); err != nil {
		return end, fmt.Errorf("bad message from server: %w", err), true
	}
	d.msgs = append(d.msgs, Message{Type: sm.Type, Rev: sm.Rev, Seq: sm.Seq, author: sm.Author,
		Name: sm.Name, Color: sm.Color, Ranges: sm.Ranges, Code: sm.Code, Message: sm.Message,
		Raw: b[i:end], op: sm.Op})
	return end, nil, true
}

// Bits of the keys fast has seen, to leave a repeated key (whose last
// value wins, in encoding/json) to encoding/json.
const (
	seenType = 1 << iota
	seenRev
	seenSeq
	seenAuthor
	seenOp
)

// serverFields are serverMessage's JSON names: encoding/json matches keys
// to them case-insensitively, which fast leaves to it.
var serverFields = [...]string{"type", "rev", "seq", "op", "author", "name", "color", "ranges", "code", "message"}

// fast decodes an op or ack message at b[i:], at nesting depth depth, into m, when it is one and
// has nothing unusual in it; ok false means encoding/json must decide.
// Keys it does not know are skipped (and checked to be JSON).
func (d *FrameDecoder) fast(b []byte, i, depth int, m *Message) (end int, ok bool) {
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	seen := 0
	i = skipSpace(b, i+1)
	for {
		key, j, ok := plainString(b, i)
		if !ok {
			return 0, false
		}
		i = skipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		i = skipSpace(b, i+1)
		var bit int
		switch string(key) {
		case "type":
			bit = seenType
			v, j, ok := plainString(b, i)
			if !ok {
				return 0, false
			}
			switch string(v) {
			case typeOp:
				m.Type = typeOp
			case typeAck:
				m.Type = typeAck
			default:
				return 0, false
			}
			i = j
		case "rev":
			bit = seenRev
			if m.Rev, i, ok = plainInt(b, i); !ok {
				return 0, false
			}
		case "seq":
			bit = seenSeq
			if m.Seq, i, ok = plainInt(b, i); !ok {
				return 0, false
			}
		case "author":
			bit = seenAuthor
			v, j, ok := plainString(b, i)
			if !ok {
				return 0, false
			}
			m.authorRaw = v
			i = j
		case "op":
			bit = seenOp
			if i >= len(b) || b[i] != '[' {
				return 0, false
			}
			j, ok := skipValue(b, i, depth+1)
			if !ok {
				return 0, false
			}
			m.opRaw = b[i:j]
			i = j
		default:
			for _, f := range serverFields {
				if strings.EqualFold(string(key), f) {
					return 0, false
				}
			}
			if i, ok = skipValue(b, i, depth+1); !ok {
				return 0, false
			}
		}
		if seen&bit != 0 {
			return 0, false
		}
		seen |= bit
		i = skipSpace(b, i)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			// An ack with an op is left to encoding/json, which would
			// decode (and might refuse) the op.
			if seen&seenType == 0 || (m.Type == typeAck && seen&seenOp != 0) {
				return 0, false
			}
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// plainString scans a JSON string at b[i:] of printable ASCII without
// escapes, which decodes to its own bytes; ok false for any other.
func plainString(b []byte, i int) (s []byte, end int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// plainInt scans a JSON integer at b[i:] that fits an int64 with room to
// spare (up to 18 digits); ok false for any other number or value.
func plainInt(b []byte, i int) (n int64, end int, ok bool) {
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + int64(b[i]-'0')
		i++
	}
	digits := i - start
	if digits == 0 || digits > 18 || (b[start] == '0' && digits > 1) {
		return 0, 0, false
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return 0, 0, false
	}
	if neg {
		n = -n
	}
	return n, i, true
}

// opLenDelta computes the length change of an op from its JSON, for ops
// of counts up to 15 digits and inserts of valid UTF-8 without escapes;
// ok false means ot must decode it (and may refuse it). The JSON is
// known to be valid: skipValue found it.
func opLenDelta(b []byte) (int, bool) {
	i := skipSpace(b, 1)
	if i < len(b) && b[i] == ']' {
		return 0, skipSpace(b, i+1) == len(b)
	}
	var base, target int
	for i < len(b) {
		if b[i] == '"' {
			j := i + 1
			for j < len(b) && b[j] != '"' && b[j] != '\\' && b[j] >= 0x20 {
				j++
			}
			if j >= len(b) || b[j] != '"' || j == i+1 || !utf8.Valid(b[i+1:j]) {
				return 0, false
			}
			target += utf8.RuneCount(b[i+1 : j])
			i = j + 1
		} else {
			n, j, ok := plainInt(b, i)
			// ot refuses zero; 15 digits keep every sum far from overflow
			// for any op that fits in memory.
			if !ok || n == 0 || j-i > 15 {
				return 0, false
			}
			if n > 0 {
				base += int(n)
				target += int(n)
			} else {
				base -= int(n)
			}
			i = j
		}
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == ']' && skipSpace(b, i+1) == len(b) {
			return target - base, true
		}
		return 0, false
	}
	return 0, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// maxDepth is encoding/json's limit on nesting.
const maxDepth = 10000

// skipValue scans the JSON value at b[i:], at nesting depth depth if it
// is an array or object, and returns where it ends; ok false if it is not
// JSON as encoding/json's scanner has it (which does not check UTF-8).
func skipValue(b []byte, i, depth int) (end int, ok bool) {
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{' || c == '[':
		if depth > maxDepth {
			return 0, false
		}
		close := byte(']')
		if c == '{' {
			close = '}'
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == close {
			return i + 1, true
		}
		for {
			if close == '}' {
				if i, ok = skipString(b, i); !ok {
					return 0, false
				}
				i = skipSpace(b, i)
				if i >= len(b) || b[i] != ':' {
					return 0, false
				}
				i = skipSpace(b, i+1)
			}
			if i, ok = skipValue(b, i, depth+1); !ok {
				return 0, false
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return 0, false
			}
			if b[i] == close {
				return i + 1, true
			}
			if b[i] != ',' {
				return 0, false
			}
			i = skipSpace(b, i+1)
		}
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	}
	return 0, false
}

func skipLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// skipString scans a JSON string: control characters must be escaped,
// and escapes must be JSON's.
func skipString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			i++
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 {
					return 0, false
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return 0, false
					}
				}
				i += 4
			default:
				return 0, false
			}
		}
	}
	return 0, false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// skipNumber scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func skipNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}
