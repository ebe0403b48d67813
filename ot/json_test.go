package ot

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeOp(t *testing.T) {
	tests := []struct {
		in      string
		want    string // re-encoded, when no error
		wantErr error
	}{
		{`[]`, `[]`, nil},
		{` [ ] `, `[]`, nil},
		{`[5," world"]`, `[5," world"]`, nil},
		{`[-1,"H",4]`, `[-1,"H",4]`, nil},
		{"\t[ 1 ,\n\"a\" , -2 ]\r\n", `[1,"a",-2]`, nil},
		{`["é漢😀👩‍💻"]`, `["é漢😀👩‍💻"]`, nil},
		{`["\u00e9\u6f22\ud83d\ude00"]`, `["é漢😀"]`, nil},
		{`["\"\\\/\b\f\n\r\t"]`, `["\"\\/\u0008\u000c\n\r\t"]`, nil},
		{`["\u0000"]`, `["\u0000"]`, nil},
		{`["\ud800"]`, `["` + "\uFFFD" + `"]`, nil},             // lone high surrogate
		{`["\udc00x"]`, `["` + "\uFFFD" + `x"]`, nil},           // lone low surrogate
		{`["\ud800\u0041"]`, `["` + "\uFFFD" + `A"]`, nil},      // high then non-surrogate
		{`["\ud800\ud800"]`, `["` + "\uFFFD\uFFFD" + `"]`, nil}, // two highs
		{`["\u2028"]`, `["\u2028"]`, nil},
		{`[9223372036854775807]`, `[9223372036854775807]`, nil},
		{`[-9223372036854775807]`, `[-9223372036854775807]`, nil},

		{``, "", ErrSyntax},
		{`null`, "", ErrSyntax},
		{`{}`, "", ErrSyntax},
		{`"abc"`, "", ErrSyntax},
		{`5`, "", ErrSyntax},
		{`[`, "", ErrSyntax},
		{`[1`, "", ErrSyntax},
		{`[1,`, "", ErrSyntax},
		{`[1,]`, "", ErrSyntax},
		{`[,1]`, "", ErrSyntax},
		{`[1 2]`, "", ErrSyntax},
		{`[1]]`, "", ErrSyntax},
		{`[1] x`, "", ErrSyntax},
		{`[1.0]`, "", ErrSyntax},
		{`[1.5]`, "", ErrSyntax},
		{`[1e3]`, "", ErrSyntax},
		{`[1E3]`, "", ErrSyntax},
		{`[0.5]`, "", ErrSyntax},
		{`[+1]`, "", ErrSyntax},
		{`[01]`, "", ErrSyntax},
		{`[-]`, "", ErrSyntax},
		{`[--1]`, "", ErrSyntax},
		{`[true]`, "", ErrSyntax},
		{`[null]`, "", ErrSyntax},
		{`[[1]]`, "", ErrSyntax},
		{`["abc]`, "", ErrSyntax},
		{`["abc\"]`, "", ErrSyntax},
		{`["a\x"]`, "", ErrSyntax},
		{`["\u12"]`, "", ErrSyntax},
		{`["\u12g4"]`, "", ErrSyntax},
		{`["\ud800\u12"]`, "", ErrSyntax},
		{"[\"a\nb\"]", "", ErrSyntax},
		{"[\"a\x00b\"]", "", ErrSyntax},
		{`['a']`, "", ErrSyntax},
		{`[0]`, "", ErrBadComponent},
		{`[-0]`, "", ErrBadComponent},
		{`[""]`, "", ErrBadComponent},
		{"[\"\xff\"]", "", ErrInvalidUTF8},
		{"[\"\\n\xff\"]", "", ErrInvalidUTF8},
		{"[\"\xed\xa0\x80\"]", "", ErrInvalidUTF8},
		{`[9223372036854775808]`, "", ErrOverflow},
		{`[-9223372036854775808]`, "", ErrOverflow},
		{`[99999999999999999999999]`, "", ErrOverflow},
		{`[9223372036854775807,1]`, "", ErrOverflow},
		{`[-9223372036854775807,-1]`, "", ErrOverflow},
		{`[9223372036854775807,"x"]`, "", ErrOverflow},
	}
	for _, tt := range tests {
		var op Op
		err := op.UnmarshalJSON([]byte(tt.in))
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("decode %q: error got %v, want %v", tt.in, err, tt.wantErr)
			}
			if op != nil {
				t.Errorf("decode %q: op got %v after error, want unchanged nil", tt.in, op)
			}
			continue
		}
		if err != nil {
			t.Errorf("decode %q: error got %v, want nil", tt.in, err)
			continue
		}
		if err := op.Validate(); err != nil {
			t.Errorf("decode %q: decoded op fails Validate: %v", tt.in, err)
		}
		if got := op.String(); got != tt.want {
			t.Errorf("decode %q: got %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestEncodeOp(t *testing.T) {
	tests := []struct {
		op   Op
		want string
	}{
		{nil, `[]`},
		{Op{Retain(5), Insert(" world")}, `[5," world"]`},
		{Op{Delete(1), Insert("H"), Retain(4)}, `[-1,"H",4]`},
		{Op{Insert("<a&b>")}, `["<a&b>"]`},
		{Op{Insert("tab\there \x01\x1f")}, `["tab\there \u0001\u001f"]`},
		{Op{Insert("\u2028\u2029")}, `["\u2028\u2029"]`},
		{Op{Insert("bad\xffbyte")}, `["bad\ufffdbyte"]`},
		{Op{Insert("😀👩‍💻")}, `["😀👩‍💻"]`},
	}
	for _, tt := range tests {
		b, err := tt.op.MarshalJSON()
		if err != nil || string(b) != tt.want {
			t.Errorf("MarshalJSON(%#v) got %s, %v, want %s", tt.op, b, err, tt.want)
		}
		if got := string(tt.op.AppendJSON([]byte("x"))); got != "x"+tt.want {
			t.Errorf("AppendJSON(%#v) got %s, want x%s", tt.op, got, tt.want)
		}
		if !json.Valid(b) {
			t.Errorf("MarshalJSON(%#v) = %s is not valid JSON", tt.op, b)
		}
	}
}

// TestJSONInStruct checks that Op works as a field under encoding/json, the
// way collab's message types use it.
func TestJSONInStruct(t *testing.T) {
	type msg struct {
		Type string `json:"type"`
		Op   Op     `json:"op"`
	}
	var m msg
	if err := json.Unmarshal([]byte(`{"type":"op","op":[2,"é",-1]}`), &m); err != nil {
		t.Fatalf("Unmarshal: got %v, want nil", err)
	}
	if got, want := m.Op.String(), `[2,"é",-1]`; got != want {
		t.Fatalf("decoded op got %s, want %s", got, want)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("Marshal: got %v, want nil", err)
	}
	if got, want := string(b), `{"type":"op","op":[2,"é",-1]}`; got != want {
		t.Fatalf("Marshal got %s, want %s", got, want)
	}
	err = json.Unmarshal([]byte(`{"type":"op","op":[2.5]}`), &m)
	if !errors.Is(err, ErrSyntax) {
		t.Fatalf("Unmarshal float: got %v, want ErrSyntax", err)
	}
}

// TestDecodeAgreesWithEncodingJSON compares the string decoding with
// encoding/json on escapes it also accepts.
func TestDecodeAgreesWithEncodingJSON(t *testing.T) {
	inputs := []string{
		`["plain"]`, `["\u00e9\ud83d\ude00"]`, `["a\/b\\c\"d"]`, `["\ud800"]`, `["\udfff\ud800x"]`,
		`["` + strings.Repeat(`\n`, 10) + `"]`,
	}
	for _, in := range inputs {
		var want []string
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("encoding/json %s: %v", in, err)
		}
		var op Op
		if err := op.UnmarshalJSON([]byte(in)); err != nil {
			t.Fatalf("decode %s: got %v, want nil", in, err)
		}
		if len(op) != 1 || op[0].S != want[0] || !utf8.ValidString(op[0].S) {
			t.Errorf("decode %s: got %q, want %q", in, op, want[0])
		}
	}
}
