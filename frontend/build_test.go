package frontend

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBundleIsFresh rebuilds static/dist and static/sdk (the client SDK)
// from src with the esbuild and CodeMirror pinned in src/package-lock.json,
// into temporary directories, and fails when the committed files differ:
// someone changed a source file and did not run `make frontend`. The build is reproducible (no
// timestamps or absolute paths), so equal inputs give equal bytes.
func TestBundleIsFresh(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; skipping the bundle check")
	}
	if _, err := os.Stat(filepath.Join("src", "node_modules", "esbuild")); err != nil {
		t.Skip("frontend/src/node_modules is missing (make test-deps runs npm ci there); skipping the bundle check")
	}
	// node_modules from another lock file would build other bytes; that
	// is a stale install, not a stale bundle.
	var lock struct {
		Packages map[string]struct{ Version string } `json:"packages"`
	}
	readJSON(t, filepath.Join("src", "package-lock.json"), &lock)
	for _, pkg := range []string{"esbuild", "@codemirror/state", "@codemirror/view", "@codemirror/commands", "@codemirror/search"} {
		var installed struct{ Version string }
		readJSON(t, filepath.Join("src", "node_modules", pkg, "package.json"), &installed)
		if want := lock.Packages["node_modules/"+pkg].Version; installed.Version != want {
			t.Skipf("frontend/src/node_modules has %s %s, the lock file %s (run make test-deps); skipping the bundle check", pkg, installed.Version, want)
		}
	}

	out, sdk := t.TempDir(), t.TempDir()
	cmd := exec.Command(node, "build.mjs", out, sdk)
	cmd.Dir = "src"
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node build.mjs: %v\n%s", err, b)
	}
	compareTree(t, out, "dist")
	compareTree(t, sdk, "sdk")
}

// compareTree compares a fresh build in dir with static/name.
func compareTree(t *testing.T, dir, name string) {
	t.Helper()
	built := readTree(t, dir)
	committed := readTree(t, filepath.Join("static", name))
	for file, want := range built {
		got, ok := committed[file]
		if !ok {
			t.Errorf("static/%s/%s is missing: run make frontend and commit the result", name, file)
		} else if !bytes.Equal(got, want) {
			t.Errorf("static/%s/%s is stale (%d bytes, a fresh build has %d): run make frontend and commit the result", name, file, len(got), len(want))
		}
	}
	for file := range committed {
		if _, ok := built[file]; !ok {
			t.Errorf("static/%s/%s is not built from src any more: delete it", name, file)
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// readTree returns every file under dir by its slash-separated relative name.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	err := fs.WalkDir(os.DirFS(dir), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(filepath.Join(dir, path))
		m[path] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
