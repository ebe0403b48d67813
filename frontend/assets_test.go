package frontend

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// entries reads dist/entries.json: a page bundle's fixed name to its hashed one.
func entries(t *testing.T) map[string]string {
	t.Helper()
	var m map[string]string
	b, err := fs.ReadFile(FS(), "dist/entries.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil || len(m) != 3 {
		t.Fatalf("dist/entries.json: %v %v", m, err)
	}
	return m
}

// served lists every name the handler serves a file under, with the
// embedded file its bytes come from.
func served(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	fs.WalkDir(FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !hidden(p) {
			out[p] = p
			if _, err := fs.Stat(FS(), rootDir+p); err == nil {
				out[p] = rootDir + p
			}
		}
		return nil
	})
	for entry, file := range entries(t) {
		out["dist/"+entry] = "dist/" + file
	}
	return out
}

// url is the path a file is asked for by: index.html is the directory.
func url(name string) string {
	return "/" + strings.TrimSuffix(name, "index.html")
}

// TestEveryAssetByEncoding: each file comes as brotli to a client that
// accepts it (preferred over gzip), as gzip to one that accepts only
// gzip, whole to one that accepts neither, each the bytes build.mjs
// wrote, under an ETag of its own that revalidates to a 304.
func TestEveryAssetByEncoding(t *testing.T) {
	ts := httptest.NewServer(Handler())
	defer ts.Close()
	for name, from := range served(t) {
		plain, _ := fs.ReadFile(FS(), from)
		enc := from
		if !strings.Contains(name, "/") {
			enc = rootDir + name
		}
		br, brErr := fs.ReadFile(FS(), enc+".br")
		gz, gzErr := fs.ReadFile(FS(), enc+".gz")
		if strings.HasSuffix(name, ".js") || strings.HasSuffix(name, ".html") || strings.HasSuffix(name, ".css") {
			if brErr != nil || gzErr != nil {
				t.Errorf("%s: no precompressed copy (%v, %v): run make frontend", name, brErr, gzErr)
				continue
			}
		}
		etags := map[string]bool{}
		for _, c := range []struct{ accept, want string }{
			{"gzip, deflate, br, zstd", "br"}, {"br;q=0.5, gzip", "br"}, {"*", "br"},
			{"gzip", "gzip"}, {"br;q=0, gzip", "gzip"}, {"*, br;q=0", "gzip"},
			{"", ""}, {"identity", ""}, {"br;q=0, gzip;q=0", ""}, {"deflate", ""},
		} {
			want, wantEnc := plain, ""
			if c.want == "br" && brErr == nil {
				want, wantEnc = br, "br"
			} else if c.want != "" && gzErr == nil && (c.want == "gzip" || !strings.Contains(c.accept, "gzip;q=0")) {
				want, wantEnc = gz, "gzip"
			}
			r := get(t, ts.URL+url(name), "Accept-Encoding", c.accept)
			body, _ := io.ReadAll(r.Body)
			if r.StatusCode != 200 || r.Header.Get("Content-Encoding") != wantEnc || !bytes.Equal(body, want) {
				t.Errorf("%s, Accept-Encoding %q: got %d, %q, %d bytes; want %q, %d bytes", name, c.accept, r.StatusCode, r.Header.Get("Content-Encoding"), len(body), wantEnc, len(want))
				continue
			}
			if (brErr == nil || gzErr == nil) && r.Header.Get("Vary") != "Accept-Encoding" {
				t.Errorf("%s: Vary %q", name, r.Header.Get("Vary"))
			}
			etag := r.Header.Get("ETag")
			etags[wantEnc+" "+etag] = true
			if r := get(t, ts.URL+url(name), "Accept-Encoding", c.accept, "If-None-Match", etag); r.StatusCode != 304 {
				t.Errorf("%s, %q: revalidation got %d, want 304", name, c.accept, r.StatusCode)
			}
		}
		seen := map[string]bool{}
		for k := range etags {
			if _, etag, _ := strings.Cut(k, " "); seen[etag] || etag == "" {
				t.Errorf("%s: one ETag for two encodings, or none: %v", name, etags)
			} else {
				seen[etag] = true
			}
		}
		if gzErr == nil {
			zr, err := gzip.NewReader(bytes.NewReader(gz))
			if err != nil {
				t.Fatalf("%s.gz: %v", name, err)
			}
			if got, _ := io.ReadAll(zr); !bytes.Equal(got, plain) {
				t.Errorf("%s.gz does not unzip to the file", name)
			}
		}
	}
}

