package collab

// The workspace's endpoints (docs/protocol.md, docs/workspace.md): the
// list and search of the documents a signed-in user may read, rename and
// tags, the trash.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of the workspace's requests.
const (
	defaultListLimit = 50
	maxListLimit     = 200
	maxQueryBytes    = 1024
	maxTags          = 32
	maxTagBytes      = 64
	maxInfoBody      = 16 << 10
	// maxTagRename bounds the documents one tag rename changes.
	maxTagRename = 10_000
)

// docListing is one row of GET /api/docs.
type docListing struct {
	ID      string    `json:"id,omitempty"`
	ViewID  string    `json:"viewId"`
	Title   string    `json:"title"`
	Rev     int64     `json:"rev"`
	Updated time.Time `json:"updated"`
	Owner   string    `json:"owner"`
	Role    string    `json:"role"`
	Tags    []string  `json:"tags"`
	Snippet *string   `json:"snippet,omitempty"`
	Trashed bool      `json:"trashed,omitempty"`
	// Editor made revision Rev (absent for the server's ops); Present
	// names who has the document open on this node (present.go).
	Editor  *docEditor `json:"editor,omitempty"`
	Present []string   `json:"present"`
}

// signedIn returns the caller of a workspace endpoint, having answered
// the request itself when there is none.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request) *identity {
	if s.access == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "the workspace needs sign-in and is off on this server")
		return nil
	}
	who, err := s.identify(r)
	if err != nil {
		s.writeStoreError(w, r, err)
		return nil
	}
	if who == nil {
		writeError(w, http.StatusUnauthorized, CodeUnauthorized, "not signed in")
		return nil
	}
	if s.workspace == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "the workspace is off on this server")
		return nil
	}
	return who
}

// handleListDocs answers GET /api/docs?q=&tag=&limit=&scope=&trash=.
func (s *Server) handleListDocs(w http.ResponseWriter, r *http.Request) {
	who := s.signedIn(w, r)
	if who == nil {
		return
	}
	qs := r.URL.Query()
	q := SearchQuery{Text: qs.Get("q"), Tag: qs.Get("tag"), Limit: defaultListLimit, Readers: principals(who)}
	if len(q.Text) > maxQueryBytes || !utf8.ValidString(q.Text) || len(q.Tag) > maxTagBytes {
		writeError(w, http.StatusBadRequest, CodeBadMessage, fmt.Sprintf("q must be UTF-8 of at most %d bytes, tag at most %d", maxQueryBytes, maxTagBytes))
		return
	}
	if v := qs.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			writeError(w, http.StatusBadRequest, CodeBadMessage, fmt.Sprintf("limit must be 1 to %d", maxListLimit))
			return
		}
		q.Limit = n
	}
	switch qs.Get("trash") {
	case "", "0", "false":
	case "1", "true":
		q.Trashed = true
	default:
		writeError(w, http.StatusBadRequest, CodeBadMessage, "trash must be true or false")
		return
	}
	scope := qs.Get("scope")
	switch scope {
	case "", "all":
	case "mine":
		q.Readers = []string{"u:" + who.User}
	case "shared":
		q.Readers = []string{"u:" + who.User}
	case "group":
		q.Readers = q.Readers[1:]
		if len(q.Readers) == 0 {
			writeJSON(w, http.StatusOK, []docListing{})
			return
		}
	default:
		writeError(w, http.StatusBadRequest, CodeBadMessage, "scope must be all, mine, shared or group")
		return
	}
	want := q.Limit
	// Hits are checked against their access records again, and some may
	// fall out: ask for a few more.
	q.Limit = want + 10
	hits, err := s.workspace.opts.Index.Search(r.Context(), q)
	if err != nil {
		s.writeStoreError(w, r, fmt.Errorf("search: %w", err))
		return
	}
	out := []docListing{}
	for _, h := range hits {
		if len(out) == want {
			break
		}
		rec, err := s.access.record(r.Context(), h.ID)
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		got := rec.roleOf(who, roleNone)
		if got < roleView {
			continue // the index is behind a change of access
		}
		switch scope {
		case "mine":
			if rec.Owner != who.User {
				continue
			}
		case "shared", "group":
			if rec.Owner == who.User {
				continue
			}
		}
		d := docListing{ViewID: h.ViewID, Title: h.Title, Rev: h.Rev, Updated: h.Updated.UTC(),
			Owner: rec.Owner, Role: got.String(), Tags: h.Tags, Trashed: h.Trashed}
		if got >= roleEdit {
			d.ID = h.ID
		}
		if d.Tags == nil {
			d.Tags = []string{}
		}
		if q.Text != "" {
			d.Snippet = &h.Snippet
		}
		s.rowPeople(r.Context(), &d, h.ID)
		out = append(out, d)
	}
	writeJSON(w, http.StatusOK, out)
}

// infoPatch is the body of PATCH /api/docs/{id}: fields left out stay.
type infoPatch struct {
	Title *string   `json:"title"`
	Tags  *[]string `json:"tags"`
}

