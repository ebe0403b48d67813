package collab

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/collabd/collabd/ot"
)

// TestTextDiffApplies: for random pairs of texts, the diff applied to the
// first gives the second, and keeps the common lines as retains.
func TestTextDiffApplies(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	alphabet := []string{"a", "b", "é", "🙂", "\n", "x\n", "line one\n", "line two\n"}
	gen := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for i := range 2000 {
		a, b := gen(rng.IntN(40)), gen(rng.IntN(40))
		if i%3 == 0 { // a small edit of a
			b = a[:len(a)/2] + gen(rng.IntN(4)) + a[len(a)/2:]
			b = strings.ToValidUTF8(b, "?")
			a = strings.ToValidUTF8(a, "?")
		}
		op := textDiff(a, b)
		got, err := ot.Apply(a, op)
		if err != nil || got != b {
			t.Fatalf("diff %q -> %q: op %v gives %q, %v", a, b, op, got, err)
		}
	}
}

func TestTextDiffIsMinimalAndLineAware(t *testing.T) {
	for _, tc := range []struct{ a, b, want string }{
		{"hello world", "hello brave world", `[6,"brave ",5]`},
		{"one\ntwo\nthree\n", "one\nTWO\nthree\n", `[4,"TWO",-3,7]`},
		{"a\nb\nc\n", "a\nc\n", `[2,-2,2]`},
		{"", "new", `["new"]`},
		{"old", "", `[-3]`},
		{"same", "same", `[4]`},
	} {
		op := textDiff(tc.a, tc.b)
		if got := op.String(); got != tc.want {
			t.Errorf("diff %q -> %q: got %s, want %s", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestTextDiffFallsBack: past the cost bound the middle is replaced whole,
// still correctly.
func TestTextDiffFallsBack(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	var a, b strings.Builder
	for range 5000 {
		a.WriteString(string(rune('a' + rng.IntN(26))))
		b.WriteString(string(rune('a' + rng.IntN(26))))
	}
	op := textDiff(a.String(), b.String())
	if got, err := ot.Apply(a.String(), op); err != nil || got != b.String() {
		t.Fatalf("fallback diff does not apply: %v", err)
	}
}

// TestTextDiffAddedLineStaysWhole: a line added next to an edited one is
// one insert of the whole line, before or after it.
func TestTextDiffAddedLineStaysWhole(t *testing.T) {
	for _, tc := range []struct{ a, b, want string }{
		{"keep this word.\n", "keep this.\nAGENT TEXT HERE\n", `[9,-5,2,"AGENT TEXT HERE\n"]`},
		{"foo bar\n", "NEW LINE\nfoo baz\n", `["NEW LINE\n",6,"z",-1,1]`},
		{"one\nNOISE\ntwo\n", "one 1\ntwo 2\n", `[3," 1",1,-6,3," 2",1]`},
	} {
		op := textDiff(tc.a, tc.b)
		if got := op.String(); got != tc.want {
			t.Errorf("diff %q -> %q: got %s, want %s", tc.a, tc.b, got, tc.want)
		}
		if got, _ := ot.Apply(tc.a, op); got != tc.b {
			t.Errorf("diff %q -> %q gives %q", tc.a, tc.b, got)
		}
	}
}
