package collab

import (
	"testing"
	"time"
)

func TestPaceInterval(t *testing.T) {
	for _, c := range []struct {
		editors, budget int
		want            time.Duration
	}{
		{2, 20_000, 0},                       // 0.1 ms: not worth a timer
		{19, 20_000, 0},                      // 0.95 ms
		{20, 20_000, time.Millisecond},       // from here on
		{200, 20_000, 10 * time.Millisecond}, // 200 frames a commit, 100 commits/s
		{400, 20_000, maxPace},
		{2000, 20_000, maxPace}, // never more than maxPace
		{400, 0, 0},             // off
		{400, -1, 0},
		{1, 1, 0}, // nobody to fan out to
	} {
		if got := paceInterval(c.editors, c.budget); got != c.want {
			t.Errorf("paceInterval(%d, %d) = %v, want %v", c.editors, c.budget, got, c.want)
		}
	}
}
