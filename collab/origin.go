package collab

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// isJSON reports whether r says its body is JSON.
func isJSON(r *http.Request) bool {
	t, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && t == "application/json"
}

// checkOrigin applies to POST /api/docs the rule coder/websocket applies
// to editing sessions: a request with no Origin (not from a browser, or
// same-origin in an old one) or from the server's own origin passes, and
// so does an origin whose host (or scheme://host, for a pattern with
// "://") matches one of the patterns. A browser may send a cross-origin
// POST without asking (a form, or fetch with text/plain), so without this
// any web page could make its visitors create documents.
func checkOrigin(r *http.Request, patterns []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil {
		return fmt.Errorf("origin %q is not a URL", origin)
	}
	if strings.EqualFold(r.Host, u.Host) {
		return nil
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return nil
		}
	}
	return fmt.Errorf("origin %q may not create documents on this server", origin)
}
