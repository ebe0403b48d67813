package ot

import (
	"testing"
)

// Benchmarks. Trace results come from github.com/josephg/editing-traces
// (CC BY 4.0, Joseph Gentle; automerge-paper prepared by Martin Kleppmann).
// Run with: go test -run '^$' -bench . -benchmem ./ot/

func benchSequential(b *testing.B, name string) {
	tr := loadTrace(b, name)
	ops, err := sequentialOps(tr)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var d *Doc
	for b.Loop() {
		d = NewDoc(tr.StartContent)
		for _, op := range ops {
			if err := d.Apply(op); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	if d.String() != tr.EndContent {
		b.Fatalf("%s: replay did not end at endContent", name)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(ops)), "ns/patch")
}

// BenchmarkApplyAutomergePaper applies all 259,778 patches of the trace to
// one fresh Doc per iteration; decoding and building ops are not timed.
func BenchmarkApplyAutomergePaper(b *testing.B) { benchSequential(b, "automerge-paper.json.gz") }

// BenchmarkApplyRustcode does the same for the multi-cursor rustcode trace.
func BenchmarkApplyRustcode(b *testing.B) { benchSequential(b, "rustcode.json.gz") }

// BenchmarkReplayFriendsForever replays the concurrent trace through two
// Clients, their Docs and the in-memory server (transforming on both
// sides). The bookkeeping that decides what each edit means is done once,
// untimed, and recorded as a script of deliveries and local ops.
func BenchmarkReplayFriendsForever(b *testing.B) {
	for _, mode := range []struct {
		name  string
		eager bool
	}{{"lazy-reads", false}, {"eager-reads", true}} {
		b.Run(mode.name, func(b *testing.B) {
			tr, script := friendsForeverScript(b, mode.eager)
			b.ReportAllocs()
			var n *simNet
			for b.Loop() {
				var err error
				if n, err = replayScript(tr.NumAgents, script); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if n.server.String() != tr.EndContent {
				b.Fatal("replay did not end at endContent")
			}
			if err := n.converged(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// Small ops on a mid-sized document, the shape of typing.
var (
	benchA = Op{Retain(100), Insert("x"), Retain(50)}
	benchB = Op{Retain(120), Delete(3), Insert("é"), Retain(27)}
	benchC = Op{Retain(101), Insert("y"), Retain(50)} // applies after benchA
)

func BenchmarkTransform(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Transform(benchA, benchB); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompose(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compose(benchA, benchC); err != nil {
			b.Fatal(err)
		}
	}
}

var benchJSON = []byte(`[1234,"hello wörld 😀",-5,678]`)

func BenchmarkDecodeOp(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchJSON)))
	for b.Loop() {
		var op Op
		if err := op.UnmarshalJSON(benchJSON); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeOp(b *testing.B) {
	var op Op
	if err := op.UnmarshalJSON(benchJSON); err != nil {
		b.Fatal(err)
	}
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 64)
		for b.Loop() {
			buf = op.AppendJSON(buf[:0])
		}
	})
	b.Run("MarshalJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := op.MarshalJSON(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDocApplyTyping types and deletes one character in the middle of
// a 100,000 code point document.
func BenchmarkDocApplyTyping(b *testing.B) {
	d := NewDoc(string(make([]byte, 100_000)))
	ins := Op{Retain(50_000), Insert("a"), Retain(50_000)}
	del := Op{Retain(50_000), Delete(1), Retain(50_000)}
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Apply(ins); err != nil {
			b.Fatal(err)
		}
		if err := d.Apply(del); err != nil {
			b.Fatal(err)
		}
	}
}

// concurrentTyping returns n one-keystroke ops by different editors on a
// document of size code points, each made on the result of the one
// before (as committed), and one more keystroke made on the first
// document, to rebase over them all: the hub's work for one op when n
// ops were committed while it was in flight.
func concurrentTyping(size, n int) (committed []Op, late Op) {
	at := func(pos, length int) Op { return Op{}.Retain(pos).Insert("x").Retain(length - pos) }
	for i := range n {
		committed = append(committed, at((i*7919)%(size+i), size+i))
	}
	return committed, at(size/2, size)
}

// BenchmarkRebase200 rebases one keystroke over 200 committed keystrokes,
// with Rebaser and with a Transform per committed op.
func BenchmarkRebase200(b *testing.B) {
	committed, late := concurrentTyping(20_000, 200)
	b.Run("rebaser", func(b *testing.B) {
		b.ReportAllocs()
		var rb Rebaser
		for b.Loop() {
			rb.Reset(late)
			for _, a := range committed {
				if err := rb.Over(a); err != nil {
					b.Fatal(err)
				}
			}
			_ = rb.Op()
		}
	})
	b.Run("transform", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			op := late
			for _, a := range committed {
				var err error
				if _, op, err = Transform(a, op); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
