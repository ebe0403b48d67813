package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/collabd/collabd/storage"
)

// adminHandler serves the operator's endpoints on -admin-addr, which is
// meant to stay on loopback or a private network: it has no
// authentication of its own.
//
//	GET /backup   a consistent copy of the data file, taken while serving
func adminHandler(db *storage.DB, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) {
		name := "collabd-" + time.Now().UTC().Format("20060102T150405Z") + ".db"
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
		w.Header().Set("Cache-Control", "no-store")
		start := time.Now()
		n, err := db.Backup(&deadlineWriter{w: w, rc: http.NewResponseController(w)}, func(size int64) {
			// A known length lets the client tell a cut copy from a whole one.
			w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		})
		if err != nil {
			// The status line went out with the first byte, and a chunked
			// body that ends cleanly would look complete: abort the
			// connection instead, so the client sees a truncated body.
			logger.Error("backup failed", "bytes", n, "err", err)
			panic(http.ErrAbortHandler)
		}
		logger.Info("backup served", "bytes", n, "took", time.Since(start).Round(time.Millisecond))
	})
	return mux
}

// backupWriteTimeout bounds each write of a backup to its client. A whole
// backup may take longer than any fixed timeout, but a client that stops
// reading must not hold the file's read transaction, and with it the
// server's shutdown, for ever.
const backupWriteTimeout = 30 * time.Second

// deadlineWriter sets a fresh write deadline before every write.
type deadlineWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if err := d.rc.SetWriteDeadline(time.Now().Add(backupWriteTimeout)); err != nil {
		return 0, err
	}
	return d.w.Write(p)
}

// runBackup is `collabd backup`: it writes a consistent copy of the data
// file to -o, either from a running server's admin endpoint (-from) or,
// when no server holds the file, by opening it directly (-data). The copy
// appears under its final name only once it is complete, synced, opens as
// a storage file and passes bbolt's consistency check.
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("collabd backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "`file` to write the copy to (required)")
	from := fs.String("from", "", "`URL` of a running server's -admin-addr, e.g. http://127.0.0.1:8081")
	data := fs.String("data", "./collab.db", "`path` of the data file, when no server is running on it")
	lockTimeout := fs.Duration("lock-timeout", 2*time.Second, "how long to wait for the data file's lock")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: collabd backup -o FILE [-from URL | -data PATH]\n\n"+
			"Writes a consistent copy of a collabd data file. While a server runs, it\n"+
			"holds the file's lock: ask it over its -admin-addr with -from.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("backup: -o FILE is required, and nothing else may follow the flags")
	}

	copyTo := func(w io.Writer) (int64, error) {
		if *from != "" {
			return fetchBackup(ctx, *from, w)
		}
		// Open would create a missing file: a mistyped path must not
		// leave an empty data file behind and "succeed".
		if fi, err := os.Stat(*data); err != nil {
			return 0, err
		} else if !fi.Mode().IsRegular() {
			return 0, fmt.Errorf("%s is not a regular file", *data)
		}
		db, err := storage.Open(*data, storage.Options{LockTimeout: *lockTimeout, SnapshotEvery: -1})
		if errors.Is(err, storage.ErrLocked) {
			return 0, fmt.Errorf("%s is locked, most likely by a running server: use -from with its -admin-addr", *data)
		}
		if err != nil {
			return 0, err
		}
		defer db.Close()
		return db.Backup(w, nil)
	}
	n, err := writeAtomically(*out, copyTo, func(path string) error {
		db, err := storage.Open(path, storage.Options{LockTimeout: time.Second, SnapshotEvery: -1})
		if err != nil {
			return fmt.Errorf("the copy does not open: %w", err)
		}
		defer db.Close()
		if err := db.Check(ctx); err != nil {
			return fmt.Errorf("the copy is damaged: %w", err)
		}
		return db.Close()
	})
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %d bytes to %s\n", n, *out)
	return nil
}

// fetchBackup copies the body of GET base/backup to w, checking that it is
// complete: a server that fails mid-copy can only cut the body short.
func fetchBackup(ctx context.Context, base string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/backup", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s/backup: %s", base, resp.Status)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("GET %s/backup: %w", base, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("GET %s/backup: got %d of %d bytes", base, n, resp.ContentLength)
	}
	return n, nil
}

// writeAtomically writes path through a temporary file in the same folder,
// synced and renamed into place only when write and then check on the
// temporary file's path succeeded.
func writeAtomically(path string, write func(io.Writer) (int64, error), check func(string) error) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, err
	}
	n, err := write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = check(f.Name())
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return n, err
	}
	// The rename is durable only once the folder is synced.
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		err = dir.Sync()
		dir.Close()
		if err != nil {
			return n, fmt.Errorf("sync %s: %w", filepath.Dir(path), err)
		}
	}
	return n, nil
}
