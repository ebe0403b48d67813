package storage

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
)

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rec  Record
	}{
		{"insert into empty", Record{Rev: 1, Op: ot.Op{{S: "hello"}}, Client: "c1", Seq: 1,
			Time: time.Unix(1700000000, 123456789).UTC()}},
		{"retain delete insert", Record{Rev: 42, Op: ot.Op{{N: 3}, {N: -2}, {S: "héllo ✓ 𝄞"}, {N: 7}},
			Client: "5f1c7c2e-6b1d-4c57-9d4e-2a0b7f3c1e99", Seq: 9, Time: time.Unix(0, 1).UTC()}},
		{"no client, zero time", Record{Rev: 1 << 40, Op: ot.Op{{N: 1}}}},
		{"empty op", Record{Rev: 7, Op: ot.Op{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := appendRecord(nil, &tt.rec)
			got, err := decodeRecord(v)
			if err != nil {
				t.Fatalf("decodeRecord: %v", err)
			}
			if !reflect.DeepEqual(got, tt.rec) {
				t.Errorf("got %+v, want %+v", got, tt.rec)
			}
		})
	}
}

// TestCorruptValuesDetected flips every byte of each kind of value in turn
// and truncates it at every length: no damaged value may decode.
func TestCorruptValuesDetected(t *testing.T) {
	values := map[string][]byte{
		"record":              appendRecord(nil, &Record{Rev: 3, Op: ot.Op{{N: 2}, {S: "xyz"}}, Client: "c", Seq: 4, Time: time.Now()}),
		"meta":                appendMeta(nil, &Meta{ViewID: "v", Created: time.Now(), Rev: 12}),
		"snapshot":            appendSnapshot(nil, &Snapshot{Rev: 5, Text: "some text"}, 9),
		"compressed snapshot": (&compressor{}).encode(&Snapshot{Rev: 5, Text: strings.Repeat("some text ", 40)}, 400),
		"client":              appendClient(nil, 8, 99),
		"activity":            appendActivity(nil, &activity{first: 3, last: 9, ins: 4, del: 2, clients: []string{"a", ""}}),
	}
	decode := map[string]func([]byte) error{
		"record":              func(v []byte) error { _, err := decodeRecord(v); return err },
		"meta":                func(v []byte) error { _, err := decodeMeta("id", v); return err },
		"snapshot":            func(v []byte) error { _, _, err := decodeSnapshot(v); return err },
		"compressed snapshot": func(v []byte) error { _, _, err := decodeSnapshot(v); return err },
		"client":              func(v []byte) error { _, _, err := decodeClient(v); return err },
		"activity":            func(v []byte) error { _, err := decodeActivity(v); return err },
	}
	for name, v := range values {
		if err := decode[name](v); err != nil {
			t.Fatalf("%s: intact value: got error %v, want nil", name, err)
		}
		for i := range v {
			bad := append([]byte(nil), v...)
			bad[i] ^= 0x10
			if err := decode[name](bad); err == nil {
				t.Errorf("%s with byte %d flipped: got nil error, want one", name, i)
			}
		}
		for n := 0; n < len(v); n++ {
			if err := decode[name](v[:n]); err == nil {
				t.Errorf("%s truncated to %d bytes: got nil error, want one", name, n)
			}
		}
	}
}

func TestKeys(t *testing.T) {
	revs := []int64{0, 1, 255, 256, 65535, 1 << 32, 1<<62 + 5}
	keys := keysOf("doc")
	for i := 1; i < len(revs); i++ {
		a, b := keys.op(revs[i-1]), keys.op(revs[i])
		if string(a) >= string(b) {
			t.Errorf("key of op %d = %x sorts after key of op %d = %x", revs[i-1], a, revs[i], b)
		}
		if got, ok := keys.opRev(b); !ok || got != revs[i] {
			t.Errorf("opRev(op(%d)) = %d, %v, want %d, true", revs[i], got, ok, revs[i])
		}
		if got, ok := keys.snapRev(keys.snap(revs[i])); !ok || got != revs[i] {
			t.Errorf("snapRev(snap(%d)) = %d, %v, want %d, true", revs[i], got, ok, revs[i])
		}
	}
	// An append's writes sort together after the op log.
	last := keys.op(1<<62 + 5)
	if m, c := keys.meta(), keys.client("zz"); string(last) >= string(m) || string(m) >= string(c) {
		t.Errorf("got op %x, meta %x, client %x; want them in that order", last, m, c)
	}
	// No id's keys fall inside another id's range, whatever the ids hold.
	ids := []string{"", "a", "a\x00", "a\x00\x00\x00\x00\x00\x00\x00\x01", "b", strings.Repeat("x", 127), strings.Repeat("x", 128), strings.Repeat("x", 300)}
	for _, x := range ids {
		for _, y := range ids {
			if x == y {
				continue
			}
			kx, ky := keysOf(x), keysOf(y)
			for _, k := range [][]byte{ky.op(1), ky.meta(), ky.client("c"), ky.snap(1)} {
				if bytes.HasPrefix(k, kx) {
					t.Errorf("key %x of id %q has the prefix of id %q", k, y, x)
				}
			}
		}
	}
}

// TestRecordBytes: RecordBytes is exactly what Append adds to
// Meta.LogBytes, for records of every shape, so that a budget checked
// before an op is the one the file keeps.
func TestRecordBytes(t *testing.T) {
	recs := []Record{
		{Rev: 1, Op: ot.Op{{S: "hello"}}, Client: "c1", Seq: 1, Time: time.Unix(1700000000, 123456789)},
		{Rev: 42, Op: ot.Op{{N: 3}, {N: -2}, {S: "héllo ✓ 𝄞"}, {N: 7}}, Client: "5f1c7c2e-6b1d-4c57-9d4e-2a0b7f3c1e99", Seq: 9, Time: time.Unix(0, 1)},
		{Rev: 1 << 40, Op: ot.Op{{N: 1}}, Time: time.Now()},
		{Rev: 7, Op: ot.Op{{N: 1 << 30}, {N: -(1 << 20)}, {S: strings.Repeat("x", 300)}}, Seq: -5, Time: time.Now()},
	}
	var tiny ot.Op
	for range 1000 {
		tiny = append(tiny, ot.Op{{N: 1}, {S: "a"}, {N: -1}}...)
	}
	recs = append(recs, Record{Rev: 1 << 21, Op: tiny, Client: "c", Seq: 1 << 35, Time: time.Now()})
	encoded, total, err := encodeRecords(recs)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for i, e := range encoded {
		if got := RecordBytes(recs[i]); got != int64(e.size) {
			t.Errorf("record %d: RecordBytes %d, want %d (what Append counts)", i, got, e.size)
		}
		sum += RecordBytes(recs[i])
	}
	if sum != int64(total) {
		t.Errorf("sum %d, want %d", sum, total)
	}
}
