// Package ottest is test support for the packages built on ot: it loads the
// team's shared editing traces and does the bookkeeping that replays a
// concurrent trace through real OT clients, whatever carries their
// messages (the in-memory simulation in ot's tests, real WebSockets in
// collab's). It decides what each recorded edit means on the text its
// agent actually holds; the caller owns the clients, the transport and the
// server.
//
// It imports only the standard library, so that ot's own (internal) tests
// can import it without an import cycle. Edits come out as Splices, which
// a caller turns into ot.Ops with a few lines (see the Splice type).
//
// Open and Load are safe for concurrent use; a Replay is not.
package ottest

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Patch is one change of a trace transaction, [pos, delCount, "inserted"]
// in JSON: like Array.splice, delete Del code points at Pos, then insert
// Ins there.
type Patch struct {
	Pos, Del int
	Ins      string
}

// UnmarshalJSON decodes [pos, delCount, "inserted"].
func (p *Patch) UnmarshalJSON(b []byte) error {
	// Decoding into pointers held by the slice fills p's fields in one
	// pass, which matters for traces of a quarter million patches.
	fields := []any{&p.Pos, &p.Del, &p.Ins}
	if err := json.Unmarshal(b, &fields); err != nil {
		return fmt.Errorf("patch %.40s: %w", b, err)
	}
	if len(fields) != 3 {
		return fmt.Errorf("patch %.40s: want [pos, delCount, \"ins\"]", b)
	}
	if p.Pos < 0 || p.Del < 0 {
		return fmt.Errorf("patch %.40s: negative position or count", b)
	}
	return nil
}

// Txn is one transaction of a trace. In a concurrent trace, Agent typed it
// on a document holding exactly the transactions in its causal past
// (Parents, transitively), and its patch positions refer to that text;
// each patch sees the previous ones of the same transaction applied.
type Txn struct {
	Parents []int   `json:"parents"`
	Agent   int     `json:"agent"`
	Patches []Patch `json:"patches"`
}

// Trace is an editing trace in the format of ../../shared/traces/README.md.
type Trace struct {
	Kind         string `json:"kind"` // "concurrent", or empty for sequential
	StartContent string `json:"startContent"`
	EndContent   string `json:"endContent"`
	NumAgents    int    `json:"numAgents"`
	Txns         []Txn  `json:"txns"`
}

// Load reads a trace from a .json or .json.gz file. A missing file gives
// an error wrapping fs.ErrNotExist.
func Load(path string) (*Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("trace %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	var tr Trace
	if err := json.NewDecoder(r).Decode(&tr); err != nil {
		return nil, fmt.Errorf("trace %s: %w", path, err)
	}
	return &tr, nil
}

// Decoding a trace takes a while, so Open decodes each file once per test
// binary. Callers must not modify the Trace they get.
var (
	cacheMu sync.Mutex
	cache   = map[string]*Trace{}
)

// Open returns the trace in file name of dir, decoded once per test binary
// and shared: callers must not modify it. It skips the test or benchmark,
// saying why, when the file is absent: the shared traces are never copied
// into the repository, so a checkout elsewhere may not have them.
func Open(tb testing.TB, dir, name string) *Trace {
	tb.Helper()
	path := filepath.Join(dir, name)
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if tr, ok := cache[path]; ok {
		return tr
	}
	tr, err := Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		tb.Skipf("trace %s not found (the shared editing traces are not in this checkout); skipping", path)
	}
	if err != nil {
		tb.Fatal(err)
	}
	cache[path] = tr
	return tr
}
