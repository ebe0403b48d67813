package wire

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsOnlyOt: both the server and the client import this package,
// so it must import nothing of ours but ot (the server least of all).
func TestImportsOnlyOt(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/collabd/collabd/collab/wire").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/collabd/collabd/") && p != "github.com/collabd/collabd/ot" && p != "github.com/collabd/collabd/collab/wire" {
			t.Errorf("collab/wire depends on %s", p)
		}
	}
}
