package storage

import (
	"context"
	"reflect"
	"testing"
)

func TestDocIDs(t *testing.T) {
	db, _ := openTest(t, Options{})
	ctx := context.Background()
	if got, err := db.DocIDs(ctx); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("DocIDs of an empty file: got %#v, %v, want an empty slice", got, err)
	}
	for _, id := range []string{"c", "a", "b"} {
		if err := db.Create(ctx, Meta{ID: id, ViewID: "view-" + id}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if got, err := db.DocIDs(ctx); err != nil || !reflect.DeepEqual(got, []string{"a", "c"}) {
		t.Errorf("DocIDs: got %v, %v, want [a c]", got, err)
	}
}
