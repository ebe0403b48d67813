package collab

import (
	"testing"

	"github.com/collabd/collabd/ot"
)

// EditLenFunc makes its op on the local length, as EditFunc does on the
// local text: appending at the end lands at the end, whatever came before.
func TestEditLenFunc(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "héllo")
	ctx := guardCtx(t)
	a := ts.dial(t, id, ClientOptions{Name: "A"})
	for _, s := range []string{" ", "😀", "!"} {
		if err := a.EditLenFunc(func(n int) ot.Op { return ot.Op{}.Retain(n).Insert(s) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.EditLenFunc(func(int) ot.Op { return nil }); err != nil {
		t.Fatalf("a nil op: %v", err)
	}
	if err := a.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := a.Text(), "héllo 😀!"; got != want {
		t.Fatalf("text %q, want %q", got, want)
	}
	if st := ts.docState(t, id); st.Text != "héllo 😀!" {
		t.Fatalf("server has %q", st.Text)
	}
}
