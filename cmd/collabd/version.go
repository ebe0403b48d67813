package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// versionString describes the binary from the build information the Go
// toolchain embeds: the main module's version (a tag, a pseudo-version
// such as v0.0.0-20261201120000-abcdef123456+dirty, or "(devel)"), and,
// when it was built inside a git checkout, the commit and whether the tree
// had uncommitted changes. An operator reporting a bug can paste this line
// and a developer can find the exact source. No ldflags are needed, so
// `go install`, `make build` and a Docker build all stamp the same facts.
func versionString(info *debug.BuildInfo, ok bool) string {
	if !ok || info == nil {
		return "collabd (no build information)"
	}
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	settings := make(map[string]string, len(info.Settings))
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	var b strings.Builder
	fmt.Fprintf(&b, "collabd %s", version)
	if rev := settings["vcs.revision"]; rev != "" {
		fmt.Fprintf(&b, " revision %s", rev)
		if t := settings["vcs.time"]; t != "" {
			fmt.Fprintf(&b, " (%s)", t)
		}
		if settings["vcs.modified"] == "true" {
			b.WriteString(" with local changes")
		}
	} else {
		b.WriteString(" revision unknown")
	}
	fmt.Fprintf(&b, ", %s", info.GoVersion)
	if goos, goarch := settings["GOOS"], settings["GOARCH"]; goos != "" && goarch != "" {
		fmt.Fprintf(&b, " %s/%s", goos, goarch)
	}
	return b.String()
}

// printVersion is `collabd version` and `collabd -version`.
func printVersion(stdout io.Writer) error {
	info, ok := debug.ReadBuildInfo()
	_, err := fmt.Fprintln(stdout, versionString(info, ok))
	return err
}
