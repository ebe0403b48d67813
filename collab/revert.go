package collab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/collabd/collabd/ot"
)

// POST /api/docs/{id}/revert {"run"}: selective undo of one HTTP run.
// The run's ops are inverted, and the inverse is carried forward over
// every later op that is not the run's, so that it takes out what the run
// inserted and puts back what it deleted where those are now, and leaves
// everyone else's edits, even those made inside the run's text (an
// insert there is not the run's, so the inverse's delete goes around
// it). The result is one new op, made by a run of its own.

// revertRequest is the body of POST /api/docs/{id}/revert.
type revertRequest struct {
	Run  *string `json:"run"`
	Name string  `json:"name"`
}

// handleRevert answers POST /api/docs/{id}/revert.
func (s *Server) handleRevert(w http.ResponseWriter, r *http.Request) {
	wr, ok := s.beginWrite(w, r)
	if !ok {
		return
	}
	var req revertRequest
	if err := json.Unmarshal(wr.body, &req); err != nil || req.Run == nil {
		writeError(w, http.StatusBadRequest, CodeBadMessage, `the body must be {"run": "<run id>"} with optional "name"`)
		return
	}
	run, ok := canonicalUUID(*req.Run)
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such run")
		return
	}
	target, err := s.runClient(r.Context(), wr.id, run)
	switch {
	case err != nil:
		s.writeStoreError(w, r, err)
		return
	case target == "":
		writeError(w, http.StatusNotFound, CodeNotFound, "no such run")
		return
	}
	s.setName(wr, req.Name)
	wr.client = revertClient(wr.run, run, wr.who)
	s.commitRun(w, r, wr, false, func() (int64, ot.Op, bool) {
		rev, op, perr, err := s.revertOp(r.Context(), wr.id, target, run)
		switch {
		case err != nil:
			s.writeStoreError(w, r, err)
			return 0, nil, false
		case perr != nil:
			writeError(w, protoStatus(perr.Code), perr.Code, perr.Message)
			return 0, nil, false
		}
		return rev, op, true
	}, func(rep writeReply) any {
		// The text the revert puts back keeps its authors (authors.go).
		if err := s.revertAuthors(r.Context(), wr.id, target, wr.client, rep.rev); err != nil {
			s.log.Warn("revert authors", "doc", wr.id, "rev", rep.rev, "err", err)
		}
		return map[string]int64{"rev": rep.rev}
	})
}

// maxRunSearch is how many of the latest revisions runClient searches for
// a named run or a revert.
const maxRunSearch = 10_000

// runClient returns the client id of run: that of an unnamed ops, text
// or stream run directly; that of a named run (its client id carries its
// writer's name, httpwrite.go) or of a revert (which also names the run
// it reverted) found among the latest maxRunSearch revisions, so that a
// revert naming a run that does not exist costs a few pages, not the
// whole history. "" if there is none.
func (s *Server) runClient(ctx context.Context, id, run string) (string, error) {
	seq, _, err := s.store.ClientSeq(ctx, id, httpClient(run, ""))
	if err != nil || seq > 0 {
		return httpClient(run, ""), err
	}
	head, err := s.store.RevAt(ctx, id, time.Now().Add(time.Hour))
	if err != nil {
		return "", err
	}
	prefix := httpClientPrefix + run
	for hi := head; hi > 0 && head-hi < maxRunSearch; {
		lo := max(hi-maxRevisionsPage, 0)
		revs, err := s.store.Revisions(ctx, id, lo, int(hi-lo))
		if err != nil {
			return "", err
		}
		for _, v := range revs {
			if strings.HasPrefix(v.Client, prefix) && runOf(v.Client) == run {
				return v.Client, nil
			}
		}
		hi = lo
	}
	return "", nil
}

