package collab

// The comment endpoints (docs/comments.md): each request is checked and
// decoded here, then runs on the document's hub (comments.go), which owns
// the threads; webhooks are queued once the hub has answered.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Webhook events of comments.
const (
	EventCommentCreated  = "comment.created"
	EventCommentResolved = "comment.resolved"
)

// commentBody is the body of every comment write; each endpoint reads
// the fields it needs.
type commentBody struct {
	Rev      *int64  `json:"rev"`
	Range    *Range  `json:"range"`
	Text     *string `json:"text"`
	Resolved *bool   `json:"resolved"`
	// Client is the editing session's client id (a secret, as in hello):
	// the comment's author id is derived from it as an op's is, and only
	// the same client may edit or delete the comment later. Without it
	// the comment has no author and nobody can edit or delete it.
	Client string `json:"client"`
	Name   string `json:"name"`
}

// commentErr is a refusal decided on the hub.
type commentErr struct {
	status int
	code   string
	msg    string
}

func cerr(status int, code, format string, args ...any) *commentErr {
	return &commentErr{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// commentWrite checks and decodes a comment write: origin, JSON, size,
// rate. It answers and returns ok false when the request goes no further.
func (s *Server) commentWrite(w http.ResponseWriter, r *http.Request, b *commentBody, needBody bool) (id string, ok bool) {
	id, ok = docID(r)
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such document")
		return "", false
	}
	// As for restores: a page elsewhere may not make its visitors'
	// browsers comment, and a body must say it is JSON.
	if err := checkOrigin(r, s.opts.AllowedOrigins); err != nil {
		refuse(w, r, http.StatusForbidden, CodeForbidden, err.Error())
		return "", false
	}
	if needBody || hasBody(r) {
		if !isJSON(r) {
			refuse(w, r, http.StatusUnsupportedMediaType, CodeBadMessage, "the body must have Content-Type application/json")
			return "", false
		}
		// The text may be JSON-escaped at up to six bytes a byte.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(6*s.opts.MaxCommentBytes+4096)))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			refuse(w, r, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("the body is over %d bytes", tooBig.Limit))
			return "", false
		}
		if err == nil {
			err = json.Unmarshal(body, b)
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, CodeBadMessage, "the body must be a JSON object: "+err.Error())
			return "", false
		}
	}
	if b.Text != nil && len(*b.Text) > s.opts.MaxCommentBytes {
		writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge,
			fmt.Sprintf("a comment holds at most %d bytes of text; this one has %d", s.opts.MaxCommentBytes, len(*b.Text)))
		return "", false
	}
	if b.Text != nil && strings.TrimSpace(*b.Text) == "" {
		writeError(w, http.StatusBadRequest, CodeBadMessage, `"text" must not be empty`)
		return "", false
	}
	if b.Client != "" {
		c, ok := canonicalUUID(b.Client)
		if !ok {
			writeError(w, http.StatusBadRequest, CodeBadMessage, `"client" must be a UUID`)
			return "", false
		}
		b.Client = c
	}
	// Charged once the request is well formed.
	if !s.commentRate.allow(s.requestAddr(r), time.Now()) {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, CodeRateLimited,
			fmt.Sprintf("more than %g comment writes per second (burst %d) from this address; try again later", s.opts.CommentRate, s.opts.CommentBurst))
		return "", false
	}
	return id, true
}

// who returns the author id and name a comment write is made as: the
// author id derived from its client id, and its token's name, else the
// body's, else Anonymous.
func (s *Server) who(r *http.Request, b *commentBody) (author, name string) {
	if b.Client != "" {
		author = s.author(b.Client)
	}
	name = tokenName(r.Context())
	if name == "" {
		name = defaultName
		if b.Name != "" {
			name = cleanName(b.Name)
		}
	}
	return author, name
}

// onComments runs do on document id's hub with its comments loaded, and
// answers the errors of getting there. It reports false if it answered.
func (s *Server) onComments(w http.ResponseWriter, r *http.Request, id string, do func(h *hub) *commentErr) bool {
	if s.commentStore == nil {
		writeError(w, http.StatusNotImplemented, CodeInternal, "this server keeps no comments")
		return false
	}
	h, err := s.acquire(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return false
	}
	defer s.release(h)
	var ce *commentErr
	var loadErr error
	m := commentReq{done: make(chan struct{}), do: func(h *hub, err error) {
		if loadErr = err; err == nil {
			ce = do(h)
		}
	}}
	if !h.send(r.Context(), m) {
		s.writeStoreError(w, r, h.goneErr(r.Context()))
		return false
	}
	select {
	case <-m.done:
	case <-h.done:
		select {
		case <-m.done:
		default:
			s.writeStoreError(w, r, h.goneErr(r.Context()))
			return false
		}
	case <-r.Context().Done():
		return false
	}
	switch {
	case loadErr != nil:
		s.writeStoreError(w, r, loadErr)
		return false
	case ce != nil:
		if ce.status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		writeError(w, ce.status, ce.code, ce.msg)
		return false
	}
	return true
}

