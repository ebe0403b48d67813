package jetstream

import (
	"errors"
	"fmt"
	"testing"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// TestMilestones: LoadAt of a revision older than the latest snapshot
// replays from the milestone before it, not from the document's start;
// the text is the same either way; Delete removes the milestones.
func TestMilestones(t *testing.T) {
	ns := startNATS(t)
	ctx := testCtx(t)
	// Snapshots by hand only, milestones every 40 revisions.
	s := ns.newStore(t, Options{SnapshotEvery: -1})
	s.milestones = 40
	plain := ns.newStore(t, Options{SnapshotEvery: -1})
	plain.milestones = 40
	m := createDoc(t, s)
	var ty typist
	texts := map[int64]string{}
	for i := range 200 {
		if err := s.Append(ctx, m.ID, ty.group(1, "c", int64(i+1))); err != nil {
			t.Fatal(err)
		}
		texts[ty.rev] = ty.text
		if ty.rev == 45 || ty.rev == 50 || ty.rev == 95 || ty.rev == 150 || ty.rev == 199 {
			if err := s.SaveSnapshot(ctx, m.ID, ty.rev, ty.text); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct{ rev, tail int64 }{
		{30, 30},  // before the first milestone: from the start
		{60, 15},  // milestone 1 (rev 45; 50 is in the same interval)
		{100, 5},  // milestone 2 (rev 95)
		{119, 24}, // still milestone 2
		{170, 20}, // milestone 3 (rev 150)
		{199, 0},  // the latest snapshot
	} {
		d, err := s.LoadAt(ctx, m.ID, c.rev)
		if err != nil {
			t.Fatal(err)
		}
		if d.Text != texts[c.rev] || d.Tail != c.tail {
			t.Errorf("LoadAt(%d): tail %d, text ok %v; want tail %d", c.rev, d.Tail, d.Text == texts[c.rev], c.tail)
		}
		// Another node reads the same milestones.
		if d, err := plain.LoadAt(ctx, m.ID, c.rev); err != nil || d.Text != texts[c.rev] || d.Tail != c.tail {
			t.Errorf("LoadAt(%d) by another node: tail %v, %v", c.rev, d.Tail, err)
		}
	}
	if err := s.Delete(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	for k := 1; k <= 4; k++ {
		if _, err := s.snaps.GetInfo(ctx, fmt.Sprintf("%s.m%d", m.ID, k)); !errors.Is(err, natsjs.ErrObjectNotFound) {
			t.Errorf("milestone %d after Delete: %v, want not found", k, err)
		}
	}
}
