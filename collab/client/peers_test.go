package client

import (
	"testing"

	"github.com/collabd/collabd/ot"
)

// TestClientRangedPeers checks the count that lets transformPeers skip the
// peer map when no peer has a selection: it must follow every install,
// replacement and departure, or a selection would stop moving with the text.
func TestClientRangedPeers(t *testing.T) {
	c := &Client{peers: map[string]Peer{}}
	steps := []struct {
		name string
		do   func()
		want int
	}{
		{"peer without selection", func() { c.setPeer(Peer{Author: "a"}) }, 0},
		{"peer with selection", func() { c.setPeer(Peer{Author: "b", Ranges: []Range{{1, 2}}}) }, 1},
		{"same peer moves", func() { c.setPeer(Peer{Author: "b", Ranges: []Range{{3, 3}}}) }, 1},
		{"first peer selects", func() { c.setPeer(Peer{Author: "a", Ranges: []Range{{0, 0}}}) }, 2},
		{"selection cleared", func() { c.setPeer(Peer{Author: "b"}) }, 1},
		{"unknown peer leaves", func() { c.dropPeer("zz") }, 1},
		{"peer with selection leaves", func() { c.dropPeer("a") }, 0},
		{"peer without selection leaves", func() { c.dropPeer("b") }, 0},
	}
	for _, s := range steps {
		s.do()
		if c.ranged != s.want {
			t.Fatalf("after %s: ranged = %d, want %d", s.name, c.ranged, s.want)
		}
	}

	c.setPeer(Peer{Author: "b", Ranges: []Range{{3, 3}}})
	c.transformPeers(ot.Op{}.Insert("xy").Retain(5))
	if got := c.peers["b"].Ranges; len(got) != 1 || got[0] != (Range{5, 5}) {
		t.Errorf("selection after an insert before it: %v, want [[5,5]]", got)
	}
}
