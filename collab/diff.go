package collab

import (
	"strings"
	"unicode/utf8"

	"github.com/collabd/collabd/ot"
)

// The diff behind PUT /api/docs/{id}/text (httpwrite.go): the op that
// turns one text into another, changing as little as it can, so that
// whatever others changed elsewhere meanwhile survives the transform.
// Lines are compared first (Myers' O(ND) algorithm over line ids), so an
// edited line does not pair code points with an unrelated line; within
// each block of changed lines, code points are compared the same way.
// Each comparison has a cost bound: past it, the block is replaced
// whole, which is still a correct op, only a coarser one.

const (
	// maxDiffEdits bounds D, the edits Myers' algorithm looks for in one
	// comparison; it keeps D² words of trace.
	maxDiffEdits = 1024
	// maxDiffWork bounds (N+M)·D, the steps of one comparison.
	maxDiffWork = 16 << 20
)

// editKind is what one run of a diff script does.
type editKind uint8

const (
	editEqual editKind = iota
	editDelete
	editInsert
)

// edit is a run of n elements that are equal, deleted from a or inserted
// from b.
type edit struct {
	kind editKind
	n    int
}

// textDiff returns the op that turns a into b.
func textDiff(a, b string) ot.Op {
	la, lb := splitLines(a), splitLines(b)
	ids := make(map[string]int)
	intern := func(lines []string) []int {
		out := make([]int, len(lines))
		for i, l := range lines {
			id, ok := ids[l]
			if !ok {
				id = len(ids)
				ids[l] = id
			}
			out[i] = id
		}
		return out
	}
	script := diffScript(intern(la), intern(lb))
	var op ot.Op
	i, j := 0, 0 // lines of a and b consumed
	for k := 0; k < len(script); {
		e := script[k]
		if e.kind == editEqual {
			op = op.Retain(runeCount(la[i : i+e.n]))
			i += e.n
			j += e.n
			k++
			continue
		}
		// A block of changed lines: its deletes and inserts, together.
		di, dj := 0, 0
		for ; k < len(script) && script[k].kind != editEqual; k++ {
			if script[k].kind == editDelete {
				di += script[k].n
			} else {
				dj += script[k].n
			}
		}
		op = appendBlockDiff(op, la[i:i+di], lb[j:j+dj])
		i += di
		j += dj
	}
	return op
}

// maxPairedLines bounds the blocks whose lines appendBlockDiff pairs up,
// and maxExtraLines the lines one side of such a block may have more.
const (
	maxPairedLines = 64
	maxExtraLines  = 8
)

// appendBlockDiff appends to op the diff of a block of changed lines a
// into b. When one side has a few lines more, those lines are taken as
// inserted (or deleted) whole, wherever in the block that leaves the
// fewest code points changed in the lines paired with each other, in
// order; so an added line stays one insert, and an edited line next to
// it is diffed against itself. Otherwise the block is diffed by code
// points as one.
func appendBlockDiff(op ot.Op, a, b []string) ot.Op {
	joined := func(lines []string) []rune { return []rune(strings.Join(lines, "")) }
	extra := len(b) - len(a)
	long, short := b, a
	aShort := extra >= 0
	if !aShort {
		extra, long, short = -extra, a, b
	}
	if len(short) == 0 || extra > maxExtraLines || len(a)+len(b) > maxPairedLines {
		return appendRuneDiff(op, joined(a), joined(b))
	}
	// The extra lines are long[at:at+extra]; line i of short pairs with
	// line i of long before them, i+extra after.
	best, bestCost := 0, -1
	for at := 0; at <= len(short); at++ {
		cost := 0
		for i, l := range short {
			k := i
			if i >= at {
				k += extra
			}
			cost += changed(diffScript([]rune(l), []rune(long[k])))
		}
		if bestCost < 0 || cost < bestCost {
			best, bestCost = at, cost
		}
	}
	pair := func(op ot.Op, x, y string) ot.Op {
		if aShort {
			return appendRuneDiff(op, []rune(x), []rune(y))
		}
		return appendRuneDiff(op, []rune(y), []rune(x))
	}
	for i := 0; i < best; i++ {
		op = pair(op, short[i], long[i])
	}
	if aShort {
		op = op.Insert(strings.Join(long[best:best+extra], ""))
	} else {
		op = op.Delete(runeCount(long[best : best+extra]))
	}
	for i := best; i < len(short); i++ {
		op = pair(op, short[i], long[i+extra])
	}
	return op
}

