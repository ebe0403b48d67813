package collab

// The route table: every endpoint of the API, with what it needs of its
// caller. Authorization is attached to each route here, so that it reads
// the path values of the route that actually matched, as the mux decoded
// them, and never parses the URL a second time (two parsers disagree on
// /api/%64ocs, and that is how a check gets skipped). A route cannot be
// registered without saying what it needs.

import "net/http"

// need is what a route needs of its caller.
type need uint8

const (
	// needNone: nothing (health, CORS preflights, the 404 of unknown
	// /api/ paths). Such a route must not read or change a document.
	needNone need = iota
	// needCreate: the right to create documents.
	needCreate
	// needView: read access to the document whose view id is the
	// {viewId} path value.
	needView
	// The needs below are of the document whose edit id is the {id}
	// path value, in increasing order (with sign-in on, the roles view <
	// comment < edit < owner of access.go answer them). Without sign-in
	// the edit id, or an edit token, grants every one of them, as it
	// always has.
	//
	// needRead: reading it (a signed-in viewer may read through the
	// edit id too).
	needRead
	// needComment: reading it and commenting, not editing.
	needComment
	// needEdit: edit access.
	needEdit
	// needOwner: managing it: its access, its links, deleting it. Without
	// sign-in, edit access is enough.
	needOwner
)

func (n need) String() string {
	switch n {
	case needNone:
		return "none"
	case needCreate:
		return "create"
	case needEdit:
		return "edit"
	case needView:
		return "view"
	case needRead:
		return "read"
	case needComment:
		return "comment"
	case needOwner:
		return "owner"
	}
	return "unknown"
}

// route is one entry of the table.
type route struct {
	pattern string // http.ServeMux pattern, method included
	need    need
	// cors marks the view endpoints that other origins may read: their
	// answers, refusals included, carry CORS headers.
	cors    bool
	handler http.HandlerFunc // nil: a CORS preflight answer
}

// routeTable lists every route of the API.
func (s *Server) routeTable() []route {
	notFound := func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	}
	rs := []route{
		{"POST /api/docs", needCreate, false, s.handleCreate},
		{"GET /api/docs", needNone, false, s.handleListDocs}, // signed-in users: their documents
		{"PATCH /api/docs/{id}", needEdit, false, s.handlePatchDoc},
		{"POST /api/docs/{id}/trash", needOwner, false, s.handleTrash},
		{"DELETE /api/docs/{id}/trash", needOwner, false, s.handleUntrash},
		{"POST /api/tags/rename", needNone, false, s.handleRenameTag}, // each document checked
		{"GET /api/docs/{id}", needRead, false, s.handleGetDoc},
		{"GET /api/docs/{id}/text", needRead, false, s.handleGetText},
		{"GET /api/docs/{id}/ops", needRead, false, s.handleGetOps},
		{"GET /api/docs/{id}/ws", needEdit, false, s.handleWS},
		{"GET /api/docs/{id}/events", needRead, false, s.handleDocEvents},
		{"GET /api/docs/{id}/revisions", needRead, false, s.handleDocRevisions},
		{"GET /api/docs/{id}/authors", needRead, false, s.handleDocAuthors},
		{"GET /api/docs/{id}/history/search", needRead, false, s.handleDocHistorySearch},
		{"POST /api/docs/{id}/restore", needEdit, false, s.handleRestore},
		{"POST /api/docs/{id}/ops", needEdit, false, s.handlePostOps},
		{"PUT /api/docs/{id}/text", needEdit, false, s.handlePutText},
		{"POST /api/docs/{id}/revert", needEdit, false, s.handleRevert},
		{"POST /api/docs/{id}/stream", needEdit, false, s.handleStream},
		{"DELETE /api/docs/{id}", needOwner, false, s.handleDelete},
		{"GET /api/docs/{id}/access", needOwner, false, s.handleGetAccess},
		{"PUT /api/docs/{id}/access", needOwner, false, s.handlePutAccess},
		{"POST /api/docs/{id}/access/rotate", needOwner, false, s.handleRotate},
		{"GET /api/me", needNone, false, s.handleMe},
		{"POST /api/signout", needNone, false, s.handleSignOut},
		{"GET /api/signin", needNone, false, s.handleSignIn},
		{"GET /api/signin/callback", needNone, false, s.handleSignInCallback},
		// Comments (commentapi.go). Settings are the owner's.
		{"GET /api/docs/{id}/comments", needComment, false, s.handleGetComments},
		{"POST /api/docs/{id}/comments", needComment, false, s.handleCreateComment},
		{"PATCH /api/docs/{id}/comments/{cid}", needComment, false, s.handlePatchComment},
		{"DELETE /api/docs/{id}/comments/{cid}", needComment, false, s.handleDeleteComment},
		{"POST /api/docs/{id}/comments/{cid}/replies", needComment, false, s.handleCreateReply},
		{"PATCH /api/docs/{id}/comments/{cid}/replies/{rid}", needComment, false, s.handlePatchReply},
		{"DELETE /api/docs/{id}/comments/{cid}/replies/{rid}", needComment, false, s.handleDeleteReply},
		{"GET /api/docs/{id}/comments/settings", needOwner, false, s.handleGetCommentSettings},
		{"PUT /api/docs/{id}/comments/settings", needOwner, false, s.handlePutCommentSettings},
		{"GET /api/view/{viewId}", needView, true, s.handleGetView},
		{"GET /api/view/{viewId}/events", needView, true, s.handleViewEvents},
		{"GET /api/view/{viewId}/text", needView, true, s.handleGetViewText},
		{"GET /api/view/{viewId}/revisions", needView, true, s.handleViewRevisions},
		{"GET /api/view/{viewId}/comments", needView, true, s.handleViewComments},
		{"GET /api/view/{viewId}/authors", needView, true, s.handleViewAuthors},
		{"GET /api/view/{viewId}/history/search", needView, true, s.handleViewHistorySearch},
		{"GET /healthz", needNone, false, s.handleHealthz},
		{"/api/", needNone, false, notFound},
	}
	// Every view endpoint answers its CORS preflight, which carries no
	// credentials and so needs none.
	for _, r := range rs {
		if r.cors {
			rs = append(rs, route{"OPTIONS" + r.pattern[len("GET"):], needNone, true, nil})
		}
	}
	return rs
}

// routes builds the API's mux from the table, each handler behind the
// access check of its route.
func (s *Server) routes() *http.ServeMux {
	return s.buildMux(func(rt route) http.Handler { return rt.handler })
}

// buildMux registers every route of the table with the handler that
// handler returns for it, wrapped in the route's access check (and CORS
// headers outside that, so that cross-origin viewers can read a
// refusal). Tests build the same mux around stub handlers to check what
// reaches them.
func (s *Server) buildMux(handler func(route) http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range s.routeTable() {
		var h http.Handler
		if rt.handler == nil {
			h = s.cors(nil)
		} else {
			h = s.guard(rt.need, handler(rt))
			if rt.cors {
				h = s.cors(h.ServeHTTP)
			}
		}
		mux.Handle(rt.pattern, h)
	}
	return mux
}

// routeDoc returns the canonical document id that a request's matched
// route names for need: the {id} or {viewId} path value, which the mux
// has already decoded. It reports false when the value is not a UUID, so
// names no document.
func routeDoc(r *http.Request, n need) (string, bool) {
	switch n {
	case needRead, needComment, needEdit, needOwner:
		return canonicalUUID(r.PathValue("id"))
	case needView:
		return canonicalUUID(r.PathValue("viewId"))
	}
	return "", false
}
