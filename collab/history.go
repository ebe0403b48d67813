package collab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/collabd/collabd/ot"
)

// History: every committed revision of a document stays readable (the
// Store keeps the op log and milestone snapshots), can be restored through
// one ordinary op, and goes away only with the whole document. The HTTP
// shape is in docs/protocol.md, "History".

const (
	// maxRevisionsPage bounds one page of /revisions, in rows or buckets.
	maxRevisionsPage = 1000
	// maxRevisionsBytes bounds one page of /revisions as encoded; the
	// client continues from the last row it got.
	maxRevisionsBytes = 256 << 10
	// maxRestoreBody bounds the body of POST /restore.
	maxRestoreBody = 4 << 10
)

// historyRev returns the revision a request asks for with ?rev=R or
// ?at=<RFC 3339 time>, and whether it asks for one at all. A malformed
// one is a *protoError (400).
func (s *Server) historyRev(r *http.Request, id string) (rev int64, asked bool, err error) {
	q := r.URL.Query()
	revArg, atArg := q.Get("rev"), q.Get("at")
	switch {
	case !q.Has("rev") && !q.Has("at"):
		return 0, false, nil
	case q.Has("rev") && q.Has("at"):
		return 0, true, errorf(CodeBadMessage, "give rev or at, not both")
	case q.Has("rev"):
		rev, err := strconv.ParseInt(revArg, 10, 64)
		if err != nil || rev < 0 {
			return 0, true, errorf(CodeBadMessage, "rev must be a revision >= 0")
		}
		return rev, true, nil
	}
	t, err := time.Parse(time.RFC3339Nano, atArg)
	if err != nil {
		return 0, true, errorf(CodeBadMessage, "at must be an RFC 3339 time, like 2026-03-01T10:00:00Z")
	}
	rev, err = s.store.RevAt(r.Context(), id, t)
	return rev, true, err
}

// writeHistoryError is writeStoreError that also knows the history's
// errors.
func (s *Server) writeHistoryError(w http.ResponseWriter, r *http.Request, err error) {
	var pe *protoError
	switch {
	case errors.As(err, &pe):
		writeError(w, http.StatusBadRequest, pe.Code, pe.Message)
	case errors.Is(err, ErrNoRevision):
		writeError(w, http.StatusNotFound, CodeNotFound, "no such revision")
	default:
		s.writeStoreError(w, r, err)
	}
}

// serveDocAt answers GET /api/docs/{id}?rev|at= (and /text, and the view
// id's), when the request asks for a revision; it reports whether it did.
// plain asks for text/plain; byView says the request came by the view id,
// so the answer must not name the edit id. The text is shared with the
// other requests for the same revision (pastrev.go).
func (s *Server) serveDocAt(w http.ResponseWriter, r *http.Request, id string, plain, byView bool) bool {
	if q := r.URL.Query(); !q.Has("rev") && !q.Has("at") {
		return false
	}
	rev, _, err := s.historyRev(r, id)
	var e *pastText
	if err == nil {
		e, err = s.pastText(r.Context(), id, rev)
	}
	switch {
	case errors.Is(err, errHeldFull):
		s.refuseHeld(w)
		return true
	case err != nil:
		s.writeHistoryError(w, r, err)
		return true
	}
	defer s.past.put(e)
	if plain {
		s.writeText(w, rev, e.text)
		return true
	}
	js, ok := s.pastJSON(e)
	if !ok {
		s.refuseHeld(w)
		return true
	}
	head := fmt.Sprintf(`{"id":%q,"viewId":%q,"rev":%d,"text":`, id, e.viewID, rev)
	if byView {
		head = fmt.Sprintf(`{"viewId":%q,"rev":%d,"text":`, e.viewID, rev)
	}
	s.writeBody(w, "application/json", head, js, "}")
	return true
}

func (s *Server) writeText(w http.ResponseWriter, rev int64, text string) {
	w.Header().Set("X-Collab-Rev", strconv.FormatInt(rev, 10))
	s.writeBody(w, "text/plain; charset=utf-8", text)
}

