package ot

import (
	"strings"
	"testing"
)

// TestDocSize: Size counts the buffer, gap included, at the text's width,
// and follows the text as it grows and widens.
func TestDocSize(t *testing.T) {
	for _, tc := range []struct {
		text  string
		width int
	}{
		{strings.Repeat("a", 1000), 1},
		{strings.Repeat("é", 1000), 2},
		{strings.Repeat("😀", 1000), 4},
	} {
		d := NewDoc(tc.text)
		if got, want := d.Size(), tc.width*(1000+1000/4); got != want {
			t.Errorf("width %d: got %d, want %d", tc.width, got, want)
		}
	}
	d := NewDoc("abc")
	if err := d.Apply(Op{Retain(3), Insert(strings.Repeat("😀", 500))}); err != nil {
		t.Fatal(err)
	}
	if got := d.Size(); got < 4*503 {
		t.Errorf("after widening to 503 emoji: got %d bytes, want at least %d", got, 4*503)
	}
}
