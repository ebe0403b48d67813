package collab

import (
	"fmt"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/collabd/collabd/ot"
)

// phraseTracker follows a document through its ops and keeps the number
// of places where a phrase occurs in it, overlapping ones included
// ("aa" occurs twice in "aaa"), for the search in history
// (histsearch.go). It never searches the whole text again after the
// first: an op can only end occurrences that overlap what it deleted or
// straddle where it inserted, and only begin occurrences that overlap
// what it inserted or straddle where it deleted, so it counts the
// occurrences in a window of the phrase's length less one on each side
// of each change, before and after the op, and adds the difference.
// An op costs O(its inserted and deleted text + phrase length × its
// changes), not O(the text).
//
// Changes closer than that margin share one window, so that the margin
// of a window holds only text the op kept (and then no occurrence fits in
// two windows). Outside the windows the text and its occurrences are the
// same before and after, shifted.
//
// With fold, matching ignores case: text and phrase are compared
// lower-cased code point by code point (unicode.ToLower maps one code
// point to one), so positions and counts are those of the text itself.
//
// A phraseTracker is not safe for concurrent use.
type phraseTracker struct {
	doc    *ot.Doc
	phrase string // lower-cased when fold
	n      int    // its length in code points, >= 1
	fold   bool
	count  int // occurrences in doc

	wins  []phraseWindow // reused by apply
	olds  []int
	lower []byte // reused by occurrences
}

// phraseWindow is the part of the text around one change (or run of
// close changes) of an op: [oldFrom, oldTo) before it, [newFrom, newTo)
// after it.
type phraseWindow struct {
	oldFrom, oldTo, newFrom, newTo int
}

// newPhraseTracker returns a tracker of phrase, not empty, in text.
func newPhraseTracker(text, phrase string, fold bool) *phraseTracker {
	if fold {
		phrase = strings.ToLower(phrase)
	}
	t := &phraseTracker{doc: ot.NewDoc(text), phrase: phrase, n: utf8.RuneCountInString(phrase), fold: fold}
	t.count = t.occurrences(text)
	return t
}

// present reports whether the text holds the phrase.
func (t *phraseTracker) present() bool { return t.count > 0 }

// occurrences counts the places where the phrase occurs in s.
func (t *phraseTracker) occurrences(s string) int {
	if !t.fold {
		return countOverlapping(s, t.phrase)
	}
	// Lower-case ASCII into a reused buffer: strings.ToLower allocated a
	// copy per window and was a third of a search's time.
	b := t.lower[:0]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return countOverlapping(strings.ToLower(s), t.phrase)
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	t.lower = b
	return countOverlapping(unsafe.String(unsafe.SliceData(b), len(b)), t.phrase)
}

// countOverlapping counts the places where sub, not empty, occurs in s,
// overlapping ones included.
func countOverlapping(s, sub string) int {
	n := 0
	for {
		i := strings.Index(s, sub)
		if i < 0 {
			return n
		}
		n++
		// sub starts with a whole code point, so the next match starts
		// at the next code point at the earliest.
		_, w := utf8.DecodeRuneInString(s[i:])
		s = s[i+w:]
	}
}

// apply applies op to the text and updates the count. On error (an op
// that does not fit the text) the tracker is unchanged.
func (t *phraseTracker) apply(op ot.Op) error {
	if base, l := op.BaseLen(), t.doc.Len(); base != l {
		return fmt.Errorf("op covers %d code points, text has %d: %w", base, l, ot.ErrLengthMismatch)
	}
	margin := t.n - 1
	wins := t.wins[:0]
	oldPos, newPos := 0, 0
	inChange := false // the last component changed something
	for _, c := range op {
		switch {
		case c.IsRetain():
			oldPos += c.N
			newPos += c.N
			inChange = false
			continue
		case c.IsDelete():
			oldPos -= c.N
		case c.IsInsert():
			newPos += utf8.RuneCountInString(c.S)
		default:
			continue
		}
		if inChange {
			// An insert next to a delete: one change.
			w := &wins[len(wins)-1]
			w.oldTo, w.newTo = oldPos, newPos
			continue
		}
		inChange = true
		c0 := phraseWindow{oldPos, oldPos, newPos, newPos}
		if c.IsDelete() {
			c0.oldFrom = oldPos + c.N
		} else {
			c0.newFrom = newPos - utf8.RuneCountInString(c.S)
		}
		if k := len(wins); k > 0 && c0.oldFrom-wins[k-1].oldTo < margin {
			wins[k-1].oldTo, wins[k-1].newTo = c0.oldTo, c0.newTo
			continue
		}
		wins = append(wins, c0)
	}
	olds := t.olds[:0]
	for _, w := range wins {
		olds = append(olds, t.occurrences(t.doc.Slice(w.oldFrom-margin, w.oldTo+margin)))
	}
	if err := t.doc.Apply(op); err != nil {
		return err
	}
	for i, w := range wins {
		t.count += t.occurrences(t.doc.Slice(w.newFrom-margin, w.newTo+margin)) - olds[i]
	}
	t.wins, t.olds = wins, olds
	return nil
}
