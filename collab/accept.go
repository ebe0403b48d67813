package collab

import (
	"fmt"
	"time"

	"github.com/collabd/collabd/ot"
)

// accept is the one way an op enters a document's log on the node that
// sequences it: an editor's op, one forwarded by another node and a
// restore all come here, already transformed to the current revision.
// The op must still fit the document's bounds (MaxDocChars, then
// Admission: MaxDocHistory and the store's; then the memory budget), else it is refused with
// too_large and nothing changes. An accepted op is applied in memory,
// becomes the next revision and joins the batch as p, with its record.
// seq is the client's seq, echoed in a refusal.
func (h *hub) accept(op ot.Op, client string, seq int64, p pendingOp) *protoError {
	if n := op.TargetLen(); n > h.srv.opts.MaxDocChars && n > h.doc.Len() {
		return &protoError{Code: CodeTooLarge, Seq: seq,
			Message: fmt.Sprintf("document would have %d code points; the limit is %d", n, h.srv.opts.MaxDocChars)}
	}
	rec := Record{Rev: h.rev + 1, Op: op, Client: client, Seq: seq, Time: time.Now().UTC()}
	size, grows := h.srv.recordBytes(rec), inserts(op)
	if err := h.srv.admission.Admit(h.srv.ctx, Growth{LogBytes: h.logBytes, Adds: size, Inserts: grows}); err != nil {
		return &protoError{Code: CodeTooLarge, Seq: seq, Message: err.Error() + "; only deletions are accepted"}
	}
	if grows && h.srv.mem.full() { // budget.go
		return &protoError{Code: CodeTooLarge, Seq: seq, Message: h.srv.memoryFullMessage()}
	}
	if err := h.doc.Apply(op); err != nil {
		return &protoError{Code: CodeBadOp, Seq: seq, Message: err.Error()}
	}
	h.rev++
	h.logBytes += size
	p.rec = rec
	n := opBytes(op)
	h.remember(rec, n)
	h.batch = append(h.batch, p)
	h.batchBytes += n
	h.movePresence(op)
	return nil
}
