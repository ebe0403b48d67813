package collab

// This file holds every message of the wire protocol (docs/protocol.md) and
// nothing else: decoding what clients send, encoding what the server sends.
// The hot messages (op, ack, SSE op events) are appended by hand into byte
// slices, so that one encoding is shared by every recipient and no
// reflection runs per op.

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/collabd/collabd/collab/wire"
	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

// ProtocolVersion is sent in every welcome; it changes whenever the wire
// protocol does (collab/wire declares it for the client too).
const ProtocolVersion = wire.ProtocolVersion

// Error codes of the protocol (collab/wire), each with the WebSocket close
// code that follows it when the session cannot continue.
const (
	CodeBadMessage   = wire.CodeBadMessage
	CodeNotFound     = wire.CodeNotFound
	CodeBadOp        = wire.CodeBadOp
	CodeTooLarge     = wire.CodeTooLarge
	CodeRateLimited  = wire.CodeRateLimited
	CodeShuttingDown = wire.CodeShuttingDown
	CodeInternal     = wire.CodeInternal
	// CodeUnauthorized: with access tokens on, a request without a valid
	// token (HTTP 401), or an editing session whose token expired.
	CodeUnauthorized = wire.CodeUnauthorized
)

// CodeForbidden answers a WebSocket upgrade from an origin that may not
// open editing sessions (HTTP 403), and closes (4403) an editing session
// whose signed-in user lost access to the document, or whose link was
// rotated (access.go).
const CodeForbidden = wire.CodeForbidden

// closeCodes maps each error code to its WebSocket close code.
var closeCodes = map[string]int{
	CodeBadMessage:   4400,
	CodeNotFound:     4404,
	CodeBadOp:        4409,
	CodeTooLarge:     4413,
	CodeRateLimited:  4429,
	CodeShuttingDown: 1001,
	CodeInternal:     1011,
	CodeUnauthorized: 4401,
	CodeForbidden:    4403,
}

// Message types.
const (
	typeHello    = wire.TypeHello
	typeOp       = wire.TypeOp
	typeCursor   = wire.TypeCursor
	typeWelcome  = wire.TypeWelcome
	typeAck      = wire.TypeAck
	typePresence = wire.TypePresence
	typeLeave    = wire.TypeLeave
	typeError    = wire.TypeError
	// Only to clients that asked for "comments" in their hello.
	typeComments = wire.TypeComments
	typeComment  = wire.TypeComment
)

// protoError is an error a client caused, with the protocol code it is
// answered with. Seq, when non-zero, names the op it concerns.
type protoError struct {
	Code    string
	Message string
	Seq     int64
}

func (e *protoError) Error() string { return e.Code + ": " + e.Message }

