package jetstream

import (
	"errors"
	"testing"
)

// TestComments: records read back by key, replace and delete, stay apart
// from another document's, and go with their document.
func TestComments(t *testing.T) {
	ns := startNATS(t)
	s := ns.newStore(t, Options{})
	ctx := testCtx(t)
	a, b := newMeta(), newMeta()
	for _, m := range []DocMeta{a, b} {
		if err := s.Create(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutComments(ctx, a.ID, map[string][]byte{"x": []byte("1"), "y": []byte("2")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.PutComments(ctx, b.ID, map[string][]byte{"x": []byte("other")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.PutComments(ctx, a.ID, map[string][]byte{"x": []byte("1b")}, []string{"y", "never"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Comments(ctx, a.ID)
	if err != nil || len(got) != 1 || string(got["x"]) != "1b" {
		t.Fatalf("Comments: got %q, %v, want x=1b only", got, err)
	}
	if err := s.Delete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Comments(ctx, a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Comments of a deleted document: got %v, want ErrNotFound", err)
	}
	// Recreating the id must not bring old records back.
	if err := s.Create(ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Comments(ctx, a.ID); err != nil || len(got) != 0 {
		t.Errorf("Comments of a recreated document: got %q, %v, want none", got, err)
	}
	if got, err := s.Comments(ctx, b.ID); err != nil || string(got["x"]) != "other" {
		t.Errorf("neighbour's comments: got %q, %v, want x=other", got, err)
	}
}
