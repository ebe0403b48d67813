package collab

import (
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
)

func TestHoldGap(t *testing.T) {
	for _, tc := range []struct {
		editors, budget int
		want            time.Duration
	}{
		{50, 4000, 12500 * time.Microsecond},
		{100, 4000, maxHold},
		{400, 4000, maxHold},
		{3, 4000, 0}, // under minPace
		{4, 4000, time.Millisecond},
		{1, 1, 0},
		{50, 0, 0},
		{50, -1, 0},
	} {
		if got := holdGap(tc.editors, tc.budget); got != tc.want {
			t.Errorf("holdGap(%d, %d): got %v, want %v", tc.editors, tc.budget, got, tc.want)
		}
	}
}

// heldState returns whether c's writer is held and whether one runs.
func heldState(c *conn) (held, writing bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held, c.writing
}

// waitWriterDone waits until no writer runs on c.
func waitWriterDone(t *testing.T, c *conn) {
	t.Helper()
	ctx := guardCtx(t)
	for {
		if _, writing := heldState(c); !writing {
			return
		}
		if ctx.Err() != nil {
			t.Fatal("the writer never finished")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestHoldGathersOthersOps: after a frame, others' ops uncorked with a
// gap are held; what comes meanwhile joins them; an ack lets them all go
// at once, in order, in one frame, ahead of the ack.
func TestHoldGathersOthersOps(t *testing.T) {
	c, cws := corkPair(t)
	ctx := guardCtx(t)
	var dec FrameDecoder
	msg := func(rev int64) []byte {
		return appendOpMessage(nil, rev, ot.Op{ot.Insert("x")}, "a", rev)
	}

	c.enqueue(msg(1))
	if _, err := dec.ReadFrame(ctx, cws); err != nil {
		t.Fatal(err)
	}
	waitWriterDone(t, c)

	c.cork()
	c.enqueue(msg(2))
	c.uncorkHeld(time.Hour) // nothing but the ack may release it
	if held, writing := heldState(c); !held || writing {
		t.Fatalf("after uncorkHeld: held %v, writing %v; want held, no writer", held, writing)
	}
	c.enqueue(msg(3)) // presence, or an op from another node: held too
	if held, writing := heldState(c); !held || writing {
		t.Fatalf("after a second message: held %v, writing %v; want held, no writer", held, writing)
	}
	c.enqueueAck(appendAck(nil, 4, 1))
	frame, err := dec.ReadFrame(ctx, cws)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := dec.Decode(frame)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("after the ack: got %d messages (%v) in %.120s, want one frame of 3", len(msgs), err, frame)
	}
	for i, want := range []string{typeOp, typeOp, typeAck} {
		if msgs[i].Type != want {
			t.Errorf("message %d: got type %q, want %q", i, msgs[i].Type, want)
		}
	}
	if held, _ := heldState(c); held {
		t.Error("still held after the ack went out")
	}
}

// TestHoldLimit: a held frame goes out when its gap has passed since the
// last frame, and not before.
func TestHoldLimit(t *testing.T) {
	c, cws := corkPair(t)
	ctx := guardCtx(t)
	var dec FrameDecoder
	msg := func(rev int64) []byte {
		return appendOpMessage(nil, rev, ot.Op{ot.Insert("x")}, "a", rev)
	}
	const gap = 30 * time.Millisecond
	c.enqueue(msg(1))
	if _, err := dec.ReadFrame(ctx, cws); err != nil {
		t.Fatal(err)
	}
	waitWriterDone(t, c)
	c.mu.Lock()
	first := c.lastFrame
	c.mu.Unlock()

	c.cork()
	c.enqueue(msg(2))
	c.uncorkHeld(gap)
	frame, err := dec.ReadFrame(ctx, cws)
	if err != nil {
		t.Fatal(err)
	}
	if msgs, err := dec.Decode(frame); err != nil || len(msgs) != 1 || msgs[0].Rev != 2 {
		t.Fatalf("got %.80s (%v), want the op of rev 2", frame, err)
	}
	c.mu.Lock()
	second := c.lastFrame
	c.mu.Unlock()
	if d := second.Sub(first); d < gap {
		t.Errorf("the held frame was taken %v after the one before, want at least %v", d, gap)
	}
}

// TestHeldConnCloses: a held connection that fails sends what it held,
// its error, and closes with its code, without waiting for the hold.
func TestHeldConnCloses(t *testing.T) {
	c, cws := corkPair(t)
	ctx := guardCtx(t)
	var dec FrameDecoder
	c.enqueue(appendOpMessage(nil, 1, ot.Op{ot.Insert("x")}, "a", 1))
	if _, err := dec.ReadFrame(ctx, cws); err != nil {
		t.Fatal(err)
	}
	waitWriterDone(t, c)
	c.cork()
	c.enqueue(appendOpMessage(nil, 2, ot.Op{ot.Insert("x")}, "a", 2))
	c.uncorkHeld(time.Hour)
	c.fail(errorf(CodeBadOp, "no"))
	var types []string
	for {
		frame, err := dec.ReadFrame(ctx, cws)
		if err != nil {
			break
		}
		msgs, _ := dec.Decode(frame)
		for _, m := range msgs {
			types = append(types, m.Type)
		}
	}
	if len(types) != 2 || types[0] != typeOp || types[1] != typeError {
		t.Errorf("got messages %v, want [op error]", types)
	}
}
