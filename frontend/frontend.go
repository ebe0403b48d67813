// Package frontend holds the browser editor, embedded into the collabd
// binary so that one file serves both the API and the pages.
package frontend

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
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
	return http.FileServerFS(noListing{FS()})
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
