package collab

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// pageCSP is the Content-Security-Policy of the pages: scripts, styles and
// connections from the server's own origin only (no inline script, no
// eval), nothing else loaded but images, and embedding as
// -frame-ancestors allows. 'self' in connect-src covers the same origin's
// ws: and wss: too. Images may come from any https: URL, so that a
// Markdown document can show them (sent without a Referer).
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors "

// apiCSP is the policy of API answers, which are data and never pages: a
// JSON error or a document's text opened in a browser runs nothing and
// loads nothing, and nobody frames it.
const apiCSP = "default-src 'none'; frame-ancestors 'none'; sandbox"

// securityHeaders sets the headers every answer carries: no MIME
// sniffing (a text/plain document must never be run as HTML or script),
// no Referer (the edit id is in the page's URL fragment, which browsers
// keep out of Referer, but a path could carry it), and a strict CSP;
// over https, Strict-Transport-Security too, so that a browser never
// sends an edit id over plain HTTP to this host again.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A function of its own, so that its frame is not under every
		// long-lived stream's (see Protect).
		s.setSecurityHeaders(w.Header(), r)
		next.ServeHTTP(w, r)
	})
}

func (s *Server) setSecurityHeaders(h http.Header, r *http.Request) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if s.headers.hsts != "" && s.overHTTPS(r) {
		h.Set("Strict-Transport-Security", s.headers.hsts)
	}
	if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/healthz" {
		h.Set("Content-Security-Policy", apiCSP)
	} else {
		h.Set("Content-Security-Policy", s.headers.page)
	}
}

// headerValues are the values of securityHeaders that depend on Options,
// made once.
type headerValues struct {
	page string // Content-Security-Policy of the pages
	hsts string // Strict-Transport-Security; empty: none
}

func newHeaderValues(o Options) headerValues {
	v := headerValues{page: pageCSP + o.FrameAncestors}
	if o.HSTSMaxAge > 0 {
		v.hsts = "max-age=" + strconv.FormatInt(int64(o.HSTSMaxAge/time.Second), 10)
	}
	return v
}

// overHTTPS reports whether r's client used https: to this server's TLS,
// or to a trusted proxy that says so in X-Forwarded-Proto. From anyone
// else the header is ignored: over plain HTTP, HSTS means nothing to a
// browser anyway, but a client must not make the server claim https.
func (s *Server) overHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if len(s.opts.TrustedProxies) == 0 || !s.trusted(parseIP(r.RemoteAddr)) {
		return false
	}
	// A chain of proxies may list one value each; the client's is first.
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	return strings.EqualFold(strings.TrimSpace(proto), "https")
}
