// Package ot is the operational-transform core of collabd: text operations,
// their JSON form, composition, transformation and inversion, a mutable
// document that applies them cheaply, and the client-side state machine. It
// is pure and synchronous, uses only the standard library, and imports
// nothing else of the project, so the server, the storage layer and test
// clients all share one definition of what an edit means.
//
// # Positions
//
// Every position and length counts Unicode code points: not bytes, which
// would let an edit split a character, and not UTF-16 units, which would make
// the server's arithmetic depend on one client language. An astral
// character such as 😀 counts as one; a grapheme cluster such as 👩‍💻
// counts as its three code points.
//
// # Ops
//
// An Op is a list of components covering the whole document it applies to:
// retain n code points, insert a string, or delete n code points. In JSON it
// is an array of positive integers (retain), non-empty strings (insert) and
// negative integers (delete): on "hello", [5," world"] appends and
// [-1,"H",4] capitalizes. Covering the whole document, rather than giving
// one position, lets the server reject an op made on the wrong text: its
// retains and deletes must sum to the document's length. In canonical form
// (Normalize) adjacent components of one kind are merged and an insert
// precedes a delete it touches.
//
// # Ties
//
// Transform(a, b) rebases two concurrent ops over each other. When both
// insert at the same position, a's text goes first (to the left), and a must
// be the op committed first. The server calls Transform(committed, incoming)
// and each client calls Transform(serverOp, pending); since the server's op
// was committed before the client's pending one, both apply the same rule
// and converge.
//
// # Doc
//
// Doc holds a text as a gap buffer of code points. Collaborative editing is
// dominated by runs of keystrokes at one place, which a gap buffer serves in
// O(1) per character with one flat array: no per-node allocation, pointer
// chasing or rebalancing as in a rope or piece table, and code-point indexes
// are plain array indexes. A code point takes one byte while the text is
// all ASCII, two while it is all in the Basic Multilingual Plane, else four.
// A rope would win for huge documents edited at scattered places, but
// documents here are bounded in size, and the cost of moving the gap (a
// memmove) is small next to the network round trip of each op. An op that
// is one splice (retain, insert, delete, retain), which is what typing
// makes, is validated and applied in one look at each component. The
// automerge-paper trace (260,000 edits) replays in about 1.5 ms.
//
// # Client
//
// Client implements the classic three-state client: Synchronized,
// AwaitingAck (one op in flight) and AwaitingWithBuffer (more local edits
// composed while waiting). Ops from the server are transformed against the
// in-flight op and the buffer before the caller applies them; an ack
// promotes the buffer to the next op to send. See Client for reconnecting.
package ot
