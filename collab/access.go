package collab

// Per-document access for teams that sign in (docs/teams.md). With
// Options.SignIn set, every document has an access record: its owner,
// members by user and by group with a role, and what its links (the edit
// id and the view id) let anyone holding them do. The record is checked
// by the guard of the route that matched (routes.go), as middleware: no
// handler and no hub decides access. A request that would hold a
// document's access for a while (an editing session, an SSE stream, a
// streamed write) registers a watch, and a change of the record closes
// the watches it no longer allows.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Link modes: what holding a document's links lets anyone do.
const (
	LinkNone = "none"
	LinkView = "view"
	LinkEdit = "edit"
)

// Access is the access record of one document.
type Access struct {
	// Owner is the user who created the document; empty for a document
	// created before sign-in was turned on.
	Owner string `json:"owner,omitempty"`
	// Link is LinkNone, LinkView or LinkEdit.
	Link    string   `json:"link"`
	Members []Member `json:"members"`
}

// Member grants Role ("view", "comment", "edit" or "owner") to one user
// or to everyone in one group: exactly one of User and Group is set.
type Member struct {
	User  string `json:"user,omitempty"`
	Group string `json:"group,omitempty"`
	Role  string `json:"role"`
}

// Session is a signed-in browser's server-side session.
type Session struct {
	User    string    `json:"user"`
	Groups  []string  `json:"groups,omitempty"`
	Expires time.Time `json:"expires"`
}

// AccessStore keeps access records and sign-in sessions durably. collab
// declares it; cmd/collabd adapts the bbolt store and, in cluster mode,
// JetStream key-value buckets to it. Implementations must be safe for
// concurrent use, return ErrNotFound (possibly wrapped) for a missing key,
// and return from a write only once it is durable.
type AccessStore interface {
	Access(ctx context.Context, doc string) (Access, error)
	SetAccess(ctx context.Context, doc string, a Access) error
	DeleteAccess(ctx context.Context, doc string) error
	// Sessions are keyed by a hash of the session id, never the id.
	Session(ctx context.Context, key string) (Session, error)
	SetSession(ctx context.Context, key string, s Session) error
	DeleteSession(ctx context.Context, key string) error
}

// Limits of an access record.
const (
	defaultMaxMembers = 256
	maxNameBytes      = 256 // a user or group name
	maxAccessBody     = 64 << 10
)

// role is what a caller may do with a document, in increasing order.
type role uint8

const (
	roleNone role = iota
	roleView
	roleComment
	roleEdit
	roleOwner
)

var roleNames = [...]string{"none", "view", "comment", "edit", "owner"}

func (r role) String() string { return roleNames[r] }

func parseRole(s string) (role, bool) {
	i := slices.Index(roleNames[:], s)
	return role(max(i, 0)), i > 0
}

func parseLink(s string) (role, bool) {
	switch s {
	case LinkNone:
		return roleNone, true
	case LinkView:
		return roleView, true
	case LinkEdit:
		return roleEdit, true
	}
	return roleNone, false
}

// roleFor returns the role a route's need asks for.
func (n need) role() role {
	switch n {
	case needView, needRead:
		return roleView
	case needComment:
		return roleComment
	case needEdit:
		return roleEdit
	case needOwner:
		return roleOwner
	}
	return roleNone
}

// legacyAccess is the record of a document that has none: one created
// before sign-in was turned on keeps working through its links as before,
// and a signed-in holder of its edit link may manage it.
var legacyAccess = Access{Link: LinkEdit}

// roleOf returns what who (nil: nobody signed in) may do with the
// document, having come through a link that grants via at most (roleEdit
// for the edit id, roleView for the view id).
func (a *Access) roleOf(who *identity, via role) role {
	link, _ := parseLink(a.Link)
	r := min(link, via)
	if who == nil {
		return r
	}
	if a.Owner == "" && r == roleEdit {
		return roleOwner // legacyAccess
	}
	if a.Owner == who.User {
		return roleOwner
	}
	for _, m := range a.Members {
		if (m.User != "" && m.User == who.User) || (m.Group != "" && slices.Contains(who.Groups, m.Group)) {
			if mr, ok := parseRole(m.Role); ok {
				r = max(r, mr)
			}
		}
	}
	return r
}

