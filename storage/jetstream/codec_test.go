package jetstream

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
)

// TestAppendGroup: the hand-written encoding of a group is the same JSON
// as encoding/json's of the same wireGroup (which escapes <, > and & in
// ops where it need not: equal as values), and decodes back to the
// records.
func TestAppendGroup(t *testing.T) {
	at := time.Date(2026, 12, 7, 22, 0, 0, 123, time.UTC)
	cases := [][]Record{
		{{Rev: 1, Op: ot.Op{}.Insert("héllo \"quoted\" \\ <b>&\n\u2028"), Client: "c1", Seq: 1, Time: at}},
		{{Rev: 7, Op: ot.Op{}.Retain(3).Delete(2).Insert("x")}},
		{
			{Rev: 2, Op: ot.Op{}.Retain(1).Insert("a"), Client: "8f21ba69-f7cf-4749-b3ff-7a721917cd31", Seq: 40, Time: at},
			{Rev: 3, Op: ot.Op{}.Retain(2).Insert("b"), Client: "client \"odd\"\t<é>", Seq: 1 << 40, Time: at.Add(time.Hour)},
			{Rev: 4, Op: ot.Op{}.Delete(3), Client: "\x01", Seq: 2},
		},
	}
	for i, recs := range cases {
		g := wireGroup{V: wireVersion}
		for _, r := range recs {
			g.Recs = append(g.Recs, toWire(r))
		}
		want, err := json.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		m := encodeGroup("doc", recs)
		var got, exp any
		if err := json.Unmarshal(m.Data, &got); err != nil {
			t.Fatalf("case %d: %s: %v", i, m.Data, err)
		}
		json.Unmarshal(want, &exp)
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("case %d: got %s, want %s", i, m.Data, want)
		}
		if i > 0 && !bytes.Equal(m.Data, want) {
			t.Errorf("case %d: got %s, want byte for byte %s", i, m.Data, want)
		}
		// Read by hand, this encoding and encoding/json's (what older
		// nodes wrote) decode as encoding/json decodes them.
		for _, data := range [][]byte{m.Data, want} {
			var quick, slow wireGroup
			ok := quickGroup(data, &quick)
			if err := json.Unmarshal(data, &slow); err != nil {
				t.Fatal(err)
			}
			if ok && !reflect.DeepEqual(quick, slow) {
				t.Errorf("case %d: %s read by hand as %+v, encoding/json reads %+v", i, data, quick, slow)
			}
			if plain := i != 2; ok != plain {
				t.Errorf("case %d: %s read by hand: %v, want %v", i, data, ok, plain)
			}
		}
		for _, bad := range []string{string(m.Data) + " ", string(m.Data[:len(m.Data)-1]), `{"v":1,"recs":[]}`} {
			if quickGroup([]byte(bad), new(wireGroup)) {
				t.Errorf("case %d: %q read by hand", i, bad)
			}
		}
		back, err := decodeGroup(m.Header, m.Data)
		if err != nil {
			t.Fatalf("case %d: decode: %v", i, err)
		}
		if len(back) != len(recs) {
			t.Fatalf("case %d: got %d records back, want %d", i, len(back), len(recs))
		}
		for k := range recs {
			if back[k].Rev != recs[k].Rev || back[k].Client != recs[k].Client || back[k].Seq != recs[k].Seq ||
				!back[k].Time.Equal(recs[k].Time) || !reflect.DeepEqual(back[k].Op, recs[k].Op) {
				t.Errorf("case %d record %d: got %+v, want %+v", i, k, back[k], recs[k])
			}
		}
	}
}