// TestBrotliCopiesDecode: every .br decompresses to its file (Node's
// zlib decodes brotli; Go's standard library does not).
func TestBrotliCopiesDecode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	var pairs [][2]string
	dir := t.TempDir()
	for name, from := range served(t) {
		enc := from
		if !strings.Contains(name, "/") {
			enc = rootDir + name
		}
		br, err := fs.ReadFile(FS(), enc+".br")
		if err != nil {
			continue
		}
		plain, _ := fs.ReadFile(FS(), from)
		f := filepath.Join(dir, strings.ReplaceAll(name, "/", "_"))
		os.WriteFile(f, plain, 0o600)
		os.WriteFile(f+".br", br, 0o600)
		pairs = append(pairs, [2]string{f, f + ".br"})
	}
	if len(pairs) < 10 {
		t.Fatalf("only %d brotli copies", len(pairs))
	}
	list, _ := json.Marshal(pairs)
	script := `const fs = require("fs"), zlib = require("zlib"); let bad = [];
for (const [p, b] of JSON.parse(process.argv[1])) if (!zlib.brotliDecompressSync(fs.readFileSync(b)).equals(fs.readFileSync(p))) bad.push(p);
if (bad.length) { console.log(bad.join("\n")); process.exit(1); }`
	if out, err := exec.Command(node, "-e", script, string(list)).CombinedOutput(); err != nil {
		t.Fatalf("brotli copies that do not decode to their file: %v\n%s", err, out)
	}
}

// TestCachingByName: the bundles and chunks (named by their content) are
// immutable; the pages, their fixed-name aliases and the rest are
// no-cache with an ETag; the pages load bundles that exist, by hashed name.
func TestCachingByName(t *testing.T) {
	ts := httptest.NewServer(Handler())
	defer ts.Close()
	var manifest []string
	b, _ := fs.ReadFile(FS(), "dist/manifest.json")
	if err := json.Unmarshal(b, &manifest); err != nil || len(manifest) < 4 {
		t.Fatalf("dist/manifest.json: %v %v", manifest, err)
	}
	for name := range served(t) {
		r := get(t, ts.URL+url(name), "Accept-Encoding", "br")
		want := "no-cache"
		if slices.Contains(manifest, "/"+name) {
			want = "public, max-age=31536000, immutable"
		}
		if r.StatusCode != 200 || r.Header.Get("Cache-Control") != want || r.Header.Get("ETag") == "" {
			t.Errorf("%s: got %d, Cache-Control %q, ETag %q; want %q", name, r.StatusCode, r.Header.Get("Cache-Control"), r.Header.Get("ETag"), want)
		}
	}
	for entry, file := range entries(t) {
		if !slices.Contains(manifest, "/dist/"+file) || !regexp.MustCompile(`^[a-z]+-[A-Z0-9]{8}\.js$`).MatchString(file) {
			t.Errorf("%s is bundled as %s, not a content-hashed name in the manifest", entry, file)
		}
	}
	src := regexp.MustCompile(`(?:src|href)="(/[^"]*)"`)
	for _, page := range []string{"/", "/edit.html", "/view.html"} {
		r := get(t, ts.URL+page)
		html, _ := io.ReadAll(r.Body)
		scripts := 0
		for _, m := range src.FindAllStringSubmatch(string(html), -1) {
			ref := m[1]
			if strings.HasPrefix(ref, "/dist/") {
				scripts++
				if !slices.Contains(manifest, ref) {
					t.Errorf("%s loads %s, not a hashed bundle of dist/manifest.json", page, ref)
				}
			}
			if rr := get(t, ts.URL+ref); rr.StatusCode != 200 {
				t.Errorf("%s references %s: %d", page, ref, rr.StatusCode)
			}
		}
		if scripts != 1 {
			t.Errorf("%s loads %d bundles, want 1", page, scripts)
		}
	}
	// The compressed copies and the rewritten pages are only served as
	// the files they stand for.
	for _, p := range []string{"/dist/manifest.json.br", "/app.css.gz", "/dist/root/edit.html", "/dist/root/", "/sdk/collabd.mjs.br"} {
		if r := get(t, ts.URL+p); r.StatusCode != 404 {
			t.Errorf("%s: got %d, want 404", p, r.StatusCode)
		}
	}
}