// check validates a record a client sent.
func (a *Access) check(maxMembers int) error {
	if _, ok := parseLink(a.Link); !ok {
		return fmt.Errorf(`"link" must be "none", "view" or "edit", got %q`, truncate(a.Link, 20))
	}
	if len(a.Members) > maxMembers {
		return fmt.Errorf("%d members; the limit is %d (give access to a group instead)", len(a.Members), maxMembers)
	}
	for i, m := range a.Members {
		if (m.User == "") == (m.Group == "") {
			return fmt.Errorf(`member %d: give exactly one of "user" and "group"`, i)
		}
		if err := checkName(m.User + m.Group); err != nil {
			return fmt.Errorf("member %d: %w", i, err)
		}
		if _, ok := parseRole(m.Role); !ok {
			return fmt.Errorf(`member %d: "role" must be "view", "comment", "edit" or "owner", got %q`, i, truncate(m.Role, 20))
		}
	}
	return nil
}

// checkName validates a user or group name, from a client or a proxy.
func checkName(s string) error {
	if s == "" || len(s) > maxNameBytes || !utf8.ValidString(s) {
		return fmt.Errorf("a user or group name must be 1 to %d bytes of UTF-8", maxNameBytes)
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == ',' {
			return errors.New("a user or group name may not hold control characters or commas")
		}
	}
	return nil
}

// errAccessRevoked is the cause of a request context ended because its
// caller lost access to the document: an editing session closes with
// forbidden (4403) on it, an SSE stream ends.
var errAccessRevoked = errors.New("access to the document was withdrawn")

// access is the state of sign-in and access checks; nil when off.
type access struct {
	store      AccessStore
	opts       SignInOptions
	defaultRec Access
	rotations  *addrBuckets // rotate.go's rate limit, per client address

	// mu guards watches: the requests holding a document's access, by
	// edit id.
	mu      sync.Mutex
	watches map[string]map[*watch]struct{}
}

// watch is one request (or the editing session it became) holding a
// role on a document.
type watch struct {
	doc    string
	who    *identity
	via    role
	need   role
	ctx    context.Context // ends when revoked or released
	cancel context.CancelCauseFunc
	expiry *time.Timer // ends ctx when the sign-in session expires; nil if none
	refs   int         // guarded by access.mu
}

type watchKey struct{}

// hold registers a watch on doc for the request whose context is ctx, and
// returns the request's context, which also ends when the watch is
// revoked, and the release.
func (ac *access) hold(ctx context.Context, doc string, who *identity, via, need role) (context.Context, func()) {
	w := &watch{doc: doc, who: who, via: via, need: need, refs: 1}
	w.ctx, w.cancel = context.WithCancelCause(context.Background())
	if who != nil && !who.expires.IsZero() {
		// A cookie session's sign-in lasts until it expires.
		w.expiry = time.AfterFunc(time.Until(who.expires), func() { w.cancel(errSessionEnded) })
	}
	ac.mu.Lock()
	set := ac.watches[doc]
	if set == nil {
		set = map[*watch]struct{}{}
		ac.watches[doc] = set
	}
	set[w] = struct{}{}
	ac.mu.Unlock()
	rctx, cancel := context.WithCancelCause(context.WithValue(ctx, watchKey{}, w))
	stop := context.AfterFunc(w.ctx, func() { cancel(context.Cause(w.ctx)) })
	return rctx, func() {
		stop()
		cancel(nil)
		ac.release(w)
	}
}

// detach lets a session that outlives its request keep the request's
// watch: base ends too when the watch is revoked. The returned func
// releases it.
func (ac *access) detach(ctx, base context.Context) (context.Context, func()) {
	w, _ := ctx.Value(watchKey{}).(*watch)
	if ac == nil || w == nil {
		return base, func() {}
	}
	ac.mu.Lock()
	w.refs++
	ac.mu.Unlock()
	dctx, cancel := context.WithCancelCause(base)
	stop := context.AfterFunc(w.ctx, func() { cancel(context.Cause(w.ctx)) })
	return dctx, func() {
		stop()
		cancel(nil)
		ac.release(w)
	}
}

