package collab

import (
	"net/http"
	"strings"
)

// pageCSP is the Content-Security-Policy of the pages: scripts, styles and
// connections from the server's own origin only (no inline script, no
// eval), nothing else loaded, and embedding as -frame-ancestors allows.
// 'self' in connect-src covers the same origin's ws: and wss: too.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors "

// apiCSP is the policy of API answers, which are data and never pages: a
// JSON error or a document's text opened in a browser runs nothing and
// loads nothing, and nobody frames it.
const apiCSP = "default-src 'none'; frame-ancestors 'none'; sandbox"

// securityHeaders sets the headers every answer carries: no MIME
// sniffing (a text/plain document must never be run as HTML or script),
// no Referer (the edit id is in the page's URL fragment, which browsers
// keep out of Referer, but a path could carry it), and a strict CSP.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	page := pageCSP + s.opts.FrameAncestors
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/healthz" {
			h.Set("Content-Security-Policy", apiCSP)
		} else {
			h.Set("Content-Security-Policy", page)
		}
		next.ServeHTTP(w, r)
	})
}
