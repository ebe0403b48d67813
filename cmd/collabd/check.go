package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/collabd/collabd/storage"
)

// Exit statuses of `collabd check`, so that a script can tell a damaged
// file from a check that did not run.
const (
	exitProblems = 1 // the file has problems
	exitNoCheck  = 2 // the check could not run: no file, locked, interrupted
)

// exitError carries an exit status other than 1 up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode is the process exit status for an error run returned.
func exitCode(err error) int {
	if ee, ok := errors.AsType[*exitError](err); ok {
		return ee.code
	}
	return 1
}

// runCheck is `collabd check`: it reads the whole data file, never writing
// to it, and reports what storage.VerifyFile finds. The exit status is the
// verdict: 0 the file is sound, 1 problems were found (each printed on
// stdout), 2 the check could not run.
func runCheck(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("collabd check", flag.ContinueOnError)
	flags.SetOutput(stderr)
	// The same variable as the server's -data, so that an operator whose
	// service sets COLLABD_DATA checks the file the service uses.
	defData := "./collab.db"
	if v, ok := lookupEnv(envName("data")); ok {
		defData = v
	}
	data := flags.String("data", defData, "`path` of the data file to check ("+envName("data")+" if set)")
	lockTimeout := flags.Duration("lock-timeout", 5*time.Second, "how long to wait for the data file's lock, which a running server holds")
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), "Usage: collabd check [-data PATH]\n\n"+
			"Checks a collabd data file without changing it: bbolt's consistency check\n"+
			"(pages, freelist, key order), then collabd's own: every document's op log\n"+
			"replays from the empty text, its meta, client entries and view id agree\n"+
			"with it, and every stored snapshot equals the text the log replays to at\n"+
			"that revision. It reads the whole file.\n\n"+
			"Exit status: 0 no problems, 1 problems found (listed on stdout), 2 the\n"+
			"check could not run. A running server holds the file's lock: stop it, or\n"+
			"check a copy taken with `collabd backup -from URL -o FILE`.\n\nFlags:\n")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return &exitError{exitNoCheck, err}
	}
	if flags.NArg() > 0 {
		return &exitError{exitNoCheck, fmt.Errorf("check: unexpected arguments %q (see -help)", flags.Args())}
	}

	start := time.Now()
	rep, err := storage.VerifyFile(ctx, *data, *lockTimeout)
	switch {
	case errors.Is(err, storage.ErrLocked):
		return &exitError{exitNoCheck, fmt.Errorf("check: %s is locked, most likely by a running collabd (waited %v): "+
			"stop it first, or check a copy taken with `collabd backup -from URL -o FILE`", *data, *lockTimeout)}
	case errors.Is(err, fs.ErrNotExist):
		return &exitError{exitNoCheck, fmt.Errorf("check: %s does not exist", *data)}
	case errors.Is(err, storage.ErrCorrupt):
		// bbolt would not even open it: that is a verdict on the file.
		fmt.Fprintf(stdout, "%s: %v\n", *data, err)
		return &exitError{exitProblems, fmt.Errorf("check: %s does not open as a data file", *data)}
	case err != nil:
		return &exitError{exitNoCheck, fmt.Errorf("check: %w", err)}
	}

	summary := fmt.Sprintf("%d documents, %d ops, %d snapshots, %d view ids in %v",
		rep.Docs, rep.Ops, rep.Snapshots, rep.Views, time.Since(start).Round(time.Millisecond))
	if rep.OK() {
		fmt.Fprintf(stdout, "%s: ok: %s\n", *data, summary)
		return nil
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(stdout, "%s: %v\n", *data, p)
	}
	n := len(rep.Problems) + rep.Dropped
	if rep.Dropped > 0 {
		fmt.Fprintf(stdout, "%s: %d more problems not listed\n", *data, rep.Dropped)
	}
	fmt.Fprintf(stdout, "%s: %d problems: %s\n", *data, n, summary)
	return &exitError{exitProblems, fmt.Errorf("check: %d problems found in %s; restore a backup that passes, "+
		"or keep the file for analysis", n, *data)}
}