var errStoreComments = cerr(http.StatusInternalServerError, CodeInternal, "internal error")

func (s *Server) handleCreateComment(w http.ResponseWriter, r *http.Request) {
	var b commentBody
	id, ok := s.commentWrite(w, r, &b, true)
	if !ok {
		return
	}
	if b.Rev == nil || b.Range == nil || b.Text == nil || *b.Rev < 0 {
		writeError(w, http.StatusBadRequest, CodeBadMessage, `the body must be {"rev": R, "range": [from, to], "text": "..."}`)
		return
	}
	author, name := s.who(r, &b)
	var out thread
	var rev int64
	var viewID string
	if !s.onComments(w, r, id, func(h *hub) *commentErr {
		a, ce := h.placeRange(*b.Rev, *b.Range)
		if ce != nil {
			return ce
		}
		if ce := h.commentRoom(); ce != nil {
			return ce
		}
		cs := &h.comments
		// Text deleted since rev leaves the thread detached from the start.
		t := &thread{ID: uuid.NewString(), Text: *b.Text, Author: author, Name: name, Time: time.Now().UTC(),
			Detached: b.Range[0] != b.Range[1] && a[0] == a[1]}
		if a[1]-a[0] <= maxQuoteRunes {
			t.Quote = h.doc.Slice(a[0], a[1])
		}
		if len(cs.threads) >= h.srv.opts.MaxComments {
			return cerr(http.StatusRequestEntityTooLarge, CodeTooLarge, "the document has %d comment threads, the limit", len(cs.threads))
		}
		if cs.bytes+t.bytes() > h.srv.opts.MaxCommentDocBytes {
			return cerr(http.StatusRequestEntityTooLarge, CodeTooLarge, "the document's comments hold over %d bytes, the limit", h.srv.opts.MaxCommentDocBytes)
		}
		cs.add(t, a)
		if err := h.storeComments([]string{t.ID}, nil); err != nil {
			h.log.Error("create comment", "err", err)
			cs.remove(cs.index[t.ID])
			return errStoreComments
		}
		out, rev, viewID = cs.wire(cs.index[t.ID]), h.rev, h.viewID
		h.sendComment("created", out.ID, "", &out)
		return nil
	}) {
		return
	}
	s.commentEvent(r.Context(), EventCommentCreated, id, viewID, rev, &out)
	writeJSON(w, http.StatusCreated, map[string]any{"id": out.ID, "range": out.Range, "rev": rev})
}

// placeRange checks a range given at revision rev and returns it at the
// head.
func (h *hub) placeRange(rev int64, rg Range) (Range, *commentErr) {
	if rev > h.rev {
		return Range{}, cerr(http.StatusBadRequest, CodeBadMessage, "rev %d is in the future: the document is at rev %d", rev, h.rev)
	}
	n := h.doc.Len()
	var later []Record
	if rev < h.rev {
		var err error
		if later, err = h.opsAfter(rev); err != nil {
			if errors.Is(err, errTooFarBack) {
				return Range{}, cerr(http.StatusBadRequest, CodeBadMessage, "rev %d is too far back (document at rev %d); use a later one", rev, h.rev)
			}
			h.log.Error("read ops to place a comment", "from", rev, "err", err)
			return Range{}, errStoreComments
		}
		n = later[0].Op.BaseLen()
	}
	if rg[0] < 0 || rg[0] > rg[1] || rg[1] > n {
		return Range{}, cerr(http.StatusBadRequest, CodeBadMessage, "range [%d,%d] is not within the %d code points of rev %d (from <= to)", rg[0], rg[1], n, rev)
	}
	a := []Range{rg}
	for _, r := range later {
		transformRanges(a, r.Op)
	}
	return a[0], nil
}

// commentRoom refuses a new thread or reply while the server's memory
// budget is full, as an op that inserts is refused.
func (h *hub) commentRoom() *commentErr {
	if h.srv.mem.full() {
		return cerr(http.StatusServiceUnavailable, CodeRateLimited, "%s", h.srv.memoryFullMessage())
	}
	return nil
}

