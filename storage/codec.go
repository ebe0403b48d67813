package storage

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"

	"github.com/collabd/collabd/ot"
)

// Every stored value is framed as
//
//	version byte | payload | CRC-32C (big-endian) of version and payload
//
// so a torn or bit-flipped value is caught on read instead of being decoded
// into plausible garbage. The version byte lets a later release change one
// value's payload without rewriting the file.
const valueVersion = 1

// castagnoli is read-only after initialization; CRC-32C has hardware
// support on amd64 and arm64, which matters for 100 KB snapshots.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadValue is wrapped into ErrCorrupt by callers, who know which document
// and revision the value belonged to.
var errBadValue = errors.New("bad stored value")

func seal(b []byte, start int) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// unseal checks the frame of v and returns its payload, which still aliases
// v: decoders must copy what they keep.
func unseal(v []byte) ([]byte, error) {
	version, p, err := unsealAny(v)
	if err == nil && version != valueVersion {
		err = errors.New("unknown value version")
	}
	return p, err
}

// unsealAny is unseal for values whose payload has more than one version;
// the caller checks the version.
func unsealAny(v []byte) (byte, []byte, error) {
	if len(v) < 5 {
		return 0, nil, errBadValue
	}
	body, sum := v[:len(v)-4], binary.BigEndian.Uint32(v[len(v)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return 0, nil, errors.New("checksum mismatch")
	}
	return body[0], body[1:], nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reader decodes a payload; the first failure sticks, so decoders check
// r.err once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errBadValue
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errBadValue
		return 0
	}
	r.b = r.b[n:]
	return v
}

// str copies, because the bytes belong to bbolt's mmap.
func (r *reader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.err = errBadValue
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = errBadValue
	}
	return r.err
}

// unixNano maps the zero time to 0 rather than to the undefined value
// time.Time{}.UnixNano() would give.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// meta payload: rev uvarint | created varint | view id string | len+1
// uvarint | log bytes uvarint | updated varint. The edit id is the bucket
// key and is not repeated. The fields after the view id came later: a
// value without the length decodes with Len -1 (and Len -1 is stored as
// 0); one without the log bytes decodes with LogBytes 0, so an older
// document counts its history from its first append after the upgrade;
// one without Updated (the latest op's time) decodes with the zero time,
// which the format 2 upgrade fills in (see migrate.go).
func appendMeta(b []byte, m *Meta) []byte {
	start := len(b)
	b = append(b, valueVersion)
	b = binary.AppendUvarint(b, uint64(m.Rev))
	b = binary.AppendVarint(b, unixNano(m.Created))
	b = appendString(b, m.ViewID)
	b = binary.AppendUvarint(b, uint64(max(m.Len+1, 0)))
	b = binary.AppendUvarint(b, uint64(max(m.LogBytes, 0)))
	b = binary.AppendVarint(b, unixNano(m.Updated))
	return seal(b, start)
}

func decodeMeta(id string, v []byte) (Meta, error) {
	p, err := unseal(v)
	if err != nil {
		return Meta{}, err
	}
	r := reader{b: p}
	m := Meta{ID: id}
	m.Rev = int64(r.uvarint())
	m.Created = fromUnixNano(r.varint())
	m.ViewID = r.str()
	m.Len = -1
	if len(r.b) > 0 {
		m.Len = int64(r.uvarint()) - 1
	}
	if len(r.b) > 0 {
		m.LogBytes = int64(r.uvarint())
	}
	if len(r.b) > 0 {
		m.Updated = fromUnixNano(r.varint())
	}
	return m, r.done()
}

// record payload: rev uvarint | time varint | seq varint | client string |
// component count uvarint | components, each N varint then, for an insert
// (N == 0), S string. The rev repeats the key so that a value filed under
// the wrong key is detected.
func appendRecord(b []byte, rec *Record) []byte {
	start := len(b)
	b = append(b, valueVersion)
	b = binary.AppendUvarint(b, uint64(rec.Rev))
	b = binary.AppendVarint(b, unixNano(rec.Time))
	b = binary.AppendVarint(b, rec.Seq)
	b = appendString(b, rec.Client)
	b = binary.AppendUvarint(b, uint64(len(rec.Op)))
	for _, c := range rec.Op {
		b = binary.AppendVarint(b, int64(c.N))
		if c.N == 0 {
			b = appendString(b, c.S)
		}
	}
	return seal(b, start)
}

