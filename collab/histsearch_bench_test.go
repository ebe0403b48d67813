package collab

import (
	"testing"

	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/ot/ottest"
)

// BenchmarkPhraseTrackerPaper replays the automerge-paper trace's 259,778
// edits through a phraseTracker, in memory: the search in history's own
// work, without reading the ops from a store (BenchmarkHistorySearchPaper
// in cmd/collabd measures the whole request). The naive sub-benchmark
// searches the whole text after every op instead, over the first 20,000
// edits, for comparison.
//
//	go test -run '^$' -bench BenchmarkPhraseTrackerPaper ./collab
func BenchmarkPhraseTrackerPaper(b *testing.B) {
	tr := ottest.Open(b, "../../shared/traces", "automerge-paper.json.gz")
	var ops []ot.Op
	n := 0
	for _, txn := range tr.Txns {
		for _, p := range txn.Patches {
			op := ot.Op{}.Retain(p.Pos).Insert(p.Ins).Delete(p.Del).Retain(n - p.Pos - p.Del)
			n = op.TargetLen()
			ops = append(ops, op)
		}
	}
	for _, phrase := range []string{"operational transformation", "the"} {
		b.Run(phrase, func(b *testing.B) {
			for range b.N {
				t := newPhraseTracker("", phrase, true)
				for _, op := range ops {
					if err := t.apply(op); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(len(ops))*float64(b.N)/b.Elapsed().Seconds(), "revs/s")
		})
	}
	b.Run("naive", func(b *testing.B) {
		const k = 20_000
		for range b.N {
			d := ot.NewDoc("")
			t := &phraseTracker{phrase: "operational transformation", fold: true}
			for _, op := range ops[:k] {
				if err := d.Apply(op); err != nil {
					b.Fatal(err)
				}
				t.occurrences(d.String())
			}
		}
		b.ReportMetric(float64(k)*float64(b.N)/b.Elapsed().Seconds(), "revs/s")
	})
}
