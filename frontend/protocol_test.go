package frontend

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/collabd/collabd/ot"
)

// TestProtocolJSAgreesWithGo runs frontend/test with Node's test runner,
// giving it cases computed by the Go ot package: the browser and the
// server must transform, compose and move cursors identically, or texts
// diverge.
func TestProtocolJSAgreesWithGo(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; skipping the frontend's JavaScript tests")
	}
	// The Markdown and highlighting modules import packages from
	// frontend/src's package-lock.json (make test-deps installs them).
	if _, err := os.Stat(filepath.Join("src", "node_modules", "markdown-it")); err != nil {
		t.Skip("frontend/src/node_modules is not installed (run `make test-deps` or `cd frontend/src && npm ci`); skipping the frontend's JavaScript tests")
	}
	type testCase struct {
		Text           string `json:"text"`
		A              ot.Op  `json:"a"`
		B              ot.Op  `json:"b"`
		C              ot.Op  `json:"c"`
		A1             ot.Op  `json:"a1"`
		B1             ot.Op  `json:"b1"`
		AC             ot.Op  `json:"ac"`
		AfterA         string `json:"afterA"`
		Positions      []int  `json:"positions"`
		MovedPositions []int  `json:"movedPositions"`
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var cases []testCase
	for len(cases) < 1000 {
		text := randText(rng, rng.IntN(10))
		a, b := randOp(rng, text), randOp(rng, text)
		a1, b1, err := ot.Transform(a, b)
		if err != nil {
			t.Fatal(err)
		}
		afterA, err := ot.Apply(text, a)
		if err != nil {
			t.Fatal(err)
		}
		c := randOp(rng, afterA)
		ac, err := ot.Compose(a, c)
		if err != nil {
			t.Fatal(err)
		}
		k := testCase{Text: text, A: a, B: b, C: c, A1: a1, B1: b1, AC: ac, AfterA: afterA}
		for p := 0; p <= a.BaseLen(); p++ {
			k.Positions = append(k.Positions, p)
			k.MovedPositions = append(k.MovedPositions, ot.TransformIndex(a, p))
		}
		cases = append(cases, k)
	}
	data, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cases.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "--test", "test/protocol.test.mjs")
	cmd.Env = append(os.Environ(), "OT_CASES="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test test/protocol.test.mjs: %v\n%s", err, out)
	}
}

var alphabet = []rune("abc é漢字😀👩‍💻\n")

func randText(rng *rand.Rand, n int) string {
	rs := make([]rune, n)
	for i := range rs {
		rs[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(rs)
}

// randOp returns a random canonical op on text.
func randOp(rng *rand.Rand, text string) ot.Op {
	n := len([]rune(text))
	var op ot.Op
	for i := 0; i < n; {
		k := 1 + rng.IntN(min(4, n-i))
		switch rng.IntN(3) {
		case 0:
			op = op.Retain(k)
		case 1:
			op = op.Delete(k)
		default:
			op = op.Insert(randText(rng, 1+rng.IntN(3)))
			continue
		}
		i += k
	}
	if rng.IntN(2) == 0 {
		op = op.Insert(randText(rng, 1+rng.IntN(3)))
	}
	return op.Normalize()
}
