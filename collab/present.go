package collab

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
)

// Who is in a document now, for the workspace's list (workspaceapi.go):
// each hub publishes the names of its editors on this node whenever one
// joins or leaves, for readers outside its goroutine to load without
// asking it. In cluster mode a node knows only its own editors, and only
// of the documents it has loaded.

// maxPresentNames bounds the names a list row carries.
const maxPresentNames = 16

// presentNames holds the names of a hub's editors, sorted, without
// duplicates, at most maxPresentNames; an editor without a name is
// "someone". It is safe for concurrent use.
type presentNames struct{ p atomic.Pointer[[]string] }

// publishPresent publishes the names of h's editors. Called by the hub.
func (h *hub) publishPresent() {
	names := make([]string, 0, min(len(h.editors), maxPresentNames))
	for _, e := range h.editors {
		name := e.name
		if name == "" {
			name = "someone"
		}
		names = append(names, name)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	names = names[:min(len(names), maxPresentNames)]
	h.present.p.Store(&names)
}

// presentIn returns the names of the editors of document id on this node.
func (s *Server) presentIn(id string) []string {
	s.mu.Lock()
	h := s.hubs[id]
	s.mu.Unlock()
	if h == nil {
		return []string{}
	}
	if p := h.present.p.Load(); p != nil {
		return *p
	}
	return []string{}
}

// docEditor is who made a document's latest op, in a workspace row.
type docEditor struct {
	Name   string `json:"name"`
	Author string `json:"author"`
}

// maxEditorMemo bounds the memo of who made which revision.
const maxEditorMemo = 8192

// editorMemo remembers who made revision rev of a document: a
// revision's op never changes, so a list shown again reads nothing. It
// is safe for concurrent use.
type editorMemo struct {
	mu sync.Mutex
	m  map[pastKey]*docEditor // nil: the server's op
}

func (m *editorMemo) get(k pastKey) (*docEditor, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.m[k]
	return e, ok
}

func (m *editorMemo) put(k pastKey, e *docEditor) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil || len(m.m) >= maxEditorMemo {
		m.m = make(map[pastKey]*docEditor)
	}
	m.m[k] = e
}

// rowPeople fills a workspace row's editor, of its revision, and the
// names of who has the document open on this node. Not knowing the
// editor costs the row its editor, not the answer.
func (s *Server) rowPeople(ctx context.Context, d *docListing, id string) {
	d.Present = s.presentIn(id)
	if d.Rev < 1 {
		return
	}
	k := pastKey{id, d.Rev}
	e, ok := s.editors.get(k)
	if !ok {
		revs, err := s.store.Revisions(ctx, id, d.Rev-1, 1)
		if err != nil || len(revs) != 1 || revs[0].Rev != d.Rev {
			if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, context.Canceled) {
				s.log.Warn("read a document's last editor", "doc", id, "rev", d.Rev, "err", err)
			}
			return
		}
		if c := revs[0].Client; c != "" {
			e = &docEditor{Author: s.author(c), Name: clientName(c)}
			if e.Name == "" {
				e.Name = s.authorNames.get(e.Author)
			}
		}
		s.editors.put(k, e)
	}
	d.Editor = e
}
