package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/collabd/collabd/ot"
)

// refDecode is what the client did before FrameDecoder, and what it must
// still amount to: encoding/json splits an array frame, then decodes each
// message.
func refDecode(frame []byte) ([]serverMessage, error) {
	var raws []json.RawMessage
	if t := bytes.TrimLeft(frame, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		if err := json.Unmarshal(frame, &raws); err != nil || len(raws) == 0 {
			return nil, errors.New("bad frame")
		}
	} else {
		if !json.Valid(frame) {
			return nil, errors.New("bad frame")
		}
		raws = []json.RawMessage{frame}
	}
	var out []serverMessage
	for _, r := range raws {
		var m serverMessage
		if err := json.Unmarshal(r, &m); err != nil {
			return out, err
		}
		out = append(out, m)
	}
	return out, nil
}

// gotDecode decodes with FrameDecoder into serverMessages, failing at the
// first message whose op does not decode, as the client does. It also
// checks OpLenDelta against the decoded op.
func gotDecode(d *FrameDecoder, frame []byte) ([]serverMessage, error) {
	msgs, err := d.Decode(frame)
	var out []serverMessage
	for i := range msgs {
		m := &msgs[i]
		op, opErr := m.Op()
		delta, deltaErr := m.OpLenDelta()
		if (opErr == nil) != (deltaErr == nil) {
			return out, fmt.Errorf("Op error %v but OpLenDelta error %v", opErr, deltaErr)
		}
		if opErr != nil {
			return out, opErr
		}
		if want := op.TargetLen() - op.BaseLen(); delta != want {
			return out, fmt.Errorf("OpLenDelta %d, want %d", delta, want)
		}
		out = append(out, serverMessage{Type: m.Type, Rev: m.Rev, Seq: m.Seq, Op: op, Author: m.Author(),
			Name: m.Name, Color: m.Color, Ranges: m.Ranges, Code: m.Code, Message: m.Message})
	}
	return out, err
}

var frameSeeds = []string{
	`{"type":"ack","rev":12,"seq":3}`,
	`{"type":"op","rev":13,"op":[4,"hi",-2,7],"author":"a1b2c3","seq":9}`,
	`[{"type":"op","rev":13,"op":[4,"hi"],"author":"a1","seq":9},{"type":"ack","rev":14,"seq":3}]`,
	` [ {"seq":1 , "rev" : 2, "type" :"ack"} ] `,
	`[{"type":"op","rev":1,"op":["\u00e9\ud83d\ude00\n"],"author":"x\"y","seq":1}]`,
	`{"type":"op","rev":1,"op":["h\u00e9llo"],"author":"a","seq":1,"extra":{"a":[1,2.5e3,true,null]}}`,
	`{"Type":"ack","rev":1,"seq":1}`,
	`{"type":"ack","REV":1,"seq":1}`,
	`{"type":"ack","rev":1,"rev":2,"seq":1}`,
	`{"type":"ack","rev":1.0,"seq":1}`,
	`{"type":"ack","rev":null,"seq":1}`,
	`{"type":"ack","rev":"1","seq":1}`,
	`{"type":"ack","rev":99999999999999999999,"seq":1}`,
	`{"type":"ack","rev":-0,"seq":1}`,
	`{"type":"ack","rev":1,"seq":1,"op":null}`,
	`{"type":"op","rev":1,"seq":1,"op":null}`,
	`{"type":"op","rev":1,"seq":1,"op":[0]}`,
	`{"type":"op","rev":1,"seq":1,"op":[""]}`,
	`{"type":"op","rev":1,"seq":1,"op":["\ud800"]}`,
	"{\"type\":\"op\",\"rev\":1,\"seq\":1,\"op\":[\"\xff\"]}",
	"{\"type\":\"op\",\"rev\":1,\"seq\":1,\"author\":\"\xff\",\"op\":[1]}",
	`{"type":"presence","author":"a","name":"Ada","color":"#123456","ranges":[[1,2]],"rev":3}`,
	`{"type":"leave","author":"a"}`,
	`{"type":"error","code":"bad_op","message":"no","seq":2}`,
	`{"type":"welcome","protocol":2,"rev":0,"text":""}`,
	`[{"type":"ack","rev":1,"seq":1},{"type":"ack","rev":"x","seq":2},{"type":"ack","rev":3,"seq":3}]`,
	`[{"type":"ack","rev":1,"seq":1},{"type":"ack","rev":"x","seq":2},{]`,
	`[]`, `[`, `{`, `null`, `[null]`, `[1]`, `"op"`, ``, `{}`, `{"type":"op"}`,
	`{"typ\u0065":"ack","rev":1,"seq":1}`,
	`{"type":"\u0061ck","rev":1,"seq":1}`,
	`[{"type":"op","rev":1,"op":[1,-1,"a"],"seq":1}] x`,
}

func TestFrameDecoderMatchesEncodingJSON(t *testing.T) {
	var d FrameDecoder
	for _, s := range frameSeeds {
		compareDecode(t, &d, []byte(s))
	}
}

func compareDecode(t *testing.T, d *FrameDecoder, frame []byte) {
	t.Helper()
	want, wantErr := refDecode(frame)
	got, gotErr := gotDecode(d, frame)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("frame %q: got error %v, want %v", frame, gotErr, wantErr)
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("frame %q:\ngot  %+v\nwant %+v", frame, got, want)
	}
}

