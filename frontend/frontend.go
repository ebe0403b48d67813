// Package frontend holds the browser editor, embedded into the collabd
// binary so that one file serves both the API and the pages.
package frontend

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
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
//
// Every file carries a strong ETag (a hash of its bytes), so that a
// browser revalidates it for a 304 instead of fetching it again
// (Cache-Control: no-cache: the pages and the pages' bundles keep their
// names between releases). The chunks the bundles load (dist/chunks/) are
// named by their content and cached as immutable. Text files
// are sent gzipped to clients that accept it, compressed once, the first
// time any file is asked for (the bundles shrink to about a third).
func Handler() http.Handler {
	fsys := noListing{FS()}
	files := http.FileServerFS(fsys)
	var once sync.Once
	var all map[string]*asset
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { all = loadAssets(FS()) })
		name := strings.TrimPrefix(r.URL.Path, "/")
		if name == "" || strings.HasSuffix(name, "/") {
			name += "index.html"
		} else if strings.HasSuffix(name, "/index.html") || name == "index.html" {
			name = "" // http.FileServer redirects it to the directory
		}
		a := all[name]
		if a == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			files.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		if strings.HasPrefix(name, "dist/chunks/") {
			// Named by their content (build.mjs): a name never serves
			// other bytes, so browsers keep them without asking.
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		body, etag := a.plain, a.etag
		if a.gz != nil {
			h.Add("Vary", "Accept-Encoding")
			if acceptsGzip(r) {
				body, etag = a.gz, a.etagGz
				h.Set("Content-Encoding", "gzip")
			}
		}
		h.Set("ETag", etag)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
	})
}

// asset is one file as served: its bytes, gzipped when that pays for
// text, and their ETags.
type asset struct {
	plain, gz    []byte
	etag, etagGz string
}

// compressible lists the extensions worth gzipping.
var compressible = map[string]bool{".js": true, ".css": true, ".html": true, ".svg": true, ".json": true, ".txt": true}

func loadAssets(fsys fs.FS) map[string]*asset {
	out := make(map[string]*asset)
	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil
		}
		a := &asset{plain: b, etag: etagOf(b, "")}
		if compressible[path.Ext(p)] {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			zw.Write(b)
			zw.Close()
			if buf.Len() < len(b) {
				a.gz, a.etagGz = buf.Bytes(), etagOf(b, "-gz")
			}
		}
		out[p] = a
		return nil
	})
	return out
}

func etagOf(b []byte, suffix string) string {
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + suffix + `"`
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") || strings.TrimSpace(enc) == "*" {
			q = strings.ReplaceAll(strings.TrimSpace(q), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
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
