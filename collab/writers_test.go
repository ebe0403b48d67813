package collab

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// probeWriter is a ResponseWriter with every optional interface the
// server's writers use, recording which of its methods were called.
type probeWriter struct {
	header http.Header
	calls  []string
}

func (p *probeWriter) Header() http.Header {
	if p.header == nil {
		p.header = http.Header{}
	}
	return p.header
}
func (p *probeWriter) WriteHeader(int) { p.calls = append(p.calls, "WriteHeader") }
func (p *probeWriter) Write(b []byte) (int, error) {
	p.calls = append(p.calls, "Write")
	return len(b), nil
}
func (p *probeWriter) WriteString(s string) (int, error) {
	p.calls = append(p.calls, "WriteString")
	return len(s), nil
}
func (p *probeWriter) Flush() { p.calls = append(p.calls, "Flush") }
func (p *probeWriter) ReadFrom(r io.Reader) (int64, error) {
	p.calls = append(p.calls, "ReadFrom")
	return 0, nil
}
func (p *probeWriter) SetWriteDeadline(time.Time) error {
	p.calls = append(p.calls, "SetWriteDeadline")
	return nil
}

// responseWrappers makes each ResponseWriter wrapper of the project
// around w; TestEveryResponseWrapperIsChecked keeps the list complete.
var responseWrappers = map[string]func(w http.ResponseWriter) http.ResponseWriter{
	"countingWriter":  func(w http.ResponseWriter) http.ResponseWriter { return NewMetrics(prometheus.NewRegistry()).wrap(w) },
	"jsonErrorWriter": func(w http.ResponseWriter) http.ResponseWriter { return &jsonErrorWriter{ResponseWriter: w} },
}

// A wrapper must pass on the optional interfaces of the writer it wraps:
// one that hides WriteString makes io.WriteString copy each shared text
// for each reader (64 slow readers of a 6 MB text: +422 MB), one that
// hides Flush or Unwrap breaks streaming and deadlines.
func TestResponseWrappersPassOnOptionalInterfaces(t *testing.T) {
	for name, wrap := range responseWrappers {
		t.Run(name, func(t *testing.T) {
			checks := []struct {
				want string
				call func(w http.ResponseWriter) bool // false: the interface is hidden
			}{
				{"WriteString", func(w http.ResponseWriter) bool {
					sw, ok := w.(io.StringWriter)
					if ok {
						sw.WriteString(strings.Repeat("x", 1<<20))
					}
					return ok
				}},
				{"Flush", func(w http.ResponseWriter) bool {
					f, ok := w.(http.Flusher)
					if ok {
						f.Flush()
					}
					return ok
				}},
				{"ReadFrom", func(w http.ResponseWriter) bool {
					rf, ok := w.(io.ReaderFrom)
					if ok {
						rf.ReadFrom(struct{ io.Reader }{strings.NewReader("x")})
					}
					return ok
				}},
				{"SetWriteDeadline", func(w http.ResponseWriter) bool {
					return http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Second)) == nil
				}},
			}
			for _, c := range checks {
				p := &probeWriter{}
				if !c.call(wrap(p)) {
					t.Errorf("%s hides %s", name, c.want)
					continue
				}
				if !slices.Equal(p.calls, []string{c.want}) {
					t.Errorf("%s: %s reached the wrapped writer as %v, want [%s]", name, c.want, p.calls, c.want)
				}
			}
		})
	}
}

// Every type in collab and cmd/collabd that wraps a ResponseWriter (embeds
// one, or implements WriteHeader) is in responseWrappers, so that the
// test above covers it.
func TestEveryResponseWrapperIsChecked(t *testing.T) {
	var found []string
	for _, dir := range []string{".", filepath.Join("..", "cmd", "collabd")} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, src, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.TypeSpec:
					if st, ok := n.Type.(*ast.StructType); ok && embedsResponseWriter(st) {
						found = append(found, n.Name.Name)
					}
				case *ast.FuncDecl:
					if n.Recv != nil && n.Name.Name == "WriteHeader" {
						found = append(found, recvName(n.Recv.List[0].Type))
					}
				}
				return true
			})
		}
	}
	if len(found) == 0 {
		t.Fatal("found no ResponseWriter wrapper at all; is the search broken?")
	}
	for _, name := range found {
		if _, ok := responseWrappers[name]; !ok {
			t.Errorf("%s wraps a ResponseWriter: add it to responseWrappers", name)
		}
	}
}

func embedsResponseWriter(st *ast.StructType) bool {
	for _, f := range st.Fields.List {
		if sel, ok := f.Type.(*ast.SelectorExpr); ok && len(f.Names) == 0 && sel.Sel.Name == "ResponseWriter" {
			return true
		}
	}
	return false
}

func recvName(e ast.Expr) string {
	if s, ok := e.(*ast.StarExpr); ok {
		e = s.X
	}
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}
