package storage

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Snapshots are compressed with DEFLATE from the standard library: prose
// and code shrink to about a third, which is what lets a document keep a
// milestone every thousand ops for a few percent of its op log's size
// (docs/performance.md, "History"). Inflating 100 KB takes a fraction of a
// millisecond, small beside the ops replayed after the snapshot.
const (
	// snapshotLevel trades a little size for speed: the snapshotter
	// compresses every milestone, and level 6 makes the automerge-paper's
	// milestones only 18% smaller (its file 1.09 rather than 1.11 times
	// the size without milestones) for several times the CPU.
	snapshotLevel = flate.BestSpeed
	// minCompress is the smallest text worth compressing: below it the
	// framing eats the gain.
	minCompress = 256
	// maxInflateRatio bounds the text a damaged length could claim:
	// DEFLATE cannot expand more than about 1032:1.
	maxInflateRatio = 1100
)

// compressor compresses snapshot texts with pooled DEFLATE writers, whose
// state (hundreds of KB) is too large to allocate for every snapshot. It
// is safe for concurrent use.
type compressor struct {
	pool sync.Pool // of *flate.Writer
}

// encode returns the snapshot value for snap, compressed when that saves
// at least an eighth of the text.
func (c *compressor) encode(snap *Snapshot, runes int) []byte {
	if len(snap.Text) < minCompress {
		return appendSnapshot(nil, snap, runes)
	}
	var buf bytes.Buffer
	buf.Grow(len(snap.Text) / 2)
	zw, _ := c.pool.Get().(*flate.Writer)
	if zw == nil {
		// NewWriter fails only for an invalid level.
		zw, _ = flate.NewWriter(&buf, snapshotLevel)
	} else {
		zw.Reset(&buf)
	}
	// Writes to a bytes.Buffer cannot fail.
	io.WriteString(zw, snap.Text)
	zw.Close()
	c.pool.Put(zw)
	if buf.Len() > len(snap.Text)-len(snap.Text)/8 {
		return appendSnapshot(nil, snap, runes)
	}
	return appendSnapshotData(nil, snap.Rev, runes, codecFlate, len(snap.Text), buf.String())
}

// inflate decompresses data, which must expand to exactly n bytes.
func inflate(data []byte, n uint64) (string, error) {
	if n > uint64(len(data))*maxInflateRatio+64 {
		return "", errBadValue
	}
	zr := flate.NewReader(bytes.NewReader(data))
	defer zr.Close()
	// A Builder hands over its buffer as the string, saving a copy.
	var out strings.Builder
	out.Grow(int(n))
	if m, err := io.CopyN(&out, zr, int64(n)); err != nil || m != int64(n) {
		return "", fmt.Errorf("inflate: %d of %d bytes: %v", m, n, err)
	}
	// The stream must end exactly there.
	var one [1]byte
	if m, err := zr.Read(one[:]); m != 0 || err != io.EOF {
		return "", errors.New("inflate: text longer than recorded")
	}
	return out.String(), nil
}
