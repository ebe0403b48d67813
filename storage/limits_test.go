package storage

import (
	"context"
	"strings"
	"testing"

	"github.com/collabd/collabd/ot"
)

// churn appends rounds of "insert size bytes, then delete them" to a new
// document id: the text stays empty while the log grows by size a round.
func churn(t *testing.T, db *DB, id string, rounds, size int) {
	t.Helper()
	ctx := context.Background()
	if err := db.Create(ctx, Meta{ID: id, ViewID: "view-" + id}, nil); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", size)
	for i := range rounds {
		rev := int64(2*i + 1)
		recs := []Record{
			{Rev: rev, Op: ot.Op{{S: big}}, Client: "c", Seq: rev},
			{Rev: rev + 1, Op: ot.Op{{N: -size}}, Client: "c", Seq: rev + 1},
		}
		if err := db.Append(ctx, id, recs); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOpsByteBound is the churned /ops page: a page of 1000 ops of a
// document that inserted and deleted 64 KiB forty times must not hold all
// 2.5 MiB of them when the caller's budget is 200 KiB.
func TestOpsByteBound(t *testing.T) {
	db, _ := openTest(t, Options{SnapshotEvery: -1})
	ctx := context.Background()
	const size = 64 << 10
	churn(t, db, "d", 40, size)

	tests := []struct {
		name     string
		after    int64
		maxBytes int
		want     int // records
	}{
		{"unbounded", 0, 0, 80},
		// insert, delete, insert, delete, then the next insert goes over.
		{"three inserts' worth", 0, 3*size + 100, 4},
		{"first record always", 0, 1, 1},
		{"first record always, a delete", 1, 1, 1},
		{"small ones fit", 1, 300, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := db.Ops(ctx, "d", tt.after, 1000, tt.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != tt.want {
				t.Fatalf("got %d records, want %d", len(recs), tt.want)
			}
			if recs[0].Rev != tt.after+1 {
				t.Errorf("first rev %d, want %d", recs[0].Rev, tt.after+1)
			}
			total := 0
			for _, r := range recs {
				for _, c := range r.Op {
					total += len(c.S)
				}
			}
			if tt.maxBytes > 0 && len(recs) > 1 && total > tt.maxBytes {
				t.Errorf("page holds %d bytes of text, budget %d", total, tt.maxBytes)
			}
		})
	}

	// Paging with a budget smaller than one op still walks the whole log.
	n := 0
	for after := int64(0); ; {
		recs, err := db.Ops(ctx, "d", after, 1000, 1024)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		n += len(recs)
		after = recs[len(recs)-1].Rev
	}
	if n != 80 {
		t.Errorf("paging with a tiny budget saw %d ops, want 80", n)
	}
}

// TestLogBytes checks that a document's meta counts its log as it grows,
// across a reopen, and that a create with text counts its first op.
func TestLogBytes(t *testing.T) {
	db, path := openTest(t, Options{SnapshotEvery: -1})
	ctx := context.Background()
	const size = 10_000
	churn(t, db, "d", 5, size)
	m, err := db.Meta(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	if m.LogBytes < 5*size || m.LogBytes > 5*size+10*200 {
		t.Errorf("LogBytes after 5 rounds of %d bytes: got %d, want a little over %d", size, m.LogBytes, 5*size)
	}
	if err := db.Create(ctx, Meta{ID: "e", ViewID: "view-e"}, &Record{Rev: 1, Op: ot.Op{{S: "hello"}}}); err != nil {
		t.Fatal(err)
	}
	if e, _ := db.Meta(ctx, "e"); e.LogBytes <= 5 {
		t.Errorf("LogBytes of a created document with text: got %d, want > 5", e.LogBytes)
	}
	db.Close()
	db2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	d, err := db2.Load(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	if d.Meta.LogBytes != m.LogBytes {
		t.Errorf("LogBytes after reopen: got %d, want %d", d.Meta.LogBytes, m.LogBytes)
	}
}

// TestMetaWithoutLogBytes decodes a meta written before LogBytes existed.
func TestMetaWithoutLogBytes(t *testing.T) {
	m := Meta{ID: "d", ViewID: "v", Rev: 3, Len: 7}
	v := appendMeta(nil, &m)
	// The old encoding is the new one without its last field (one byte
	// for 0), resealed.
	p, err := unseal(v)
	if err != nil {
		t.Fatal(err)
	}
	old := append([]byte{valueVersion}, p[:len(p)-1]...)
	old = seal(old, 0)
	got, err := decodeMeta("d", old)
	if err != nil {
		t.Fatal(err)
	}
	if got.Rev != 3 || got.Len != 7 || got.LogBytes != 0 {
		t.Errorf("got %+v, want rev 3, len 7, log bytes 0", got)
	}
}

func TestUsage(t *testing.T) {
	db, _ := openTest(t, Options{})
	u, err := db.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if u.FileBytes <= 0 {
		t.Errorf("FileBytes: got %d, want > 0", u.FileBytes)
	}
	if u.FreeBytes == 0 {
		t.Errorf("FreeBytes: got 0 on a disk the test could write to")
	}
	db.Close()
	if _, err := db.Usage(); err == nil {
		t.Error("Usage after Close: got nil error, want ErrClosed")
	}
}
