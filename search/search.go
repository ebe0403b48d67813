// Package search is the workspace's full-text index (collab.SearchIndex),
// kept with bleve in a directory beside the data file. It holds each
// document's current text and title (stored, for highlighted snippets),
// tags, owner, readers, trash flag and the revision it was indexed at, so
// that collab can tell after a crash what the index missed.
//
// An Index is safe for concurrent use.
package search

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	unitok "github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/highlight/format/html"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/collabd/collabd/collab"
)

// Field names in the index.
const (
	fText    = "text"
	fTitle   = "title"
	fTags    = "tags"
	fOwner   = "owner"
	fReaders = "readers"
	fTrashed = "trashed"
	fRev     = "rev"
	fUpdated = "updated"
	fViewID  = "viewId"

	wordsAnalyzer = "words"
)

// MaxTerms bounds the words and phrases of one query.
const MaxTerms = 32

// minPrefix is the shortest word typed so far that matches as a prefix.
const minPrefix = 3

// Index is a bleve index of documents.
type Index struct {
	idx   bleve.Index
	close sync.Once
	err   error
}

var _ collab.SearchIndex = (*Index)(nil)

// runtimeConfig is bleve's configuration of an open index.
//
// unsafe_batch: a batch returns once it is searchable, and is written to
// disk (and fsynced) in the background, rather than once it is on disk.
// Waiting for the disk left the indexer idle for most of a batch (a
// batch of 1 MB took 0.9 s on two busy cores, for 0.4 s of CPU); what a
// crash loses of the last batches the indexer catches up at start from
// the store's revisions (and, in cluster mode, from the feed positions
// kept in the index with them), and Close waits for what it was given
// to be on disk.
var runtimeConfig = map[string]any{"unsafe_batch": true}

// Open opens the index in dir, creating it if it does not exist.
func Open(dir string) (*Index, error) {
	idx, err := bleve.OpenUsing(dir, runtimeConfig)
	if errors.Is(err, bleve.ErrorIndexPathDoesNotExist) {
		idx, err = bleve.NewUsing(dir, indexMapping(), bleve.Config.DefaultIndexType, bleve.Config.DefaultKVStore, runtimeConfig)
	}
	if err != nil {
		return nil, fmt.Errorf("open search index %s: %w", dir, err)
	}
	return &Index{idx: idx}, nil
}

// Remove deletes the index in dir, for a rebuild.
func Remove(dir string) error { return os.RemoveAll(dir) }

// closeWait bounds how long Close waits for the last batches to be on
// disk; what is not is caught up at the next start.
const closeWait = 30 * time.Second

// Close closes the index once what it was given is on disk. Later calls
// do nothing (bleve panics on a second close).
func (x *Index) Close() error {
	x.close.Do(func() {
		// An empty batch whose persisted callback comes once the
		// background writer has reached it, and so everything before.
		persisted := make(chan error, 1)
		b := x.idx.NewBatch()
		b.SetPersistedCallback(func(err error) { persisted <- err })
		if err := x.idx.Batch(b); err == nil {
			select {
			case <-persisted:
			case <-time.After(closeWait):
			}
		}
		x.err = x.idx.Close()
	})
	return x.err
}

func indexMapping() mapping.IndexMapping {
	m := bleve.NewIndexMapping()
	// Words without stemming or stop words: a prefix typed so far must
	// match the terms as written, and "the" may be what is looked for.
	if err := m.AddCustomAnalyzer(wordsAnalyzer, map[string]any{
		"type":          custom.Name,
		"tokenizer":     unitok.Name,
		"token_filters": []any{lowercase.Name},
	}); err != nil {
		panic(err) // a constant configuration
	}
	text := func() *mapping.FieldMapping {
		f := bleve.NewTextFieldMapping()
		f.Analyzer = wordsAnalyzer
		f.Store = true
		// Term vectors (positions) about double the cost of indexing,
		// but phrases and highlighting need them.
		f.IncludeTermVectors = true
		f.IncludeInAll = false
		f.DocValues = false // nothing sorts or facets on text
		return f
	}
	kw := func(store bool) *mapping.FieldMapping {
		f := bleve.NewKeywordFieldMapping()
		f.Analyzer = keyword.Name
		f.Store = store
		f.IncludeInAll = false
		f.IncludeTermVectors = true
		return f
	}
	num := bleve.NewNumericFieldMapping()
	num.Index = false
	num.IncludeInAll = false
	date := bleve.NewDateTimeFieldMapping()
	date.IncludeInAll = false
	trashed := bleve.NewBooleanFieldMapping()
	trashed.IncludeInAll = false
	view := kw(true)
	view.Index = false

	d := bleve.NewDocumentStaticMapping()
	d.AddFieldMappingsAt(fText, text())
	d.AddFieldMappingsAt(fTitle, text())
	d.AddFieldMappingsAt(fTags, kw(true))
	d.AddFieldMappingsAt(fOwner, kw(true))
	d.AddFieldMappingsAt(fReaders, kw(false))
	d.AddFieldMappingsAt(fTrashed, trashed)
	d.AddFieldMappingsAt(fRev, num)
	d.AddFieldMappingsAt(fUpdated, date)
	d.AddFieldMappingsAt(fViewID, view)
	m.DefaultMapping = d
	m.DefaultAnalyzer = wordsAnalyzer
	m.StoreDynamic = false
	m.IndexDynamic = false
	return m
}

