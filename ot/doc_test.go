package ot

import (
	"errors"
	"strings"
	"testing"
)

func TestDocApply(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		ops     []Op
		want    string
		wantErr error // of the last op
	}{
		{name: "empty", text: "", ops: nil, want: ""},
		{name: "append", text: "hello", ops: []Op{{Retain(5), Insert(" world")}}, want: "hello world"},
		{name: "capitalize", text: "hello", ops: []Op{{Delete(1), Insert("H"), Retain(4)}}, want: "Hello"},
		{name: "type then backspace", text: "ab", ops: []Op{
			{Retain(1), Insert("x"), Retain(1)},
			{Retain(2), Insert("y"), Retain(1)},
			{Retain(2), Delete(1), Retain(1)},
		}, want: "axb"},
		{name: "edits far apart move the gap", text: "0123456789", ops: []Op{
			{Insert("<"), Retain(10)},
			{Retain(11), Insert(">")},
			{Retain(5), Delete(2), Retain(5)},
			{Insert("^"), Retain(10)},
		}, want: "^<01236789>"},
		{name: "multi-byte", text: "é漢😀", ops: []Op{
			{Retain(1), Insert("👩‍💻"), Retain(2)},
			{Retain(5), Delete(1)},
		}, want: "é👩‍💻漢"},
		{name: "insert larger than the gap", text: "ab", ops: []Op{
			{Retain(1), Insert(strings.Repeat("漢", 1000)), Delete(1)},
		}, want: "a" + strings.Repeat("漢", 1000)},
		{name: "insert before a delete of more", text: strings.Repeat("x", 200), ops: []Op{
			{Insert(strings.Repeat("y", 100)), Delete(200)},
		}, want: strings.Repeat("y", 100)},
		{name: "length mismatch leaves doc unchanged", text: "abc", ops: []Op{
			{Retain(1), Insert("x"), Retain(1)},
		}, want: "abc", wantErr: ErrLengthMismatch},
		{name: "bad later component leaves doc unchanged", text: "abc", ops: []Op{
			{Insert("x"), Delete(1), Retain(2), {}},
		}, want: "abc", wantErr: ErrBadComponent},
		{name: "invalid UTF-8 leaves doc unchanged", text: "abc", ops: []Op{
			{Delete(1), Retain(2), Insert("\xff")},
		}, want: "abc", wantErr: ErrInvalidUTF8},
	}
	for _, tt := range tests {
		d := NewDoc(tt.text)
		var err error
		for _, op := range tt.ops {
			if err = d.Apply(op); err != nil {
				break
			}
		}
		if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
			t.Errorf("%s: error got %v, want %v", tt.name, err, tt.wantErr)
		}
		if got := d.String(); got != tt.want {
			t.Errorf("%s: text got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestDocSlice(t *testing.T) {
	d := NewDoc("héllo 😀 wörld")
	// Put the gap in the middle so slices straddle it.
	if err := d.Apply(Op{Retain(6), Insert("!"), Retain(7)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		start, end int
		want       string
	}{
		{0, 14, "héllo !😀 wörld"},
		{0, 6, "héllo "},
		{6, 8, "!😀"},
		{5, 9, " !😀 "},
		{7, 8, "😀"},
		{3, 3, ""},
		{-5, 2, "hé"},
		{12, 99, "ld"},
		{9, 4, ""},
		{99, 100, ""},
	}
	for _, tt := range tests {
		if got := d.Slice(tt.start, tt.end); got != tt.want {
			t.Errorf("Slice(%d, %d) got %q, want %q", tt.start, tt.end, got, tt.want)
		}
	}
	if got, want := d.Len(), 14; got != want {
		t.Errorf("Len got %d, want %d", got, want)
	}
}

func TestNewDocInvalidUTF8(t *testing.T) {
	d := NewDoc("a\xffb")
	if got, want := d.Len(), 3; got != want {
		t.Fatalf("Len got %d, want %d", got, want)
	}
	if got, want := d.String(), "a\uFFFDb"; got != want {
		t.Fatalf("String got %q, want %q", got, want)
	}
}

// TestDocApplyAllocs pins the hot-path promise: typing and deleting do not
// allocate once the gap has room.
func TestDocApplyAllocs(t *testing.T) {
	d := NewDoc(strings.Repeat("abcdefghij", 100))
	ins := Op{Retain(500), Insert("é"), Retain(500)}
	del := Op{Retain(500), Delete(1), Retain(500)}
	allocs := testing.AllocsPerRun(100, func() {
		if err := d.Apply(ins); err != nil {
			t.Fatal(err)
		}
		if err := d.Apply(del); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("allocs per insert+delete got %v, want 0", allocs)
	}
}
