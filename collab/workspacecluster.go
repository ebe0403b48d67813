package collab

// The workspace in cluster mode (docs/workspace.md): every node keeps its
// own search index, fed by cmd/collabd from the cluster's change feeds
// (the op stream, the access and workspace buckets). The feed marks what
// other nodes changed with IndexChanged, in the indexer's dirty set like
// a local commit, so indexing stays batched and off the editing path;
// AfterIndexed tells the feed when what it marked is in the index, so
// that it can record how far it has indexed and resume from there.

// IndexChanged marks document doc for the search index: changed
// elsewhere (by another node of a cluster) at revision rev, or in its
// access or workspace record when rev is 0. The next flush indexes it
// at rev or later: a hub of doc open here whose log is still behind rev
// is passed over for the store. It never blocks on I/O, and does
// nothing when the workspace is off. Safe for concurrent use.
func (s *Server) IndexChanged(doc string, rev int64) {
	ws := s.workspace
	if ws == nil {
		return
	}
	ws.changed(doc)
	if rev <= 0 {
		return
	}
	ws.mu.Lock()
	if _, ok := ws.dirty[doc]; ok && rev > ws.want[doc] {
		ws.want[doc] = rev
	}
	ws.mu.Unlock()
}

// AfterIndexed calls fn, on the indexer's goroutine, once every document
// marked before the call (by IndexChanged or a commit here) is in the
// index: after the next flush that indexed all it took, which may be
// several flushes away when the index or the store fails. fn must be
// quick. It is never called if the workspace is off or closes first.
// Safe for concurrent use.
func (s *Server) AfterIndexed(fn func()) {
	ws := s.workspace
	if ws == nil {
		return
	}
	ws.mu.Lock()
	ws.after = append(ws.after, fn)
	ws.mu.Unlock()
}

// afterFlush runs the callbacks a flush took if it was clean, or hands
// them to the next flush.
func (ws *workspace) afterFlush(after []func(), clean bool) {
	if len(after) == 0 {
		return
	}
	if !clean {
		ws.mu.Lock()
		ws.after = append(after, ws.after...)
		ws.mu.Unlock()
		return
	}
	for _, fn := range after {
		fn()
	}
}
