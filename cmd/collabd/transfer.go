package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/ot"
	"github.com/collabd/collabd/storage"
)

// `collabd export` and `collabd import` move documents' text in and out:
// against a data file no server holds (-data), or through a running
// server's HTTP API (-from URL).

// openData opens a data file for a command, refusing to create a missing
// one, with milestones left to the server.
func openData(path string, lockTimeout time.Duration) (*storage.DB, error) {
	if fi, err := os.Stat(path); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	db, err := storage.Open(path, storage.Options{LockTimeout: lockTimeout, SnapshotEvery: -1})
	if errors.Is(err, storage.ErrLocked) {
		return nil, fmt.Errorf("%s is locked, most likely by a running server: use -from with its URL", path)
	}
	return db, err
}

// transferArgs are the flags export and import share.
type transferArgs struct {
	data, from, tokenFile string
	lockTimeout           time.Duration
}

// remote is a running server reached with -from, and the token to show it.
type remote struct {
	base, token string
}

// do sends req with the token, if there is one, as Authorization: Bearer:
// a create token for import, an access token for export.
func (r remote) do(req *http.Request) (*http.Response, error) {
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	return http.DefaultClient.Do(req)
}

func transferFlags(name, usage string, stderr io.Writer) (*flag.FlagSet, *transferArgs) {
	fs := flag.NewFlagSet("collabd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	a := &transferArgs{}
	fs.StringVar(&a.data, "data", "", "`path` of a data file no server is using")
	fs.StringVar(&a.from, "from", "", "base `URL` of a running server, e.g. http://127.0.0.1:8080")
	fs.StringVar(&a.tokenFile, "token-file", "", "with -from: `file` holding the token to send as Authorization: Bearer (the server's create token to import, an access token to export)")
	fs.DurationVar(&a.lockTimeout, "lock-timeout", time.Second, "how long to wait for the data file's lock")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage+"\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs, a
}

// parseTransfer parses args into a and, with -from, returns the server
// to reach.
func parseTransfer(fs *flag.FlagSet, args []string, a *transferArgs) (remote, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return remote{}, errHelp
		}
		return remote{}, err
	}
	if (a.data == "") == (a.from == "") {
		fs.Usage()
		return remote{}, errors.New("give exactly one of -data and -from")
	}
	r := remote{base: strings.TrimRight(a.from, "/")}
	if a.tokenFile != "" {
		if a.from == "" {
			return remote{}, errors.New("-token-file goes with -from: a data file needs no token")
		}
		tok, err := readSecret("token-file", a.tokenFile)
		if err != nil {
			return remote{}, err
		}
		r.token = string(tok)
	}
	return r, nil
}

// runExport writes a document's text, now or at a revision.
func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, a := transferFlags("export",
		"Usage: collabd export (-data PATH | -from URL [-token-file F]) -doc ID [-rev R] [-o FILE]\n\n"+
			"Writes a document's text (its edit id or view id) as it is, or as it was at\n"+
			"revision R, to standard output or FILE.", stderr)
	doc := fs.String("doc", "", "the document's edit `id` or view id")
	rev := fs.Int64("rev", -1, "the `revision` to export; default the latest")
	out := fs.String("o", "", "`file` to write; default standard output")
	srv, err := parseTransfer(fs, args, a)
	if err != nil {
		return err
	}
	if *doc == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("export: -doc ID is required, and nothing else may follow the flags")
	}
	var text string
	if a.from != "" {
		text, err = exportHTTP(ctx, srv, *doc, *rev)
	} else {
		text, err = exportData(ctx, a.data, a.lockTimeout, *doc, *rev)
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if *out == "" {
		_, err = io.WriteString(stdout, text)
		return err
	}
	_, err = writeAtomically(*out, func(w io.Writer) (int64, error) {
		n, err := io.WriteString(w, text)
		return int64(n), err
	}, func(string) error { return nil })
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

func exportData(ctx context.Context, path string, lockTimeout time.Duration, id string, rev int64) (string, error) {
	db, err := openData(path, lockTimeout)
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.Meta(ctx, id); errors.Is(err, storage.ErrNotFound) {
		// Perhaps a view id.
		if edit, verr := db.ViewDoc(ctx, id); verr == nil {
			id = edit
		}
	}
	if rev < 0 {
		d, err := db.Load(ctx, id)
		if err != nil {
			return "", err
		}
		return d.Text, nil
	}
	return db.TextAt(ctx, id, rev)
}

func exportHTTP(ctx context.Context, srv remote, id string, rev int64) (string, error) {
	q := ""
	if rev >= 0 {
		q = "?rev=" + strconv.FormatInt(rev, 10)
	}
	text, status, err := getText(ctx, srv, srv.base+"/api/docs/"+url.PathEscape(id)+"/text"+q)
	if err == nil && status == http.StatusNotFound {
		// Perhaps a view id.
		text, status, err = getText(ctx, srv, srv.base+"/api/view/"+url.PathEscape(id)+"/text"+q)
	}
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", srv.base, http.StatusText(status), strings.TrimSpace(text))
	}
	return text, nil
}

