package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPackageLayering keeps the dependency rules of STYLE.md: ot imports
// nothing of ours, storage may import ot, collab declares the storage
// interface it needs and never imports storage.
func TestPackageLayering(t *testing.T) {
	const module = "github.com/collabd/collabd/"
	forbidden := map[string][]string{
		"ot":      {"collab", "storage", "frontend"},
		"storage": {"collab", "frontend"},
		"collab":  {"storage", "search"},
		// The search index (bleve) implements collab.SearchIndex;
		// cmd/collabd wires it to the store.
		"search": {"storage", "frontend"},
	}
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", "../../"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range bad {
				if dep == module+b {
					t.Errorf("package %s imports %s, which the layering forbids", pkg, dep)
				}
			}
		}
	}
}