func (ac *access) release(w *watch) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	if w.refs--; w.refs > 0 {
		return
	}
	if set := ac.watches[w.doc]; set != nil {
		delete(set, w)
		if len(set) == 0 {
			delete(ac.watches, w.doc)
		}
	}
	if w.expiry != nil {
		w.expiry.Stop()
	}
	w.cancel(nil)
}

// endSession ends every watch of sign-in session key (signed out).
func (ac *access) endSession(key string) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	for _, set := range ac.watches {
		for w := range set {
			if w.who != nil && w.who.session == key {
				w.cancel(errSessionEnded)
			}
		}
	}
}

// revoke ends the watches on doc that rec no longer allows (every one,
// with rec nil), except keep, with cause.
func (ac *access) revoke(doc string, rec *Access, keep *watch, cause error) int {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	n := 0
	for w := range ac.watches[doc] {
		if w == keep || (rec != nil && rec.roleOf(w.who, w.via) >= w.need) {
			continue
		}
		w.cancel(cause)
		n++
	}
	return n
}

// record returns doc's access record, legacyAccess if it has none.
func (ac *access) record(ctx context.Context, doc string) (Access, error) {
	a, err := ac.store.Access(ctx, doc)
	if errors.Is(err, ErrNotFound) {
		return legacyAccess, nil
	}
	return a, err
}

// created records the access of a document about to be created: its
// creator owns it, its links do what -default-link says. It is stored
// before the document, so that no document of a signed-in creator is
// ever without its record.
func (ac *access) created(ctx context.Context, doc string) error {
	if ac == nil {
		return nil
	}
	who := identityOf(ctx)
	if who == nil {
		return nil // a create token's request: a document as before
	}
	rec := ac.defaultRec
	rec.Owner = who.User
	return ac.store.SetAccess(ctx, doc, rec)
}

// deleted forgets a deleted document's record.
func (ac *access) deleted(ctx context.Context, doc string) error {
	if ac == nil {
		return nil
	}
	// Its hub closes its sessions and streams itself (history.go), and
	// the request that deleted it holds a watch that must not end here.
	if err := ac.store.DeleteAccess(ctx, doc); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("delete access record of %s: %w", doc, err)
	}
	return nil
}

