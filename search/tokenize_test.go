package search

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/blevesearch/bleve/v2/analysis"
	unitok "github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"

	"github.com/collabd/collabd/collab"
)

// TestTokenizerMatchesUnicode: the tokenizer gives the words, offsets
// and positions of bleve's unicode tokenizer, on random text of ASCII
// word characters, joiners and punctuation mixed with letters, marks,
// ideographs, emoji and spaces from beyond ASCII.
func TestTokenizerMatchesUnicode(t *testing.T) {
	ascii := []string{"a", "Z", "q", "7", "0", "_", ":", ".", "'", ",", ";", " ", " ", "\n", "\r", "\t", "-", "\"", "!", "/", "@"}
	other := []string{"é", "\u0301", "中", "文", "カ", "ア", "😀", "\u200d", "’", "\u00a0", "ß", "\u3000", "٣", "א", "·"}
	r := rand.New(rand.NewPCG(7, 7))
	fixed := []string{"The roadmap, can't: e.g. 3.14 and 1,000; foo_bar __ _x x_ a.b.c", "naïve café 中文 text", "a\u0301b c", " \u0301abc", "x.\u0301y"}
	for n := range 20000 {
		var sb strings.Builder
		if n < len(fixed) {
			sb.WriteString(fixed[n])
		} else {
			for range r.IntN(40) {
				if r.IntN(8) == 0 {
					sb.WriteString(other[r.IntN(len(other))])
				} else {
					sb.WriteString(ascii[r.IntN(len(ascii))])
				}
			}
		}
		in := []byte(sb.String())
		want := unitok.NewUnicodeTokenizer().Tokenize(in)
		got := tokenizer{}.Tokenize(in)
		ok := len(got) == len(want)
		for i := 0; ok && i < len(got); i++ {
			g, w := got[i], want[i]
			ok = string(g.Term) == string(w.Term) && g.Start == w.Start && g.End == w.End && g.Position == w.Position
		}
		if !ok {
			t.Fatalf("%q:\ngot  %v\nwant %v", in, got, want)
		}
	}
}

// BenchmarkTokenize: the tokenizer against bleve's unicode tokenizer on
// English text. On the shared machine compare CPU time (-cpuprofile):
// wall time mostly measures the neighbours.
//
//	go test -run '^$' -bench BenchmarkTokenize -benchtime 2000x ./search
func BenchmarkTokenize(b *testing.B) {
	text := []byte(strings.Repeat("The quick brown fox, who's 3.5 years old, jumps over the lazy dog: e.g. twice. ", 150))
	b.Run("collabd", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		for range b.N {
			tokenizer{}.Tokenize(text)
		}
	})
	b.Run("unicode", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		for range b.N {
			unitok.NewUnicodeTokenizer().Tokenize(text)
		}
	})
}

// TestNewIndexUsesTokenizer: a new index analyzes with the tokenizer
// above, and finds words next to characters beyond ASCII.
func TestNewIndexUsesTokenizer(t *testing.T) {
	x, _ := openTest(t)
	a, ok := x.idx.Mapping().AnalyzerNamed(wordsAnalyzer).(*analysis.DefaultAnalyzer)
	if !ok {
		t.Fatalf("analyzer %q: got %T", wordsAnalyzer, x.idx.Mapping().AnalyzerNamed(wordsAnalyzer))
	}
	if _, ok := a.Tokenizer.(tokenizer); !ok {
		t.Errorf("tokenizer: got %T, want search.tokenizer", a.Tokenizer)
	}
	e := collab.IndexEntry{ID: "n", Title: "Notes", Text: "Crème brûlée, 中文 and the naïve roadmap’s end", Owner: "ann", Readers: []string{"u:ann"}}
	if err := x.Index(t.Context(), []collab.IndexEntry{e}, nil); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"brûlée ", "naïve ", "roadmap’s ", "中 ", `"and the"`} {
		hits, err := x.Search(t.Context(), collab.SearchQuery{Text: q, Readers: []string{"u:ann"}})
		if err != nil || len(hits) != 1 {
			t.Errorf("%q: got %v, %v; want n", q, ids(hits), err)
		}
	}
}
