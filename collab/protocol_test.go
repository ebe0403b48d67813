package collab

import (
	"strings"
	"testing"
)

// TestDecodeClientMessageErrors: what a malformed frame is told, one case
// per branch of decodeClientMessage's parsing.
func TestDecodeClientMessageErrors(t *testing.T) {
	for _, c := range []struct{ frame, want string }{
		{`{"type":"cursor","ranges":[]} {"type":"cursor"}`, "one message per frame"},
		{`{"type":"cursor","ranges":[]}x`, "one message per frame"},
		{``, "message is not a JSON object"},
		{`[1,2]`, "message is not a JSON object"},
		{`{"type":`, "message is not a JSON object"},
		{`{"type":"cursor","ranges":[{"anchor":-1,"head":0}]}`, "cursor: "},
		{`{"client":"x"}`, `message has no "type"`},
		{"\xff", "not valid UTF-8"},
	} {
		_, perr := decodeClientMessage([]byte(c.frame))
		if perr == nil || perr.Code != CodeBadMessage || !strings.Contains(perr.Message, c.want) {
			t.Errorf("%q: got %v, want %s containing %q", c.frame, perr, CodeBadMessage, c.want)
		}
	}
	// Whitespace around the object is not trailing data.
	if m, perr := decodeClientMessage([]byte(" {\"type\":\"cursor\",\"rev\":0,\"ranges\":[]}\n")); perr != nil {
		t.Errorf("object between spaces: %v", perr)
	} else if _, ok := m.(*cursorMessage); !ok {
		t.Errorf("object between spaces: got %T, want *cursorMessage", m)
	}
}
