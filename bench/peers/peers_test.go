// Package peers holds `make bench-peers` (run.mjs), which runs the same
// editing load against collabd and ShareDB; this package has only its
// smoke test.
package peers

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchPeersSmoke runs run.mjs in its -smoke mode (4 editors, 2 s
// each way) against a freshly built collabd and ShareDB: both servers
// start, every editor converges, and both rows and the ratio print.
func TestBenchPeersSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers and a Node generator")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is missing: bench-peers needs it")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "sharedb")); err != nil {
		t.Skip("bench/peers/node_modules is missing: run make test-deps (npm ci in bench/peers)")
	}
	bin := filepath.Join(t.TempDir(), "collabd")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/collabd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var out bytes.Buffer
	cmd := exec.Command(node, "run.mjs", "-smoke", "-collabd", bin)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("run.mjs -smoke: %v\n%s", err, out.String())
	}
	for _, want := range []string{"| 4 × 4 | collabd |", "| 4 × 4 | ShareDB |", "4 × 4: ShareDB"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "| 4 × 4 |") && !strings.HasSuffix(line, "| yes |") {
			t.Errorf("a run did not converge: %s", line)
		}
	}
}
