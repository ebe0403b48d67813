package collab

// Sign-in (docs/teams.md): who a request comes from. Two ways in: a
// trusted reverse proxy (oauth2-proxy, Authelia, Authentik, Caddy or nginx
// forward auth) names the user in a header, believed only from
// Options.TrustedProxies; or an OpenID Connect sign-in (oidc.go) leaves a
// server-side session, whose random id the browser holds in a cookie.
// Either way the identity is ambient (the browser sends it unasked), so
// every state-changing request that carries one passes an Origin check.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// SignInOptions turns sign-in and per-document access on.
type SignInOptions struct {
	// Store keeps access records and sessions (required).
	Store AccessStore
	// Header, when set, is the request header in which a trusted proxy
	// (Options.TrustedProxies) names the signed-in user; GroupsHeader,
	// their groups, comma-separated. From any other peer both are
	// ignored.
	Header       string
	GroupsHeader string
	// DefaultLink is the link mode of new documents: LinkNone (the
	// default: private), LinkView or LinkEdit.
	DefaultLink string
	// SessionTTL is how long a session lasts after sign-in (default 12
	// hours).
	SessionTTL time.Duration
	// MaxMembers bounds the members of one document (default 256), and
	// MaxGroups the groups of one user that are kept (default 64; more
	// are dropped).
	MaxMembers int
	MaxGroups  int
	// RotateRate is how many link rotations one client address may make
	// per second on average (default 0.1), in bursts of RotateBurst
	// (default 5): each copies a document's whole history.
	RotateRate  float64
	RotateBurst int
	// OIDC, when set, signs users in with an OpenID provider (oidc.go).
	OIDC *OIDC
}

// identity is a signed-in user.
type identity struct {
	User   string
	Groups []string
	// session is the store key of the cookie session, "" when a proxy's
	// header signed the request in; expires is when that session ends.
	session string
	expires time.Time
}

// errSessionEnded is the cause of a request context ended because the
// sign-in session it came with expired or was signed out: an editing
// session closes with unauthorized (4401) on it, an SSE stream ends.
var errSessionEnded = errors.New("the sign-in session ended; sign in again")

type identityKey struct{}

// identityOf returns the signed-in user of a request's context, or nil.
func identityOf(ctx context.Context) *identity {
	who, _ := ctx.Value(identityKey{}).(*identity)
	return who
}

// Session cookies: __Host- (Secure, host-only, path /) whenever the
// client uses https; browsers refuse that prefix over plain http, where
// the plain name is used.
const (
	sessionCookieTLS   = "__Host-collabd-session"
	sessionCookiePlain = "collabd-session"
)

func newAccess(o SignInOptions) (*access, error) {
	if o.Store == nil {
		return nil, errors.New("sign-in needs an access store")
	}
	setDefault(&o.SessionTTL, 12*time.Hour)
	setDefault(&o.MaxMembers, defaultMaxMembers)
	setDefault(&o.MaxGroups, 64)
	setDefault(&o.RotateRate, 0.1)
	setDefault(&o.RotateBurst, 5)
	if o.DefaultLink == "" {
		o.DefaultLink = LinkNone
	}
	if _, ok := parseLink(o.DefaultLink); !ok {
		return nil, fmt.Errorf("default link %q: want none, view or edit", o.DefaultLink)
	}
	return &access{store: o.Store, opts: o, defaultRec: Access{Link: o.DefaultLink},
		watches: map[string]map[*watch]struct{}{}, rotations: newAddrBuckets(o.RotateRate, o.RotateBurst, 10_000)}, nil
}

// identify returns who r comes from, nil for nobody.
func (s *Server) identify(r *http.Request) (*identity, error) {
	if who := identityOf(r.Context()); who != nil {
		return who, nil
	}
	o := &s.access.opts
	if o.Header != "" && s.trusted(parseIP(r.RemoteAddr)) {
		if user := strings.TrimSpace(r.Header.Get(o.Header)); user != "" && checkName(user) == nil {
			return &identity{User: user, Groups: s.headerGroups(r)}, nil
		}
	}
	c, err := r.Cookie(s.sessionCookie(r))
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return nil, nil
	}
	key := sessionKey(c.Value)
	sess, err := s.access.store.Session(r.Context(), key)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	case !time.Now().Before(sess.Expires):
		s.access.store.DeleteSession(context.WithoutCancel(r.Context()), key)
		return nil, nil
	}
	return &identity{User: sess.User, Groups: sess.Groups, session: key, expires: sess.Expires}, nil
}

