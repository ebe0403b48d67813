package ot

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// TestPropRunsAgreeWithLabels applies random ops to Runs and to a label per
// code point, and checks that the runs spell out the same labels, with no
// empty run and no two adjacent runs of one label.
func TestPropRunsAgreeWithLabels(t *testing.T) {
	labels := []string{"", "ada", "bob", "cy"}
	for _, seed := range seeds(300) {
		r := rand.New(rand.NewPCG(seed, 0))
		var ref []string
		runs := NewRuns(nil)
		for step := range 60 {
			op := randOp(r, len(ref))
			var ins []Run
			for _, c := range op {
				if c.IsInsert() {
					// Several labels per insert, some adjacent alike.
					for k := utf8.RuneCountInString(c.S); k > 0; {
						n := 1 + r.IntN(k)
						ins = append(ins, Run{labels[r.IntN(len(labels))], n})
						k -= n
					}
				}
			}
			if r.IntN(4) == 0 {
				ins = append(ins, Run{"zero", 0})
			}
			if err := runs.ApplyLabeled(op, ins); err != nil {
				t.Fatalf("seed %d step %d: ApplyLabeled(%v): %v", seed, step, op, err)
			}
			ref = applyLabels(ref, op, ins)
			checkRuns(t, fmt.Sprintf("seed %d step %d op %v", seed, step, op), runs, ref)
			from := r.IntN(len(ref) + 1)
			to := from + r.IntN(len(ref)-from+1)
			got := expand(runs.Slice(from, to))
			if fmt.Sprint(got) != fmt.Sprint(ref[from:to]) {
				t.Fatalf("seed %d: Slice(%d, %d) = %v, want %v", seed, from, to, got, ref[from:to])
			}
		}
	}
}

func applyLabels(ref []string, op Op, ins []Run) []string {
	flat := expand(ins)
	var out []string
	pos := 0
	for _, c := range op {
		switch {
		case c.N > 0:
			out = append(out, ref[pos:pos+c.N]...)
			pos += c.N
		case c.N < 0:
			pos -= c.N
		default:
			k := utf8.RuneCountInString(c.S)
			out = append(out, flat[:k]...)
			flat = flat[k:]
		}
	}
	return out
}

func expand(rs []Run) []string {
	var out []string
	for _, x := range rs {
		for range x.Len {
			out = append(out, x.Label)
		}
	}
	return out
}

func checkRuns(t *testing.T, what string, r *Runs, ref []string) {
	t.Helper()
	if r.Len() != len(ref) {
		t.Fatalf("%s: Len() = %d, want %d", what, r.Len(), len(ref))
	}
	for i, x := range r.Runs() {
		if x.Len <= 0 {
			t.Fatalf("%s: run %d is empty: %v", what, i, r.Runs())
		}
		if i > 0 && r.Runs()[i-1].Label == x.Label {
			t.Fatalf("%s: runs %d and %d share label %q: %v", what, i-1, i, x.Label, r.Runs())
		}
	}
	if got := expand(r.Runs()); fmt.Sprint(got) != fmt.Sprint(ref) {
		t.Fatalf("%s: runs spell %v, want %v", what, got, ref)
	}
}

func TestRunsApplyErrors(t *testing.T) {
	r := NewRuns([]Run{{"a", 3}})
	if err := r.Apply(Op{}.Retain(2), "b"); !errors.Is(err, ErrLengthMismatch) {
		t.Errorf("short op: got %v, want ErrLengthMismatch", err)
	}
	if err := r.ApplyLabeled(Op{}.Retain(3).Insert("xy"), []Run{{"b", 1}}); !errors.Is(err, ErrLengthMismatch) {
		t.Errorf("short labels: got %v, want ErrLengthMismatch", err)
	}
	if r.Len() != 3 || len(r.Runs()) != 1 {
		t.Errorf("after refusals: %v, want [{a 3}]", r.Runs())
	}
}

func ExampleRuns() {
	r := NewRuns(nil)
	r.Apply(Op{}.Insert("Hello world"), "ada")
	r.Apply(Op{}.Retain(5).Insert(",").Retain(6), "bob")
	r.Apply(Op{}.Retain(12).Insert("!"), "ada")
	fmt.Println(r.Runs())
	// Output: [{ada 5} {bob 1} {ada 7}]
}
