//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package storage

// freeBytes cannot tell on this platform: -1 means unknown.
func freeBytes(string) (int64, error) { return -1, nil }
