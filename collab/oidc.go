package collab

// OpenID Connect sign-in (docs/teams.md): the authorization code flow
// with PKCE, state and nonce, through coreos/go-oidc (discovery, ID token
// signature and claims) and golang.org/x/oauth2 (the code exchange). The
// flow keeps nothing on the server until it succeeds: state, nonce, PKCE
// verifier and where to go back are in a short-lived HttpOnly cookie, so
// that a flood of sign-in starts costs no memory. A success leaves a
// server-side session (signin.go).

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// OIDCOptions configures OpenID Connect sign-in.
type OIDCOptions struct {
	// Issuer is the provider's issuer URL; its discovery document is
	// read at start-up.
	Issuer string
	// ClientID and ClientSecret are this server's client at the provider
	// (no secret: a public client, PKCE alone).
	ClientID     string
	ClientSecret string
	// RedirectURL is https://HOST/api/signin/callback as registered at
	// the provider.
	RedirectURL string
	// GroupsClaim names the ID token claim listing the user's groups
	// (default "groups"); UserClaim the one naming the user (default
	// preferred_username, then email, then sub).
	GroupsClaim string
	UserClaim   string
	// Scopes asked for (default openid, profile, email); openid is always
	// asked.
	Scopes []string
	// AllowedDomains, when set, admits only users whose ID token has a
	// verified email (email_verified true) in one of these domains: for
	// providers anyone can have an account at (Google).
	AllowedDomains []string
	// HTTPClient talks to the provider (nil: http.DefaultClient).
	HTTPClient *http.Client
	// SignInRate is how many sign-ins one client address may start per
	// second (default 1, bursts of 20): each callback costs a request to
	// the provider.
	SignInRate  float64
	SignInBurst int
}

// OIDC is a configured OpenID provider. It is safe for concurrent use.
type OIDC struct {
	opts     OIDCOptions
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	config   oauth2.Config
	starts   *addrBuckets
}

// signInFlowTTL is how long a sign-in may take at the provider.
const signInFlowTTL = 10 * time.Minute

// flowCookie holds a sign-in in progress; the callback is its only path.
const flowCookie = "collabd-signin"

// NewOIDC reads the provider's discovery document and returns the
// sign-in it configures.
func NewOIDC(ctx context.Context, o OIDCOptions) (*OIDC, error) {
	if o.Issuer == "" || o.ClientID == "" || o.RedirectURL == "" {
		return nil, errors.New("OpenID sign-in needs an issuer, a client id and a redirect URL")
	}
	if o.GroupsClaim == "" {
		o.GroupsClaim = "groups"
	}
	if len(o.Scopes) == 0 {
		o.Scopes = []string{"profile", "email"}
	}
	scopes := []string{oidc.ScopeOpenID}
	for _, s := range o.Scopes {
		if s != oidc.ScopeOpenID {
			scopes = append(scopes, s)
		}
	}
	setDefault(&o.SignInRate, 1)
	setDefault(&o.SignInBurst, 20)
	if o.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, o.HTTPClient)
	}
	p, err := oidc.NewProvider(ctx, o.Issuer)
	if err != nil {
		return nil, fmt.Errorf("OpenID provider %s: %w", o.Issuer, err)
	}
	return &OIDC{
		opts:     o,
		provider: p,
		verifier: p.Verifier(&oidc.Config{ClientID: o.ClientID}),
		config: oauth2.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret,
			Endpoint: p.Endpoint(), RedirectURL: o.RedirectURL, Scopes: scopes},
		starts: newAddrBuckets(o.SignInRate, o.SignInBurst, 10_000),
	}, nil
}

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// localPath returns next if it is a path on this server, "/" otherwise:
// the sign-in must not become an open redirect.
func localPath(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return next
}

func (s *Server) oidc() *OIDC {
	if s.access == nil {
		return nil
	}
	return s.access.opts.OIDC
}