// headerGroups returns the groups the trusted proxy's groups header
// lists: trimmed, valid, at most MaxGroups.
func (s *Server) headerGroups(r *http.Request) []string {
	o := &s.access.opts
	if o.GroupsHeader == "" {
		return []string{}
	}
	out := []string{}
	for _, line := range r.Header.Values(o.GroupsHeader) {
		for g := range strings.SplitSeq(line, ",") {
			if g = strings.TrimSpace(g); checkName(g) == nil && len(out) < o.MaxGroups {
				out = append(out, g)
			}
		}
	}
	return out
}

func (s *Server) sessionCookie(r *http.Request) string {
	if s.overHTTPS(r) {
		return sessionCookieTLS
	}
	return sessionCookiePlain
}

// sessionKey is the store key of a session id: its hash, so that the
// store (or a backup of it) holds nothing a browser could present.
func sessionKey(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

// startSession stores a session for who and sets its cookie on w.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, user string, groups []string) error {
	var b [32]byte
	rand.Read(b[:])
	id := base64.RawURLEncoding.EncodeToString(b[:])
	ttl := s.access.opts.SessionTTL
	if len(groups) > s.access.opts.MaxGroups {
		groups = groups[:s.access.opts.MaxGroups]
	}
	sess := Session{User: user, Groups: groups, Expires: time.Now().Add(ttl)}
	if err := s.access.store.SetSession(r.Context(), sessionKey(id), sess); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: s.sessionCookie(r), Value: id, Path: "/", MaxAge: int(ttl / time.Second),
		HttpOnly: true, Secure: s.overHTTPS(r), SameSite: http.SameSiteLaxMode,
	})
	return nil
}

// checkCSRF refuses a state-changing request that a page of another
// origin made a browser send: its Origin, when it has one, must be this
// server's or an allowed one (origin.go); without Origin, the browser's
// Sec-Fetch-Site must not say cross-site. A request from no browser has
// neither and passes: it has no ambient credential to abuse.
func (s *Server) checkCSRF(r *http.Request) error {
	if r.Header.Get("Origin") != "" {
		if err := checkOrigin(r, s.opts.AllowedOrigins); err != nil {
			return fmt.Errorf("a signed-in request from origin %q may not change anything here", truncate(r.Header.Get("Origin"), 100))
		}
		return nil
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return nil
	}
	return errors.New("a cross-site request may not change anything here")
}

// handleMe answers GET /api/me: who the request is signed in as.
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	if s.access == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "sign-in is off on this server")
		return
	}
	who, err := s.identify(r)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if s.oidc() != nil {
		// The pages offer sign-in only when this server does it itself.
		w.Header().Set("X-Collabd-Sign-In", "/api/signin")
	}
	if who == nil {
		writeError(w, http.StatusUnauthorized, CodeUnauthorized, "not signed in")
		return
	}
	groups := who.Groups
	if groups == nil {
		groups = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user": who.User, "groups": groups,
		// The pages offer sign-out only for a session of ours.
		"session": who.session != "",
	})
}

// handleSignOut answers POST /api/signout: the session ends, here and in
// the store, and its cookie is cleared.
func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request) {
	if s.access == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "sign-in is off on this server")
		return
	}
	if err := s.checkCSRF(r); err != nil {
		refuse(w, r, http.StatusForbidden, CodeForbidden, err.Error())
		return
	}
	who, err := s.identify(r)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if who != nil && who.session != "" {
		if err := s.access.store.DeleteSession(r.Context(), who.session); err != nil && !errors.Is(err, ErrNotFound) {
			s.writeStoreError(w, r, err)
			return
		}
		// What the session holds open ends with it, on this node.
		s.access.endSession(who.session)
	}
	http.SetCookie(w, &http.Cookie{Name: s.sessionCookie(r), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.overHTTPS(r), SameSite: http.SameSiteLaxMode})
	w.WriteHeader(http.StatusNoContent)
}
