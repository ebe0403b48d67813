package collab

// Access tokens for embedding (docs/embedding.md): an application that
// embeds collabd decides who may edit, watch or create documents by
// minting short-lived JWTs, and this file checks them, as HTTP middleware
// in front of every route. With tokens off (Options.Auth nil) nothing here
// runs and the edit id alone stays the capability to edit.

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token roles: what a token lets its bearer do.
const (
	// RoleEdit opens editing sessions and reads a document by its edit id;
	// it also reads the document's view endpoints.
	RoleEdit = "edit"
	// RoleView reads a document's view endpoints only.
	RoleView = "view"
	// RoleCreate creates documents (POST /api/docs).
	RoleCreate = "create"
)

// CreateTokenHeader is the header that may carry the create token
// (AuthOptions.CreateToken) instead of Authorization: Bearer.
const CreateTokenHeader = "X-Create-Token"

// defaultLeeway is how far a token's exp and nbf may be off the server's
// clock, for clocks that disagree a little.
const defaultLeeway = 10 * time.Second

// AuthOptions configures access tokens. HMACSecret and JWKS switch JWTs
// on (one of them, or both); CreateToken alone only guards creation.
type AuthOptions struct {
	// HMACSecret verifies HS256 tokens.
	HMACSecret []byte
	// JWKS is a JSON Web Key Set (RFC 7517) of public keys verifying
	// RS256 (kty RSA), ES256 (kty EC, crv P-256) and EdDSA (kty OKP,
	// crv Ed25519) tokens. A token whose header names a kid is checked
	// against that key only.
	JWKS []byte
	// CreateToken, when set, is a shared secret that lets a request create
	// documents: sent as Authorization: Bearer or in CreateTokenHeader.
	// Without JWTs, only creation needs it; with them, a create-role JWT
	// works too.
	CreateToken string
	// Leeway is how far exp and nbf may be off (default 10 s; negative:
	// none). An editing session ends when its token's exp plus Leeway
	// passes.
	Leeway time.Duration
	// Now is the clock tokens are checked against; nil means time.Now.
	Now func() time.Time
}

// Auth checks access tokens. It is immutable and safe for concurrent use.
type Auth struct {
	parser      *jwt.Parser // nil when JWTs are off
	hmac        []byte
	keys        []jwk
	createToken []byte
	leeway      time.Duration
	now         func() time.Time
}

// jwk is one public key of the set, with the algorithm it verifies.
type jwk struct {
	kid string
	alg string // jwt signing method: RS256, ES256 or EdDSA
	key any
}