// handleSignIn answers GET /api/signin?next=PATH: a redirect to the
// provider, with the flow's state in a cookie.
func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	o := s.oidc()
	if o == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "OpenID sign-in is off on this server")
		return
	}
	if !o.starts.allow(s.requestAddr(r), time.Now()) {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, CodeRateLimited, "too many sign-ins from this address; try again in a moment")
		return
	}
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	next := localPath(r.URL.Query().Get("next"))
	http.SetCookie(w, &http.Cookie{
		Name: flowCookie, Value: strings.Join([]string{state, nonce, verifier, base64.RawURLEncoding.EncodeToString([]byte(next))}, "."),
		Path: "/api/signin/", MaxAge: int(signInFlowTTL / time.Second),
		HttpOnly: true, Secure: s.overHTTPS(r), SameSite: http.SameSiteLaxMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, o.config.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// handleSignInCallback answers GET /api/signin/callback?code&state: the
// code is exchanged (with the PKCE verifier), the ID token checked
// (signature, issuer, audience, expiry, nonce), a session started, and
// the browser sent back where it started.
func (s *Server) handleSignInCallback(w http.ResponseWriter, r *http.Request) {
	o := s.oidc()
	if o == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "OpenID sign-in is off on this server")
		return
	}
	fail := func(status int, msg string) {
		http.SetCookie(w, &http.Cookie{Name: flowCookie, Path: "/api/signin/", MaxAge: -1, HttpOnly: true, Secure: s.overHTTPS(r)})
		code := CodeBadMessage
		if status == http.StatusUnauthorized {
			code = CodeUnauthorized
		}
		writeError(w, status, code, msg)
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		fail(http.StatusUnauthorized, "the provider refused the sign-in: "+truncate(e+" "+q.Get("error_description"), 200))
		return
	}
	c, err := r.Cookie(flowCookie)
	parts := []string{}
	if err == nil {
		parts = strings.Split(c.Value, ".")
	}
	if len(parts) != 4 {
		fail(http.StatusBadRequest, "no sign-in in progress in this browser (or it took over 10 minutes); start again")
		return
	}
	state, nonce, verifier := parts[0], parts[1], parts[2]
	nextB, _ := base64.RawURLEncoding.DecodeString(parts[3])
	if got := q.Get("state"); got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(state)) != 1 {
		fail(http.StatusBadRequest, "the sign-in's state does not match; start again")
		return
	}
	if !o.starts.allow(s.requestAddr(r), time.Now()) {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, CodeRateLimited, "too many sign-ins from this address; try again in a moment")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if o.opts.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, o.opts.HTTPClient)
	}
	tok, err := o.config.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		s.log.Warn("OpenID code exchange failed", "err", err)
		fail(http.StatusUnauthorized, "the provider did not accept the sign-in's code; start again")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		fail(http.StatusBadGateway, "the provider sent no ID token")
		return
	}
	id, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		s.log.Warn("OpenID ID token refused", "err", err)
		fail(http.StatusUnauthorized, "the provider's ID token did not verify")
		return
	}
	if subtle.ConstantTimeCompare([]byte(id.Nonce), []byte(nonce)) != 1 {
		fail(http.StatusUnauthorized, "the ID token's nonce does not match this sign-in")
		return
	}
	var claims map[string]any
	if err := id.Claims(&claims); err != nil {
		fail(http.StatusBadGateway, "the ID token's claims are not JSON")
		return
	}
	if err := o.admit(claims); err != nil {
		fail(http.StatusForbidden, err.Error())
		return
	}
	user := o.userOf(claims, id.Subject)
	if checkName(user) != nil {
		fail(http.StatusBadGateway, "the ID token names no usable user")
		return
	}
	if err := s.startSession(w, r, user, groupsOf(claims[o.opts.GroupsClaim])); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Path: "/api/signin/", MaxAge: -1, HttpOnly: true, Secure: s.overHTTPS(r)})
	s.log.Info("signed in", "user", user)
	http.Redirect(w, r, localPath(string(nextB)), http.StatusFound)
}

// admit checks AllowedDomains against a token's verified email.
func (o *OIDC) admit(claims map[string]any) error {
	if len(o.opts.AllowedDomains) == 0 {
		return nil
	}
	email, _ := claims["email"].(string)
	verified, _ := claims["email_verified"].(bool)
	_, domain, ok := strings.Cut(email, "@")
	if ok && verified {
		for _, d := range o.opts.AllowedDomains {
			if strings.EqualFold(d, domain) {
				return nil
			}
		}
	}
	return errors.New("this server admits only verified email addresses of its allowed domains")
}

// userOf returns the user an ID token names.
func (o *OIDC) userOf(claims map[string]any, sub string) string {
	keys := []string{"preferred_username", "email"}
	if o.opts.UserClaim != "" {
		keys = []string{o.opts.UserClaim}
	}
	for _, k := range keys {
		if v, ok := claims[k].(string); ok && v != "" {
			return v
		}
	}
	return sub
}

// groupsOf reads a groups claim: a list of strings, or one string.
func groupsOf(v any) []string {
	out := []string{}
	switch v := v.(type) {
	case string:
		if checkName(v) == nil {
			out = append(out, v)
		}
	case []any:
		for _, g := range v {
			if g, ok := g.(string); ok && checkName(g) == nil {
				out = append(out, g)
			}
		}
	}
	return out
}
