package collab

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/collabd/collabd/ot"
)

// corkPair is a conn on the server end of a loopback WebSocket and the
// client end, for reading what the conn writes.
func corkPair(t *testing.T) (*conn, *websocket.Conn) {
	t.Helper()
	accepted := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ws, err := websocket.Accept(w, r, nil); err == nil {
			accepted <- ws
		}
	}))
	t.Cleanup(srv.Close)
	ctx := guardCtx(t)
	cws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cws.CloseNow() })
	opts := Options{}
	opts.setDefaults()
	cctx, cancel := context.WithCancel(context.Background())
	c := newConn(cctx, <-accepted, &opts)
	t.Cleanup(func() { c.finish(cancel) })
	return c, cws
}

// TestCorkBatchesFrames: what is queued while a connection is corked goes
// out when it is uncorked, in one frame, in order; a cork holds back at
// most a frame's worth.
func TestCorkBatchesFrames(t *testing.T) {
	c, cws := corkPair(t)
	ctx := guardCtx(t)
	var dec FrameDecoder
	msg := func(rev int64) []byte {
		return appendOpMessage(nil, rev, ot.Op{ot.Insert("x")}, "a", rev)
	}

	c.cork()
	for rev := int64(1); rev <= 3; rev++ {
		c.enqueue(msg(rev))
	}
	c.mu.Lock()
	writing := c.writing
	c.mu.Unlock()
	if writing {
		t.Fatal("a writer started while corked with 3 messages queued")
	}
	c.uncork()
	frame, err := dec.ReadFrame(ctx, cws)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := dec.Decode(frame)
	if err != nil || len(msgs) != 3 || frame[0] != '[' {
		t.Fatalf("after uncork: got %d messages (%v) in %.80s, want one frame of 3", len(msgs), err, frame)
	}
	for i, m := range msgs {
		if m.Rev != int64(i+1) {
			t.Errorf("message %d: got rev %d, want %d", i, m.Rev, i+1)
		}
	}

	// The writer of that frame may still be finishing: wait until it has
	// gone, so that a writer seen below is one the cork let start.
	for {
		c.mu.Lock()
		writing := c.writing
		c.mu.Unlock()
		if !writing {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the writer of the first frame never finished")
		}
		time.Sleep(time.Millisecond)
	}

	// A frame's worth starts the writer, cork or not.
	c.cork()
	total := maxFrameMessages + 5
	for rev := 1; rev <= total; rev++ {
		c.enqueue(msg(int64(rev)))
		if rev == maxFrameMessages-1 {
			c.mu.Lock()
			writing := c.writing
			c.mu.Unlock()
			if writing {
				t.Fatalf("a writer started while corked with %d messages queued", rev)
			}
		}
	}
	got := 0
	for got < maxFrameMessages {
		frame, err := dec.ReadFrame(ctx, cws)
		if err != nil {
			t.Fatalf("corked with %d messages queued: read after %d: %v", total, got, err)
		}
		msgs, err := dec.Decode(frame)
		if err != nil {
			t.Fatal(err)
		}
		got += len(msgs)
	}
	c.uncork()
	for got < total {
		frame, err := dec.ReadFrame(ctx, cws)
		if err != nil {
			t.Fatal(err)
		}
		msgs, _ := dec.Decode(frame)
		got += len(msgs)
	}
	if got != total {
		t.Errorf("got %d messages, want %d", got, total)
	}
}

// TestCorkedConnCloses: a corked connection that fails still sends its
// error and closes with its code.
func TestCorkedConnCloses(t *testing.T) {
	c, cws := corkPair(t)
	ctx := guardCtx(t)
	c.cork()
	c.enqueue(appendAck(nil, 1, 1))
	c.fail(errorf(CodeBadOp, "no"))
	var dec FrameDecoder
	var types []string
	for {
		frame, err := dec.ReadFrame(ctx, cws)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusCode(closeCodes[CodeBadOp]) {
				t.Errorf("got %v, want close code %d", err, closeCodes[CodeBadOp])
			}
			break
		}
		msgs, _ := dec.Decode(frame)
		for _, m := range msgs {
			types = append(types, m.Type)
		}
	}
	if strings.Join(types, ",") != "ack,error" {
		t.Errorf("got messages %v, want ack, error", types)
	}
}
