package collab

import "net/http"

// OIDC signs users in with an OpenID provider.
type OIDC struct{}

func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, CodeNotFound, "OpenID sign-in is off on this server")
}

func (s *Server) handleSignInCallback(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, CodeNotFound, "OpenID sign-in is off on this server")
}
