package collab

import "errors"

// HTTP writes in cluster mode. A write (POST /ops, PUT /text, POST
// /revert) that reaches a node which does not own its document is
// forwarded to the owner over the DocLink, as a restore is: the follower
// hub sends a Submission with the run's client id, and the owner applies
// it as it would its own write (applyWrite: transform, strict, no-op,
// admission) and answers once it is durable, with the revision it became
// (or the conflict's head, or the refusal). So a client gets the same
// answer through any node. A base older than the follower's memory is
// first rebased over the store's ops on the follower, as on the owner; an
// owner that finds the base older than its own memory asks for the same
// (codeRebase). The owner also remembers the runs it applied, so that an
// Idempotency-Key retried through several nodes at once applies once.
//
// A stream's pieces are forwarded the same way (Submission.Stream): the
// owner places each at the stream's caret and answers with the caret
// after it, so a stream through any node keeps its text together. A piece
// the owner did not answer (a timeout, a change of owner) ends the stream
// with an error line: it may or may not have been applied, and a stream
// has no key to retry it by; what was committed stays.

// codeRebase is the owner's answer to a forwarded write made on a
// revision older than its memory: rebase it and send it again. It never
// reaches a client.
const codeRebase = "rebase"

// writeFollower forwards a write to the owner (follower).
func (h *hub) writeFollower(m writeReq) {
	if !m.strict && m.rev < h.histBase && m.rev <= h.rev {
		// Rebased over the store's ops off the hub's goroutine first,
		// so that the owner transforms it over a few ops at most. (A
		// strict write keeps its base: the owner says it conflicts.)
		m.reply <- writeReply{tooOld: true}
		return
	}
	sub := Submission{Client: m.client, Seq: m.seq, Rev: m.rev, Op: m.op, Strict: m.strict}
	h.startForward(sub, fwdReply{write: m.reply})
}

// writeForwarded hands a forwarded write's outcome to its request
// (follower).
func (h *hub) writeForwarded(r fwdReply) {
	switch {
	case errors.Is(r.err, ErrNoOwner):
		h.link.TryOwn()
		r.write <- writeReply{unanswered: true}
	case r.err != nil:
		h.log.Warn("forward write", "err", r.err)
		r.write <- writeReply{unanswered: true}
	case r.rep.Code == "":
		r.write <- writeReply{rev: r.rep.Rev, caret: r.rep.Caret}
	case r.rep.Code == CodeConflict:
		r.write <- writeReply{conflict: true, rev: r.rep.Rev}
	case r.rep.Code == CodeShuttingDown:
		r.write <- writeReply{unanswered: true}
	case r.rep.Code == codeRebase:
		r.write <- writeReply{tooOld: true}
	default:
		r.write <- writeReply{perr: &protoError{Code: r.rep.Code, Message: r.rep.Message}}
	}
}

// submittedWrite applies an HTTP write another node forwarded (owner).
func (h *hub) submittedWrite(s Submission, respond func(SubmitReply)) {
	if s.Stream != nil {
		h.submittedStream(s, respond)
		return
	}
	if err := s.Op.Validate(); err != nil {
		respond(SubmitReply{Code: CodeBadOp, Message: "op: " + err.Error()})
		return
	}
	m := writeReq{client: s.Client, seq: s.Seq, rev: s.Rev, op: s.Op, strict: s.Strict, bytes: opBytes(s.Op)}
	h.writeOwner(m, func(r writeReply) {
		switch {
		case r.conflict:
			respond(SubmitReply{Code: CodeConflict, Rev: r.rev})
		case r.tooOld:
			respond(SubmitReply{Code: codeRebase})
		case r.perr != nil:
			respond(SubmitReply{Code: r.perr.Code, Message: r.perr.Message})
		default:
			respond(SubmitReply{Rev: r.rev})
		}
	})
}

// writeOwner applies a write, this node's own or forwarded, on the
// owner in cluster mode. The owner remembers the runs it applied beside
// other nodes' clients (h.remote), so that one run retried through
// several nodes at once is applied once: a repeat gets the revision the
// first became, once that is durable. It does not read the store for
// this, on the hub's goroutine: a retry made after the first was
// answered finds it in the store on its own node first (replayed).
func (h *hub) writeOwner(m writeReq, answer func(writeReply)) {
	st := h.remote[m.client]
	if st == nil {
		st = &seqState{}
		h.pruneRemote()
		h.remote[m.client] = st
	}
	if m.seq > st.lastSeq {
		h.applyWrite(m, st, answer)
		return
	}
	if st.lastRev <= h.durableRev() {
		answer(writeReply{rev: st.lastRev})
		return
	}
	// Still in the batch: the request that made it is answered once it
	// is durable; this one is told to try again.
	answer(writeReply{unanswered: true, perr: errorf(CodeShuttingDown, "the write is being committed; try again")})
}

// submittedStream applies a stream's piece another node forwarded (owner).
func (h *hub) submittedStream(s Submission, respond func(SubmitReply)) {
	if !h.owner {
		// Ownership moved while the piece was on its way: never forward
		// it again from here.
		respond(SubmitReply{Code: CodeShuttingDown, Message: "this node no longer owns the document"})
		return
	}
	sp := s.Stream
	m := writeReq{client: s.Client, seq: s.Seq, rev: s.Rev, bytes: len(sp.Text),
		stream: &streamPiece{caret: sp.Caret, text: sp.Text, name: sp.Name, end: sp.End}}
	h.streamPiece(m, func(r writeReply) {
		switch {
		case r.tooOld:
			respond(SubmitReply{Code: codeRebase})
		case r.perr != nil:
			respond(SubmitReply{Code: r.perr.Code, Message: r.perr.Message})
		default:
			respond(SubmitReply{Rev: r.rev, Caret: r.caret})
		}
	})
}
