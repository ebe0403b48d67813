package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/collabd/collabd/collab"
	"github.com/collabd/collabd/storage"
	"github.com/collabd/collabd/storage/jetstream"
)

// `collabd migrate` copies every document of a single-node data file into
// NATS JetStream (docs/scaling.md, "Moving a single-node server to a
// cluster").

// migratePage bounds one read from the data file and so one Append: the
// store splits an Append over max_payload into several messages itself.
const (
	migratePageOps   = 1000
	migratePageBytes = 4 << 20
)

// authorKeyName is the shared key the cluster derives author ids from;
// migrate seeds it with the data file's key, so that author ids stay what
// they were.
const authorKeyName = "author"

// migrateResult is what happened to one document.
type migrateResult int

const (
	migrateCreated migrateResult = iota
	migrateContinued
	migrateSkipped
)

// runMigrate is `collabd migrate`. The exit status is 0 when every document
// is in JetStream at its latest revision, 1 otherwise.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("collabd migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "`path` of the single-node data file (no server may be using it)")
	lockTimeout := fs.Duration("lock-timeout", time.Second, "how long to wait for the data file's lock")
	var nc natsConfig
	nc.addFlags(fs)
	// The copy is a write to the cluster's store like any other, and
	// passes collab's admission with the bounds the cluster's nodes use
	// (JetStream's free space is the NATS servers' to watch).
	var limits collab.Limits
	fs.Int64Var(&limits.MaxDataBytes, "max-data-bytes", 0, "JetStream `bytes` past which no more is copied (as the nodes' -max-data-bytes); 0: no limit")
	fs.Int64Var(&limits.MaxDocHistory, "max-doc-history", 256<<20, "op log `bytes` (as the data file counts them) a document may take; one with more is copied no further (as the nodes' -max-doc-history); negative: no limit")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: collabd migrate -data PATH -nats URL [-nats-creds FILE] [-nats-tls-*] [-nats-replicas N]\n\n"+
			"Copies every document of a single-node data file into NATS JetStream for\n"+
			"cluster mode: the same edit id, view id and creation time, every revision\n"+
			"with its author and time, a snapshot at the latest revision, its comments,\n"+
			"access record, title and tags; also the\n"+
			"file's author key, so author ids stay the same. Run it with the single-node\n"+
			"server stopped. It can be run again: documents already copied are skipped,\n"+
			"and a copy that was interrupted is continued. Give the -nats-replicas and\n"+
			"-lease-ttl the cluster's nodes use: it creates or updates the stream and\n"+
			"buckets as a node does. Prints one line per document (naming it by its\n"+
			"edit id: keep the output as private as the data file) and a summary.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return err
	}
	if *data == "" || nc.url == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("migrate: -data PATH and -nats URL are required, and nothing else may follow the flags")
	}
	if err := nc.check(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}

	if fi, err := os.Stat(*data); err != nil {
		return fmt.Errorf("migrate: %w", err)
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("migrate: %s is not a regular file", *data)
	}
	db, err := storage.Open(*data, storage.Options{LockTimeout: *lockTimeout, SnapshotEvery: -1})
	if errors.Is(err, storage.ErrLocked) {
		return fmt.Errorf("migrate: %s is locked, most likely by a running server: stop it first (waited %v)", *data, *lockTimeout)
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer db.Close()
	// No logger: a failure shows in the call that failed, and NATS's
	// connection callbacks would write after run has returned. Background
	// snapshots off: migrate saves one per document itself.
	conn, js, err := nc.open(ctx, nil, -1)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	defer js.Close()

	start := time.Now()
	adm := collab.NewAdmission(jsStore{st: js}, limits, nil)
	if err := migrateAuthorKey(ctx, db, js, stdout); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	ids, err := db.DocIDs(ctx)
	if err != nil {
		return fmt.Errorf("migrate: list documents: %w", err)
	}
	src := boltExtras(db)
	dst, err := clusterExtras(ctx, js, func(ctx context.Context, name string) (*jetstream.KV, error) {
		return js.OpenKV(ctx, name, nc.replicas, 0)
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var counts [3]int
	var failed int
	var copied int64
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		res, from, to, err := migrateDoc(ctx, db, js, adm, id)
		if err == nil {
			// Comments, access, title and tags that the cluster lacks.
			_, err = copyExtras(ctx, src, dst, id)
		}
		switch {
		case err != nil:
			failed++
			fmt.Fprintf(stdout, "%s: error: %v\n", id, err)
		case res == migrateCreated:
			fmt.Fprintf(stdout, "%s: copied, %d revisions\n", id, to)
		case res == migrateContinued:
			fmt.Fprintf(stdout, "%s: continued from revision %d to %d\n", id, from, to)
		default:
			fmt.Fprintf(stdout, "%s: already there at revision %d, skipped\n", id, to)
		}
		if err == nil {
			counts[res]++
			copied += to - from
		}
	}
	fmt.Fprintf(stdout, "migrated %d documents in %v: %d copied, %d continued, %d already there, %d failed; %d revisions copied\n",
		len(ids), time.Since(start).Round(time.Millisecond), counts[migrateCreated], counts[migrateContinued], counts[migrateSkipped], failed, copied)
	if failed > 0 {
		return fmt.Errorf("migrate: %d of %d documents failed (listed above); fix the cause and run it again", failed, len(ids))
	}
	return nil
}

// migrateAuthorKey seeds the cluster's author key with the data file's.
// A cluster that already has another one (nodes started before the
// migration) keeps it, and author ids change: said, not fatal.
func migrateAuthorKey(ctx context.Context, db *storage.DB, js *jetstream.Store, stdout io.Writer) error {
	key, err := db.AuthorKey(ctx)
	if err != nil {
		return err
	}
	stored, err := js.SeedSharedKey(ctx, authorKeyName, key)
	if err != nil {
		return err
	}
	if string(stored) != string(key) {
		fmt.Fprintln(stdout, "warning: the cluster already has another author key; it is kept, so author ids will differ from the single-node server's")
	}
	return nil
}

// migrateDoc copies document id, or what the cluster lacks of it, while
// holding its owner lease so that no node serves it meanwhile. It returns
// what it did and the revisions copied: from (exclusive) to to.
func migrateDoc(ctx context.Context, db *storage.DB, js *jetstream.Store, adm *collab.Admission, id string) (res migrateResult, from, to int64, err error) {
	m, err := db.Meta(ctx, id)
	if err != nil {
		return 0, 0, 0, err
	}
	lease, err := js.Acquire(ctx, id)
	if errors.Is(err, jetstream.ErrHeld) {
		return 0, 0, 0, fmt.Errorf("a cluster node serves it: %w", err)
	}
	if err != nil {
		return 0, 0, 0, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := lease.Release(rctx); rerr != nil && err == nil {
			err = rerr
		}
		js.Forget(id)
	}()

	jm, have, err := js.Meta(ctx, id)
	switch {
	case errors.Is(err, jetstream.ErrNotFound):
		res = migrateCreated
		meta := jetstream.DocMeta{ID: m.ID, ViewID: m.ViewID, Created: m.Created}
		if err := js.Create(ctx, meta, nil); err != nil {
			return 0, 0, 0, err
		}
	case err != nil:
		return 0, 0, 0, err
	default:
		if jm.ViewID != m.ViewID || !jm.Created.Equal(m.Created) {
			return 0, 0, 0, fmt.Errorf("the cluster has a document with this id but view id %s created %v, the file view id %s created %v",
				jm.ViewID, jm.Created, m.ViewID, m.Created)
		}
		if have > m.Rev {
			return 0, 0, 0, fmt.Errorf("the cluster has %d revisions, the file %d: edited in the cluster since", have, m.Rev)
		}
		// Checked before anything is added: the cluster's records must be
		// the file's. For a document already there only its last, which
		// is the common case of running migrate again.
		checkFrom := int64(0)
		res = migrateContinued
		if have == m.Rev {
			checkFrom, res = max(have-1, 0), migrateSkipped
		}
		if err := sameRecords(ctx, db, js, id, checkFrom, have); err != nil {
			return 0, 0, 0, err
		}
	}
	// What the records copied so far take, as the file counts them.
	logBytes, err := recordBytes(ctx, db, id, have)
	if err != nil {
		return 0, 0, 0, err
	}
	for after := have; after < m.Rev; {
		recs, err := db.Ops(ctx, id, after, migratePageOps, migratePageBytes)
		if err != nil {
			return 0, 0, 0, err
		}
		if len(recs) == 0 {
			return 0, 0, 0, fmt.Errorf("the file has no records after revision %d of %d", after, m.Rev)
		}
		out := make([]jetstream.Record, len(recs))
		var adds int64
		for i, r := range recs {
			out[i] = jetstream.Record{Rev: r.Rev, Op: r.Op, Client: r.Client, Seq: r.Seq, Time: r.Time}
			adds += storage.RecordBytes(r)
		}
		if err := adm.Admit(ctx, collab.Growth{LogBytes: logBytes, Adds: adds, Inserts: true}); err != nil {
			return 0, 0, 0, fmt.Errorf("revisions %d to %d not copied: %w; raise the bound and run migrate again, which continues from there",
				out[0].Rev, out[len(out)-1].Rev, err)
		}
		logBytes += adds
		if err := js.Append(ctx, id, out); err != nil {
			return 0, 0, 0, fmt.Errorf("append revisions %d to %d: %w", out[0].Rev, out[len(out)-1].Rev, err)
		}
		after = out[len(out)-1].Rev
	}
	// Also when skipped: a run interrupted between its last append and the
	// snapshot left none, and SaveSnapshot skips one that is not newer.
	if m.Rev > 0 {
		d, err := db.Load(ctx, id)
		if err != nil {
			return 0, 0, 0, err
		}
		if d.Rev != m.Rev {
			return 0, 0, 0, fmt.Errorf("the file's document moved from revision %d to %d during the migration", m.Rev, d.Rev)
		}
		if err := js.SaveSnapshot(ctx, id, d.Rev, d.Text); err != nil {
			return 0, 0, 0, err
		}
	}
	return res, have, m.Rev, nil
}

// recordBytes returns what the first n records of document id take in the
// file, as Meta.LogBytes counts them.
func recordBytes(ctx context.Context, db *storage.DB, id string, n int64) (int64, error) {
	var sum int64
	for after := int64(0); after < n; {
		recs, err := db.Ops(ctx, id, after, int(min(n-after, migratePageOps)), migratePageBytes)
		if err != nil {
			return 0, err
		}
		if len(recs) == 0 {
			return 0, fmt.Errorf("the file has no records after revision %d of %d", after, n)
		}
		for _, r := range recs {
			sum += storage.RecordBytes(r)
		}
		after = recs[len(recs)-1].Rev
	}
	return sum, nil
}

// sameRecords checks that the cluster's records of document id after
// revision after up to to are the data file's.
func sameRecords(ctx context.Context, db *storage.DB, js *jetstream.Store, id string, after, to int64) error {
	for after < to {
		theirs, err := js.Ops(ctx, id, after, migratePageOps, migratePageBytes)
		if err != nil {
			return err
		}
		ours, err := db.Ops(ctx, id, after, len(theirs), 0)
		if err != nil {
			return err
		}
		if len(theirs) == 0 || len(ours) != len(theirs) {
			return fmt.Errorf("after revision %d the cluster has %d records and the file %d", after, len(theirs), len(ours))
		}
		for i, t := range theirs {
			o := ours[i]
			if t.Rev != o.Rev || t.Client != o.Client || t.Seq != o.Seq || !t.Time.Equal(o.Time) || !slices.Equal(t.Op, o.Op) {
				return fmt.Errorf("revision %d differs between the cluster and the file: not the same document's history", o.Rev)
			}
		}
		after = theirs[len(theirs)-1].Rev
	}
	return nil
}