// handlePatchDoc answers PATCH /api/docs/{id} {"title","tags"} (editors):
// 200 with the document's workspace row. An empty title goes back to the
// first line.
func (s *Server) handlePatchDoc(w http.ResponseWriter, r *http.Request) {
	if s.workspace == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "the workspace needs sign-in and is off on this server")
		return
	}
	id, _ := docID(r)
	var p infoPatch
	if !s.readJSONBody(w, r, &p, `{"title":"...","tags":["..."]}`) {
		return
	}
	if p.Title != nil {
		t := strings.TrimSpace(*p.Title)
		if !utf8.ValidString(t) || utf8.RuneCountInString(t) > maxTitleRunes || strings.ContainsFunc(t, isControl) {
			writeError(w, http.StatusBadRequest, CodeBadMessage, fmt.Sprintf("a title is at most %d characters of one line", maxTitleRunes))
			return
		}
		p.Title = &t
	}
	if p.Tags != nil {
		tags, err := cleanTags(*p.Tags)
		if err != nil {
			writeError(w, http.StatusBadRequest, CodeBadMessage, err.Error())
			return
		}
		p.Tags = &tags
	}
	s.changeInfo(w, r, id, func(info *DocInfo) {
		if p.Title != nil {
			info.Title = *p.Title
		}
		if p.Tags != nil {
			info.Tags = *p.Tags
		}
	})
}

// handleTrash answers POST /api/docs/{id}/trash (owners): the document
// goes to the trash, out of lists and search, until it is restored
// (DELETE .../trash) or purged (DELETE /api/docs/{id}, or -trash-days
// later).
func (s *Server) handleTrash(w http.ResponseWriter, r *http.Request) {
	if s.workspace == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "the workspace needs sign-in and is off on this server")
		return
	}
	id, _ := docID(r)
	now := s.workspace.opts.Now().UTC()
	s.changeInfo(w, r, id, func(info *DocInfo) {
		if info.Trashed.IsZero() {
			info.Trashed = now
		}
	})
}

// handleUntrash answers DELETE /api/docs/{id}/trash (owners): the
// document comes back from the trash.
func (s *Server) handleUntrash(w http.ResponseWriter, r *http.Request) {
	if s.workspace == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "the workspace needs sign-in and is off on this server")
		return
	}
	id, _ := docID(r)
	s.changeInfo(w, r, id, func(info *DocInfo) { info.Trashed = time.Time{} })
}

// changeInfo applies change to the info of document id, which exists,
// waits for the index to have it, and answers with the document's row.
func (s *Server) changeInfo(w http.ResponseWriter, r *http.Request, id string, change func(*DocInfo)) {
	ctx := r.Context()
	if err := checkOrigin(r, s.opts.AllowedOrigins); err != nil {
		writeError(w, http.StatusForbidden, CodeForbidden, err.Error())
		return
	}
	if _, err := s.accessOf(ctx, id); err != nil { // 404 for a document that is not there
		s.writeStoreError(w, r, err)
		return
	}
	ws := s.workspace
	ws.infoMu.Lock()
	info, err := ws.info(ctx, id)
	if err == nil {
		change(&info)
		err = ws.opts.Info.SetInfo(ctx, id, info)
	}
	ws.infoMu.Unlock()
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	ws.sync(ctx, id)
	s.writeRow(w, r, id, info)
}

// writeRow answers with the workspace row of document id.
func (s *Server) writeRow(w http.ResponseWriter, r *http.Request, id string, info DocInfo) {
	e, err := s.workspace.entry(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	// The caller came by the edit id ({id}), which the guard checked.
	rec, err := s.access.record(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	got := rec.roleOf(identityOf(r.Context()), roleEdit)
	d := docListing{ViewID: e.ViewID, Title: e.Title, Rev: e.Rev, Updated: e.Updated.UTC().Truncate(time.Second), Owner: e.Owner,
		Role: got.String(), Tags: e.Tags, Trashed: e.Trashed}
	if got >= roleEdit {
		d.ID = id
	}
	if d.Tags == nil {
		d.Tags = []string{}
	}
	s.rowPeople(r.Context(), &d, id)
	writeJSON(w, http.StatusOK, d)
}

// handleRenameTag answers POST /api/tags/rename {"from","to"}: every
// document the caller may edit that has tag from gets tag to instead.
// 200 {"changed":N}.
func (s *Server) handleRenameTag(w http.ResponseWriter, r *http.Request) {
	who := s.signedIn(w, r)
	if who == nil {
		return
	}
	if err := s.checkCSRF(r); err != nil {
		refuse(w, r, http.StatusForbidden, CodeForbidden, err.Error())
		return
	}
	var req struct{ From, To string }
	if !s.readJSONBody(w, r, &req, `{"from":"tag","to":"tag"}`) {
		return
	}
	to, err := cleanTags([]string{req.From, req.To})
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadMessage, err.Error())
		return
	}
	if len(to) != 2 {
		writeError(w, http.StatusBadRequest, CodeBadMessage, `"from" and "to" must be two different tags`)
		return
	}
	ctx := r.Context()
	ws := s.workspace
	changed, last := 0, ""
	for _, trashed := range []bool{false, true} {
		hits, err := ws.opts.Index.Search(ctx, SearchQuery{Readers: principals(who), Tag: to[0], Trashed: trashed, Limit: maxTagRename})
		if err != nil {
			s.writeStoreError(w, r, fmt.Errorf("search: %w", err))
			return
		}
		for _, h := range hits {
			rec, err := s.access.record(ctx, h.ID)
			if err != nil {
				s.writeStoreError(w, r, err)
				return
			}
			if rec.roleOf(who, roleNone) < roleEdit {
				continue
			}
			ws.infoMu.Lock()
			info, err := ws.info(ctx, h.ID)
			if err == nil && slices.Contains(info.Tags, to[0]) {
				info.Tags = slices.DeleteFunc(info.Tags, func(t string) bool { return t == to[0] || t == to[1] })
				info.Tags = append(info.Tags, to[1])
				err = ws.opts.Info.SetInfo(ctx, h.ID, info)
				changed++
			}
			ws.infoMu.Unlock()
			if err != nil {
				s.writeStoreError(w, r, err)
				return
			}
			ws.changed(h.ID)
			last = h.ID
		}
	}
	if last != "" {
		ws.sync(ctx, last) // the next flush has them all
	}
	writeJSON(w, http.StatusOK, map[string]int{"changed": changed})
}