func errorf(code, format string, args ...any) *protoError {
	return &protoError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Range is a selection, [anchor, head] in code points; a cursor is a range
// with anchor == head. It decodes exactly two integers.
type Range = wire.Range

// errBadRange is why a range that is not two integers does not decode.
var errBadRange = wire.ErrBadRange

// clientMessage is any message a client sends. Fields that a type does not
// use are ignored; the pointer fields tell "missing" from zero.
type clientMessage struct {
	Type   string          `json:"type"`
	Client string          `json:"client"`
	Name   *string         `json:"name"`
	Rev    *int64          `json:"rev"`
	Seq    *int64          `json:"seq"`
	Op     json.RawMessage `json:"op"`
	Ranges []Range         `json:"ranges"`
	// Features, in a hello, names optional message kinds the client
	// wants: "comments" (comments.go).
	Features []string `json:"features"`
}

// hello is a validated hello message.
type hello struct {
	client string // canonical UUID form
	name   string
	rev    int64 // -1 when the client gave none
	// comments: the client wants comment messages.
	comments bool
}

// opMessage is a validated op message.
type opMessage struct {
	rev int64
	seq int64
	op  ot.Op
}

// cursorMessage is a validated cursor message.
type cursorMessage struct {
	rev    int64
	ranges []Range
}

// Limits on what clients may put in a message, beyond its size in bytes.
const (
	maxNameRunes = 64
	maxRanges    = 64
	defaultName  = "Anonymous"
	maxFeatures  = 16
	// featureComments in a hello's features asks for comment messages.
	featureComments = "comments"
)

// decodeClientMessage parses one frame from a client into a *hello,
// *opMessage or *cursorMessage, or returns a *protoError saying what is
// wrong with it.
func decodeClientMessage(data []byte) (any, *protoError) {
	if !utf8.Valid(data) {
		return nil, errorf(CodeBadMessage, "message is not valid UTF-8")
	}
	var m clientMessage
	// Unmarshal, not a Decoder: a Decoder per message copies the frame
	// into a buffer of its own, most of what decoding allocates.
	if err := json.Unmarshal(data, &m); err != nil {
		var syn *json.SyntaxError
		switch {
		case errors.Is(err, errBadRange):
			return nil, errorf(CodeBadMessage, "cursor: %v", err)
		case errors.As(err, &syn) && strings.Contains(syn.Error(), "after top-level value"):
			return nil, errorf(CodeBadMessage, "one message per frame: trailing data after the JSON object")
		}
		return nil, errorf(CodeBadMessage, "message is not a JSON object: %v", err)
	}
	switch m.Type {
	case typeHello:
		return decodeHello(&m)
	case typeOp:
		return decodeOp(&m)
	case typeCursor:
		return decodeCursor(&m)
	case "":
		return nil, errorf(CodeBadMessage, `message has no "type"`)
	default:
		return nil, errorf(CodeBadMessage, "unknown message type %q", m.Type)
	}
}

func decodeHello(m *clientMessage) (any, *protoError) {
	id, err := uuid.Parse(m.Client)
	if err != nil || len(m.Client) != 36 {
		return nil, errorf(CodeBadMessage, `hello: "client" must be a UUID, got %q`, truncate(m.Client, 40))
	}
	h := &hello{client: id.String(), name: defaultName, rev: -1}
	if m.Name != nil {
		h.name = cleanName(*m.Name)
	}
	if m.Rev != nil {
		if *m.Rev < 0 {
			return nil, errorf(CodeBadMessage, `hello: "rev" must be >= 0, got %d`, *m.Rev)
		}
		h.rev = *m.Rev
	}
	if len(m.Features) > maxFeatures {
		return nil, errorf(CodeBadMessage, `hello: at most %d "features"`, maxFeatures)
	}
	// Unknown features are ignored: a newer client asks a server that
	// may not know them.
	h.comments = slices.Contains(m.Features, featureComments)
	return h, nil
}

func decodeOp(m *clientMessage) (any, *protoError) {
	if m.Rev == nil || m.Seq == nil || m.Op == nil {
		return nil, errorf(CodeBadMessage, `op: "rev", "seq" and "op" are required`)
	}
	o := &opMessage{rev: *m.Rev, seq: *m.Seq}
	if o.seq < 1 {
		return nil, &protoError{Code: CodeBadOp, Message: fmt.Sprintf("seq must be >= 1, got %d", o.seq), Seq: o.seq}
	}
	if o.rev < 0 {
		return nil, &protoError{Code: CodeBadOp, Message: fmt.Sprintf("rev must be >= 0, got %d", o.rev), Seq: o.seq}
	}
	if err := json.Unmarshal(m.Op, &o.op); err != nil {
		return nil, &protoError{Code: CodeBadOp, Message: "bad op: " + err.Error(), Seq: o.seq}
	}
	// Canonical form before anything else: [-1,"x"] and ["x",-1] are one
	// edit, and transforming either must place "x" alike, on the server
	// and on every client, which all transform canonical ops.
	o.op = o.op.Normalize()
	return o, nil
}

func decodeCursor(m *clientMessage) (any, *protoError) {
	if m.Rev == nil || m.Ranges == nil {
		return nil, errorf(CodeBadMessage, `cursor: "rev" and "ranges" are required`)
	}
	if *m.Rev < 0 {
		return nil, errorf(CodeBadMessage, `cursor: "rev" must be >= 0, got %d`, *m.Rev)
	}
	if len(m.Ranges) > maxRanges {
		return nil, errorf(CodeBadMessage, "cursor: at most %d ranges, got %d", maxRanges, len(m.Ranges))
	}
	for _, r := range m.Ranges {
		if r[0] < 0 || r[1] < 0 {
			return nil, errorf(CodeBadMessage, "cursor: positions must be >= 0, got [%d,%d]", r[0], r[1])
		}
	}
	return &cursorMessage{rev: *m.Rev, ranges: m.Ranges}, nil
}

// cleanName keeps a display name printable and short.
func cleanName(s string) string {
	var b []rune
	for _, r := range s {
		if len(b) == maxNameRunes {
			break
		}
		if unicode.IsControl(r) {
			continue
		}
		b = append(b, r)
	}
	if len(b) == 0 {
		return defaultName
	}
	return string(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Peer is another editor of the document, as welcome and presence show it.
type Peer = wire.Peer

// OpRecord is one committed op as the API and catch-up show it.
type OpRecord = wire.OpRecord

// The messages the Go client decodes too are declared once, in
// collab/wire.
type (
	welcomeMessage  = wire.Welcome
	presenceMessage = wire.Presence
	leaveMessage    = wire.Leave
	errorMessage    = wire.Error
)

// mustJSON encodes a server message. The types above cannot fail to
// encode, so a failure is a bug.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("collab: encoding %T: %v", v, err))
	}
	return b
}

func encodeError(e *protoError) []byte {
	return mustJSON(errorMessage{Type: typeError, Code: e.Code, Message: e.Message, Seq: e.Seq})
}

// appendAck encodes {"type":"ack","rev":N,"seq":S}.
func appendAck(dst []byte, rev, seq int64) []byte {
	dst = append(dst, `{"type":"ack","rev":`...)
	dst = strconv.AppendInt(dst, rev, 10)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	return append(dst, '}')
}

// appendOpMessage encodes {"type":"op","rev":N,"op":[...],"author":"...","seq":S}.
// Author ids are base64url (or empty for server-made ops), so they need
// no escaping.
func appendOpMessage(dst []byte, rev int64, op ot.Op, author string, seq int64) []byte {
	dst = append(dst, `{"type":"op","rev":`...)
	dst = strconv.AppendInt(dst, rev, 10)
	dst = append(dst, `,"op":`...)
	dst = op.AppendJSON(dst)
	dst = append(dst, `,"author":"`...)
	dst = append(dst, author...)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	return append(dst, '}')
}

// Server-Sent Events. Each event is encoded once and shared by every viewer.

// appendSSEOp encodes an op event: id is the revision it leaves the viewer at.
func appendSSEOp(dst []byte, rev int64, op ot.Op) []byte {
	dst = append(dst, "event: op\nid: "...)
	dst = strconv.AppendInt(dst, rev, 10)
	dst = append(dst, "\ndata: {\"rev\":"...)
	dst = strconv.AppendInt(dst, rev, 10)
	dst = append(dst, `,"op":`...)
	dst = op.AppendJSON(dst)
	return append(dst, "}\n\n"...)
}

// A snapshot event is sseSnapshotHead(rev), the text as a JSON string,
// and sseSnapshotTail: written in three pieces, so that every viewer and
// reader of the document shares one encoding of a large text
// (snapshot.go). encoding/json escapes line breaks inside the text, so
// the data stays on one line.
func sseSnapshotHead(rev int64) []byte {
	dst := append([]byte(nil), "event: snapshot\nid: "...)
	dst = strconv.AppendInt(dst, rev, 10)
	dst = append(dst, "\ndata: {\"rev\":"...)
	dst = strconv.AppendInt(dst, rev, 10)
	return append(dst, `,"text":`...)
}

var sseSnapshotTail = []byte("}\n\n")

// commentsMessage carries every thread of the document, their ranges at
// rev; it follows the welcome of a client that asked for comments.
type commentsMessage struct {
	Type     string   `json:"type"`
	Rev      int64    `json:"rev"`
	Comments []thread `json:"comments"`
}

// commentMessage tells of one change to a thread: Event is created,
// replied, edited, resolved, reopened or deleted; Reply names the reply
// that was added, edited or deleted. Comment is the thread after the
// change (its range at Rev), absent when the thread was deleted.
type commentMessage struct {
	Type    string  `json:"type"`
	Event   string  `json:"event"`
	Rev     int64   `json:"rev"`
	ID      string  `json:"id"`
	Reply   string  `json:"reply,omitempty"`
	Comment *thread `json:"comment,omitempty"`
}
