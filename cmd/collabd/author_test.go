package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/collab/client"
	"github.com/google/uuid"
)

// TestAuthorStableAcrossRestart: the key that author ids are derived from
// is kept in the data file, so a client keeps its author id when the
// server restarts on the same file (and a server on another file names
// it differently).
func TestAuthorStableAcrossRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := filepath.Join(t.TempDir(), "collab.db")
	clientID := uuid.NewString()
	authorOn := func(s *server) string {
		id := createDoc(t, s.URL, "x")
		c, err := client.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/api/docs/"+id+"/ws", client.Options{ClientID: clientID})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.Author()
	}
	s := startServerAt(t, data)
	first := authorOn(s)
	s.Stop(t)
	s = startServerAt(t, data)
	second := authorOn(s)
	s.Stop(t)
	if first == "" || first != second {
		t.Errorf("author before the restart %q, after %q; want one non-empty id", first, second)
	}
	if other := authorOn(startServer(t)); other == first {
		t.Errorf("a server on another data file gave the same author %q", other)
	}
}
