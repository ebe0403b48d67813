package collab

import (
	"context"
	"testing"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/collabd/collabd/ot"
)

// staleOwnerStore is a memStore that this node links to every document
// as its owner, through a link that never says anything: a node whose
// lease passed to another node, which has committed since, before it
// hears of it. Its store (the shared log) has those commits.
type staleOwnerStore struct{ *memStore }

func (s staleOwnerStore) Link(context.Context, string) (DocLink, bool, error) {
	return &quietLink{events: make(chan LinkEvent)}, true, nil
}

// quietLink is a DocLink with no other node.
type quietLink struct{ events chan LinkEvent }

func (l *quietLink) Start(context.Context, int64) error { return nil }
func (l *quietLink) Events() <-chan LinkEvent           { return l.events }
func (l *quietLink) Forward(context.Context, Submission) (SubmitReply, error) {
	return SubmitReply{}, ErrNoOwner
}
func (l *quietLink) TryOwn()       {}
func (l *quietLink) Notify([]byte) {}
func (l *quietLink) Close()        {}

// TestClusterOwnerBehindClient: a client resuming from a revision its
// node's hub has not got, though the shared log has (the node's lease
// passed on and another node committed), is told to reconnect
// (shutting_down, close 1001), never given the text at the older
// revision, which would roll it back and drop its unacknowledged edits. A
// client claiming a revision the log does not have either still gets the
// text, as on one node.
func TestClusterOwnerBehindClient(t *testing.T) {
	ctx := guardCtx(t)
	mem := newMemStore()
	ts := newTestServerStore(t, mem, staleOwnerStore{mem}, Options{})
	id, _ := ts.createDoc(t, "abc")
	ts.raw(t, id).hello(t, ctx, uuid.NewString(), -1) // the hub loads, as owner, at rev 1

	// Another node commits revisions 2 to 4.
	text := "abc"
	for rev := int64(2); rev <= 4; rev++ {
		op := ot.Op{}.Retain(len(text)).Insert("x")
		if err := mem.Append(ctx, id, []Record{{Rev: rev, Op: op, Client: "other", Seq: rev - 1}}); err != nil {
			t.Fatal(err)
		}
		text += "x"
	}

	c := ts.raw(t, id)
	if err := c.send(ctx, map[string]any{"type": "hello", "client": uuid.NewString(), "rev": 4}); err != nil {
		t.Fatal(err)
	}
	c.expectError(t, ctx, CodeShuttingDown, websocket.StatusGoingAway)

	w := ts.raw(t, id).hello(t, ctx, uuid.NewString(), 99)
	if w.Text == nil || w.Rev != 1 {
		t.Fatalf("client claiming rev 99: welcome at rev %d, text %v; want the text at rev 1", w.Rev, w.Text != nil)
	}
}
