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

// A client types while its first op is in flight, then hears of another
// client's op before its ack arrives.
func ExampleClient() {
	text := "abc"
	c := ot.NewClient(1, 0) // text is at revision 1, no ops sent yet

	// Local edit: apply it to the text, then tell the client.
	op := ot.Op{ot.Retain(3), ot.Insert("d")}
	text, _ = ot.Apply(text, op)
	send, _ := c.ApplyLocal(op)
	fmt.Println("send", send.Rev, send.Seq, send.Op, c.State())

	// A second edit waits in the buffer.
	op = ot.Op{ot.Retain(4), ot.Insert("e")}
	text, _ = ot.Apply(text, op)
	send, _ = c.ApplyLocal(op)
	fmt.Println("send", send, c.State())

	// Op 2 from someone else, made on revision 1: insert "X" at the start.
	op, _ = c.ApplyServer(2, ot.Op{ot.Insert("X"), ot.Retain(3)})
	text, _ = ot.Apply(text, op)
	fmt.Println(text)

	// Our op became op 3; the buffer goes out next, based on revision 3.
	send, _ = c.Ack(3, 1)
	fmt.Println("send", send.Rev, send.Seq, send.Op, c.State())
	// Output:
	// send 1 1 [3,"d"] AwaitingAck
	// send <nil> AwaitingWithBuffer
	// Xabcde
	// send 3 2 [5,"e"] AwaitingAck
}
