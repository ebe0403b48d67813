package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.etcd.io/bbolt"
)

// initBuckets creates the buckets of a new file, or checks the format of an
// existing one, upgrading formats 1 and 2 to 3 in place.
//
// Format 3 reads every value format 2 wrote: its bare op records are chunks
// of one (chunk.go). Upgrading from 2 only raises the number, so that a
// binary that knows format 2 refuses the file instead of misreading its
// chunks.
//
// Format 2 reads everything format 1 wrote (snapshot keys without a kind
// byte are latest snapshots; version 1 snapshot values are read as they
// are), so the upgrade only adds what format 1 lacked: each document's
// activity index and the meta fields it relies on (the latest op's time,
// the op log's size). Milestones are not built here but by the snapshotter
// when a document is next loaded or read at an old revision. The format
// number is raised last, so an upgrade interrupted by a crash simply runs
// again; and a binary that knows only format 1 refuses the upgraded file
// instead of misreading its snapshot keys.
func initBuckets(bolt *bbolt.DB, log *slog.Logger) error {
	var format []byte
	err := bolt.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketDocs, bucketSnaps, bucketViews, bucketSys, bucketComments} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		sys := tx.Bucket(bucketSys)
		if v := sys.Get(keyFormat); v != nil {
			format = bytes.Clone(v)
			return nil
		}
		format = []byte{formatVersion}
		return sys.Put(keyFormat, format)
	})
	if err != nil {
		return err
	}
	switch {
	case len(format) == 1 && format[0] == formatVersion:
		return nil
	case len(format) == 1 && format[0] == 2:
		err := bolt.Update(func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketSys).Put(keyFormat, []byte{formatVersion})
		})
		if err != nil {
			return fmt.Errorf("upgrade from format 2: %w", err)
		}
		return nil
	case len(format) == 1 && format[0] == 1:
		return upgrade1(bolt, log)
	default:
		return fmt.Errorf("unsupported file format %v, want %d", format, formatVersion)
	}
}

// upgrade1 upgrades a file of format 1 to format 3 (what format 2 added),
// one transaction per document so that a large file does not need one huge
// transaction.
func upgrade1(bolt *bbolt.DB, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	var ids []string
	err := bolt.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketDocs).Cursor()
		for k, _ := c.First(); k != nil; {
			n, w := binary.Uvarint(k)
			if w <= 0 || uint64(len(k)-w) < n {
				return fmt.Errorf("docs key %x: %w", k, ErrCorrupt)
			}
			id := string(k[w : w+int(n)])
			ids = append(ids, id)
			k, _ = c.Seek(keysOf(id).end())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("upgrade from format 1: %w", err)
	}
	for _, id := range ids {
		err := bolt.Update(func(tx *bbolt.Tx) error { return indexDoc(tx, id) })
		if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotFound) {
			// One damaged document must not keep the server from starting:
			// it stays without an index, and reading it reports the damage.
			log.Error("storage: upgrade from format 1: document left unindexed", "doc", id, "err", err)
			continue
		}
		if err != nil {
			return fmt.Errorf("upgrade from format 1: %w", err)
		}
	}
	err = bolt.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSys).Put(keyFormat, []byte{formatVersion})
	})
	if err != nil {
		return fmt.Errorf("upgrade from format 1: %w", err)
	}
	log.Info("storage: upgraded file from format 1", "docs", len(ids), "took", time.Since(start))
	return nil
}

// indexDoc rebuilds the activity index of document id from its op log and
// sets the meta fields format 1 lacked. It is idempotent.
func indexDoc(tx *bbolt.Tx, id string) error {
	docs := tx.Bucket(bucketDocs)
	m, keys, err := readMeta(tx, id)
	if err != nil {
		return err
	}
	// Clear what an interrupted run left.
	if err := deletePrefix(docs, append(keys.key(1), kindActivity)); err != nil {
		return err
	}
	m.Updated = time.Time{}
	var logBytes int64
	// The records are read in batches and indexed as if appended anew:
	// clamped times, the same entries Append would have written.
	const batch = 4096
	for from := int64(1); from <= m.Rev; from += batch {
		var recs []encodedRecord
		before := m.Updated
		err := scanOpValues(tx, keys, id, from, min(from+batch-1, m.Rev), func(_ int64, v []byte) (bool, error) {
			r, err := decodeRevision(v)
			if err != nil {
				return false, err
			}
			if r.Time.Before(m.Updated) {
				r.Time = m.Updated
			}
			recs = append(recs, encodedRecord{rec: Record{Rev: r.Rev, Client: r.Client, Time: r.Time},
				ins: r.Inserted, del: r.Deleted})
			logBytes += int64(len(v) + len(r.Client) + 32)
			m.Updated = r.Time
			return true, nil
		})
		if err != nil {
			return err
		}
		if err := addActivity(docs, keys, before, recs); err != nil {
			return err
		}
	}
	if m.LogBytes == 0 {
		m.LogBytes = logBytes
	}
	return docs.Put(keys.meta(), appendMeta(nil, &m))
}
