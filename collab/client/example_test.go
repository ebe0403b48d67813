package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/collabd/collabd/collab/client"
)

// Two editors of one document: each edit is applied locally at once, and
// both converge on the same text once the server has acknowledged them.
func Example() {
	server, stop := startServer()
	defer stop()
	id := createDoc(server, "hello")
	ctx := context.Background()

	ada, err := client.Open(ctx, server, id, client.Options{Name: "Ada"})
	if err != nil {
		log.Fatal(err)
	}
	defer ada.Close()
	bob, err := client.Open(ctx, server, id, client.Options{Name: "Bob"})
	if err != nil {
		log.Fatal(err)
	}
	defer bob.Close()

	seen := make(chan client.Change, 16)
	bob.OnChange(func(c client.Change) {
		if !c.Local {
			seen <- c
		}
	})

	ada.Insert(5, " world") // code points
	ada.Delete(0, 1)
	ada.Insert(0, "H")
	if err := ada.WaitSynced(ctx); err != nil {
		log.Fatal(err)
	}
	if err := bob.WaitRev(ctx, ada.Rev()); err != nil {
		log.Fatal(err)
	}
	c := <-seen
	fmt.Println(c.Author == ada.Author(), c.Op)
	fmt.Println(ada.Text())
	fmt.Println(bob.Text(), bob.Rev() == ada.Rev())
	// Output:
	// true [5," world"]
	// Hello world
	// Hello world true
}