// changed is how many elements a script deletes or inserts.
func changed(script []edit) int {
	n := 0
	for _, e := range script {
		if e.kind != editEqual {
			n += e.n
		}
	}
	return n
}

// appendRuneDiff appends to op the code-point diff of a into b.
func appendRuneDiff(op ot.Op, a, b []rune) ot.Op {
	bi := 0
	for _, e := range diffScript(a, b) {
		switch e.kind {
		case editEqual:
			op = op.Retain(e.n)
			bi += e.n
		case editDelete:
			op = op.Delete(e.n)
		case editInsert:
			op = op.Insert(string(b[bi : bi+e.n]))
			bi += e.n
		}
	}
	return op
}

// splitLines cuts s after every newline; the pieces join back to s.
func splitLines(s string) []string {
	var out []string
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

func runeCount(lines []string) int {
	n := 0
	for _, l := range lines {
		n += utf8.RuneCountInString(l)
	}
	return n
}

// diffScript returns an edit script from a to b: runs of equal, deleted
// and inserted elements. Past the
// cost bounds it returns the trimmed middle replaced whole.
func diffScript[T comparable](a, b []T) []edit {
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	q := 0
	for q < len(a)-p && q < len(b)-p && a[len(a)-1-q] == b[len(b)-1-q] {
		q++
	}
	var out []edit
	add := func(kind editKind, n int) {
		if n == 0 {
			return
		}
		if len(out) > 0 && out[len(out)-1].kind == kind {
			out[len(out)-1].n += n
			return
		}
		out = append(out, edit{kind, n})
	}
	add(editEqual, p)
	ma, mb := a[p:len(a)-q], b[p:len(b)-q]
	if mid, ok := myers(ma, mb); ok {
		for _, e := range mid {
			add(e.kind, e.n)
		}
	} else {
		add(editDelete, len(ma))
		add(editInsert, len(mb))
	}
	add(editEqual, q)
	return out
}

// myers is Myers' greedy algorithm ("An O(ND) Difference Algorithm and
// Its Variations", 1986), keeping each round's furthest reaching paths
// to trace the script back. It reports false past maxDiffEdits or
// maxDiffWork.
func myers[T comparable](a, b []T) ([]edit, bool) {
	n, m := len(a), len(b)
	if n == 0 || m == 0 {
		return []edit{{editDelete, n}, {editInsert, m}}, true
	}
	maxD := min(n+m, maxDiffEdits)
	if maxD > 0 && (n+m) > maxDiffWork/maxD {
		maxD = max(maxDiffWork/(n+m), 1)
	}
	off := maxD + 1
	v := make([]int, 2*maxD+3)
	var trace [][]int // trace[d] is v[-d..d] before round d
	for d := 0; d <= maxD; d++ {
		trace = append(trace, append([]int(nil), v[off-d:off+d+1]...))
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1] // down: an insert
			} else {
				x = v[off+k-1] + 1 // right: a delete
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				return backtrack(trace, n, m, d), true
			}
		}
	}
	return nil, false
}

// backtrack walks the trace of myers from (n, m), reached in round d,
// back to the start, and returns the script in order.
func backtrack(trace [][]int, n, m, d int) []edit {
	var rev []edit // backwards
	push := func(kind editKind, c int) {
		if c == 0 {
			return
		}
		if len(rev) > 0 && rev[len(rev)-1].kind == kind {
			rev[len(rev)-1].n += c
			return
		}
		rev = append(rev, edit{kind, c})
	}
	x, y := n, m
	for ; d > 0; d-- {
		v := trace[d] // v[-d..d] as it was before round d: round d-1's result
		at := func(k int) int { return v[k+d] }
		k := x - y
		var prevK int
		if k == -d || (k != d && at(k-1) < at(k+1)) {
			prevK = k + 1
		} else {
			prevK = k - 1
		}
		prevX := at(prevK)
		prevY := prevX - prevK
		// The snake: equal elements after the edit.
		var startX int
		if prevK == k+1 {
			startX = prevX // an insert: x stays
		} else {
			startX = prevX + 1
		}
		push(editEqual, x-startX)
		if prevK == k+1 {
			push(editInsert, 1)
		} else {
			push(editDelete, 1)
		}
		x, y = prevX, prevY
	}
	push(editEqual, x) // round 0's snake from (0, 0)
	out := make([]edit, 0, len(rev))
	for i := len(rev) - 1; i >= 0; i-- {
		out = append(out, rev[i])
	}
	return out
}
