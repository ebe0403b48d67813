package jetstream

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	mrand "math/rand/v2"
	"sort"
	"strconv"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Checkpoints of who wrote what (collab's authors.go): opaque values, one
// per revision, that package storage keeps beside its milestones. Here
// they live in the KV bucket bucketAuthors, so that every node finds what
// any node wrote, across restarts and changes of owner:
//
//	<doc id>.i                    the index: every checkpoint's revision,
//	                              size, CRC-32 and write tag, by revision
//	<doc id>.c<rev>.<tag>.<k>     chunk k of the checkpoint at rev
//
// A KV value must fit one message, and a checkpoint of a large document
// with many authors may not, so a checkpoint is cut into chunks. The
// chunks are written first and the index last, with a compare-and-set on
// the index's revision, so that a reader never finds an entry whose
// chunks are not all there, and two nodes adding checkpoints at once both
// keep theirs. Each write has its own random tag: a node replacing the
// checkpoint at a revision another is writing never mixes its chunks with
// the other's; the chunks the index no longer names are then purged.
// Reads are direct gets (one for the index, one per chunk), not the
// object store's consumers, which now and then stall for seconds.

// bucketAuthors holds the checkpoints (authors.go).
const bucketAuthors = "collab_authors"

const (
	// maxAuthorsChunk bounds one chunk, under the server's max_payload.
	maxAuthorsChunk = 256 << 10
	// maxCheckpointBytes bounds one checkpoint, as package storage does.
	maxCheckpointBytes = 64 << 20
	// maxAuthorsIndex bounds a document's checkpoints, and so its index
	// (some 20 bytes an entry): collab makes one every 1,000 revisions
	// and one per restore or revert, so this is some 8 million
	// revisions; past it, new ones are refused (a longer replay, not a
	// wrong answer, except for a restore's).
	maxAuthorsIndex = 8192
	// indexTries bounds the compare-and-set retries of one index update.
	indexTries = 32
)

// Checkpoint is an opaque value of a document at a revision.
type Checkpoint struct {
	Rev  int64
	Data []byte
}

// authorsEntry is one checkpoint in a document's index.
type authorsEntry struct {
	rev    int64
	size   int
	chunks int
	crc    uint32
	tag    string // 16 hex digits
}

func chunkKey(id string, e authorsEntry, k int) string {
	return id + ".c" + strconv.FormatInt(e.rev, 10) + "." + e.tag + "." + strconv.Itoa(k)
}

// chunkSize is the size of the chunks this node cuts; a reader goes by
// the count in the index, so nodes need not agree on it.
func (s *Store) chunkSize() int {
	return int(min(maxAuthorsChunk, s.nc.MaxPayload()-4096))
}

// SaveAuthors stores checkpoints of document id, replacing any at the same
// revisions. A checkpoint past the document's revision, or too large, is
// ErrConflict.
func (s *Store) SaveAuthors(ctx context.Context, id string, cps []Checkpoint) error {
	if len(cps) == 0 {
		return nil
	}
	e, err := s.last(ctx, id)
	if err != nil {
		return fmt.Errorf("save authors of doc %s: %w", id, err)
	}
	chunk := s.chunkSize()
	added := make([]authorsEntry, 0, len(cps))
	for _, cp := range cps {
		if cp.Rev < 0 || cp.Rev > e.rev || len(cp.Data) > maxCheckpointBytes || len(cp.Data) == 0 {
			return fmt.Errorf("save authors of doc %s: checkpoint at rev %d (doc at %d), %d bytes: %w", id, cp.Rev, e.rev, len(cp.Data), ErrConflict)
		}
		var tag [8]byte
		rand.Read(tag[:])
		ent := authorsEntry{rev: cp.Rev, size: len(cp.Data), chunks: (len(cp.Data) + chunk - 1) / chunk,
			crc: crc32.ChecksumIEEE(cp.Data), tag: hex.EncodeToString(tag[:])}
		for k := 0; k*chunk < len(cp.Data); k++ {
			part := cp.Data[k*chunk : min((k+1)*chunk, len(cp.Data))]
			if _, err := s.authors.Put(ctx, chunkKey(id, ent, k), part); err != nil {
				return fmt.Errorf("save authors of doc %s rev %d: %w", id, cp.Rev, err)
			}
		}
		added = append(added, ent)
	}
	replaced, err := s.updateAuthorsIndex(ctx, id, added)
	if err != nil {
		// The chunks just written are named by no index: purge them.
		s.purgeChunks(ctx, id, added)
		return fmt.Errorf("save authors of doc %s: %w", id, err)
	}
	s.purgeChunks(ctx, id, replaced)
	return nil
}

// updateAuthorsIndex adds entries to document id's index, replacing those
// at the same revisions, and returns the replaced ones.
func (s *Store) updateAuthorsIndex(ctx context.Context, id string, add []authorsEntry) ([]authorsEntry, error) {
	key := id + ".i"
	for try := range indexTries {
		var (
			have []authorsEntry
			last uint64
		)
		kve, err := s.authors.Get(ctx, key)
		switch {
		case errors.Is(err, natsjs.ErrKeyNotFound):
		case err != nil:
			return nil, err
		default:
			last = kve.Revision()
			if have, err = decodeIndex(kve.Value()); err != nil {
				// A damaged index loses the checkpoints, not the
				// document: start a new one.
				s.log.Warn("jetstream: authors index", "doc", id, "err", err)
				have = nil
			}
		}
		merged, replaced := mergeIndex(have, add)
		if len(merged) > s.authorsMax {
			return nil, fmt.Errorf("%d checkpoints, at most %d: %w", len(merged), s.authorsMax, ErrConflict)
		}
		val := encodeIndex(merged)
		if last == 0 {
			_, err = s.authors.Create(ctx, key, val)
		} else {
			_, err = s.authors.Update(ctx, key, val, last)
		}
		if err == nil {
			return replaced, nil
		}
		if !errors.Is(err, natsjs.ErrKeyExists) && !isWrongLastSeq(err) {
			return nil, err
		}
		// Another node updated the index meanwhile: merge again, after a
		// random pause that grows, so that writers racing drift apart.
		select {
		case <-time.After(time.Duration(mrand.Int64N(int64(min(try+1, 8)) * int64(time.Millisecond)))):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("authors index: %d tries lost to other writers: %w", indexTries, ErrConflict)
}

// mergeIndex returns have with add, by revision, add replacing entries
// at the same revision, and the entries replaced.
func mergeIndex(have, add []authorsEntry) (merged, replaced []authorsEntry) {
	byRev := make(map[int64]authorsEntry, len(have)+len(add))
	for _, e := range have {
		byRev[e.rev] = e
	}
	for _, e := range add {
		if old, ok := byRev[e.rev]; ok && old.tag != e.tag {
			replaced = append(replaced, old)
		}
		byRev[e.rev] = e
	}
	merged = make([]authorsEntry, 0, len(byRev))
	for _, e := range byRev {
		merged = append(merged, e)
	}
	sort.Slice(merged, func(i, j int) bool { return merged[i].rev < merged[j].rev })
	return merged, replaced
}

// purgeChunks removes the chunks of entries, logging what fails: a chunk
// left behind costs space until its document is deleted.
func (s *Store) purgeChunks(ctx context.Context, id string, entries []authorsEntry) {
	for _, e := range entries {
		for k := range e.chunks {
			if err := s.authors.Purge(ctx, chunkKey(id, e, k)); err != nil && !errors.Is(err, natsjs.ErrKeyNotFound) {
				s.log.Warn("jetstream: purge authors chunk", "doc", id, "rev", e.rev, "err", err)
			}
		}
	}
}

// AuthorsBefore returns document id's checkpoint at the latest revision
// at or before rev, a nil Data if none.
func (s *Store) AuthorsBefore(ctx context.Context, id string, rev int64) (Checkpoint, error) {
	if err := checkID(id); err != nil {
		return Checkpoint{}, err
	}
	kve, err := s.authors.Get(ctx, id+".i")
	if errors.Is(err, natsjs.ErrKeyNotFound) {
		return Checkpoint{}, nil
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("authors of doc %s: %w", id, err)
	}
	idx, err := decodeIndex(kve.Value())
	if err != nil {
		return Checkpoint{}, fmt.Errorf("authors of doc %s: %w", id, err)
	}
	i := sort.Search(len(idx), func(i int) bool { return idx[i].rev > rev })
	if i == 0 {
		return Checkpoint{}, nil
	}
	e := idx[i-1]
	data := make([]byte, 0, e.size)
	for k := range e.chunks {
		c, err := s.authors.Get(ctx, chunkKey(id, e, k))
		if err != nil {
			// Replaced meanwhile (its chunks purged), or lost.
			return Checkpoint{}, fmt.Errorf("authors of doc %s rev %d chunk %d: %v: %w", id, e.rev, k, err, ErrCorrupt)
		}
		data = append(data, c.Value()...)
	}
	if len(data) != e.size || crc32.ChecksumIEEE(data) != e.crc {
		return Checkpoint{}, fmt.Errorf("authors of doc %s rev %d: %d bytes, CRC mismatch: %w", id, e.rev, len(data), ErrCorrupt)
	}
	return Checkpoint{Rev: e.rev, Data: data}, nil
}

// deleteAuthors removes every checkpoint of document id.
func (s *Store) deleteAuthors(ctx context.Context, id string) error {
	st, err := s.js.Stream(ctx, "KV_"+bucketAuthors)
	if err != nil {
		return err
	}
	return st.Purge(ctx, natsjs.WithPurgeSubject("$KV."+bucketAuthors+"."+id+".>"))
}

// The index: a version byte, the count, then per entry the revision (as
// a delta from the previous), the size, the number of chunks and the CRC
// as uvarints, and the 8-byte tag.

const indexVersion = 1

var errBadIndex = fmt.Errorf("malformed authors index: %w", ErrCorrupt)

func encodeIndex(idx []authorsEntry) []byte {
	b := []byte{indexVersion}
	b = binary.AppendUvarint(b, uint64(len(idx)))
	prev := int64(0)
	for _, e := range idx {
		b = binary.AppendUvarint(b, uint64(e.rev-prev))
		b = binary.AppendUvarint(b, uint64(e.size))
		b = binary.AppendUvarint(b, uint64(e.chunks))
		b = binary.AppendUvarint(b, uint64(e.crc))
		tag, _ := hex.DecodeString(e.tag)
		b = append(b, tag...)
		prev = e.rev
	}
	return b
}

func decodeIndex(b []byte) ([]authorsEntry, error) {
	if len(b) == 0 || b[0] != indexVersion {
		return nil, errBadIndex
	}
	b = b[1:]
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return v
	}
	n := uv()
	if b == nil || n > maxAuthorsIndex {
		return nil, errBadIndex
	}
	idx := make([]authorsEntry, 0, n)
	prev := int64(0)
	for range n {
		d, size, chunks, crc := uv(), uv(), uv(), uv()
		if len(b) < 8 || size == 0 || size > maxCheckpointBytes || chunks == 0 || chunks > size ||
			crc > 1<<32-1 || (d == 0 && len(idx) > 0) || d > 1<<62 {
			return nil, errBadIndex
		}
		prev += int64(d)
		idx = append(idx, authorsEntry{rev: prev, size: int(size), chunks: int(chunks), crc: uint32(crc), tag: hex.EncodeToString(b[:8])})
		b = b[8:]
	}
	if len(b) != 0 {
		return nil, errBadIndex
	}
	return idx, nil
}
