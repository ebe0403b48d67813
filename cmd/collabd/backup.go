package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/collabd/collabd/storage"
)

// adminHandler serves the operator's endpoints on -admin-addr, which is
// meant to stay on loopback or a private network: it has no
// authentication of its own. It answers only requests whose Host is one
// of hosts, so that a web page whose name an attacker points at
// 127.0.0.1 (DNS rebinding) cannot read the database from a browser on
// this machine.
//
//	GET /backup   a consistent copy of the data file, taken while serving
//
// A backup is first copied into an unlinked temporary file in tmpDir, at
// disk speed, and only then streamed to the client: the read transaction
// that the copy needs is held for the copy alone, never for as long as a
// slow client takes, since bbolt cannot grow its memory map (and so no
// writer can commit once the file outgrows it) while one is open. One
// backup runs at a time; another asked for meanwhile gets 503.
func adminHandler(db *storage.DB, tmpDir string, hosts []string, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	busy := make(chan struct{}, 1)
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) {
		select {
		case busy <- struct{}{}:
			defer func() { <-busy }()
		default:
			adminError(w, http.StatusServiceUnavailable, "rate_limited", "a backup is already running; try again when it is done")
			return
		}
		start := time.Now()
		f, n, err := backupToTemp(db, tmpDir)
		if err != nil {
			logger.Error("backup failed", "err", err)
			adminError(w, http.StatusInternalServerError, "internal", "backup failed: see the server log")
			return
		}
		defer f.Close()
		copied := time.Since(start)

		name := "collabd-" + time.Now().UTC().Format("20060102T150405Z") + ".db"
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
		w.Header().Set("Cache-Control", "no-store")
		// A known length lets the client tell a cut copy from a whole one.
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		sent, err := io.CopyN(&deadlineWriter{w: w, rc: http.NewResponseController(w)}, f, n)
		if err != nil {
			// The status line went out with the first byte: abort the
			// connection, so the client sees a truncated body.
			logger.Error("backup not delivered", "bytes", sent, "of", n, "err", err)
			panic(http.ErrAbortHandler)
		}
		logger.Info("backup served", "bytes", n, "copy", copied.Round(time.Millisecond),
			"took", time.Since(start).Round(time.Millisecond))
	})
	return checkHost(hosts, mux)
}

// backupToTemp copies the database into a temporary file in dir that is
// unlinked at once, so that nothing is left behind however the request
// ends; its space is freed when the returned file is closed.
func backupToTemp(db *storage.DB, dir string) (io.ReadCloser, int64, error) {
	f, err := os.CreateTemp(dir, ".collabd-backup-*.tmp")
	if err != nil {
		return nil, 0, err
	}
	// Where an open file cannot be unlinked (Windows), it goes on Close.
	unlinked := os.Remove(f.Name()) == nil
	fail := func(err error) (io.ReadCloser, int64, error) {
		f.Close()
		if !unlinked {
			os.Remove(f.Name())
		}
		return nil, 0, err
	}
	n, err := db.Backup(f, nil)
	if err != nil {
		return fail(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	if !unlinked {
		return &removeOnClose{f}, n, nil
	}
	return f, n, nil
}

// checkHost refuses, with 403, a request whose Host header is not one of
// hosts (compared without regard to case).
func checkHost(hosts []string, next http.Handler) http.Handler {
	allowed := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		allowed[strings.ToLower(h)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed[strings.ToLower(r.Host)] {
			adminError(w, http.StatusForbidden, "forbidden",
				fmt.Sprintf("host %q is not this admin endpoint's; add it with -admin-hosts if it should be", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// adminHosts is what the admin endpoints answer to: the address as
// configured and as bound (they differ for port 0), the extra names
// given, and, for a loopback or wildcard address, the loopback names
// with the port.
func adminHosts(configured string, bound net.Addr, extra []string) []string {
	hosts := append([]string{configured, bound.String()}, extra...)
	if ta, ok := bound.(*net.TCPAddr); ok && (ta.IP.IsLoopback() || ta.IP.IsUnspecified()) {
		port := strconv.Itoa(ta.Port)
		for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
			hosts = append(hosts, net.JoinHostPort(h, port))
		}
	}
	return hosts
}

func adminError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// backupWriteTimeout bounds each write of a backup to its client. A whole
// backup may take longer than any fixed timeout, but a client that stops
// reading must not hold the temporary copy, and with it the server's
// shutdown, for ever.
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
	var nc natsConfig
	nc.addFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: collabd backup -o FILE [-from URL | -data PATH | -nats URL [-nats-*]]\n\n"+
			"Writes a consistent copy of a collabd data file. While a server runs, it\n"+
			"holds the file's lock: ask it over its -admin-addr with -from.\n\n"+
			"With -nats, copies every document of a cluster (cluster mode) into a\n"+
			"single-node data file: one a single-node server runs on, and that\n"+
			"`collabd migrate` moves into a cluster again. Each document is copied as\n"+
			"it stands when its turn comes (consistent per document). Prints one line\n"+
			"per document, naming it by its edit id: keep the output private.\n\nFlags:\n")
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

	if nc.url != "" {
		if *from != "" {
			return errors.New("backup: -from and -nats are two different sources: give one")
		}
		if err := nc.check(); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
	}
	copyTo := func(w io.Writer) (int64, error) {
		if *from != "" {
			return fetchBackup(ctx, *from, w)
		}
		if nc.url != "" {
			conn, js, err := nc.open(ctx, nil, -1)
			if err != nil {
				return 0, err
			}
			defer conn.Close()
			defer js.Close()
			return clusterBackup(ctx, js, filepath.Dir(*out), w, stdout)
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

// removeOnClose is a temporary file that could not be unlinked while open.
type removeOnClose struct{ *os.File }

func (f *removeOnClose) Close() error {
	err := f.File.Close()
	os.Remove(f.Name())
	return err
}