// revertOp returns the op that reverts the run whose client id is client
// and run id run, made on the revision it returns (the store's head when
// it looked). Reverts of the run made before count as the run's own ops,
// so that what they already reverted is not reverted twice.
func (s *Server) revertOp(ctx context.Context, id, client, run string) (int64, ot.Op, *protoError, error) {
	seq, last, err := s.store.ClientSeq(ctx, id, client)
	if err != nil {
		return 0, nil, nil, err
	}
	if seq == 0 {
		return 0, nil, errorf(CodeNotFound, "no such run"), nil
	}
	first, perr, err := s.runStart(ctx, id, client, seq, last)
	if err != nil || perr != nil {
		return 0, nil, perr, err
	}
	text, err := s.loadPastText(ctx, id, first-1)
	if err != nil {
		return 0, nil, nil, err
	}
	doc := ot.NewDoc(text)
	var undo ot.Op // undoes the run's ops seen so far; nil before the first
	var rb ot.Rebaser
	rev, n := first-1, 0
	for {
		page, err := s.store.Ops(ctx, id, rev, rebasePage, s.opts.MaxOpsPageBytes)
		if err != nil {
			return 0, nil, nil, err
		}
		if len(page) == 0 {
			break
		}
		if n += len(page); n > s.opts.MaxWriteRebase {
			return 0, nil, errorf(CodeBadOp, "the run is more than %d ops behind the head; it can no longer be reverted", s.opts.MaxWriteRebase), nil
		}
		for _, r := range page {
			if r.Rev != rev+1 {
				return 0, nil, nil, fmt.Errorf("store returned rev %d after rev %d", r.Rev, rev)
			}
			switch {
			case r.Client == client || revertOf(r.Client) == run:
				// Undo this op first, then the run's earlier ones.
				inv, err := invertOn(doc, r.Op)
				if err != nil {
					return 0, nil, nil, fmt.Errorf("invert op %d: %w", r.Rev, err)
				}
				if undo == nil {
					undo = inv
				} else if undo, err = ot.Compose(inv, undo); err != nil {
					return 0, nil, nil, fmt.Errorf("compose the undo of op %d: %w", r.Rev, err)
				}
			case undo != nil:
				// Someone else's op: the undo moves over it, which wins
				// ties (its inserts stay to the left of what comes back).
				rb.Reset(undo)
				if err := rb.Over(r.Op); err != nil {
					return 0, nil, nil, fmt.Errorf("transform the undo over op %d: %w", r.Rev, err)
				}
				undo = rb.Op()
			}
			if err := doc.Apply(r.Op); err != nil {
				return 0, nil, nil, fmt.Errorf("replay op %d: %w", r.Rev, err)
			}
			rev = r.Rev
		}
	}
	if undo == nil {
		return rev, ot.Op{}.Retain(doc.Len()), nil, nil
	}
	return rev, tighten(doc, undo), nil, nil
}

// tighten returns op, which applies to doc, with each place where it
// deletes some text and inserts other text replaced by the code-point
// diff of the two: an undo composed with the undo of an earlier revert
// deletes and inserts the same text, which changes nothing.
func tighten(doc *ot.Doc, op ot.Op) ot.Op {
	var out ot.Op
	pos := 0
	for i := 0; i < len(op); {
		if op[i].IsRetain() {
			out = out.Retain(op[i].N)
			pos += op[i].N
			i++
			continue
		}
		var ins strings.Builder
		del := 0
		for ; i < len(op) && !op[i].IsRetain(); i++ {
			if op[i].IsDelete() {
				del -= op[i].N
			} else {
				ins.WriteString(op[i].S)
			}
		}
		out = appendRuneDiff(out, []rune(doc.Slice(pos, pos+del)), []rune(ins.String()))
		pos += del
	}
	return out
}

// runStart returns the first revision of the run of client, which has
// made seq ops, the last of them revision last. A run of one op (ops,
// text, revert) is that op; a longer one is found by reading the
// revisions back from last, a page at a time.
func (s *Server) runStart(ctx context.Context, id, client string, seq, last int64) (int64, *protoError, error) {
	if seq == 1 {
		return last, nil, nil
	}
	first, found, scanned := last, int64(0), 0
	for hi := last; hi > 0 && found < seq; {
		lo := max(hi-maxRevisionsPage, 0)
		revs, err := s.store.Revisions(ctx, id, lo, int(hi-lo))
		if err != nil {
			return 0, nil, err
		}
		for _, v := range revs {
			if v.Client == client && v.Rev <= last {
				found++
				first = min(first, v.Rev)
			}
		}
		if scanned += int(hi - lo); scanned > s.opts.MaxWriteRebase {
			return 0, errorf(CodeBadOp, "the run spans more than %d ops; it cannot be reverted", s.opts.MaxWriteRebase), nil
		}
		hi = lo
	}
	if found < seq {
		return 0, nil, errors.New("the store has fewer ops of the run than its seq")
	}
	return first, nil, nil
}

// invertOn returns the op that undoes op on doc, the text op applies to.
func invertOn(doc *ot.Doc, op ot.Op) (ot.Op, error) {
	if op.BaseLen() != doc.Len() {
		return nil, fmt.Errorf("op covers %d code points, text has %d: %w", op.BaseLen(), doc.Len(), ot.ErrLengthMismatch)
	}
	out := make(ot.Op, 0, len(op))
	pos := 0
	for _, c := range op {
		switch {
		case c.IsRetain():
			out = out.Retain(c.N)
			pos += c.N
		case c.IsDelete():
			out = out.Insert(doc.Slice(pos, pos-c.N))
			pos -= c.N
		case c.IsInsert():
			out = out.Delete(len([]rune(c.S)))
		}
	}
	return out, nil
}
