package collab

import (
	"context"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Search in history (docs/protocol.md, "Search in history"): GET
// /api/docs/{id}/history/search?q=PHRASE (and /api/view/{viewId}/...)
// answers the revisions of a document in which a phrase was present, as
// spans [from, to): it appeared at revision from and was gone at to.
//
// The search starts from the text at revision ?from=R (0 by default, the
// empty document; a past text is rebuilt from the store's nearest
// milestone snapshot, through pastText) and applies the ops after it one
// at a time to a phraseTracker (phrase.go), which keeps the number of
// occurrences without searching the whole text again: an op costs its own
// size, not the document's. It goes through the Store interface alone
// (LoadAt, Ops), so it works the same on one node and in a cluster.
//
// The work is bounded: a request looks at most HistorySearchOps ops and
// spends at most HistorySearchTime; past either it answers what it found
// with "complete":false and "scanned":N, and the client asks again with
// from=N. At most MaxHistorySearches run at once (429 past them), each
// holding its text under the budget of held bytes, and q is at most
// maxHistoryQuery code points.

const (
	// maxHistoryQuery bounds the phrase, in code points: each change an
	// op makes costs a window twice its length.
	maxHistoryQuery = 200
	// maxHistorySpans bounds the spans of one answer; a search that
	// finds more stops there, incomplete, and the client continues.
	maxHistorySpans = 1000
	// historySearchPage is how many ops are read from the store at once.
	historySearchPage = 4096
	// historySearchPerChar is what a search holds per code point of the
	// largest document: its text as a gap buffer (up to 4 bytes a code
	// point, and the gap) and the windows it reads.
	historySearchPerChar = 8
)

// historySpan is a run of revisions in which the phrase was present: from
// From up to, not including, To; To nil while it is present at the last
// revision searched.
type historySpan struct {
	From int64  `json:"from"`
	To   *int64 `json:"to"`
}

// historySearchJSON is the answer of GET .../history/search.
type historySearchJSON struct {
	Q        string        `json:"q"`
	From     int64         `json:"from"`
	Head     int64         `json:"head"`
	Scanned  int64         `json:"scanned"`
	Complete bool          `json:"complete"`
	Spans    []historySpan `json:"spans"`
}

func (s *Server) handleDocHistorySearch(w http.ResponseWriter, r *http.Request) {
	id, ok := docID(r)
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such document")
		return
	}
	s.serveHistorySearch(w, r, id)
}

func (s *Server) handleViewHistorySearch(w http.ResponseWriter, r *http.Request) {
	id, err := s.viewDoc(r)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.serveHistorySearch(w, r, id)
}

// serveHistorySearch answers GET .../history/search?q=&from=&case=.
func (s *Server) serveHistorySearch(w http.ResponseWriter, r *http.Request, id string) {
	q := r.URL.Query()
	phrase := q.Get("q")
	switch n := utf8.RuneCountInString(phrase); {
	case n == 0:
		writeError(w, http.StatusBadRequest, CodeBadMessage, "q must be the phrase to search for")
		return
	case n > maxHistoryQuery || !utf8.ValidString(phrase):
		writeError(w, http.StatusBadRequest, CodeBadMessage, fmt.Sprintf("q must be valid text of at most %d characters", maxHistoryQuery))
		return
	}
	from, err := queryInt(r, "from", 0)
	if err != nil || from < 0 {
		writeError(w, http.StatusBadRequest, CodeBadMessage, "from must be a revision >= 0")
		return
	}
	fold := true
	switch q.Get("case") {
	case "", "ignore":
	case "match":
		fold = false
	default:
		writeError(w, http.StatusBadRequest, CodeBadMessage, "case must be ignore or match")
		return
	}
	select {
	case s.histSearches <- struct{}{}:
		defer func() { <-s.histSearches }()
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, CodeRateLimited,
			fmt.Sprintf("%d searches in history are running; try again shortly", cap(s.histSearches)))
		return
	}
	key := unsafe.Pointer(new(byte))
	reserve := int64(s.opts.MaxDocChars)*historySearchPerChar + 2*int64(s.opts.MaxOpsPageBytes)
	if !s.held.holdWait(r.Context(), key, reserve, pastRebuildWait) {
		s.refuseHeld(w)
		return
	}
	defer s.held.release(key)
	res, err := s.searchHistory(r.Context(), id, phrase, fold, from)
	if err != nil {
		s.writeHistoryError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// searchHistory searches document id's revisions after from for phrase,
// within the request's budget.
func (s *Server) searchHistory(ctx context.Context, id, phrase string, fold bool, from int64) (*historySearchJSON, error) {
	head, err := s.store.RevAt(ctx, id, time.Now().Add(time.Hour))
	if err != nil {
		return nil, err
	}
	if from > head {
		return nil, fmt.Errorf("doc %s has no rev %d: %w", id, from, ErrNoRevision)
	}
	text := ""
	if from > 0 {
		if text, err = s.loadPastText(ctx, id, from); err != nil {
			return nil, err
		}
	}
	t := newPhraseTracker(text, phrase, fold)
	text = ""
	res := &historySearchJSON{Q: phrase, From: from, Head: head, Scanned: from, Spans: []historySpan{}}
	if t.present() {
		res.Spans = append(res.Spans, historySpan{From: from})
	}
	deadline := time.Now().Add(s.opts.HistorySearchTime)
	budget := int64(s.opts.HistorySearchOps)
	for cur := from; cur < head; {
		// Each request gets through one page at least, so that paging
		// progresses however slow the store.
		if cur > from && time.Now().After(deadline) {
			return res, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		page, err := s.store.Ops(ctx, id, cur, int(min(historySearchPage, head-cur, budget)), s.opts.MaxOpsPageBytes)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return nil, fmt.Errorf("doc %s: the store has no ops after rev %d, want up to %d", id, cur, head)
		}
		for _, rec := range page {
			if rec.Rev != cur+1 {
				return nil, fmt.Errorf("doc %s: store returned rev %d after rev %d", id, rec.Rev, cur)
			}
			was := t.present()
			if err := t.apply(rec.Op); err != nil {
				return nil, fmt.Errorf("doc %s history search at rev %d: %w", id, rec.Rev, err)
			}
			cur = rec.Rev
			res.Scanned = cur
			budget--
			switch now := t.present(); {
			case now && !was:
				res.Spans = append(res.Spans, historySpan{From: cur})
			case was && !now:
				to := cur
				res.Spans[len(res.Spans)-1].To = &to
			}
			if cur >= head || budget <= 0 || len(res.Spans) >= maxHistorySpans {
				res.Complete = cur >= head
				return res, nil
			}
		}
	}
	res.Complete = res.Scanned == head
	return res, nil
}