// handleGetViewText answers GET /api/view/{viewId}/text: the text as
// plain text, now or (?rev, ?at) at a past revision.
func (s *Server) handleGetViewText(w http.ResponseWriter, r *http.Request) {
	id, err := s.viewDoc(r)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if s.serveDocAt(w, r, id, true, true) {
		return
	}
	t, err := s.docText(r.Context(), id, false)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.writeText(w, t.rev, t.text)
}

// revisionJSON is one row of GET .../revisions.
type revisionJSON struct {
	Rev      int64  `json:"rev"`
	Time     string `json:"time"`
	Author   string `json:"author"`
	Inserted int64  `json:"inserted"`
	Deleted  int64  `json:"deleted"`
	// Run is the run id of an op an HTTP write made (httpwrite.go), and
	// Name the name its writer had: its token's, or the one it gave.
	// Reverts is, for a revert's op, the run it reverted.
	Run     string `json:"run,omitempty"`
	Name    string `json:"name,omitempty"`
	Reverts string `json:"reverts,omitempty"`
}

// bucketJSON is one bucket of GET .../revisions?bucket=.
type bucketJSON struct {
	Time     string   `json:"time"`
	FirstRev int64    `json:"firstRev"`
	LastRev  int64    `json:"lastRev"`
	Count    int64    `json:"count"`
	Inserted int64    `json:"inserted"`
	Deleted  int64    `json:"deleted"`
	Authors  []string `json:"authors"`
}

var bucketUnits = map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}

func (s *Server) handleDocRevisions(w http.ResponseWriter, r *http.Request) {
	id, ok := docID(r)
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such document")
		return
	}
	s.serveRevisions(w, r, id)
}

func (s *Server) handleViewRevisions(w http.ResponseWriter, r *http.Request) {
	id, err := s.viewDoc(r)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.serveRevisions(w, r, id)
}

// serveRevisions answers GET .../revisions?from=R&limit=N, and with
// &bucket=minute|hour|day the same revisions summed by period.
func (s *Server) serveRevisions(w http.ResponseWriter, r *http.Request, id string) {
	from, err := queryInt(r, "from", 0)
	if err != nil || from < 0 {
		writeError(w, http.StatusBadRequest, CodeBadMessage, "from must be a revision >= 0")
		return
	}
	limit, err := queryInt(r, "limit", maxRevisionsPage)
	if err != nil || limit < 1 {
		writeError(w, http.StatusBadRequest, CodeBadMessage, "limit must be an integer >= 1")
		return
	}
	limit = min(limit, maxRevisionsPage)
	var out []byte
	if name := r.URL.Query().Get("bucket"); name != "" || r.URL.Query().Has("bucket") {
		unit, ok := bucketUnits[name]
		if !ok {
			writeError(w, http.StatusBadRequest, CodeBadMessage, "bucket must be minute, hour or day")
			return
		}
		buckets, err := s.store.Activity(r.Context(), id, from, unit, int(limit))
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		out = encodePage(len(buckets), func(i int) any {
			b := buckets[i]
			authors := make([]string, len(b.Clients))
			for j, c := range b.Clients {
				authors[j] = s.author(c)
			}
			return bucketJSON{Time: b.Start.UTC().Format(time.RFC3339), FirstRev: b.FirstRev, LastRev: b.LastRev,
				Count: b.Count, Inserted: b.Inserted, Deleted: b.Deleted, Authors: authors}
		})
	} else {
		revs, err := s.store.Revisions(r.Context(), id, from, int(limit))
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		out = encodePage(len(revs), func(i int) any {
			v := revs[i]
			return revisionJSON{Rev: v.Rev, Time: v.Time.UTC().Format(time.RFC3339Nano), Author: s.author(v.Client),
				Inserted: v.Inserted, Deleted: v.Deleted, Run: runOf(v.Client), Name: clientName(v.Client), Reverts: revertOf(v.Client)}
		})
	}
	s.writeBody(w, "application/json", out)
}