func decodeRecord(v []byte) (Record, error) {
	p, err := unseal(v)
	if err != nil {
		return Record{}, err
	}
	r := reader{b: p}
	var rec Record
	rec.Rev = int64(r.uvarint())
	rec.Time = fromUnixNano(r.varint())
	rec.Seq = r.varint()
	rec.Client = r.str()
	n := r.uvarint()
	// Every component takes at least one byte, which bounds the allocation
	// even if a damaged count slipped past the checksum.
	if r.err != nil || n > uint64(len(r.b)) {
		return Record{}, errBadValue
	}
	rec.Op = make(ot.Op, n)
	for i := range rec.Op {
		c := &rec.Op[i]
		c.N = int(r.varint())
		if c.N == 0 {
			c.S = r.str()
		}
	}
	return rec, r.done()
}

// snapshotVersion is the version byte of snapshots written by this code;
// version 1 (rev | runes | text string) is still read.
const snapshotVersion = 2

// Snapshot text codecs.
const (
	codecRaw   = 0
	codecFlate = 1
)

// snapshot payload, version 2: rev uvarint | length in code points uvarint
// | codec byte | text length in bytes uvarint | data string, where data is
// the UTF-8 text itself (codecRaw) or its raw DEFLATE stream (codecFlate).
// The length in code points is checked against the op that made the
// revision; the byte length bounds what decompression may produce. The CRC
// covers the compressed bytes, so damage is caught before inflating.
//
// appendSnapshot stores the text as it is; compressSnapshot may be smaller.
func appendSnapshot(b []byte, s *Snapshot, runes int) []byte {
	return appendSnapshotData(b, s.Rev, runes, codecRaw, len(s.Text), s.Text)
}

func appendSnapshotData(b []byte, rev int64, runes int, codec byte, textLen int, data string) []byte {
	start := len(b)
	b = append(b, snapshotVersion)
	b = binary.AppendUvarint(b, uint64(rev))
	b = binary.AppendUvarint(b, uint64(runes))
	b = append(b, codec)
	b = binary.AppendUvarint(b, uint64(textLen))
	b = appendString(b, data)
	return seal(b, start)
}

// decodeSnapshot decodes a snapshot value of either version, inflating a
// compressed text.
func decodeSnapshot(v []byte) (snap Snapshot, runes int, err error) {
	version, p, err := unsealAny(v)
	if err != nil {
		return Snapshot{}, 0, err
	}
	r := reader{b: p}
	snap.Rev = int64(r.uvarint())
	runes = int(r.uvarint())
	switch version {
	case 1:
		snap.Text = r.str()
	case snapshotVersion:
		if r.err == nil && len(r.b) == 0 {
			return Snapshot{}, 0, errBadValue
		}
		if r.err != nil {
			return Snapshot{}, 0, r.err
		}
		codec := r.b[0]
		r.b = r.b[1:]
		textLen := r.uvarint()
		n := r.uvarint()
		if r.err != nil || n != uint64(len(r.b)) {
			return Snapshot{}, 0, errBadValue
		}
		data := r.b
		r.b = nil
		switch codec {
		case codecRaw:
			if textLen != n {
				return Snapshot{}, 0, errBadValue
			}
			snap.Text = string(data)
		case codecFlate:
			snap.Text, err = inflate(data, textLen)
			if err != nil {
				return Snapshot{}, 0, err
			}
		default:
			return Snapshot{}, 0, errors.New("unknown snapshot codec")
		}
	default:
		return Snapshot{}, 0, errors.New("unknown value version")
	}
	return snap, runes, r.done()
}

// client payload: seq varint | rev uvarint.
func appendClient(b []byte, seq, rev int64) []byte {
	start := len(b)
	b = append(b, valueVersion)
	b = binary.AppendVarint(b, seq)
	b = binary.AppendUvarint(b, uint64(rev))
	return seal(b, start)
}

func decodeClient(v []byte) (seq, rev int64, err error) {
	p, err := unseal(v)
	if err != nil {
		return 0, 0, err
	}
	r := reader{b: p}
	seq = r.varint()
	rev = int64(r.uvarint())
	return seq, rev, r.done()
}
