package storage

import (
	"fmt"
	"os"
	"path/filepath"
)

// Usage is what the storage file takes on its disk, and what is left.
type Usage struct {
	// FileBytes is the data file's size. bbolt grows the file ahead of
	// need and never shrinks it, so this is a high-water mark.
	FileBytes int64
	// FreeBytes is the space left to unprivileged writers on the file
	// system that holds the file, or -1 where the platform cannot tell.
	FreeBytes int64
}

// Usage reports the file's size and the free space beside it. It makes
// two system calls and opens no transaction, so a health check or an
// admission check may call it often.
func (db *DB) Usage() (Usage, error) {
	if db.ctx.Err() != nil {
		return Usage{}, ErrClosed
	}
	path := db.bolt.Path()
	fi, err := os.Stat(path)
	if err != nil {
		return Usage{}, fmt.Errorf("usage: %w", err)
	}
	free, err := freeBytes(filepath.Dir(path))
	if err != nil {
		return Usage{}, fmt.Errorf("usage: %w", err)
	}
	return Usage{FileBytes: fi.Size(), FreeBytes: free}, nil
}