func getText(ctx context.Context, srv remote, u string) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := srv.do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", 0, fmt.Errorf("GET %s: %w", u, err)
	}
	return string(body), resp.StatusCode, nil
}

// runImport creates a document holding a file's text and prints its ids
// as JSON: {"id","viewId","rev"}.
func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, a := transferFlags("import",
		"Usage: collabd import (-data PATH | -from URL [-token-file F]) FILE\n\n"+
			"Creates a document holding FILE's text (UTF-8; - for standard input) and\n"+
			"prints its edit and view ids.", stderr)
	maxChars := fs.Int("max-doc-chars", 2_000_000, "largest text to import, in code points (as the server's -max-doc-chars)")
	// With -data, the import is a write to the file like a server's create,
	// and passes the same admission (collab.Admission), with the same bounds.
	var limits collab.Limits
	fs.Int64Var(&limits.MaxDataBytes, "max-data-bytes", 0, "with -data: data file size in `bytes` past which the import is refused (as the server's); 0: no limit")
	fs.Int64Var(&limits.MinFreeBytes, "min-free-bytes", 64<<20, "with -data: free disk `bytes` below which the import is refused (as the server's); negative: no check")
	fs.Int64Var(&limits.MaxDocHistory, "max-doc-history", 256<<20, "with -data: op log `bytes` a document may take (as the server's); negative: no limit")
	srv, err := parseTransfer(fs, args, a)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("import: one FILE is required")
	}
	var raw []byte
	if name := fs.Arg(0); name == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(name)
	}
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if !utf8.Valid(raw) {
		return errors.New("import: the file is not valid UTF-8 text")
	}
	text := string(raw)
	if n := utf8.RuneCountInString(text); n > *maxChars {
		return fmt.Errorf("import: the text has %d code points; the limit is %d", n, *maxChars)
	}
	var out []byte
	if a.from != "" {
		out, err = importHTTP(ctx, srv, text)
	} else {
		out, err = importData(ctx, a.data, a.lockTimeout, limits, text)
	}
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "%s\n", bytes.TrimSpace(out))
	return err
}

func importData(ctx context.Context, path string, lockTimeout time.Duration, limits collab.Limits, text string) ([]byte, error) {
	db, err := openData(path, lockTimeout)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	now := time.Now().UTC()
	meta := storage.Meta{ID: uuid.NewString(), ViewID: uuid.NewString(), Created: now}
	var first *storage.Record
	rev := int64(0)
	grows := collab.Growth{Inserts: true}
	if text != "" {
		first = &storage.Record{Rev: 1, Op: ot.Op{ot.Insert(text)}, Time: now}
		rev = 1
		grows.Adds = storage.RecordBytes(*first)
	}
	if err := collab.NewAdmission(store{db}, limits, nil).Admit(ctx, grows); err != nil {
		return nil, err
	}
	if err := db.Create(ctx, meta, first); err != nil {
		return nil, err
	}
	if err := db.Close(); err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"id": meta.ID, "viewId": meta.ViewID, "rev": rev})
}

func importHTTP(ctx context.Context, srv remote, text string) ([]byte, error) {
	base := srv.base
	body, _ := json.Marshal(map[string]string{"text": text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/docs", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("POST %s/api/docs: %w", base, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("POST %s/api/docs: %s: %s", base, resp.Status, bytes.TrimSpace(out))
	}
	return out, nil
}
