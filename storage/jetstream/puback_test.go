package jetstream

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/collabd/collabd/ot"
)

// TestParsePubAck: the PubAck forms the server writes, read by hand, and
// errors as natsjs reports them.
func TestParsePubAck(t *testing.T) {
	for _, c := range []struct {
		in   string
		want natsjs.PubAck
	}{
		{`{"stream":"COLLAB_OPS","seq":12}`, natsjs.PubAck{Stream: "COLLAB_OPS", Sequence: 12}},
		{`{"stream":"COLLAB_OPS","domain":"hub","seq":7}`, natsjs.PubAck{Stream: "COLLAB_OPS", Domain: "hub", Sequence: 7}},
		{`{"stream":"KV_collab_owners","seq":9,"duplicate": true}`, natsjs.PubAck{Stream: "KV_collab_owners", Sequence: 9, Duplicate: true}},
		{`{"stream": "S", "seq": 3}`, natsjs.PubAck{Stream: "S", Sequence: 3}}, // through encoding/json
	} {
		got, err := parsePubAck([]byte(c.in))
		if err != nil || !reflect.DeepEqual(*got, c.want) {
			t.Errorf("%s: got %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	_, err := parsePubAck([]byte(`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 4"},"stream":"COLLAB_OPS","seq":0}`))
	if !isWrongLastSeq(err) {
		t.Errorf("wrong last sequence: got %v, want an APIError isWrongLastSeq knows", err)
	}
	for _, bad := range []string{``, `{}`, `{"stream":"S"}`, `nonsense`} {
		if _, err := parsePubAck([]byte(bad)); !errors.Is(err, natsjs.ErrInvalidJSAck) {
			t.Errorf("%q: got %v, want ErrInvalidJSAck", bad, err)
		}
	}
}

// TestSubmissionCodec: a forwarded op encodes as encoding/json encodes
// it and decodes to what it was, by hand or not.
func TestSubmissionCodec(t *testing.T) {
	for _, sub := range []Submission{
		{Client: "8f21ba69-f7cf-4749-b3ff-7a721917cd31", Seq: 4, Rev: 17, Op: ot.Op{}.Retain(3).Insert("a\"<é>\n").Delete(2)},
		{Client: "odd \"client\" <é>\t", Seq: 1, Rev: 0, Op: ot.Op{}.Insert("x")},
		{Client: "", Seq: 0, Rev: 2, Op: ot.Op{}.Retain(2)},
		{Client: "c", Seq: 2, Rev: 5, Op: ot.Op{}.Insert("y"), Strict: true},
		{Client: "c", Seq: 3, Rev: 5, Stream: &StreamPiece{Caret: 3, Text: "z"}},
		{Client: "c", Seq: 3, Rev: 5, Rotate: &DocMeta{ID: "a", ViewID: "b"}},
	} {
		b, err := encodeSubmission(sub)
		if err != nil {
			t.Fatal(err)
		}
		var got, viaJSON Submission
		if err := decodeSubmission(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if err := json.Unmarshal(b, &viaJSON); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, viaJSON) {
			t.Errorf("%s: decoded %+v, encoding/json decodes %+v", b, got, viaJSON)
		}
		if plain := !sub.Strict && sub.Stream == nil && sub.Rotate == nil && !strings.ContainsAny(sub.Client, "\"<\t"); plain != quickSubmission(b, new(Submission)) {
			t.Errorf("%s: read by hand %v, want %v", b, !plain, plain)
		}
		if want, _ := json.Marshal(sub); !jsonEqual(b, want) {
			t.Errorf("encoded %s, encoding/json %s", b, want)
		}
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}
