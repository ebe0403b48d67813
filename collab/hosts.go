package collab

// DNS rebinding: a page on evil.example can have its name resolve to
// 127.0.0.1 and then talk to a server on loopback as its own origin, so
// that neither CORS nor the WebSocket Origin check stops it (the origin
// is the page's). The browser still sends Host: evil.example, and that is
// what is checked here.

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"
)

// hostAllowed reports whether r names a host this server answers to:
// any, unless Options.AllowedHosts is set; then one of its patterns or a
// loopback name (localhost or a loopback address), whatever the port. A
// browser sends a loopback name only for a page that was itself loaded
// from loopback, which no rebinding can fake. A request without a Host
// (HTTP/1.0) names nothing to check; no browser sends one.
func (s *Server) hostAllowed(r *http.Request) bool {
	if s.opts.AllowedHosts == nil || r.Host == "" {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "localhost" {
		return true
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Unmap().IsLoopback() {
		return true
	}
	for _, p := range s.opts.AllowedHosts {
		if ok, _ := path.Match(strings.ToLower(p), host); ok {
			return true
		}
	}
	return false
}

// refuseHost answers a request for a host this server does not serve.
func refuseHost(w http.ResponseWriter, r *http.Request) {
	refuse(w, r, http.StatusForbidden, CodeForbidden,
		fmt.Sprintf("host %q is not served here; the server's operator can allow it with -allowed-hosts", r.Host))
}