func FuzzFrameDecoder(f *testing.F) {
	for _, s := range frameSeeds {
		f.Add([]byte(s))
	}
	var d FrameDecoder
	f.Fuzz(func(t *testing.T, frame []byte) {
		compareDecode(t, &d, frame)
	})
}

func TestFrameDecoderFast(t *testing.T) {
	// The frames the server writes take the scanner's path: no
	// encoding/json, no allocation.
	frame := []byte(`[{"type":"op","rev":7,"op":[3,"x",2],"author":"AbC_12","seq":4},{"type":"ack","rev":8,"seq":11}]`)
	var d FrameDecoder
	msgs, err := d.Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want 2", len(msgs))
	}
	op, err := msgs[0].Op()
	if err != nil {
		t.Fatal(err)
	}
	if want := (ot.Op{ot.Retain(3), ot.Insert("x"), ot.Retain(2)}); !reflect.DeepEqual(op, want) {
		t.Errorf("got op %v, want %v", op, want)
	}
	if m := msgs[0]; m.Type != typeOp || m.Rev != 7 || m.Seq != 4 || !m.AuthorIs("AbC_12") || m.Author() != "AbC_12" || m.opRaw == nil {
		t.Errorf("got %+v, want the fast path's op 7 by AbC_12 seq 4", m)
	}
	if m := msgs[1]; m.Type != typeAck || m.Rev != 8 || m.Seq != 11 || string(m.Raw) != `{"type":"ack","rev":8,"seq":11}` {
		t.Errorf("got %+v, want ack 8 seq 11", m)
	}
	if n := testing.AllocsPerRun(100, func() {
		msgs, _ := d.Decode(frame)
		if _, err := msgs[0].OpLenDelta(); err != nil || !msgs[0].AuthorIs("AbC_12") {
			panic(err)
		}
	}); n != 0 {
		t.Errorf("Decode and OpLenDelta of an op and an ack: %v allocations, want 0", n)
	}
}

func TestFrameDecoderErrors(t *testing.T) {
	var d FrameDecoder
	for _, tc := range []struct {
		frame string
		n     int // messages before the error
	}{
		{`[]`, 0},
		{`[{"type":"ack","rev":1,"seq":1},]`, 0},
		{`[{"type":"ack","rev":1,"seq":1}`, 0},
		{`{"type":"ack","rev":1,"seq":1}}`, 0},
		{`[{"type":"ack","rev":1,"seq":1},{"type":"ack","rev":true}]`, 1},
		{`[{"type":"ack","rev":1,"seq":1},{"type":"ack","rev":true},{"type":"ack","rev":3,"seq":3}]`, 1},
		{`[{"type":"ack","rev":1,"seq":1},{"type":"ack","rev":true},{"type":"ack",]`, 0},
		{`[` + strings.Repeat(`[`, maxDepth) + strings.Repeat(`]`, maxDepth) + `]`, 0},
	} {
		msgs, err := d.Decode([]byte(tc.frame))
		if err == nil || len(msgs) != tc.n {
			t.Errorf("%.60s: got %d messages and error %v, want %d and an error", tc.frame, len(msgs), err, tc.n)
		}
	}
	// At the limit, the frame is JSON: its one message is no message.
	deep := `[` + strings.Repeat(`[`, maxDepth-1) + strings.Repeat(`]`, maxDepth-1) + `]`
	if _, err := d.Decode([]byte(deep)); err == nil || errors.Is(err, errBadFrame) {
		t.Errorf("depth %d: got %v, want a message error", maxDepth, err)
	}
	compareDecode(t, &d, []byte(deep))
}

// BenchmarkFrameDecoder decodes a batch of 16 ops from other editors, as a
// client of a busy document receives them; "encoding/json" is the old
// double decode.
func BenchmarkFrameDecoder(b *testing.B) {
	frame := []byte{'['}
	for i := range 16 {
		if i > 0 {
			frame = append(frame, ',')
		}
		frame = appendOpMessage(frame, int64(100+i), ot.Op{ot.Retain(40 + i), ot.Insert("x"), ot.Retain(200)}, fmt.Sprintf("author%02d", i), int64(i))
	}
	frame = append(frame, ']')
	b.Run("FrameDecoder", func(b *testing.B) {
		var d FrameDecoder
		b.SetBytes(int64(len(frame)))
		b.ReportAllocs()
		for b.Loop() {
			msgs, err := d.Decode(frame)
			if err != nil || len(msgs) != 16 {
				b.Fatal(err)
			}
			for i := range msgs {
				if _, err := msgs[i].Op(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.SetBytes(int64(len(frame)))
		b.ReportAllocs()
		for b.Loop() {
			var raws []json.RawMessage
			if err := json.Unmarshal(frame, &raws); err != nil || len(raws) != 16 {
				b.Fatal(err)
			}
			for _, r := range raws {
				var m serverMessage
				if err := json.Unmarshal(r, &m); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// appendOpMessage encodes an op message as the server does
// (collab/protocol.go).
func appendOpMessage(dst []byte, rev int64, op ot.Op, author string, seq int64) []byte {
	dst = fmt.Appendf(dst, `{"type":"op","rev":%d,"op":`, rev)
	dst = op.AppendJSON(dst)
	return fmt.Appendf(dst, `,"author":%q,"seq":%d}`, author, seq)
}
