// Package frontend holds the browser editor, embedded into the collabd
// binary so that one file serves both the API and the pages.
package frontend

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed static
var files embed.FS

// FS returns the frontend's files, rooted so that "index.html" is at the top.
func FS() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		// fs.Sub fails only on an invalid path, and "static" is a constant.
		panic(err)
	}
	return sub
}

// Handler serves the frontend's files. A directory is served only through
// its index.html: one without is not found, never listed, so that what
// the server holds is not laid out for anyone to browse.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServerFS(noListing{FS()}))
	mux.Handle("GET /sdk/{file}", &sdkFiles{})
	return mux
}

// sdkTypes are the content types of the client SDK's files, by ending.
// .d.ts is TypeScript (application/typescript, the type Deno reads a
// declaration file by), never the MPEG stream that .ts means to mime.
var sdkTypes = []struct{ suffix, ctype string }{
	{".d.ts", "application/typescript; charset=utf-8"},
	{".mjs", "text/javascript; charset=utf-8"},
	{".json", "application/json"},
	{".md", "text/markdown; charset=utf-8"},
}

// sdkFiles serves static/sdk, the client SDK (frontend/sdk), at /sdk/:
// to pages of any origin (an ES module from another origin loads only
// with CORS), with an ETag and Cache-Control: no-cache, so that a page
// revalidates each load (a 304) and never runs an SDK older than the
// server it talks to.
type sdkFiles struct {
	once  sync.Once
	files map[string]sdkFile
}

type sdkFile struct {
	body        []byte
	ctype, etag string
}

func (h *sdkFiles) load() {
	h.files = make(map[string]sdkFile)
	entries, _ := fs.ReadDir(FS(), "sdk")
	for _, e := range entries {
		b, err := fs.ReadFile(FS(), "sdk/"+e.Name())
		if err != nil || e.IsDir() {
			continue
		}
		for _, t := range sdkTypes {
			if strings.HasSuffix(e.Name(), t.suffix) {
				sum := sha256.Sum256(b)
				h.files[e.Name()] = sdkFile{body: b, ctype: t.ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
				break
			}
		}
	}
}

func (h *sdkFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.once.Do(h.load)
	f, ok := h.files[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.ctype)
	hd.Set("ETag", f.etag)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Access-Control-Allow-Origin", "*")
	hd.Set("Cross-Origin-Resource-Policy", "cross-origin")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

// noListing is an fs.FS whose directories without an index.html do not
// exist, as far as http.FileServerFS can tell.
type noListing struct{ fsys fs.FS }

func (n noListing) Open(name string) (fs.File, error) {
	f, err := n.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil && st.IsDir() {
		_, err = fs.Stat(n.fsys, path.Join(name, "index.html"))
	}
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return f, nil
}