// NewAuth returns the checker configured by o, or an error saying what is
// wrong with its keys.
func NewAuth(o AuthOptions) (*Auth, error) {
	a := &Auth{hmac: o.HMACSecret, now: o.Now, leeway: o.Leeway}
	if a.now == nil {
		a.now = time.Now
	}
	switch {
	case a.leeway == 0:
		a.leeway = defaultLeeway
	case a.leeway < 0:
		a.leeway = 0
	}
	if o.CreateToken != "" {
		a.createToken = []byte(o.CreateToken)
	}
	var methods []string
	if len(o.HMACSecret) > 0 {
		if len(o.HMACSecret) < 32 {
			return nil, fmt.Errorf("HS256 secret has %d bytes; use at least 32 random bytes", len(o.HMACSecret))
		}
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if len(o.JWKS) > 0 {
		keys, err := parseJWKS(o.JWKS)
		if err != nil {
			return nil, err
		}
		a.keys = keys
		seen := map[string]bool{}
		for _, k := range keys {
			if !seen[k.alg] {
				seen[k.alg] = true
				methods = append(methods, k.alg)
			}
		}
	}
	if len(methods) > 0 {
		// The methods are exactly those we hold keys for: "none", and an
		// HS256 token "signed" with a public key, never get as far as a
		// signature check.
		a.parser = jwt.NewParser(
			jwt.WithValidMethods(methods),
			jwt.WithLeeway(a.leeway),
			jwt.WithExpirationRequired(),
			jwt.WithTimeFunc(a.now),
		)
	}
	return a, nil
}

// tokenClaims are the claims collabd reads from a token.
type tokenClaims struct {
	// Doc is the edit id or view id the token is for, or "*" for all.
	Doc  string `json:"doc"`
	Role string `json:"role"`
	// Name, when set, is shown in presence instead of the hello's name.
	Name string `json:"name"`
	jwt.RegisteredClaims
}

// errBadToken is wrapped by every reason a token is refused with 401.
var errBadToken = errors.New("invalid access token")

// errTokenExpired is the cause of a request context ended by its token's
// expiry; an editing session closes with unauthorized on it.
var errTokenExpired = errors.New("access token expired")

// verify parses and checks a JWT: signature, alg, exp, nbf and collabd's
// own claims.
func (a *Auth) verify(raw string) (*tokenClaims, error) {
	c := &tokenClaims{}
	if _, err := a.parser.ParseWithClaims(raw, c, a.keyFor); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadToken, err)
	}
	switch c.Role {
	case RoleEdit, RoleView:
		if c.Doc == "" {
			return nil, fmt.Errorf(`%w: a %s token needs a "doc" claim`, errBadToken, c.Role)
		}
	case RoleCreate:
	default:
		return nil, fmt.Errorf(`%w: "role" must be edit, view or create, got %q`, errBadToken, truncate(c.Role, 20))
	}
	return c, nil
}

// keyFor returns the keys that may have signed t. WithValidMethods has
// already refused any alg we hold no key for.
func (a *Auth) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg == jwt.SigningMethodHS256.Alg() {
		return a.hmac, nil
	}
	kid, _ := t.Header["kid"].(string)
	var set jwt.VerificationKeySet
	for _, k := range a.keys {
		if k.alg == alg && (kid == "" || k.kid == kid) {
			set.Keys = append(set.Keys, k.key)
		}
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("no %s key with kid %q", alg, kid)
	}
	return set, nil
}

// bearer returns the token a request carries: Authorization: Bearer, or
// on a GET (a WebSocket, an EventSource, a link) the token query
// parameter, for browsers cannot set headers there.
func bearer(r *http.Request) string {
	// Another scheme (a proxy's Basic credentials, say) is not ours: look
	// at the query then.
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(tok)
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return r.URL.Query().Get("token")
	}
	return ""
}

// hasCreateToken reports whether r carries the create token.
func (a *Auth) hasCreateToken(r *http.Request) bool {
	if a.createToken == nil {
		return false
	}
	for _, t := range []string{bearer(r), r.Header.Get(CreateTokenHeader)} {
		if t != "" && subtle.ConstantTimeCompare([]byte(t), a.createToken) == 1 {
			return true
		}
	}
	return false
}

// tokenKey is the request context key of the verified *tokenClaims.
type tokenKey struct{}

// tokenName returns the display name the request's token sets, if any.
func tokenName(ctx context.Context) string {
	if who := identityOf(ctx); who != nil {
		return cleanName(who.User) // signed in: the name is not the client's to choose
	}
	if c, ok := ctx.Value(tokenKey{}).(*tokenClaims); ok && c.Name != "" {
		return cleanName(c.Name)
	}
	return ""
}

