package frontend

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestSDKServed: /sdk/ serves the SDK's modules and types with their
// content types, CORS for pages of other origins, and an ETag that a
// revalidation answers with 304; nothing else is served there.
func TestSDKServed(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/sdk/collabd.mjs", "text/javascript; charset=utf-8", "CollabDocument = class"},
		{"/sdk/collabd.d.ts", "application/typescript; charset=utf-8", "export class CollabDocument"},
		{"/sdk/codemirror.mjs", "text/javascript; charset=utf-8", `from "./collabd.mjs"`},
		{"/sdk/textarea.mjs", "text/javascript; charset=utf-8", "bindTextarea"},
		{"/sdk/monaco.mjs", "text/javascript; charset=utf-8", "bindMonaco"},
		{"/sdk/package.json", "application/json", `"exports"`},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("Content-Type") != tc.ctype || !strings.Contains(string(body), tc.contains) {
			t.Errorf("%s: got %d %q (%d bytes), want 200 %q containing %q", tc.path, resp.StatusCode, h.Get("Content-Type"), len(body), tc.ctype, tc.contains)
		}
		if h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Cache-Control") != "no-cache" || h.Get("ETag") == "" {
			t.Errorf("%s: headers %v, want CORS *, no-cache and an ETag", tc.path, h)
		}
		req, _ := http.NewRequest("GET", srv.URL+tc.path, nil)
		req.Header.Set("If-None-Match", h.Get("ETag"))
		again, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		again.Body.Close()
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("%s revalidated: got %d, want 304", tc.path, again.StatusCode)
		}
	}
	for _, p := range []string{"/sdk/", "/sdk/nope.mjs", "/sdk/../index.html"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if p != "/sdk/../index.html" && resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: got %d, want 404", p, resp.StatusCode)
		}
	}
}
