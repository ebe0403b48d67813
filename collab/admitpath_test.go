package collab

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestOneWayIntoTheLog keeps every write that grows the store behind the
// admission (disk.go): in collab's code an op joins a hub's batch, the
// only thing committed with Store.Append, in accept alone, and
// Store.Create is called by the create handler alone, which admits the
// document first. A new writer (an HTTP endpoint that submits ops, say)
// must go through the hub's accept, or be listed here on purpose.
func TestOneWayIntoTheLog(t *testing.T) {
	want := map[string][]string{
		"append to batch": {"accept"},
		"store.Append":    {"startCommit"},
		"store.Create":    {"handleCreate"},
		"admission.Admit": {"accept", "handleCreate", "storageFull"},
	}
	got := map[string][]string{}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				note := func(what string) {
					if !slices.Contains(got[what], fn.Name.Name) {
						got[what] = append(got[what], fn.Name.Name)
					}
				}
				if id, ok := call.Fun.(*ast.Ident); ok && id.Name == "append" && len(call.Args) > 0 {
					if sel, ok := call.Args[0].(*ast.SelectorExpr); ok && sel.Sel.Name == "batch" {
						note("append to batch")
					}
				}
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.SelectorExpr); ok {
						switch x.Sel.Name + "." + sel.Sel.Name {
						case "store.Append", "store.Create", "admission.Admit":
							note(x.Sel.Name + "." + sel.Sel.Name)
						}
					}
				}
				return true
			})
		}
	}
	for what, fns := range want {
		slices.Sort(fns)
		slices.Sort(got[what])
		if !slices.Equal(got[what], fns) {
			t.Errorf("%s: in %v, want only in %v", what, got[what], fns)
		}
	}
}