// guard wraps a route's handler with the check of what the route needs
// (routes.go): with tokens on, the request's token must grant need on the
// document the route's path values name, and otherwise it is answered
// 401 (no valid token) or 403 (a valid token that does not grant this).
// An admitted request's context ends when its token expires, which ends
// an SSE stream, and watchToken turns into close 4401 for an editing
// session.
func (s *Server) guard(n need, next http.Handler) http.Handler {
	tokens := s.tokenGuard(n, next)
	if s.access == nil || n == needNone {
		return tokens
	}
	// With sign-in on (access.go), a request that carries a token (or the
	// create token) is the token's, as before; one signed in, or one
	// without tokens on, answers to the document's access record.
	signedIn := s.accessGuard(n, next)
	a := s.opts.Auth
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a != nil && ((a.parser != nil && bearer(r) != "") || (n == needCreate && a.hasCreateToken(r))) {
			tokens.ServeHTTP(w, r)
			return
		}
		if a != nil && a.parser != nil {
			who, err := s.identify(r)
			if err != nil {
				s.writeStoreError(w, r, err)
				return
			}
			if who == nil {
				tokens.ServeHTTP(w, r) // 401: a token or a sign-in
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), identityKey{}, who))
		}
		signedIn.ServeHTTP(w, r)
	})
}

