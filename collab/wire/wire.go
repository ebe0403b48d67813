// Package wire holds the messages of collabd's WebSocket protocol
// (docs/protocol.md) that the server (package collab) encodes and the Go
// client (package collab/client) decodes: one declaration of each, so the
// two cannot drift apart, in a package small enough that importing the
// client does not pull in the server. It imports only ot and the standard
// library.
//
// What only one side needs stays on that side: the server's validation of
// client messages and its hand-written encoders of the hot messages (op,
// ack), the client's frame decoder. Their JSON must match these types;
// the protocol tests of both packages hold them to it.
package wire

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/collabd/collabd/ot"
)

// ProtocolVersion is sent in every welcome; it changes whenever the wire
// protocol does. Version 2 names authors, never client ids. The client
// refuses a welcome of another version.
const ProtocolVersion = 2

// Message types.
const (
	TypeHello    = "hello"
	TypeOp       = "op"
	TypeCursor   = "cursor"
	TypeWelcome  = "welcome"
	TypeAck      = "ack"
	TypePresence = "presence"
	TypeLeave    = "leave"
	TypeError    = "error"
	// Only to clients that asked for "comments" in their hello.
	TypeComments = "comments"
	TypeComment  = "comment"
)

// Error codes of the protocol, as error messages and HTTP error bodies
// carry them.
const (
	CodeBadMessage   = "bad_message"
	CodeNotFound     = "not_found"
	CodeBadOp        = "bad_op"
	CodeTooLarge     = "too_large"
	CodeRateLimited  = "rate_limited"
	CodeShuttingDown = "shutting_down"
	CodeInternal     = "internal"
	// CodeUnauthorized: with access tokens on, a request without a valid
	// token (HTTP 401), or an editing session whose token expired.
	CodeUnauthorized = "unauthorized"
	// CodeForbidden: an origin that may not open editing sessions, or a
	// signed-in user who lost access to the document.
	CodeForbidden = "forbidden"
)

// Range is a selection, [anchor, head] in code points; a cursor is a range
// with anchor == head.
type Range [2]int

// ErrBadRange is why a range that is not two integers does not decode.
var ErrBadRange = errors.New("a range must be [anchor, head], two integers")

// UnmarshalJSON accepts exactly two integers: encoding/json would quietly
// pad [1] or truncate [1,2,3] into a [2]int, and null into [0,0].
func (r *Range) UnmarshalJSON(b []byte) error {
	var a []int
	if err := json.Unmarshal(b, &a); err != nil || len(a) != 2 {
		return ErrBadRange
	}
	*r = Range{a[0], a[1]}
	return nil
}

// Peer is another editor of the document, as welcome and presence show it.
type Peer struct {
	Author string  `json:"author"`
	Name   string  `json:"name"`
	Color  string  `json:"color"`
	Ranges []Range `json:"ranges"`
}

// OpRecord is one committed op as the API and catch-up show it.
type OpRecord struct {
	Rev    int64  `json:"rev"`
	Op     ot.Op  `json:"op"`
	Author string `json:"author"` // "" for the server's own ops
	Seq    int64  `json:"seq"`
	// Time is when the server committed the op. It is omitted from
	// welcome catch-up ops.
	Time *time.Time `json:"time,omitempty"`
}

// Welcome starts an editing session: the text (or, resuming, the ops
// since the client's revision), the other editors, and the client's own
// author id and color.
type Welcome struct {
	Type     string     `json:"type"`
	Protocol int        `json:"protocol"`
	Doc      string     `json:"doc"`
	ViewID   string     `json:"viewId"`
	Rev      int64      `json:"rev"`
	Text     *string    `json:"text,omitempty"`
	Ops      []OpRecord `json:"ops,omitzero"` // present, maybe empty, when Text is not
	Color    string     `json:"color"`
	Author   string     `json:"author"` // the client's own author id
	Peers    []Peer     `json:"peers"`
	LastSeq  int64      `json:"lastSeq"`
}

// Presence tells where another editor's selections are, at Rev.
type Presence struct {
	Type   string  `json:"type"`
	Author string  `json:"author"`
	Name   string  `json:"name"`
	Color  string  `json:"color"`
	Ranges []Range `json:"ranges"`
	Rev    int64   `json:"rev"`
}

// Leave tells that an editor left.
type Leave struct {
	Type   string `json:"type"`
	Author string `json:"author"`
}

// Error tells why the server refused a message (Seq names the op it
// concerns, when non-zero) or is about to close the session.
type Error struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Seq     int64  `json:"seq,omitempty"`
}
