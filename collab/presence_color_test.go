package collab

import (
	"math"
	"strconv"
	"testing"
)

// TestPaletteContrast: every editor color holds white label text at a
// contrast of at least 4.5:1 (WCAG 2 relative luminance).
func TestPaletteContrast(t *testing.T) {
	lum := func(hex string) float64 {
		var c [3]float64
		for i := range c {
			v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
			x := float64(v) / 255
			if x <= 0.03928 {
				c[i] = x / 12.92
			} else {
				c[i] = math.Pow((x+0.055)/1.055, 2.4)
			}
		}
		return 0.2126*c[0] + 0.7152*c[1] + 0.0722*c[2]
	}
	seen := map[string]bool{}
	for _, c := range palette {
		if r := 1.05 / (lum(c) + 0.05); r < 4.5 {
			t.Errorf("%s on white text: contrast %.2f, want >= 4.5", c, r)
		}
		if seen[c] {
			t.Errorf("%s twice in the palette", c)
		}
		seen[c] = true
	}
}

// TestPickColorFollowsAuthor: an author gets the same color each time
// while it is free, and another when it is taken.
func TestPickColorFollowsAuthor(t *testing.T) {
	h := &hub{editors: map[string]*editor{}}
	a := h.pickColor("author-a")
	if b := h.pickColor("author-a"); b != a {
		t.Fatalf("same author: got %s then %s", a, b)
	}
	h.editors["x"] = &editor{color: a}
	if b := h.pickColor("author-a"); b == a {
		t.Fatalf("color %s is taken, got it again", a)
	}
	differ := false
	for _, id := range []string{"b", "c", "d", "e", "f"} {
		differ = differ || h.pickColor(id) != h.pickColor("author-a")
	}
	if !differ {
		t.Error("every author starts from the same color")
	}
}