// tokenGuard is the guard of access tokens alone.
func (s *Server) tokenGuard(n need, next http.Handler) http.Handler {
	a := s.opts.Auth
	if a == nil || n == needNone {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n == needCreate && a.hasCreateToken(r) {
			next.ServeHTTP(w, r)
			return
		}
		if a.parser == nil {
			// A create token alone guards creation only.
			if n == needCreate && a.createToken != nil {
				refuseToken(w, r, http.StatusUnauthorized, "creating documents needs the server's create token")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		raw := bearer(r)
		if raw == "" {
			refuseToken(w, r, http.StatusUnauthorized, "an access token is required (Authorization: Bearer, or ?token= on GET)")
			return
		}
		c, err := a.verify(raw)
		if err != nil {
			s.log.Debug("access token refused", "route", r.Pattern, "err", err)
			refuseToken(w, r, http.StatusUnauthorized, err.Error())
			return
		}
		if msg := s.grants(r, c, n); msg != "" {
			refuseToken(w, r, http.StatusForbidden, msg)
			return
		}
		ctx := context.WithValue(r.Context(), tokenKey{}, c)
		ctx, cancel := context.WithDeadlineCause(ctx, c.ExpiresAt.Add(a.leeway), errTokenExpired)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// refuseToken answers a request whose token does not let it through:
// 401 with invalid_token, or 403 with insufficient_scope.
func refuseToken(w http.ResponseWriter, r *http.Request, status int, msg string) {
	code := CodeUnauthorized
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	} else {
		code = CodeForbidden
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
	}
	// refuse (limits.go) answers without waiting for a body.
	refuse(w, r, status, code, msg)
}

// grants returns why token c does not grant need n on the document that
// r's matched route names, or "" when it does.
func (s *Server) grants(r *http.Request, c *tokenClaims, n need) string {
	switch n {
	case needCreate:
		if c.Role != RoleCreate {
			return fmt.Sprintf("a %s token cannot create documents", c.Role)
		}
		return ""
	case needRead, needComment, needEdit, needOwner:
		if c.Role != RoleEdit {
			return fmt.Sprintf("a %s token cannot use edit endpoints", c.Role)
		}
		// A path value that is no UUID names no document: only a "*"
		// token gets through, to the route's 404.
		if id, _ := routeDoc(r, n); !sameDoc(c.Doc, id) {
			return "the token is for another document"
		}
		return ""
	case needView:
		if c.Role != RoleEdit && c.Role != RoleView {
			return fmt.Sprintf("a %s token cannot view documents", c.Role)
		}
		id, ok := routeDoc(r, n)
		if sameDoc(c.Doc, id) {
			return ""
		}
		// A token for the edit id reads its view endpoints too.
		if ok {
			if editID, err := s.store.ViewDoc(r.Context(), id); err == nil && sameDoc(c.Doc, editID) {
				return ""
			}
		}
		return "the token is for another document"
	}
	return ""
}

func sameDoc(claim, id string) bool {
	if claim == "*" {
		return true
	}
	c, ok := canonicalUUID(claim)
	return ok && c == id
}

// detachToken returns a context for a session that outlives its request
// (an editing session, once the WebSocket handshake is done): it is not
// cancelled with the request, yet it still ends, with cause
// errTokenExpired, when the request's access token expires. cancel
// releases it.
func (s *Server) detachToken(ctx context.Context) (context.Context, context.CancelFunc) {
	// Signed in (access.go): the session also ends when its access is
	// withdrawn.
	base, release := s.access.detach(ctx, context.WithoutCancel(ctx))
	if _, ok := ctx.Value(tokenKey{}).(*tokenClaims); ok {
		if d, ok := ctx.Deadline(); ok {
			c, cancel := context.WithDeadlineCause(base, d, errTokenExpired)
			return c, func() { cancel(); release() }
		}
	}
	c, cancel := context.WithCancel(base)
	return c, func() { cancel(); release() }
}

// watchToken fails editing session c with unauthorized (close 4401) when
// the token it was opened with expires: ctx is the upgrade request's,
// which authorize gave the token's deadline. The returned func stops the
// watch.
func watchToken(ctx context.Context, c *conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() {
		switch err := context.Cause(ctx); {
		case errors.Is(err, errTokenExpired):
			c.fail(errorf(CodeUnauthorized, "the access token has expired; reconnect with a fresh one"))
		case errors.Is(err, errAccessRevoked):
			c.fail(errorf(CodeForbidden, "%v", err))
		case errors.Is(err, errSessionEnded):
			c.fail(errorf(CodeUnauthorized, "%v", err))
		}
	})
}

// parseJWKS reads the public keys of a JSON Web Key Set. Keys of other
// types, and private keys' extra members, are refused rather than
// ignored: a key file that verifies nothing is a mistake to report.
func parseJWKS(data []byte) ([]jwk, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Alg string `json:"alg"`
			Use string `json:"use"`
			Crv string `json:"crv"`
			N   string `json:"n"`
			E   string `json:"e"`
			X   string `json:"x"`
			Y   string `json:"y"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("JWKS is not a JSON key set: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New(`JWKS has no "keys"`)
	}
	b64 := base64.RawURLEncoding
	var out []jwk
	for i, k := range set.Keys {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("JWKS key %d (kid %q): %s", i, k.Kid, fmt.Sprintf(format, args...))
		}
		if k.D != "" {
			return nil, fail("is a private key; give collabd only public keys")
		}
		if k.Use != "" && k.Use != "sig" {
			return nil, fail("use %q is not sig", k.Use)
		}
		var key jwk
		key.kid = k.Kid
		switch k.Kty {
		case "RSA":
			n, err1 := b64.DecodeString(k.N)
			e, err2 := b64.DecodeString(k.E)
			if err1 != nil || err2 != nil || len(n) < 256 || len(e) == 0 || len(e) > 4 {
				return nil, fail("bad RSA n or e (at least 2048 bits)")
			}
			key.alg = "RS256"
			key.key = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		case "EC":
			if k.Crv != "P-256" {
				return nil, fail("curve %q: only P-256 (ES256) is supported", k.Crv)
			}
			x, err1 := b64.DecodeString(k.X)
			y, err2 := b64.DecodeString(k.Y)
			if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
				return nil, fail("bad P-256 x or y")
			}
			// The uncompressed point form lets crypto/ecdh check that it
			// lies on the curve, which a bare big.Int pair would not.
			pt := append(append([]byte{4}, x...), y...)
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
			if err != nil {
				return nil, fail("point is not on P-256: %v", err)
			}
			key.alg = "ES256"
			key.key = pub
		case "OKP":
			x, err := b64.DecodeString(k.X)
			if k.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
				return nil, fail("only Ed25519 OKP keys are supported")
			}
			key.alg = "EdDSA"
			key.key = ed25519.PublicKey(x)
		default:
			return nil, fail("kty %q: RSA, EC or OKP expected", k.Kty)
		}
		if k.Alg != "" && k.Alg != key.alg {
			return nil, fail("alg %q does not fit a %s key (%s)", k.Alg, k.Kty, key.alg)
		}
		out = append(out, key)
	}
	return out, nil
}
