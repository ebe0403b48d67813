package storage

import (
	"bytes"
	"encoding/binary"
)

// Keys of the docs and snaps buckets start with the document's prefix, the
// id's length as a uvarint followed by the id, so that the keys of one
// document are contiguous and no id's keys can run into another's.
//
// In docs, the prefix is followed by a kind byte:
//
//	prefix 0x00 <rev>     op record, rev as 8 bytes big-endian
//	prefix 0x01           meta
//	prefix 0x02 <client>  client's last seq and rev
//
// Everything an append writes (the next op, the meta with the new
// revision, the client's entry) sorts together at the end of the
// document's range, so it usually lands in one leaf page: an append costs
// one dirty page, not one per bucket. Page writes, not the fsync, are what
// grow with the size of a commit group.
//
// In snaps, the prefix is followed directly by the 8-byte revision.
const (
	kindOp     = 0x00
	kindMeta   = 0x01
	kindClient = 0x02
)

// docKeys builds and parses the keys of one document.
type docKeys []byte

func keysOf(id string) docKeys {
	p := binary.AppendUvarint(make([]byte, 0, len(id)+binary.MaxVarintLen64), uint64(len(id)))
	return append(p, id...)
}

// key returns a fresh key, since bbolt keeps the slices given to Put until
// the transaction ends.
func (p docKeys) key(extra int) []byte {
	return append(make([]byte, 0, len(p)+extra), p...)
}

func (p docKeys) op(rev int64) []byte {
	return binary.BigEndian.AppendUint64(append(p.key(9), kindOp), uint64(rev))
}

func (p docKeys) meta() []byte { return append(p.key(1), kindMeta) }

func (p docKeys) client(c string) []byte { return append(append(p.key(1+len(c)), kindClient), c...) }

func (p docKeys) snap(rev int64) []byte {
	return binary.BigEndian.AppendUint64(p.key(8), uint64(rev))
}

// opRev returns the revision of an op key of this document.
func (p docKeys) opRev(k []byte) (int64, bool) {
	if len(k) != len(p)+9 || !bytes.HasPrefix(k, p) || k[len(p)] != kindOp {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(k[len(p)+1:])), true
}

// snapRev returns the revision of a snapshot key of this document.
func (p docKeys) snapRev(k []byte) (int64, bool) {
	if len(k) != len(p)+8 || !bytes.HasPrefix(k, p) {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(k[len(p):])), true
}