// encodePage encodes n items as a JSON array, stopping before the one that
// would take it past maxRevisionsBytes (but never before the first).
func encodePage(n int, item func(i int) any) []byte {
	out := []byte{'['}
	for i := range n {
		b := mustJSON(item(i))
		if i > 0 && len(out)+len(b)+2 > maxRevisionsBytes {
			break
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, b...)
	}
	return append(out, ']')
}

// Requests to a hub for history.
type (
	// restoreReq asks the hub to make the text equal text through one op.
	restoreReq struct {
		text  string
		reply chan restoreReply // room for one
	}
	// deleteReq asks the hub to delete its document and stop.
	deleteReq struct{ reply chan error }
)

// restoreReply is the outcome of a restoreReq: the head revision after
// it, or rev -1 and the refusal (nil: the document's owner, in cluster
// mode, did not answer).
type restoreReply struct {
	rev  int64
	err  *protoError
	noop bool // the text already was the restored one
}

// handleRestore answers POST /api/docs/{id}/restore {"rev":R}: one op,
// made by the server and committed like any other, turns the current text
// into the text at R; live editors and viewers get it as usual. Restoring
// the revision before it undoes it. Restores are rate-limited per client
// address and per document (429 rate_limited, restorelimit.go), and the
// op passes the same admission as an editor's (accept.go): one the
// document's history or the store cannot take is refused with 507
// too_large, as a create on a full disk is.
func (s *Server) handleRestore(w http.ResponseWriter, r *http.Request) {
	id, ok := docID(r)
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such document")
		return
	}
	// As for creates (origin.go): a page elsewhere may not make its
	// visitors' browsers restore, and a body must say it is JSON.
	if err := checkOrigin(r, s.opts.AllowedOrigins); err != nil {
		refuse(w, r, http.StatusForbidden, CodeForbidden, err.Error())
		return
	}
	if !isJSON(r) {
		refuse(w, r, http.StatusUnsupportedMediaType, CodeBadMessage, "the body must have Content-Type application/json")
		return
	}
	var req struct {
		Rev *int64 `json:"rev"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRestoreBody))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil || req.Rev == nil || *req.Rev < 0 {
		writeError(w, http.StatusBadRequest, CodeBadMessage, `the body must be {"rev": R} with a revision R >= 0`)
		return
	}
	// Charged once the request is well formed: a malformed one writes
	// nothing.
	if ok, why := s.restores.allow(s.requestAddr(r), id, time.Now()); !ok {
		w.Header().Set("Retry-After", s.restores.retryAfter)
		writeError(w, http.StatusTooManyRequests, CodeRateLimited, s.restores.message(why))
		return
	}
	h, err := s.acquire(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	defer s.release(h)
	// The text at R never changes, so it is read outside the hub; the hub
	// only diffs it against the text it holds when the request's turn comes.
	d, err := s.store.LoadAt(r.Context(), id, *req.Rev)
	if err != nil {
		s.writeHistoryError(w, r, err)
		return
	}
	m := restoreReq{text: d.Text, reply: make(chan restoreReply, 1)}
	if !h.send(r.Context(), m) {
		s.writeStoreError(w, r, h.goneErr(r.Context()))
		return
	}
	select {
	case rep := <-m.reply:
		switch {
		case rep.err != nil && rep.err.Code == CodeTooLarge:
			// As a create on a full disk: the server cannot store it.
			writeError(w, http.StatusInsufficientStorage, CodeTooLarge, rep.err.Message)
		case rep.rev < 0: // forwarded to the owner (cluster mode), which did not take it
			writeError(w, http.StatusServiceUnavailable, CodeShuttingDown, "the document's owner did not answer; try again")
		default:
			if !rep.noop {
				// The restored text keeps its authors (authors.go).
				if err := s.restoreAuthors(r.Context(), id, *req.Rev, rep.rev); err != nil {
					s.log.Warn("restore authors", "doc", id, "rev", rep.rev, "err", err)
				}
			}
			writeJSON(w, http.StatusOK, map[string]int64{"rev": rep.rev})
		}
	case <-h.done:
		s.writeStoreError(w, r, h.goneErr(r.Context()))
	case <-r.Context().Done():
	}
}

// handleDelete answers DELETE /api/docs/{id}: the document, its history
// and its view id go; its editors are told not_found and closed with 4404,
// its viewers' streams end.
func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	id, ok := docID(r)
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such document")
		return
	}
	if err := checkOrigin(r, s.opts.AllowedOrigins); err != nil {
		writeError(w, http.StatusForbidden, CodeForbidden, err.Error())
		return
	}
	h, err := s.acquire(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, errShuttingDown), errors.Is(err, context.Canceled):
		s.writeStoreError(w, r, err)
		return
	case err != nil:
		// It cannot be loaded (damaged, say), so nobody has it open:
		// delete it in the store alone.
		s.log.Warn("deleting a document that does not load", "doc", id, "err", err)
		if err := s.store.Delete(r.Context(), id); err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		s.docDeleted(r.Context(), id, "") // its view id went with its meta
		w.WriteHeader(http.StatusNoContent)
		return
	}
	defer s.release(h)
	m := deleteReq{reply: make(chan error, 1)}
	if !h.send(r.Context(), m) {
		s.writeStoreError(w, r, h.goneErr(r.Context()))
		return
	}
	select {
	case err = <-m.reply:
	case <-h.done:
		// The hub stops right after a delete; its reply is already there.
		select {
		case err = <-m.reply:
		default:
			err = h.goneErr(r.Context())
		}
	case <-r.Context().Done():
		return
	}
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// restore handles a restoreReq: the op that turns the current text into
// m.text, applied and batched like an editor's op, acknowledged to the
// requester once committed.
func (h *hub) restore(m restoreReq) {
	op := diffOp(h.doc.String(), m.text)
	if op.IsNoop() {
		m.reply <- restoreReply{rev: h.rev, noop: true}
		return
	}
	if perr := h.accept(op, "", 0, pendingOp{restored: m.reply}); perr != nil {
		m.reply <- restoreReply{rev: -1, err: perr}
	}
}

// deleteDoc handles a deleteReq. The hub has no commit in flight. Once the
// store has deleted the document, the hub stops: its editors hear
// not_found, its viewers' streams end, and the next request for the id
// loads nothing.
func (h *hub) deleteDoc(m deleteReq) {
	ctx, cancel := context.WithTimeout(h.srv.ctx, storeTimeout)
	err := h.srv.store.Delete(ctx, h.id)
	cancel()
	if err != nil {
		h.log.Error("delete document", "err", err)
		m.reply <- err
		return
	}
	h.srv.docDeleted(h.srv.ctx, h.id, h.viewID) // webhooks (webhook.go)
	h.notify(notice{Kind: "deleted"})
	h.closeDeleted()
	h.log.Info("document deleted", "rev", h.rev)
	m.reply <- nil
}

// closeDeleted stops the hub of a document that was deleted, here or on
// another node.
func (h *hub) closeDeleted() {
	h.deleted = true
	h.srv.forget(h)
	for _, e := range h.editors {
		e.c.fail(errorf(CodeNotFound, "the document was deleted"))
	}
	for v := range h.viewers {
		v.kick()
	}
}

// goneErr is the error for a request to a hub that has stopped.
func (h *hub) goneErr(ctx context.Context) error {
	select {
	case <-h.done:
		if h.deleted {
			return fmt.Errorf("doc %s was deleted: %w", h.id, ErrNotFound)
		}
	default:
	}
	return errHubGone(ctx)
}

// diffOp returns the op that turns a into b: keep their common prefix and
// suffix, replace what lies between.
func diffOp(a, b string) ot.Op {
	ra, rb := []rune(a), []rune(b)
	p := 0
	for p < len(ra) && p < len(rb) && ra[p] == rb[p] {
		p++
	}
	q := 0
	for q < len(ra)-p && q < len(rb)-p && ra[len(ra)-1-q] == rb[len(rb)-1-q] {
		q++
	}
	return ot.Op{}.Retain(p).Insert(string(rb[p : len(rb)-q])).Delete(len(ra) - p - q).Retain(q)
}
