package frontend

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"testing"
)

func get(t *testing.T, url string, hdr ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	// A transport that does not ask for or undo gzip on its own.
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestStaticCompressedAndValidated: text files come gzipped to clients
// that accept gzip, whole otherwise, each with an ETag that a revalidation
// answers with 304; directories stay unlisted.
func TestStaticCompressedAndValidated(t *testing.T) {
	ts := httptest.NewServer(Handler())
	defer ts.Close()
	want, err := fs.ReadFile(FS(), "dist/"+entries(t)["edit.js"])
	if err != nil {
		t.Fatal(err)
	}
	resp := get(t, ts.URL+"/dist/edit.js", "Accept-Encoding", "gzip")
	gz, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("gzip: got %d %v", resp.StatusCode, resp.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if !bytes.Equal(plain, want) || len(gz) > len(want)/2 {
		t.Fatalf("gzip body: %d bytes unzipping to %d, want under half of %d and equal", len(gz), len(plain), len(want))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
		t.Errorf("Content-Type: got %q", ct)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("validators: got %v", resp.Header)
	}
	if r := get(t, ts.URL+"/dist/edit.js", "Accept-Encoding", "gzip", "If-None-Match", etag); r.StatusCode != 304 {
		t.Errorf("revalidation: got %d, want 304", r.StatusCode)
	}
	r := get(t, ts.URL+"/dist/edit.js")
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, want) || r.Header.Get("ETag") == etag {
		t.Errorf("without gzip: got %v, %d bytes, want the file whole under another ETag", r.Header, len(body))
	}
	if r := get(t, ts.URL+"/dist/edit.js", "Accept-Encoding", "gzip;q=0"); r.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0: got Content-Encoding %q", r.Header.Get("Content-Encoding"))
	}
	chunks, _ := fs.Glob(FS(), "dist/chunks/*.js")
	if len(chunks) == 0 {
		t.Fatal("no chunks in dist/chunks")
	}
	if r := get(t, ts.URL+"/"+chunks[0], "Accept-Encoding", "gzip"); r.StatusCode != 200 || r.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("%s: got %d %v, want immutable", chunks[0], r.StatusCode, r.Header)
	}
	if r := get(t, ts.URL+"/", "Accept-Encoding", "gzip"); r.StatusCode != 200 || r.Header.Get("ETag") == "" {
		t.Errorf("/: got %d %v", r.StatusCode, r.Header)
	}
	if r := get(t, ts.URL+"/dist/"); r.StatusCode != 404 {
		t.Errorf("/dist/: got %d, want 404 (no listing)", r.StatusCode)
	}
	if r := get(t, ts.URL+"/index.html"); r.StatusCode != 301 {
		t.Errorf("/index.html: got %d, want the redirect to /", r.StatusCode)
	}
}
