package ot

import "unicode/utf8"

// IndexMap is TransformIndex compiled for one op: it maps many positions
// through the same op (every selection, every comment anchor) without
// walking the op's components and counting the code points of its inserts
// again for each. Map(pos) equals TransformIndex(op, pos) for every pos.
// The zero value maps through an op that changes nothing.
type IndexMap struct {
	n     int
	inner [4]indexRun // the runs of the usual op; more spill into extra
	extra []indexRun
}

// indexRun is one run of deletes and inserts between two retains: base
// positions [start, end] land at out, right after its inserted text,
// which starts at target position in.
type indexRun struct {
	start, end, in, out int
}

// NewIndexMap compiles op, which is assumed valid.
func NewIndexMap(op Op) IndexMap {
	var m IndexMap
	i, out := 0, 0 // base and target positions
	inRun := false
	var r indexRun
	for _, c := range op {
		switch {
		case c.N > 0:
			if inRun {
				r.end, r.out = i, out
				m.add(r)
				inRun = false
			}
			i += c.N
			out += c.N
		case c.N < 0:
			if !inRun {
				r, inRun = indexRun{start: i, in: out}, true
			}
			i -= c.N
		default:
			if !inRun {
				r, inRun = indexRun{start: i, in: out}, true
			}
			out += utf8.RuneCountInString(c.S)
		}
	}
	if inRun {
		r.end, r.out = i, out
		m.add(r)
	}
	return m
}

func (m *IndexMap) add(r indexRun) {
	if m.n < len(m.inner) {
		m.inner[m.n] = r
	} else {
		m.extra = append(m.extra, r)
	}
	m.n++
}

// Map returns where position pos lands after the op: TransformIndex.
func (m *IndexMap) Map(pos int) int {
	pos = max(pos, 0)
	if m.n == 1 { // most ops: one insert or delete between two retains
		r := &m.inner[0]
		switch {
		case pos < r.start:
			return pos
		case pos <= r.end:
			return r.out
		}
		return pos + r.out - r.end
	}
	shift := 0
	for k := range m.n {
		r := m.run(k)
		if pos < r.start {
			return pos + shift
		}
		if pos <= r.end {
			return r.out
		}
		shift = r.out - r.end
	}
	return pos + shift
}

// run returns run k.
func (m *IndexMap) run(k int) *indexRun {
	if k < len(m.inner) {
		return &m.inner[k]
	}
	return &m.extra[k-len(m.inner)]
}

// Inserted returns the target range [from, to) of the text inserted by
// the run of deletes and inserts that position pos lies in (the text
// that Map puts right before pos); from == to when it inserts nothing or
// pos lies in text the op keeps.
func (m *IndexMap) Inserted(pos int) (from, to int) {
	pos = max(pos, 0)
	for k := range m.n {
		r := m.run(k)
		if pos < r.start {
			return 0, 0
		}
		if pos <= r.end {
			return r.in, r.out
		}
	}
	return 0, 0
}
