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
//	prefix 0x00 <rev>     op records from rev on, rev as 8 bytes
//	                      big-endian (a chunk, see chunk.go)
//	prefix 0x01           meta
//	prefix 0x02 <client>  client's last seq and rev
//	prefix 0x03 <minute>  activity: the revisions committed in one minute,
//	                      minute as 8 bytes big-endian Unix minutes
//
// Everything an append writes (the chunk with the next op, the meta with
// the new revision, the client's entry) sorts together at the end of the
// document's range, so it usually lands in one leaf page: an append costs
// one dirty page, not one per bucket. Page writes, not the fsync, are what
// grow with the size of a commit group.
//
// The activity entry of the current minute sorts last of all, so it joins
// the same page.
//
// In snaps, the prefix is followed directly by the 8-byte revision and a
// snapshot kind byte: snapLatest for the one snapshot kept to make Load
// short, snapMilestone for those kept for history (see milestone.go).
// Files of format 1 have snapshots without the kind byte; they count as
// snapLatest. Both sort by revision, a rev's milestone after its latest.
const (
	kindOp       = 0x00
	kindMeta     = 0x01
	kindClient   = 0x02
	kindActivity = 0x03
	// kindEnd sorts after every key of a document.
	kindEnd = 0x04

	snapLatest    = 0x00
	snapMilestone = 0x01
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

func (p docKeys) activity(minute int64) []byte {
	return binary.BigEndian.AppendUint64(append(p.key(9), kindActivity), uint64(max(minute, 0)))
}

// end is a key just past every key of the document in docs.
func (p docKeys) end() []byte { return append(p.key(1), kindEnd) }

// snap returns the key a cursor seeks to for the snapshots at rev: it sorts
// before those of any kind at rev, after all at earlier revisions.
func (p docKeys) snap(rev int64) []byte {
	return binary.BigEndian.AppendUint64(p.key(9), uint64(rev))
}

func (p docKeys) snapKind(rev int64, kind byte) []byte {
	return append(p.snap(rev), kind)
}

// activityMinute returns the minute of an activity key of this document.
func (p docKeys) activityMinute(k []byte) (int64, bool) {
	if len(k) != len(p)+9 || !bytes.HasPrefix(k, p) || k[len(p)] != kindActivity {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(k[len(p)+1:])), true
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
	rev, _, ok := p.snapInfo(k)
	return rev, ok
}

// snapInfo returns the revision and kind of a snapshot key of this
// document, a format 1 key being of kind snapLatest.
func (p docKeys) snapInfo(k []byte) (rev int64, kind byte, ok bool) {
	if (len(k) != len(p)+8 && len(k) != len(p)+9) || !bytes.HasPrefix(k, p) {
		return 0, 0, false
	}
	kind = snapLatest
	if len(k) == len(p)+9 {
		kind = k[len(p)+8]
		if kind != snapLatest && kind != snapMilestone {
			return 0, 0, false
		}
	}
	return int64(binary.BigEndian.Uint64(k[len(p) : len(p)+8])), kind, true
}
