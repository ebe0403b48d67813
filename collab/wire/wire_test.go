package wire

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
)

// TestEncodings holds the messages to their bytes on the wire
// (docs/protocol.md): the server encodes them and the client decodes
// them, so a change here is a protocol change.
func TestEncodings(t *testing.T) {
	text := "héllo"
	at := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"welcome with text", Welcome{Type: TypeWelcome, Protocol: ProtocolVersion, Doc: "d", ViewID: "v", Rev: 3, Text: &text,
			Color: "#aabbcc", Author: "AbC_12", Peers: []Peer{{Author: "x", Name: "Ada", Color: "#112233", Ranges: []Range{{1, 2}}}}, LastSeq: 0},
			`{"type":"welcome","protocol":2,"doc":"d","viewId":"v","rev":3,"text":"héllo","color":"#aabbcc","author":"AbC_12","peers":[{"author":"x","name":"Ada","color":"#112233","ranges":[[1,2]]}],"lastSeq":0}`},
		{"welcome catching up", Welcome{Type: TypeWelcome, Protocol: 2, Doc: "d", ViewID: "v", Rev: 5, Ops: []OpRecord{{Rev: 5, Op: ot.Op{ot.Retain(1), ot.Insert("x")}, Author: "a", Seq: 2}},
			Peers: []Peer{}, LastSeq: 2},
			`{"type":"welcome","protocol":2,"doc":"d","viewId":"v","rev":5,"ops":[{"rev":5,"op":[1,"x"],"author":"a","seq":2}],"color":"","author":"","peers":[],"lastSeq":2}`},
		{"welcome catching up, none missed", Welcome{Type: TypeWelcome, Protocol: 2, Rev: 5, Ops: []OpRecord{}},
			`{"type":"welcome","protocol":2,"doc":"","viewId":"","rev":5,"ops":[],"color":"","author":"","peers":null,"lastSeq":0}`},
		{"op record with time", OpRecord{Rev: 1, Op: ot.Op{ot.Insert("a")}, Author: "", Seq: 0, Time: &at},
			`{"rev":1,"op":["a"],"author":"","seq":0,"time":"2026-12-07T22:00:00Z"}`},
		{"presence", Presence{Type: TypePresence, Author: "a", Name: "Ada", Color: "#000000", Ranges: []Range{{0, 0}}, Rev: 9},
			`{"type":"presence","author":"a","name":"Ada","color":"#000000","ranges":[[0,0]],"rev":9}`},
		{"leave", Leave{Type: TypeLeave, Author: "a"}, `{"type":"leave","author":"a"}`},
		{"error", Error{Type: TypeError, Code: CodeBadOp, Message: "no", Seq: 4}, `{"type":"error","code":"bad_op","message":"no","seq":4}`},
		{"error without seq", Error{Type: TypeError, Code: CodeShuttingDown, Message: "bye"}, `{"type":"error","code":"shutting_down","message":"bye"}`},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if string(b) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, b, tc.want)
		}
	}
}

// TestWelcomeRoundTrip: what the server encodes, the client decodes to
// the same message.
func TestWelcomeRoundTrip(t *testing.T) {
	text := "a😀b"
	in := Welcome{Type: TypeWelcome, Protocol: 2, Doc: "d", ViewID: "v", Rev: 1, Text: &text, Color: "#123456", Author: "me",
		Peers: []Peer{{Author: "p", Name: "P", Color: "#654321", Ranges: []Range{{0, 3}, {2, 2}}}}, LastSeq: 7}
	b, _ := json.Marshal(in)
	var out Welcome
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(out)
	if string(b) != string(b2) || *out.Text != text || out.Peers[0].Ranges[1] != (Range{2, 2}) {
		t.Fatalf("got %s, want %s", b2, b)
	}
}

func TestRangeDecodesTwoIntegers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Range
		ok   bool
	}{
		{`[1,2]`, Range{1, 2}, true},
		{`[0,0]`, Range{}, true},
		{`[1]`, Range{}, false},
		{`[1,2,3]`, Range{}, false},
		{`null`, Range{}, false},
		{`[1.5,2]`, Range{}, false},
		{`"x"`, Range{}, false},
	} {
		var r Range
		err := json.Unmarshal([]byte(tc.in), &r)
		if tc.ok && (err != nil || r != tc.want) {
			t.Errorf("%s: got %v, %v; want %v", tc.in, r, err, tc.want)
		}
		if !tc.ok && !errors.Is(err, ErrBadRange) {
			t.Errorf("%s: got %v, %v; want ErrBadRange", tc.in, r, err)
		}
	}
}
