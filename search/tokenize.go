package search

import (
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2/analysis"
	unitok "github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/registry"
)

// wordsTokenizer is the name of the tokenizer of new indexes: bleve's
// unicode tokenizer (Unicode word boundaries, UAX #29), with a fast path
// for ASCII.
//
// In a profile of the workspace benchmark the unicode tokenizer's state
// machine took a fifth of the CPU of indexing real text; most text is
// ASCII, where the same boundaries are a few byte comparisons. Stretches
// that hold other characters go to the unicode tokenizer, so that the
// tokens are the same (TestTokenizerMatchesUnicode).
const wordsTokenizer = "collabd_words"

// bleve finds tokenizers by name in its registry, which its own
// tokenizers fill from init functions; there is no other way to give an
// index mapping one of ours.
func init() {
	err := registry.RegisterTokenizer(wordsTokenizer, func(map[string]any, *registry.Cache) (analysis.Tokenizer, error) {
		return tokenizer{}, nil
	})
	if err != nil {
		panic(err)
	}
}

type tokenizer struct{}

// ASCII classes for word boundaries (UAX #29, Word_Break property).
const (
	cOther     = iota
	cLetter    // ALetter
	cDigit     // Numeric
	cUnder     // ExtendNumLet
	cMidLetter // MidLetter: ':'
	cMidNumLet // MidNumLet and Single_Quote: '.' '\''
	cMidNum    // MidNum: ',' ';'
)

var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = cLetter, cLetter
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = cDigit
	}
	t['_'] = cUnder
	t[':'] = cMidLetter
	t['.'], t['\''] = cMidNumLet, cMidNumLet
	t[','], t[';'] = cMidNum, cMidNum
	return t
}()

func (tokenizer) Tokenize(in []byte) analysis.TokenStream {
	out := make(analysis.TokenStream, 0, len(in)/6+1)
	pos := 1
	for i := 0; i < len(in); {
		j := i
		for j < len(in) && in[j] < utf8.RuneSelf {
			j++
		}
		if j == len(in) {
			out, _ = tokenizeASCII(out, in[i:], i, pos)
			break
		}
		// A boundary is safe where an ASCII character of no word class
		// is followed by an ASCII character: no rule joins across it or
		// looks through it, so what lies on either side can be split
		// apart without changing the words.
		k := j - 1
		for k > i && asciiClass[in[k-1]] != cOther {
			k--
		}
		if k < i {
			k = i
		}
		m := j + 1
		for m < len(in) && !(in[m] < utf8.RuneSelf && in[m-1] < utf8.RuneSelf && asciiClass[in[m-1]] == cOther) {
			m++
		}
		out, pos = tokenizeASCII(out, in[i:k], i, pos)
		for _, t := range unitok.NewUnicodeTokenizer().Tokenize(in[k:m]) {
			t.Start += k
			t.End += k
			t.Position = pos
			pos++
			out = append(out, t)
		}
		i = m
	}
	return out
}

// tokenizeASCII appends the words of s, which starts at offset in the
// input, from position pos.
func tokenizeASCII(out analysis.TokenStream, s []byte, offset, pos int) (analysis.TokenStream, int) {
	toks := make([]analysis.Token, 0, len(s)/6+1)
	for i := 0; i < len(s); {
		c := asciiClass[s[i]]
		if c != cLetter && c != cDigit && c != cUnder {
			i++
			continue
		}
		start, typ := i, analysis.Numeric
		prev := c
		for i < len(s) {
			c := asciiClass[s[i]]
			switch {
			case c == cLetter || c == cDigit || c == cUnder:
			case i+1 < len(s) && prev == cLetter && (c == cMidLetter || c == cMidNumLet) && asciiClass[s[i+1]] == cLetter:
				i++
				c = cLetter
			case i+1 < len(s) && prev == cDigit && (c == cMidNum || c == cMidNumLet) && asciiClass[s[i+1]] == cDigit:
				i++
				c = cDigit
			default:
				goto end
			}
			if c == cLetter {
				typ = analysis.AlphaNumeric
			}
			prev = c
			i++
		}
	end:
		toks = append(toks, analysis.Token{Term: s[start:i], Start: offset + start, End: offset + i, Position: pos, Type: typ})
		out = append(out, &toks[len(toks)-1])
		pos++
	}
	return out, pos
}