// sendComment tells the editors that asked for comments of a change.
func (h *hub) sendComment(event, id, replyID string, t *thread) {
	var msg []byte
	for _, e := range h.editors {
		if e.comments {
			if msg == nil {
				msg = mustJSON(commentMessage{Type: typeComment, Event: event, Rev: h.rev, ID: id, Reply: replyID, Comment: t})
			}
			e.c.enqueue(msg)
		}
	}
}

// welcomeComments sends every thread to an editor that asked for
// comments, right after its welcome.
func (h *hub) welcomeComments(e *editor) {
	if !e.comments {
		return
	}
	if err := h.loadComments(); err != nil {
		if !errors.Is(err, errNoComments) {
			h.log.Error("load comments for a welcome", "err", err)
		}
		return
	}
	e.c.enqueue(mustJSON(commentsMessage{Type: typeComments, Rev: h.rev, Comments: h.comments.list()}))
}

// ownThread finds thread cid and, with own, checks that author wrote it.
func (h *hub) findThread(cid string) (*thread, int, *commentErr) {
	t, i := h.comments.get(cid)
	if t == nil {
		return nil, -1, cerr(http.StatusNotFound, CodeNotFound, "no such comment")
	}
	return t, i, nil
}

func notYours(author, what string) *commentErr {
	if author == "" {
		return cerr(http.StatusForbidden, CodeForbidden, `only the author may change this %s: give the "client" it was written with`, what)
	}
	return cerr(http.StatusForbidden, CodeForbidden, "only the author may change this %s", what)
}

