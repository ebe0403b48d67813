package client

// The client's side of the wire protocol (docs/protocol.md): the messages
// it reads are collab/wire's, declared once for the server and this
// client, so that importing the client does not pull in the server
// (package collab) and the two cannot drift apart.

import (
	"encoding/json"
	"fmt"

	"github.com/collabd/collabd/collab/wire"
	"github.com/collabd/collabd/ot"
)

// ProtocolVersion is the protocol version this client speaks; Dial fails
// against a server that welcomes with another.
const ProtocolVersion = wire.ProtocolVersion

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
)

// Range is a selection, [anchor, head] in code points; a cursor is a range
// with anchor == head. It decodes exactly two integers.
type Range = wire.Range

// Peer is another editor of the document, as welcome and presence show it.
type Peer = wire.Peer

type welcomeMessage = wire.Welcome

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
