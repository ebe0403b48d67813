package collab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

// maxOpsPage bounds one page of GET /api/docs/{id}/ops.
const maxOpsPage = 1000

// apiError is the body of every API error: {"error":{"code","message"}}.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b := mustJSON(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	// Complete even when flushed before the handler ends (refuse).
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	if c, ok := w.(errorCounter); ok {
		c.countError(code) // metrics.go
	}
	var e apiError
	e.Error.Code, e.Error.Message = code, message
	writeJSON(w, status, e)
}

// writeStoreError answers a failed lookup or load: 404 for an unknown
// document, 503 while shutting down, while the store is unavailable
// or while memory is full (with Retry-After), otherwise 500 with the
// detail only in the log.
func (s *Server) writeStoreError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, CodeNotFound, "no such document")
	case errors.Is(err, errShuttingDown):
		writeError(w, http.StatusServiceUnavailable, CodeShuttingDown, err.Error())
	case errors.Is(err, ErrUnavailable):
		s.log.Warn("request failed: storage unavailable", "method", r.Method, "route", r.Pattern, "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, CodeShuttingDown, "storage unavailable; try again")
	case errors.Is(err, errMemoryFull):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, CodeRateLimited, s.memoryFullMessage())
	case errors.Is(err, errHeldFull):
		s.refuseHeld(w)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
	default:
		// The route, not the path: a path holds the edit id.
		s.log.Error("request failed", "method", r.Method, "route", r.Pattern, "err", err)
		writeError(w, http.StatusInternalServerError, CodeInternal, "internal error")
	}
}

// docID returns the {id} path value when it is a canonical UUID. Anything
// else cannot name a document.
func docID(r *http.Request) (string, bool) {
	return canonicalUUID(r.PathValue("id"))
}

func canonicalUUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// createRequest is the optional body of POST /api/docs.
type createRequest struct {
	Text string `json:"text"`
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	// Checks that cost nothing come first, the body last: a request
	// refused before its body is read is answered without reading it.
	if err := checkOrigin(r, s.opts.AllowedOrigins); err != nil {
		refuse(w, r, http.StatusForbidden, CodeForbidden, err.Error())
		return
	}
	if !s.creates.allow(s.requestAddr(r), time.Now()) {
		w.Header().Set("Retry-After", "1")
		refuse(w, r, http.StatusTooManyRequests, CodeRateLimited,
			fmt.Sprintf("more than %g documents per second (burst %d) from this address; try again later", s.opts.CreateRate, s.opts.CreateBurst))
		return
	}
	// Admitted twice: before the body is read, as a document that grows
	// the store, and once it is known, with its first op.
	if err := s.storageFull(r.Context()); err != nil {
		refuse(w, r, http.StatusInsufficientStorage, CodeTooLarge, err.Error()+"; no documents can be created now")
		return
	}
	if r.ContentLength > 0 && !isJSON(r) {
		refuse(w, r, http.StatusUnsupportedMediaType, CodeBadMessage, "a body must have Content-Type application/json")
		return
	}
	body, ok := s.readCreateBody(w, r)
	if !ok {
		return
	}
	var req createRequest
	if len(body) > 0 {
		if !isJSON(r) {
			writeError(w, http.StatusUnsupportedMediaType, CodeBadMessage, "a body must have Content-Type application/json")
			return
		}
		if !utf8.Valid(body) {
			writeError(w, http.StatusBadRequest, CodeBadMessage, "body is not valid UTF-8")
			return
		}
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, CodeBadMessage, `body must be a JSON object like {"text": "..."}: `+err.Error())
			return
		}
	}
	if n := utf8.RuneCountInString(req.Text); n > s.opts.MaxDocChars {
		writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge,
			fmt.Sprintf("text has %d code points; the limit is %d", n, s.opts.MaxDocChars))
		return
	}

	meta := DocMeta{ID: uuid.NewString(), ViewID: uuid.NewString(), Created: time.Now().UTC()}
	var first *Record
	if req.Text != "" {
		first = &Record{Rev: 1, Op: ot.Op{ot.Insert(req.Text)}, Time: meta.Created}
		if err := s.admission.Admit(r.Context(), Growth{Adds: s.recordBytes(*first), Inserts: true}); err != nil {
			writeError(w, http.StatusInsufficientStorage, CodeTooLarge, err.Error()+"; this document cannot be created now")
			return
		}
	}
	// Signed in (access.go): the record first, so that the document is
	// never without it.
	if err := s.access.created(r.Context(), meta.ID); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	err := s.store.Create(r.Context(), meta, first)
	s.noteWrite(err)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	rev := int64(0)
	if first != nil {
		rev = 1
	}
	s.webhooks.created(r.Context(), meta, rev, utf8.RuneCountInString(req.Text))
	s.workspace.changed(meta.ID)
	writeJSON(w, http.StatusCreated, map[string]any{"id": meta.ID, "viewId": meta.ViewID, "rev": rev})
}

// docText returns a document's committed text through its hub, which
// loads it if nobody has it open.
func (s *Server) docText(ctx context.Context, id string, withJSON bool) (textReply, error) {
	h, err := s.acquire(ctx, id)
	if err != nil {
		return textReply{}, err
	}
	defer s.release(h)
	return h.text(ctx, withJSON)
}