func (s *Server) handleCreateReply(w http.ResponseWriter, r *http.Request) {
	var b commentBody
	id, ok := s.commentWrite(w, r, &b, true)
	if !ok {
		return
	}
	if b.Text == nil {
		writeError(w, http.StatusBadRequest, CodeBadMessage, `the body must be {"text": "..."}`)
		return
	}
	author, name := s.who(r, &b)
	cid := r.PathValue("cid")
	rp := reply{ID: uuid.NewString(), Text: *b.Text, Author: author, Name: name, Time: time.Now().UTC()}
	if !s.onComments(w, r, id, func(h *hub) *commentErr {
		t, i, ce := h.findThread(cid)
		if ce != nil {
			return ce
		}
		if ce := h.commentRoom(); ce != nil {
			return ce
		}
		cs := &h.comments
		if len(t.Replies) >= h.srv.opts.MaxReplies {
			return cerr(http.StatusRequestEntityTooLarge, CodeTooLarge, "the thread has %d replies, the limit", len(t.Replies))
		}
		if cs.bytes+len(rp.Text)+len(rp.Name)+96 > h.srv.opts.MaxCommentDocBytes {
			return cerr(http.StatusRequestEntityTooLarge, CodeTooLarge, "the document's comments hold over %d bytes, the limit", h.srv.opts.MaxCommentDocBytes)
		}
		return h.changeThread(i, "replied", rp.ID, func(t *thread) { t.Replies = append(t.Replies, rp) })
	}) {
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": rp.ID})
}

// changeThread applies change to thread i, stores it and tells the
// editors; the change is undone if it cannot be stored.
func (h *hub) changeThread(i int, event, replyID string, change func(t *thread)) *commentErr {
	cs := &h.comments
	t := cs.threads[i]
	before := *t
	before.Replies = append([]reply(nil), t.Replies...)
	cs.bytes -= t.bytes()
	change(t)
	cs.bytes += t.bytes()
	if err := h.storeComments([]string{t.ID}, nil); err != nil {
		h.log.Error("store a comment change", "event", event, "err", err)
		cs.bytes += before.bytes() - t.bytes()
		*t = before
		return errStoreComments
	}
	out := cs.wire(i)
	h.sendComment(event, t.ID, replyID, &out)
	return nil
}

// handlePatchComment resolves or reopens a thread ({"resolved": bool},
// anyone who may comment) and edits its text ({"text"}, its author only).
func (s *Server) handlePatchComment(w http.ResponseWriter, r *http.Request) {
	var b commentBody
	id, ok := s.commentWrite(w, r, &b, true)
	if !ok {
		return
	}
	if b.Resolved == nil && b.Text == nil {
		writeError(w, http.StatusBadRequest, CodeBadMessage, `the body must be {"resolved": true|false} or {"text": "...", "client": "..."}`)
		return
	}
	author, _ := s.who(r, &b)
	cid := r.PathValue("cid")
	var out thread
	var rev int64
	var viewID string
	resolvedNow := false
	if !s.onComments(w, r, id, func(h *hub) *commentErr {
		t, i, ce := h.findThread(cid)
		if ce != nil {
			return ce
		}
		if b.Text != nil && (t.Author == "" || t.Author != author) {
			return notYours(author, "comment")
		}
		if b.Text != nil {
			cs := &h.comments
			if cs.bytes+len(*b.Text)-len(t.Text) > h.srv.opts.MaxCommentDocBytes {
				return cerr(http.StatusRequestEntityTooLarge, CodeTooLarge, "the document's comments hold over %d bytes, the limit", h.srv.opts.MaxCommentDocBytes)
			}
			now := time.Now().UTC()
			if ce := h.changeThread(i, "edited", "", func(t *thread) { t.Text, t.Edited = *b.Text, &now }); ce != nil {
				return ce
			}
		}
		if b.Resolved != nil && *b.Resolved != t.Resolved {
			event := "reopened"
			if *b.Resolved {
				event, resolvedNow = "resolved", true
			}
			if ce := h.changeThread(i, event, "", func(t *thread) { t.Resolved = *b.Resolved }); ce != nil {
				return ce
			}
		}
		out, rev, viewID = h.comments.wire(i), h.rev, h.viewID
		return nil
	}) {
		return
	}
	if resolvedNow {
		s.commentEvent(r.Context(), EventCommentResolved, id, viewID, rev, &out)
	}
	writeJSON(w, http.StatusOK, out)
}

// handleDeleteComment deletes a thread, replies and all: its author only.
func (s *Server) handleDeleteComment(w http.ResponseWriter, r *http.Request) {
	var b commentBody
	id, ok := s.commentWrite(w, r, &b, false)
	if !ok {
		return
	}
	if c := r.URL.Query().Get("client"); b.Client == "" && c != "" {
		b.Client, _ = canonicalUUID(c)
	}
	author, _ := s.who(r, &b)
	cid := r.PathValue("cid")
	if !s.onComments(w, r, id, func(h *hub) *commentErr {
		t, i, ce := h.findThread(cid)
		if ce != nil {
			return ce
		}
		if t.Author == "" || t.Author != author {
			return notYours(author, "comment")
		}
		if err := h.storeComments(nil, []string{cid}); err != nil {
			h.log.Error("delete a comment", "err", err)
			return errStoreComments
		}
		h.comments.remove(i)
		h.sendComment("deleted", cid, "", nil)
		return nil
	}) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// replyOf finds reply rid of thread t.
func replyOf(t *thread, rid string) (int, *commentErr) {
	for k := range t.Replies {
		if t.Replies[k].ID == rid {
			return k, nil
		}
	}
	return -1, cerr(http.StatusNotFound, CodeNotFound, "no such reply")
}

// handlePatchReply edits a reply's text: its author only.
func (s *Server) handlePatchReply(w http.ResponseWriter, r *http.Request) {
	var b commentBody
	id, ok := s.commentWrite(w, r, &b, true)
	if !ok {
		return
	}
	if b.Text == nil {
		writeError(w, http.StatusBadRequest, CodeBadMessage, `the body must be {"text": "...", "client": "..."}`)
		return
	}
	author, _ := s.who(r, &b)
	cid, rid := r.PathValue("cid"), r.PathValue("rid")
	if !s.onComments(w, r, id, func(h *hub) *commentErr {
		t, i, ce := h.findThread(cid)
		if ce != nil {
			return ce
		}
		k, ce := replyOf(t, rid)
		if ce != nil {
			return ce
		}
		if rp := t.Replies[k]; rp.Author == "" || rp.Author != author {
			return notYours(author, "reply")
		}
		if h.comments.bytes+len(*b.Text)-len(t.Replies[k].Text) > h.srv.opts.MaxCommentDocBytes {
			return cerr(http.StatusRequestEntityTooLarge, CodeTooLarge, "the document's comments hold over %d bytes, the limit", h.srv.opts.MaxCommentDocBytes)
		}
		now := time.Now().UTC()
		return h.changeThread(i, "edited", rid, func(t *thread) {
			t.Replies[k].Text, t.Replies[k].Edited = *b.Text, &now
		})
	}) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleDeleteReply deletes a reply: its author only.
func (s *Server) handleDeleteReply(w http.ResponseWriter, r *http.Request) {
	var b commentBody
	id, ok := s.commentWrite(w, r, &b, false)
	if !ok {
		return
	}
	if c := r.URL.Query().Get("client"); b.Client == "" && c != "" {
		b.Client, _ = canonicalUUID(c)
	}
	author, _ := s.who(r, &b)
	cid, rid := r.PathValue("cid"), r.PathValue("rid")
	if !s.onComments(w, r, id, func(h *hub) *commentErr {
		t, i, ce := h.findThread(cid)
		if ce != nil {
			return ce
		}
		k, ce := replyOf(t, rid)
		if ce != nil {
			return ce
		}
		if rp := t.Replies[k]; rp.Author == "" || rp.Author != author {
			return notYours(author, "reply")
		}
		return h.changeThread(i, "deleted", rid, func(t *thread) {
			t.Replies = append(t.Replies[:k:k], t.Replies[k+1:]...)
		})
	}) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// commentsAnswer is the body of GET .../comments.
type commentsAnswer struct {
	Rev      int64    `json:"rev"`
	Comments []thread `json:"comments"`
}

func (s *Server) handleGetComments(w http.ResponseWriter, r *http.Request) {
	id, ok := docID(r)
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such document")
		return
	}
	s.serveComments(w, r, id, false)
}

// handleViewComments serves the threads to viewers, when the document's
// settings allow it.
func (s *Server) handleViewComments(w http.ResponseWriter, r *http.Request) {
	id, err := s.viewDoc(r)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.serveComments(w, r, id, true)
}

func (s *Server) serveComments(w http.ResponseWriter, r *http.Request, id string, viewer bool) {
	var out commentsAnswer
	if !s.onComments(w, r, id, func(h *hub) *commentErr {
		if viewer && !h.comments.settings.Viewers {
			return cerr(http.StatusForbidden, CodeForbidden, "the document's comments are not shared with viewers")
		}
		out = commentsAnswer{Rev: h.rev, Comments: h.comments.list()}
		return nil
	}) {
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetCommentSettings(w http.ResponseWriter, r *http.Request) {
	id, ok := docID(r)
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such document")
		return
	}
	var out commentSettings
	if s.onComments(w, r, id, func(h *hub) *commentErr { out = h.comments.settings; return nil }) {
		writeJSON(w, http.StatusOK, out)
	}
}

// handlePutCommentSettings sets whether viewers see the threads:
// {"viewers": true|false}.
func (s *Server) handlePutCommentSettings(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Viewers *bool `json:"viewers"`
	}
	id, ok := docID(r)
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such document")
		return
	}
	if err := checkOrigin(r, s.opts.AllowedOrigins); err != nil {
		refuse(w, r, http.StatusForbidden, CodeForbidden, err.Error())
		return
	}
	if !isJSON(r) {
		refuse(w, r, http.StatusUnsupportedMediaType, CodeBadMessage, "the body must have Content-Type application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
	if err == nil {
		err = json.Unmarshal(body, &b)
	}
	if err != nil || b.Viewers == nil {
		writeError(w, http.StatusBadRequest, CodeBadMessage, `the body must be {"viewers": true|false}`)
		return
	}
	settings := commentSettings{Viewers: *b.Viewers}
	if s.onComments(w, r, id, func(h *hub) *commentErr {
		ctx, cancel := context.WithTimeout(h.srv.ctx, storeTimeout)
		defer cancel()
		if err := h.srv.commentStore.PutComments(ctx, h.id, map[string][]byte{settingsKey: mustJSON(settings)}, nil); err != nil {
			h.log.Error("store comment settings", "err", err)
			return errStoreComments
		}
		h.comments.settings = settings
		h.notify(notice{Kind: "comments", Rev: h.rev})
		return nil
	}) {
		writeJSON(w, http.StatusOK, settings)
	}
}

// webhookComment is what a comment event says of its thread.
type webhookComment struct {
	ID       string `json:"id"`
	Range    Range  `json:"range"`
	Author   string `json:"author"`
	Name     string `json:"name"`
	Text     string `json:"text"`
	Resolved bool   `json:"resolved"`
}

// commentEvent queues a comment webhook event, once its change is stored.
func (s *Server) commentEvent(ctx context.Context, typ, id, viewID string, rev int64, t *thread) {
	wh := s.webhooks
	if wh == nil {
		return
	}
	ev := newEvent(typ, id, viewID)
	ev.Rev = rev
	ev.Comment = &webhookComment{ID: t.ID, Range: t.Range, Author: t.Author, Name: t.Name, Text: t.Text, Resolved: t.Resolved}
	if err := wh.add(context.WithoutCancel(ctx), ev); err != nil {
		wh.log.Error("comment event lost", "type", typ, "err", err)
	}
}
