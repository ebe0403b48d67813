package storage

import (
	"encoding/binary"

	"go.etcd.io/bbolt"
)

// Op records are stored several to a key. The value under an op key
// (prefix 0x00 <rev>, see keys.go) is a chunk:
//
//	opChunk byte | { record length uvarint | record }...
//
// holding the records of rev, rev+1, rev+2 and so on, each framed and
// checksummed as a value of its own (appendRecord). An append adds its
// records to the document's last chunk while that has fewer than
// maxChunkOps records and room under maxChunkBytes, and starts a new one
// otherwise; a record larger than that gets a chunk to itself. Files of
// format 2 hold one bare record per key, which reads as a chunk of one and
// is never extended.
//
// Why: each append rewrites the leaf page that holds the document's latest
// ops, and bbolt unpacks that whole page into one node per key, then grows
// the slice when the append adds a key. With a key per op, a leaf holds
// dozens of them, and that unpacking and growing was half of what the
// server allocated per op at 1,000 documents × 2 editors; with the latest ops
// sharing a key, the leaf holds a few keys and an append usually replaces
// one. See docs/performance.md, "Several ops to a key".
const (
	// opChunk starts a chunk; a bare record starts with valueVersion.
	opChunk = 0x80
	// maxChunkOps and maxChunkBytes bound a chunk: each append copies its
	// chunk, so a larger one would cost more than the keys it saves.
	maxChunkOps   = 16
	maxChunkBytes = 1024
)

// splitRecord splits the first record off rest, the part of a chunk after
// its opChunk byte; ok is false if its length is damaged.
func splitRecord(rest []byte) (rec, after []byte, ok bool) {
	n, w := binary.Uvarint(rest)
	if w <= 0 || n > uint64(len(rest)-w) {
		return nil, nil, false
	}
	return rest[w : w+int(n)], rest[w+int(n):], true
}

// nextRecord is splitRecord for readers: a chunk whose framing is damaged
// hands out the rest as one value, which then fails its checksum where it
// is decoded, so the damage is reported with the revision it hit.
func nextRecord(rest []byte) (rec, after []byte) {
	if rec, after, ok := splitRecord(rest); ok {
		return rec, after
	}
	return rest, nil
}

// chunkLen returns the number of records in v, the value of an op key, and
// whether v is a chunk that can be extended: bare records and chunks
// whose framing is damaged are left as they are.
func chunkLen(v []byte) (int, bool) {
	if len(v) == 0 || v[0] != opChunk {
		return 1, false
	}
	n := 0
	for rest := v[1:]; len(rest) > 0; n++ {
		var ok bool
		if _, rest, ok = splitRecord(rest); !ok {
			return n, false
		}
	}
	return n, n > 0
}

// opKeyAt returns the first revision and the value of the op key whose
// chunk would hold revision rev: the document's last op key at or before
// it. ok is false if the document has none.
func opKeyAt(c *bbolt.Cursor, keys docKeys, rev int64) (first int64, v []byte, ok bool) {
	k, v := c.Seek(keys.op(rev))
	if first, ok := keys.opRev(k); ok && first == rev {
		return first, v, true
	}
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	first, ok = keys.opRev(k)
	return first, v, ok && first < rev
}

// opCursor walks one document's op records in revision order, whichever
// chunks they are stored in. The values it hands out alias bbolt's pages
// and are valid only during the transaction.
type opCursor struct {
	c    *bbolt.Cursor
	keys docKeys
	ok   bool   // val is a record; false past the document's last op key
	rev  int64  // the revision val is filed under
	val  []byte // the current record
	rest []byte // the chunk's records after val
}

// seekOps returns an opCursor on the first record at or after revision
// from: the record of from itself unless it is missing.
func seekOps(c *bbolt.Cursor, keys docKeys, from int64) *opCursor {
	o := &opCursor{c: c, keys: keys}
	if first, v, ok := opKeyAt(c, keys, from); ok {
		o.load(first, true, v)
	} else {
		o.loadKey(c.Seek(keys.op(from)))
	}
	for o.ok && o.rev < from {
		o.next()
	}
	return o
}

// load puts o on the first record under the op key of revision first, or
// past the document's op keys if ok is false.
func (o *opCursor) load(first int64, ok bool, v []byte) {
	o.rev, o.ok = first, ok
	switch {
	case !ok:
		o.val, o.rest = nil, nil
	case len(v) > 0 && v[0] == opChunk:
		o.val, o.rest = nextRecord(v[1:])
	default:
		o.val, o.rest = v, nil
	}
}

func (o *opCursor) loadKey(k, v []byte) {
	first, ok := o.keys.opRev(k)
	o.load(first, ok, v)
}

// next moves to the following record.
func (o *opCursor) next() {
	if len(o.rest) > 0 {
		o.rev++
		o.val, o.rest = nextRecord(o.rest)
		return
	}
	o.loadKey(o.c.Next())
}

// putOps stores recs, the records that follow revision rev of a document,
// adding them to its last chunk while that has room.
func putOps(docs *bbolt.Bucket, keys docKeys, rev int64, recs []encodedRecord) error {
	var key, chunk []byte
	n := 0
	grow := 0
	for _, r := range recs {
		grow += len(r.value) + binary.MaxVarintLen32
	}
	if rev > 0 {
		// The chunk that holds rev, the document's latest op, is its last.
		first, v, ok := opKeyAt(docs.Cursor(), keys, rev)
		if count, extendable := chunkLen(v); ok && extendable && first+int64(count)-1 == rev && count < maxChunkOps && len(v) < maxChunkBytes {
			key, n = keys.op(first), count
			chunk = append(make([]byte, 0, len(v)+grow), v...)
		}
	}
	for _, r := range recs {
		if key == nil || n == maxChunkOps || len(chunk)+binary.MaxVarintLen32+len(r.value) > maxChunkBytes {
			if key != nil {
				if err := docs.Put(key, chunk); err != nil {
					return err
				}
			}
			key, n = keys.op(r.rec.Rev), 0
			chunk = append(make([]byte, 0, 1+grow), opChunk)
		}
		chunk = binary.AppendUvarint(chunk, uint64(len(r.value)))
		chunk = append(chunk, r.value...)
		grow -= len(r.value) + binary.MaxVarintLen32
		n++
	}
	if key == nil {
		return nil
	}
	return docs.Put(key, chunk)
}