// readJSONBody decodes a small JSON request body into v, having answered
// the request itself when it cannot.
func (s *Server) readJSONBody(w http.ResponseWriter, r *http.Request, v any, shape string) bool {
	if !isJSON(r) {
		refuse(w, r, http.StatusUnsupportedMediaType, CodeBadMessage, "the body must have Content-Type application/json")
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInfoBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("the body is over %d bytes", maxInfoBody))
		return false
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadMessage, "the body must be "+shape+": "+err.Error())
		return false
	}
	return true
}

// cleanTags trims, checks and de-duplicates tags.
func cleanTags(in []string) ([]string, error) {
	if len(in) > maxTags {
		return nil, fmt.Errorf("at most %d tags", maxTags)
	}
	out := make([]string, 0, len(in))
	for _, t := range in {
		t = strings.TrimSpace(t)
		if t == "" || len(t) > maxTagBytes || !utf8.ValidString(t) || strings.ContainsFunc(t, isControl) {
			return nil, fmt.Errorf("a tag is 1 to %d bytes of UTF-8 without control characters", maxTagBytes)
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// sweep purges the documents that have been in the trash longer than
// TrashFor.
func (ws *workspace) sweep(ctx context.Context) {
	hits, err := ws.opts.Index.Search(ctx, SearchQuery{Trashed: true, Limit: 1000})
	if err != nil {
		ws.log.Warn("trash not swept", "err", err)
		return
	}
	cutoff := ws.opts.Now().Add(-ws.opts.TrashFor)
	for _, h := range hits {
		info, err := ws.info(ctx, h.ID)
		if err != nil || info.Trashed.IsZero() || info.Trashed.After(cutoff) {
			continue
		}
		if err := ws.s.purge(ctx, h.ID); err != nil && !errors.Is(err, ErrNotFound) {
			ws.log.Warn("expired document not purged", "doc", h.ID, "err", err)
			continue
		}
		ws.log.Info("trashed document purged", "doc", h.ID, "trashed", info.Trashed)
	}
}

// purge deletes a document for good, through its hub as DELETE does.
func (s *Server) purge(ctx context.Context, id string) error {
	h, err := s.acquire(ctx, id)
	if err != nil {
		return err
	}
	defer s.release(h)
	m := deleteReq{reply: make(chan error, 1)}
	if !h.send(ctx, m) {
		return h.goneErr(ctx)
	}
	select {
	case err = <-m.reply:
		return err
	case <-h.done:
		select {
		case err = <-m.reply:
			return err
		default:
			return h.goneErr(ctx)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// deleted forgets a deleted document's info and takes it out of the
// index.
func (ws *workspace) deleted(ctx context.Context, id string) {
	if ws == nil {
		return
	}
	if err := ws.opts.Info.DeleteInfo(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
		ws.log.Warn("deleted document keeps its info", "err", err)
	}
	ws.changed(id)
}

// rotated moves the info of a document whose ids were rotated from its
// old edit id to its new one.
func (ws *workspace) rotated(ctx context.Context, old, id string) {
	if ws == nil {
		return
	}
	ws.infoMu.Lock()
	info, err := ws.opts.Info.Info(ctx, old)
	if err == nil {
		err = ws.opts.Info.SetInfo(ctx, id, info)
	}
	if err == nil {
		err = ws.opts.Info.DeleteInfo(ctx, old)
	}
	ws.infoMu.Unlock()
	if err != nil && !errors.Is(err, ErrNotFound) {
		ws.log.Warn("rotated document lost its title and tags", "err", err)
	}
	ws.changed(old)
	ws.changed(id)
}
