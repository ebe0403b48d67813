package collab

import "github.com/collabd/collabd/ot"

// Presence: editors' cursors and selections, moved through every op so
// that they stay on the text they were on, and the colors editors get.
// The hub's side of it (cluster.go has the other nodes' editors).

// movePresence moves every known selection through an op just applied.
func (h *hub) movePresence(op ot.Op) {
	for _, p := range h.ranged {
		transformRanges(p.ranges, op)
	}
	h.movePeers(op) // cluster.go
}

// noteRanges keeps h.ranged, the editors with a selection, up to date
// after e's ranges changed: with hundreds of editors on a document, most
// of them with no known selection, walking them all for every op was a
// few percent of the server's CPU.
func (h *hub) noteRanges(e *editor) {
	if len(e.ranges) > 0 {
		h.ranged[e.client] = e
	} else {
		delete(h.ranged, e.client)
	}
}

func (h *hub) cursor(c *conn, m *cursorMessage) {
	e := h.live(c)
	if e == nil {
		return
	}
	if m.rev > h.rev {
		c.fail(errorf(CodeBadMessage, "cursor rev %d is in the future: the document is at rev %d", m.rev, h.rev))
		return
	}
	if m.rev < h.histBase {
		return // too old to place; the client sends a fresh one soon
	}
	later := h.history[m.rev-h.histBase:]
	// Clamp to the text the client saw first: a position past it would
	// move through later ops as garbage, or overflow.
	n := h.doc.Len()
	if len(later) > 0 {
		n = later[0].Op.BaseLen()
	}
	ranges := make([]Range, len(m.ranges))
	for i, r := range m.ranges {
		ranges[i] = Range{min(r[0], n), min(r[1], n)} // decodeCursor refused negatives
	}
	for _, r := range later {
		transformRanges(ranges, r.Op)
	}
	e.ranges = ranges
	h.noteRanges(e)
	h.broadcastPresence(e)
}

func (h *hub) broadcastPresence(e *editor) {
	msg := mustJSON(presenceMessage{Type: typePresence, Author: e.author, Name: e.name,
		Color: e.color, Ranges: e.ranges, Rev: h.rev})
	for _, p := range h.editors {
		if p != e {
			p.c.enqueue(msg)
		}
	}
	h.notifyPresence(e)
}

// transformRanges moves selections through an op, in place.
func transformRanges(ranges []Range, op ot.Op) {
	for i := range ranges {
		ranges[i][0] = ot.TransformIndex(op, ranges[i][0])
		ranges[i][1] = ot.TransformIndex(op, ranges[i][1])
	}
}

// palette holds the colors given to editors, distinct from each other,
// readable on white, and each with a contrast of at least 4.5:1 against
// the white text of a peer's label (WCAG AA; TestPaletteContrast).
var palette = [...]string{
	"#d81b4a", "#2e8540", "#4363d8", "#b4530b", "#911eb4", "#008080",
	"#b0209f", "#9a6324", "#800000", "#6b6b00", "#000075", "#2f7a7a",
}

// pickColor returns a palette color no editor has, starting from the one
// author's id hashes to, so that an author keeps a color across
// reloads and restarts while it is free; cycling when all are taken.
func (h *hub) pickColor(author string) string {
	used := make(map[string]bool, len(h.editors)+len(h.peers))
	for _, e := range h.editors {
		used[e.color] = true
	}
	for _, p := range h.peers {
		used[p.Color] = true
	}
	start := 0
	for _, b := range []byte(author) {
		start = (start*31 + int(b)) % len(palette)
	}
	for i := range palette {
		if c := palette[(start+i)%len(palette)]; !used[c] {
			return c
		}
	}
	return palette[len(h.editors)%len(palette)]
}
