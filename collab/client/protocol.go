package client

// The client's side of the wire protocol (docs/protocol.md): the messages
// it reads and sends. They mirror collab/protocol.go, which this package
// must not import (importing the client must not pull in the server);
// collab's TestClientProtocolMatchesServer holds the two to one version.

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/collabd/collabd/ot"
)

// ProtocolVersion is the protocol version this client speaks; Dial fails
// against a server that welcomes with another.
const ProtocolVersion = 2

// Message types.
const (
	typeHello    = "hello"
	typeOp       = "op"
	typeCursor   = "cursor"
	typeWelcome  = "welcome"
	typeAck      = "ack"
	typePresence = "presence"
	typeLeave    = "leave"
	typeError    = "error"
)

// Range is a selection, [anchor, head] in code points; a cursor is a range
// with anchor == head.
type Range [2]int

// errBadRange is why a range that is not two integers does not decode.
var errBadRange = errors.New("a range must be [anchor, head], two integers")

// UnmarshalJSON accepts exactly two integers: encoding/json would quietly
// pad [1] or truncate [1,2,3] into a [2]int, and null into [0,0].
func (r *Range) UnmarshalJSON(b []byte) error {
	var a []int
	if err := json.Unmarshal(b, &a); err != nil || len(a) != 2 {
		return errBadRange
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

// opRecord is one committed op of a welcome's catch-up.
type opRecord struct {
	Rev    int64  `json:"rev"`
	Op     ot.Op  `json:"op"`
	Author string `json:"author"` // "" for the server's own ops
	Seq    int64  `json:"seq"`
}

type welcomeMessage struct {
	Type     string     `json:"type"`
	Protocol int        `json:"protocol"`
	Doc      string     `json:"doc"`
	ViewID   string     `json:"viewId"`
	Rev      int64      `json:"rev"`
	Text     *string    `json:"text,omitempty"`
	Ops      []opRecord `json:"ops,omitzero"`
	Color    string     `json:"color"`
	Author   string     `json:"author"`
	Peers    []Peer     `json:"peers"`
	LastSeq  int64      `json:"lastSeq"`
}

// transformRanges moves selections through an op, in place.
func transformRanges(ranges []Range, op ot.Op) {
	for i := range ranges {
		ranges[i][0] = ot.TransformIndex(op, ranges[i][0])
		ranges[i][1] = ot.TransformIndex(op, ranges[i][1])
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// mustJSON encodes a client message. The messages cannot fail to
// encode, so a failure is a bug.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("client: encoding %T: %v", v, err))
	}
	return b
}
