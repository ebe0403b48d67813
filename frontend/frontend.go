// Package frontend holds the browser editor, embedded into the collabd
// binary so that one file serves both the API and the pages.
package frontend

import (
	"embed"
	"io/fs"
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
