// Package frontend holds the browser editor, embedded into the collabd
// binary so that one file serves both the API and the pages.
package frontend

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strconv"
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
// What build.mjs makes is served as it made it (nothing is compressed
// here): the pages from dist/root (their <script> names the hashed
// bundle), and each text file as FILE.br to clients that accept brotli,
// else FILE.gz to those that accept gzip, else whole, with Vary:
// Accept-Encoding and an ETag per encoding. The bundles and chunks
// (dist/manifest.json) are named by their content and cached as
// immutable; everything else (the pages, app.css, sw.js, the SDK, the
// fixed names /dist/edit.js, /dist/view.js, /dist/home.js kept as
// aliases of the hashed bundles for links made before them) keeps its
// name between releases, so it is no-cache and revalidated for a 304.
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
		if strings.HasPrefix(name, "sdk/") {
			sdkHeaders(h, name)
		}
		if a.immutable {
			// Named by their content (build.mjs): a name never serves
			// other bytes, so browsers keep them without asking.
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		body, etag := a.plain, a.etag
		if a.br != nil || a.gz != nil {
			h.Add("Vary", "Accept-Encoding")
			br, gz := acceptedEncodings(r)
			if br && a.br != nil {
				body, etag = a.br, a.etagBr
				h.Set("Content-Encoding", "br")
			} else if gz && a.gz != nil {
				body, etag = a.gz, a.etagGz
				h.Set("Content-Encoding", "gzip")
			}
		}
		h.Set("ETag", etag)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
	})
}

// sdkTypes are the content types of the client SDK's files (static/sdk,
// served at /sdk/), by ending. .d.ts is TypeScript (application/typescript,
// the type Deno reads a declaration file by), never the MPEG stream that
// .ts means to mime.
var sdkTypes = []struct{ suffix, ctype string }{
	{".d.ts", "application/typescript; charset=utf-8"},
	{".mjs", "text/javascript; charset=utf-8"},
	{".json", "application/json"},
	{".md", "text/markdown; charset=utf-8"},
}

// sdkHeaders sets what the SDK's files carry beyond every file's ETag and
// no-cache (a page revalidates, and never runs an SDK older than the
// server it talks to): their content types, and CORS, since an ES module
// from another origin loads only with it.
func sdkHeaders(h http.Header, name string) {
	for _, t := range sdkTypes {
		if strings.HasSuffix(name, t.suffix) {
			h.Set("Content-Type", t.ctype)
			break
		}
	}
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
}

// asset is one file as served: its bytes, compressed by build.mjs when
// that pays, and their ETags.
type asset struct {
	plain, br, gz        []byte
	etag, etagBr, etagGz string
	immutable            bool
}

// rootDir holds build.mjs's versions of static's top-level files: the
// pages rewritten to load the hashed bundles, and the compressed copies.
const rootDir = "dist/root/"

// hidden reports whether a file is only a part of another one as served
// (a compressed copy, a rewritten page), never served under its own name.
func hidden(name string) bool {
	return strings.HasSuffix(name, ".br") || strings.HasSuffix(name, ".gz") || strings.HasPrefix(name+"/", rootDir)
}

func loadAssets(fsys fs.FS) map[string]*asset {
	var hashed []string // dist/manifest.json: "/dist/edit-HASH.js", ...
	if b, err := fs.ReadFile(fsys, "dist/manifest.json"); err == nil {
		json.Unmarshal(b, &hashed)
	}
	out := make(map[string]*asset)
	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || hidden(p) {
			return nil
		}
		from := p // where the served bytes and their compressed copies are
		if !strings.Contains(p, "/") {
			from = rootDir + p
			if _, err := fs.Stat(fsys, from); err != nil {
				from = p
			}
		}
		b, err := fs.ReadFile(fsys, from)
		if err != nil {
			return nil
		}
		a := &asset{plain: b, etag: etagOf(b, ""), immutable: slices.Contains(hashed, "/"+p)}
		enc := from
		if !strings.Contains(p, "/") {
			enc = rootDir + p
		}
		if br, err := fs.ReadFile(fsys, enc+".br"); err == nil {
			a.br, a.etagBr = br, etagOf(b, "-br")
		}
		if gz, err := fs.ReadFile(fsys, enc+".gz"); err == nil {
			a.gz, a.etagGz = gz, etagOf(b, "-gz")
		}
		out[p] = a
		return nil
	})
	// The fixed names of the pages' bundles, served as the hashed ones
	// they stand for (no-cache: the next release points them elsewhere).
	var entries map[string]string
	if b, err := fs.ReadFile(fsys, "dist/entries.json"); err == nil {
		json.Unmarshal(b, &entries)
	}
	for entry, file := range entries {
		if a := out["dist/"+file]; a != nil && out["dist/"+entry] == nil {
			alias := *a
			alias.immutable = false
			out["dist/"+entry] = &alias
		}
	}
	return out
}

func etagOf(b []byte, suffix string) string {
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + suffix + `"`
}

// acceptedEncodings reports whether the request's Accept-Encoding allows
// brotli and gzip: named, or by "*", with a quality above 0.
func acceptedEncodings(r *http.Request) (br, gz bool) {
	q := map[string]bool{}
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		enc = strings.ToLower(strings.TrimSpace(enc))
		ok := true
		for _, param := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(param), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				ok = err == nil && f > 0
			}
		}
		if enc != "" {
			q[enc] = ok
		}
	}
	pick := func(enc string) bool {
		if ok, named := q[enc]; named {
			return ok
		}
		return q["*"]
	}
	return pick("br"), pick("gzip")
}

// noListing is an fs.FS whose directories without an index.html, and
// hidden files, do not exist, as far as http.FileServerFS can tell.
type noListing struct{ fsys fs.FS }

func (n noListing) Open(name string) (fs.File, error) {
	if hidden(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
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