// accessGuard checks what a signed-in (or anonymous) caller may do on
// the document that r's matched route names: nothing at all is 404 (as
// for an unknown document, so that a private document's existence does
// not leak), too little is 403.
func (s *Server) accessGuard(n need, next http.Handler) http.Handler {
	ac := s.access
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, err := s.identify(r)
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		if who != nil && !safeMethod(r.Method) {
			if err := s.checkCSRF(r); err != nil {
				refuse(w, r, http.StatusForbidden, CodeForbidden, err.Error())
				return
			}
		}
		ctx := r.Context()
		if who != nil {
			ctx = context.WithValue(ctx, identityKey{}, who)
		}
		if n == needCreate {
			if who == nil {
				refuse(w, r, http.StatusUnauthorized, CodeUnauthorized, "sign in to create documents")
				return
			}
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		doc, via, err := s.routeEditID(r, n)
		if errors.Is(err, ErrNotFound) {
			refuse(w, r, http.StatusNotFound, CodeNotFound, "no such document")
			return
		}
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		rec, err := ac.record(ctx, doc)
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		got := rec.roleOf(who, via)
		switch {
		case got == roleNone:
			refuse(w, r, http.StatusNotFound, CodeNotFound, "no such document")
			return
		case got < n.role():
			refuse(w, r, http.StatusForbidden, CodeForbidden,
				fmt.Sprintf("this needs %s access to the document; you have %s", n.role(), got))
			return
		}
		ctx, done := ac.hold(ctx, doc, who, via, n.role())
		defer done()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// routeEditID returns the edit id of the document that r's matched route
// names, and the most its link grants: roleEdit for an edit id ({id}),
// roleView for a view id ({viewId}, whatever the route needs: a route
// for commenters by view id needs a member's role, not the link's).
// ErrNotFound: the path value names no document.
func (s *Server) routeEditID(r *http.Request, n need) (string, role, error) {
	if v := r.PathValue("viewId"); v != "" || n == needView {
		viewID, ok := canonicalUUID(v)
		if !ok {
			return "", roleNone, ErrNotFound
		}
		edit, err := s.store.ViewDoc(r.Context(), viewID)
		return edit, roleView, err
	}
	id, ok := canonicalUUID(r.PathValue("id"))
	if !ok {
		return "", roleNone, ErrNotFound
	}
	return id, roleEdit, nil
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// accessOf returns the access record of a document that exists: a
// document without a record is a legacy one only if it exists at all.
func (s *Server) accessOf(ctx context.Context, id string) (Access, error) {
	h, err := s.acquire(ctx, id)
	if err != nil {
		return Access{}, err
	}
	s.release(h)
	return s.access.record(ctx, id)
}

// writeAccess answers GET and PUT .../access with the record.
func (s *Server) writeAccess(w http.ResponseWriter, a Access) {
	if a.Members == nil {
		a.Members = []Member{}
	}
	writeJSON(w, http.StatusOK, a)
}

// handleGetAccess answers GET /api/docs/{id}/access (owners).
func (s *Server) handleGetAccess(w http.ResponseWriter, r *http.Request) {
	if s.access == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "sign-in is off on this server")
		return
	}
	id, _ := docID(r)
	a, err := s.accessOf(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.writeAccess(w, a)
}

// handlePutAccess answers PUT /api/docs/{id}/access (owners): the
// record's link and members are replaced; its owner stays. The sessions
// and streams it no longer allows are closed.
func (s *Server) handlePutAccess(w http.ResponseWriter, r *http.Request) {
	if s.access == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "sign-in is off on this server")
		return
	}
	id, _ := docID(r)
	if !isJSON(r) {
		refuse(w, r, http.StatusUnsupportedMediaType, CodeBadMessage, "the body must have Content-Type application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAccessBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("the body is over %d bytes", maxAccessBody))
		return
	}
	var req Access
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadMessage, `the body must be {"link":"none"|"view"|"edit","members":[{"user"|"group":...,"role":...}]}: `+err.Error())
		return
	}
	if err := req.check(s.access.opts.MaxMembers); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadMessage, err.Error())
		return
	}
	old, err := s.accessOf(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	// The owner goes with the body a GET gave, but is not changed here:
	// more owners are members with role owner.
	if req.Owner != "" && req.Owner != old.Owner {
		writeError(w, http.StatusBadRequest, CodeBadMessage, `"owner" cannot be changed; add a member with role "owner" instead`)
		return
	}
	req.Owner = old.Owner
	if req.Owner == "" {
		if who := identityOf(r.Context()); who != nil {
			req.Owner = who.User // a legacy document gets its first owner
		}
	}
	if err := s.access.store.SetAccess(r.Context(), id, req); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.workspace.changed(id) // its readers in the index
	keep, _ := r.Context().Value(watchKey{}).(*watch)
	if n := s.access.revoke(id, &req, keep, errAccessRevoked); n > 0 {
		s.log.Info("access changed: sessions closed", "doc", id, "closed", n)
	}
	s.writeAccess(w, req)
}

// SessionEnded ends what sign-in session key (its store key) holds open
// on this node: a signed-out session's sessions and streams close (4401).
// In cluster mode, cmd/collabd calls it for every session record any node
// deletes; on the node that deleted it this finds nothing left.
func (s *Server) SessionEnded(key string) {
	if s.access != nil {
		s.access.endSession(key)
	}
}

// AccessChanged re-checks the sessions and streams this node holds on
// document doc against its access record as the store has it now, and
// closes those it no longer allows. In cluster mode, cmd/collabd calls it
// for every record any node writes; on the node that wrote it the change
// has already been applied, and this finds nothing to close. (A record
// that goes away goes with its document's old ids, whose hubs close
// their sessions on every node.)
func (s *Server) AccessChanged(ctx context.Context, doc string) {
	if s.access == nil {
		return
	}
	s.workspace.changed(doc)
	a, err := s.access.store.Access(ctx, doc)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		s.log.Warn("access change not applied to this node's sessions", "err", err)
	default:
		s.access.revoke(doc, &a, nil, errAccessRevoked)
	}
}