// Index adds or replaces entries and removes the documents in remove, in
// one batch.
func (x *Index) Index(ctx context.Context, entries []collab.IndexEntry, remove []string) error {
	b := x.idx.NewBatch()
	for _, e := range entries {
		tags := e.Tags
		if tags == nil {
			tags = []string{}
		}
		readers := e.Readers
		if readers == nil {
			readers = []string{}
		}
		doc := map[string]any{
			fText: e.Text, fTitle: e.Title, fTags: tags, fOwner: e.Owner, fReaders: readers,
			fTrashed: e.Trashed, fRev: float64(e.Rev), fUpdated: e.Updated.UTC(), fViewID: e.ViewID,
		}
		if err := b.Index(e.ID, doc); err != nil {
			return fmt.Errorf("index %s: %w", e.ID, err)
		}
	}
	for _, id := range remove {
		b.Delete(id)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return x.idx.Batch(b)
}

// Revs returns the revision each document was indexed at.
func (x *Index) Revs(ctx context.Context) (map[string]int64, error) {
	revs := map[string]int64{}
	const page = 5000
	var after []string
	for {
		req := bleve.NewSearchRequestOptions(bleve.NewMatchAllQuery(), page, 0, false)
		req.Fields = []string{fRev}
		req.SortBy([]string{"_id"})
		req.SearchAfter = after
		res, err := x.idx.SearchInContext(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, h := range res.Hits {
			r, _ := h.Fields[fRev].(float64)
			revs[h.ID] = int64(r)
		}
		if len(res.Hits) < page {
			return revs, nil
		}
		after = []string{res.Hits[len(res.Hits)-1].ID}
	}
}

// Count returns how many documents the index holds.
func (x *Index) Count() (uint64, error) { return x.idx.DocCount() }

// Search finds documents: ranked by relevance with q.Text, else most
// recently updated first.
func (x *Index) Search(ctx context.Context, q collab.SearchQuery) ([]collab.SearchHit, error) {
	var must []query.Query
	if len(q.Readers) > 0 {
		var anyOf []query.Query
		for _, r := range q.Readers {
			anyOf = append(anyOf, term(r, fReaders))
		}
		must = append(must, bleve.NewDisjunctionQuery(anyOf...))
	}
	trashed := bleve.NewBoolFieldQuery(q.Trashed)
	trashed.SetField(fTrashed)
	must = append(must, trashed)
	if q.Tag != "" {
		must = append(must, term(q.Tag, fTags))
	}
	text := textQuery(q.Text, x.completions)
	if text != nil {
		must = append(must, text)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	req := bleve.NewSearchRequestOptions(bleve.NewConjunctionQuery(must...), limit, 0, false)
	req.Fields = []string{fTitle, fTags, fOwner, fTrashed, fRev, fUpdated, fViewID}
	if text != nil {
		// By score alone: a tie-break on the time would read the time of
		// every match, thousands for a short prefix.
		req.SortBy([]string{"-_score"})
		req.Highlight = bleve.NewHighlightWithStyle(html.Name)
		req.Highlight.AddField(fText)
	} else {
		req.SortBy([]string{"-" + fUpdated, "_id"})
	}
	res, err := x.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, err
	}
	hits := make([]collab.SearchHit, 0, len(res.Hits))
	for _, h := range res.Hits {
		hits = append(hits, hitOf(h))
	}
	return hits, nil
}

func hitOf(h *search.DocumentMatch) collab.SearchHit {
	s := func(f string) string { v, _ := h.Fields[f].(string); return v }
	hit := collab.SearchHit{ID: h.ID, ViewID: s(fViewID), Title: s(fTitle), Owner: s(fOwner)}
	if r, ok := h.Fields[fRev].(float64); ok {
		hit.Rev = int64(r)
	}
	if t, err := time.Parse(time.RFC3339Nano, s(fUpdated)); err == nil {
		hit.Updated = t
	}
	hit.Trashed, _ = h.Fields[fTrashed].(bool)
	switch v := h.Fields[fTags].(type) {
	case string:
		hit.Tags = []string{v}
	case []any:
		for _, t := range v {
			if t, ok := t.(string); ok {
				hit.Tags = append(hit.Tags, t)
			}
		}
	}
	if fr := h.Fragments[fText]; len(fr) > 0 {
		hit.Snippet = strings.TrimSpace(fr[0])
	}
	return hit
}

func term(t, field string) query.Query {
	q := bleve.NewTermQuery(t)
	q.SetField(field)
	return q
}

// textQuery turns what a user typed into a query: every word and every
// "quoted phrase" must be in the title or the text; the last word, unless
// a space follows it, also matches as the start of a longer word (its
// most frequent completions, from complete). A
// match in the title counts three times one in the text. nil: nothing to
// look for.
func textQuery(s string, complete func(field, prefix string) []string) query.Query {
	words, phrases := split(s)
	prefix := ""
	if len(words) > 0 && !strings.HasSuffix(s, " ") && !strings.HasSuffix(s, `"`) {
		prefix = words[len(words)-1]
		words = words[:len(words)-1]
	}
	var must []query.Query
	field := func(make func(field string) query.Query) query.Query {
		title := make(fTitle)
		title.(query.BoostableQuery).SetBoost(3)
		return bleve.NewDisjunctionQuery(make(fText), title)
	}
	for _, w := range words {
		must = append(must, field(func(f string) query.Query {
			q := bleve.NewMatchQuery(w)
			q.SetField(f)
			q.Analyzer = wordsAnalyzer
			return q
		}))
	}
	for _, p := range phrases {
		must = append(must, field(func(f string) query.Query {
			q := bleve.NewMatchPhraseQuery(p)
			q.SetField(f)
			q.Analyzer = wordsAnalyzer
			return q
		}))
	}
	if prefix != "" {
		exact := field(func(f string) query.Query {
			q := bleve.NewMatchQuery(prefix)
			q.SetField(f)
			q.Analyzer = wordsAnalyzer
			return q
		})
		// The analyzer splits on punctuation and lowercases; a prefix
		// query is not analyzed, so it gets the word's last token.
		toks := tokens(prefix)
		// One or two letters would expand to too many words to be quick
		// or useful: they match whole words only.
		if len(toks) > 0 && len([]rune(toks[len(toks)-1])) >= minPrefix {
			p := toks[len(toks)-1]
			anyOf := []query.Query{exact}
			for _, f := range []string{fText, fTitle} {
				for _, t := range complete(f, p) {
					q := bleve.NewTermQuery(t)
					q.SetField(f)
					if f == fTitle {
						q.SetBoost(3)
					}
					anyOf = append(anyOf, q)
				}
			}
			must = append(must, bleve.NewDisjunctionQuery(anyOf...))
		} else {
			must = append(must, exact)
		}
	}
	if len(must) == 0 {
		return nil
	}
	return bleve.NewConjunctionQuery(must...)
}

// maxCompletions bounds the words a prefix stands for: its most frequent
// completions. Three letters of English start thousands of words, and a
// query over all of them is slow; one more letter narrows them.
const maxCompletions = 50

// completions returns the most frequent words of field that start with
// prefix, at most maxCompletions.
func (x *Index) completions(field, prefix string) []string {
	d, err := x.idx.FieldDictPrefix(field, []byte(prefix))
	if err != nil {
		return nil
	}
	defer d.Close()
	type tc struct {
		term  string
		count uint64
	}
	var all []tc
	for {
		e, err := d.Next()
		if err != nil || e == nil {
			break
		}
		all = append(all, tc{e.Term, e.Count})
	}
	slices.SortFunc(all, func(a, b tc) int { return cmp.Compare(b.count, a.count) })
	var out []string
	for _, t := range all[:min(len(all), maxCompletions)] {
		out = append(out, t.term)
	}
	return out
}

// split returns the words and the quoted phrases of s, at most MaxTerms
// in all. A quote left open runs to the end.
func split(s string) (words, phrases []string) {
	parts := strings.Split(s, `"`)
	for i, p := range parts {
		if i%2 == 1 {
			if p = strings.TrimSpace(p); p != "" && len(tokens(p)) > 0 {
				phrases = append(phrases, p)
			}
			continue
		}
		for _, w := range strings.Fields(p) {
			if len(tokens(w)) > 0 {
				words = append(words, w)
			}
		}
	}
	if len(phrases) > MaxTerms {
		phrases = phrases[:MaxTerms]
	}
	if len(words)+len(phrases) > MaxTerms {
		words = words[len(words)+len(phrases)-MaxTerms:]
	}
	return words, phrases
}

// tokens splits s roughly as the analyzer does: lowercased runs of
// letters and digits.
func tokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.Is(unicode.Mn, r)
	})
}

// Mark returns what SetMark last stored under key in the index, nil if
// nothing: the index's own bookkeeping (how far a cluster node's index
// has followed the stream), kept with the documents it describes.
func (x *Index) Mark(key string) ([]byte, error) {
	v, err := x.idx.GetInternal([]byte(markPrefix + key))
	if err != nil {
		return nil, fmt.Errorf("search index mark %s: %w", key, err)
	}
	return v, nil
}

// SetMark stores v under key in the index.
func (x *Index) SetMark(key string, v []byte) error {
	if err := x.idx.SetInternal([]byte(markPrefix+key), v); err != nil {
		return fmt.Errorf("search index mark %s: %w", key, err)
	}
	return nil
}

// markPrefix keeps marks apart from bleve's own internal keys.
const markPrefix = "collabd."
