package ot_test

import (
	"encoding/json"
	"fmt"

	"github.com/collabd/collabd/ot"
)

// Two users edit "hello" at once; each side transforms the other's op and
// both end with the same text.
func Example() {
	base := "hello"
	var a, b ot.Op
	// Ops arrive from the wire in their JSON form.
	if err := json.Unmarshal([]byte(`[-1,"H",4]`), &a); err != nil {
		panic(err)
	}
	if err := json.Unmarshal([]byte(`[5," world"]`), &b); err != nil {
		panic(err)
	}
	a1, b1, err := ot.Transform(a, b) // a was committed first
	if err != nil {
		panic(err)
	}
	s1, _ := ot.Apply(base, a)
	s1, _ = ot.Apply(s1, b1)
	s2, _ := ot.Apply(base, b)
	s2, _ = ot.Apply(s2, a1)
	fmt.Println(s1, "|", s2)
	fmt.Println(a1, b1)
	// Output:
	// Hello world | Hello world
	// ["H",-1,10] [5," world"]
}
