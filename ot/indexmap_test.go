package ot

import (
	"math/rand/v2"
	"testing"
)

// TestIndexMapAgreesWithTransformIndex: for random ops, including ops
// of many runs, and every position (negative and past the end too),
// IndexMap.Map gives what TransformIndex gives.
func TestIndexMapAgreesWithTransformIndex(t *testing.T) {
	for _, seed := range seeds(3000) {
		r := rand.New(rand.NewPCG(seed, 28))
		n := r.IntN(40)
		op := randOp(r, n)
		m := NewIndexMap(op)
		for pos := -2; pos <= n+2; pos++ {
			if got, want := m.Map(pos), TransformIndex(op, pos); got != want {
				t.Fatalf("seed %d: op %v: Map(%d) got %d, want %d (TransformIndex)", seed, op, pos, got, want)
			}
			// What Inserted names is what the op puts right before the
			// position's new place: it ends there, and the op's inserts
			// cover it.
			from, to := m.Inserted(pos)
			if from != to && (to != m.Map(pos) || !insertedAt(op, from, to)) {
				t.Fatalf("seed %d: op %v: Inserted(%d) got [%d,%d), not inserted text ending at %d", seed, op, pos, from, to, m.Map(pos))
			}
		}
	}
	var zero IndexMap
	if got := zero.Map(7); got != 7 {
		t.Fatalf("zero IndexMap: Map(7) got %d, want 7", got)
	}
}

func BenchmarkIndexMap(b *testing.B) {
	op := Op{Retain(5000), Insert("a"), Retain(15000)}
	b.Run("TransformIndex", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			TransformIndex(op, i%20000)
		}
	})
	b.Run("IndexMap", func(b *testing.B) {
		m := NewIndexMap(op)
		for i := 0; b.Loop(); i++ {
			m.Map(i % 20000)
		}
	})
}

// insertedAt reports whether op's inserts cover target positions [from, to).
func insertedAt(op Op, from, to int) bool {
	out := 0
	covered := 0
	for _, c := range op {
		switch {
		case c.N > 0:
			out += c.N
		case c.N < 0:
		default:
			k := len([]rune(c.S))
			lo, hi := max(out, from), min(out+k, to)
			if hi > lo {
				covered += hi - lo
			}
			out += k
		}
	}
	return covered == to-from
}