func (s *Server) handleGetDoc(w http.ResponseWriter, r *http.Request) {
	id, ok := docID(r)
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such document")
		return
	}
	if s.serveDocAt(w, r, id, false, false) {
		return
	}
	t, err := s.docText(r.Context(), id, true)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	// The text is written from the hub's shared encoding, not copied.
	s.writeBody(w, "application/json", fmt.Sprintf(`{"id":%q,"viewId":%q,"rev":%d,"text":`, id, t.viewID, t.rev), t.json, "}")
}

func (s *Server) handleGetText(w http.ResponseWriter, r *http.Request) {
	id, ok := docID(r)
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such document")
		return
	}
	if s.serveDocAt(w, r, id, true, false) {
		return
	}
	t, err := s.docText(r.Context(), id, false)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.writeText(w, t.rev, t.text)
}

// handleGetOps pages through the op log. ?from=R (default 0) gives the
// ops after R; ?limit=N (default and maximum 1000) bounds the page, and
// so does MaxOpsPageBytes, which the store applies as it reads.
func (s *Server) handleGetOps(w http.ResponseWriter, r *http.Request) {
	id, ok := docID(r)
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such document")
		return
	}
	from, err := queryInt(r, "from", 0)
	if err != nil || from < 0 {
		writeError(w, http.StatusBadRequest, CodeBadMessage, "from must be a revision >= 0")
		return
	}
	limit, err := queryInt(r, "limit", maxOpsPage)
	if err != nil || limit < 1 {
		writeError(w, http.StatusBadRequest, CodeBadMessage, "limit must be an integer >= 1")
		return
	}
	recs, err := s.store.Ops(r.Context(), id, from, int(min(limit, maxOpsPage)), s.opts.MaxOpsPageBytes)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out := make([]OpRecord, len(recs))
	for i, rec := range recs {
		t := rec.Time
		out[i] = OpRecord{Rev: rec.Rev, Op: rec.Op, Author: s.author(rec.Client), Seq: rec.Seq, Time: &t}
	}
	// A page is megabytes at most, but each reader's own: it counts
	// against the budget of held bytes like a text (held.go).
	s.writeBody(w, "application/json", mustJSON(out))
}

func queryInt(r *http.Request, name string, def int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	return strconv.ParseInt(v, 10, 64)
}

// viewDoc resolves a view id to its document's edit id, for the server's
// own use only: nothing reachable with a view id may show the edit id.
func (s *Server) viewDoc(r *http.Request) (string, error) {
	viewID, ok := canonicalUUID(r.PathValue("viewId"))
	if !ok {
		return "", ErrNotFound
	}
	return s.store.ViewDoc(r.Context(), viewID)
}

func (s *Server) handleGetView(w http.ResponseWriter, r *http.Request) {
	id, err := s.viewDoc(r)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if s.serveDocAt(w, r, id, false, true) {
		return
	}
	t, err := s.docText(r.Context(), id, true)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.writeBody(w, "application/json", fmt.Sprintf(`{"viewId":%q,"rev":%d,"text":`, t.viewID, t.rev), t.json, "}")
}

// cors wraps a view endpoint with CORS headers for the allowed origins. A
// nil next answers preflight requests only.
func (s *Server) cors(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" {
			if allow, ok := s.allowViewOrigin(origin); ok {
				h := w.Header()
				h.Set("Access-Control-Allow-Origin", allow)
				h.Add("Vary", "Origin")
				h.Set("Access-Control-Allow-Methods", "GET, OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Last-Event-ID, Cache-Control, Authorization")
				h.Set("Access-Control-Max-Age", "600")
			}
		}
		if next == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next(w, r)
	}
}

// allowViewOrigin returns the Access-Control-Allow-Origin value for an
// origin, if it may read the view endpoints.
func (s *Server) allowViewOrigin(origin string) (string, bool) {
	if s.opts.ViewOrigins == nil {
		return "*", true
	}
	for _, o := range s.opts.ViewOrigins {
		if o == "*" {
			return "*", true
		}
		if o == origin {
			return origin, true
		}
	}
	return "", false
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		writeError(w, http.StatusServiceUnavailable, CodeShuttingDown, errShuttingDown.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Error("health check: store cannot write", "err", err)
		writeError(w, http.StatusServiceUnavailable, CodeInternal, "storage cannot write")
		return
	}
	// A ping can succeed where commits fail (health.go): the latest
	// commit's failure counts too, whatever the free-space check says.
	if at, err := s.writeFailure(); err != nil {
		s.log.Error("health check: the store's latest write failed", "ago", time.Since(at).Round(time.Millisecond), "err", err)
		writeError(w, http.StatusServiceUnavailable, CodeInternal,
			fmt.Sprintf("storage cannot commit: the latest write failed %s ago", time.Since(at).Round(time.Second)))
		return
	}
	// A write that fits in a free page proves little about the next one
	// that must grow the file: the free space is checked too, afresh.
	u, err := s.store.Usage(ctx)
	if err != nil {
		s.log.Error("health check: store usage unknown", "err", err)
		writeError(w, http.StatusServiceUnavailable, CodeInternal, "storage usage unknown")
		return
	}
	if err := s.admission.usageFull(u, 0); err != nil {
		s.log.Warn("health check: storage full", "err", err)
		writeError(w, http.StatusServiceUnavailable, CodeTooLarge, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
