package collab

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// TestFrameJoiner: messages of every size around the write buffer's,
// written by a conn through the session's Hijack and its joiner, arrive
// whole and in order, with pings answered in between.
func TestFrameJoiner(t *testing.T) {
	accepted := make(chan *conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j := &frameJoiner{}
		ws, err := websocket.Accept(&jsonErrorWriter{ResponseWriter: w, joiner: j}, r, nil)
		if err != nil {
			return
		}
		opts := Options{}
		opts.setDefaults()
		ctx, cancel := context.WithCancel(context.Background())
		c := newConn(ctx, ws, &opts)
		c.joiner = j
		go ws.CloseRead(ctx) // answers pings
		accepted <- c
		t.Cleanup(func() { c.finish(cancel) })
	}))
	t.Cleanup(srv.Close)
	ctx := guardCtx(t)
	cws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cws.CloseNow() })
	cws.SetReadLimit(-1)
	c := <-accepted

	sizes := []int{1, 125, 126, 900, 1013, 1014, 1015, 1019, 1020, 1021, 1022, 1023, 1024, 1025, 2047, 2048, 2049, 5000, 65535, 65536, 70000}
	send := func() {
		t.Helper()
		for i, n := range sizes {
			// One at a time: messages queued together would go as one
			// frame, a JSON array of them.
			w := bytes.Repeat([]byte{'a' + byte(i%26)}, n)
			c.enqueue(w)
			_, got, err := cws.Read(ctx)
			if err != nil {
				t.Fatalf("message %d (%d bytes): %v", i, len(w), err)
			}
			if !bytes.Equal(got, w) {
				t.Fatalf("message %d: got %d bytes (%.20q…), want %d of %q", i, len(got), got, len(w), w[:1])
			}
		}
	}
	send()

	// Pings from the client make the server write pongs from its reading
	// goroutine while the writer writes frames.
	pingCtx, stopPings := context.WithCancel(ctx)
	defer stopPings()
	go func() {
		for pingCtx.Err() == nil && cws.Ping(pingCtx) == nil {
		}
	}()
	send()
}
