package collab

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// Author ids (protocol 2). A client id is its session's secret resume key:
// whoever presents it in a hello takes over that session and its seq. So
// the server never sends one to anybody. Where a message or the API says
// who made an op or whose cursor it is, it gives the author id instead:
// HMAC-SHA256 of the client id under a server key, cut to authorBytes
// and written in base64url. Without the key nobody can go from author id
// back to client id, or test a guess; with the key kept in the store, an
// author id stays the same across reconnects and restarts.

// authorBytes is how much of the MAC an author id keeps: 128 bits, far
// past any chance of two editors of a document colliding.
const authorBytes = 16

// authorKeySize is the length of a key New makes for itself.
const authorKeySize = 32

// newAuthorKey returns a random key, for a Server given none.
func newAuthorKey() []byte {
	k := make([]byte, authorKeySize)
	rand.Read(k) // never fails (crypto/rand panics rather than return an error)
	return k
}

// author returns the public author id of a client id, or "" for the
// server's own ops (client ""). An HTTP run's is derived from its run, or
// from its agent's token name (httpwrite.go, whoSep).
func (s *Server) author(client string) string {
	if client == "" {
		return ""
	}
	m := hmac.New(sha256.New, s.authorKey)
	if name, ok := agentName(client); ok {
		// An HTTP run of an agent its token names (httpwrite.go): the
		// agent's author id, the same for all its runs. No client id
		// starts so: an editor's is a UUID, a run's starts "http:".
		m.Write([]byte("agent\x00" + name))
	} else {
		base, _ := splitClient(client)
		m.Write([]byte(base))
	}
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(m.Sum(sum[:0])[:authorBytes])
}

// authorOf is author, remembered per hub: catch-up and broadcasts name the
// same few clients again and again. The memo is dropped when it grows
// past maxAuthorMemo entries, so a document with a long history of
// clients cannot make it grow without bound.
func (h *hub) authorOf(client string) string {
	if a, ok := h.authors[client]; ok {
		return a
	}
	if h.authors == nil || len(h.authors) >= maxAuthorMemo {
		h.authors = make(map[string]string)
	}
	a := h.srv.author(client)
	h.authors[client] = a
	return a
}

const maxAuthorMemo = 1024
