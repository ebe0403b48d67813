package collab

import (
	"context"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

// TestSlowEditorIsDropped: an editor that never reads fills its socket
// and then its small send queue, and is disconnected, while a fast editor
// keeps receiving every op: the hub never waits for the slow one.
func TestSlowEditorIsDropped(t *testing.T) {
	store := newMemStore()
	srv := New(store, Options{SendQueue: 4, WriteTimeout: 500 * time.Millisecond, RateLimit: 1e6, RateBurst: 1e6})
	hs := httptest.NewUnstartedServer(srv)
	// Small server-side socket buffers, so that a client that does not
	// read blocks the server's writes soon.
	hs.Listener = sndbufListener{hs.Listener}
	hs.Start()
	ts := &testServer{Server: hs, srv: srv, store: store}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close server: %v", err)
		}
		hs.Close()
	})
	id, _ := ts.createDoc(t, "x")
	ctx := guardCtx(t)
	slowID := uuid.NewString()
	slow := ts.raw(t, id)
	slow.hello(t, ctx, slowID, -1) // and never reads again
	fast := ts.dial(t, id, ClientOptions{Name: "fast"})
	writer := ts.dial(t, id, ClientOptions{Name: "writer"})
	if err := fast.Wait(ctx, func(v ClientView) bool { _, ok := v.Peer(srv.author(slowID)); return ok }); err != nil {
		t.Fatal(err)
	}

	// Each op replaces the whole text with 16 KiB, so that the slow
	// editor's socket buffers fill after some dozens.
	chunk := strings.Repeat("0123456789abcdef", 1024)
	// At least maxEdits, and for at least minTime: closing the slow
	// connection waits out its write deadline and close handshake, and a
	// fast server gets through 5,000 edits sooner than that.
	const maxEdits, minTime = 5000, 15 * time.Second
	dropped := false
	start := time.Now()
	for i := 0; (i < maxEdits || time.Since(start) < minTime) && !dropped; i++ {
		text := chunk[i%16:] + chunk[:i%16]
		if err := writer.EditFunc(func(old string) ot.Op {
			return ot.Op{}.Delete(len([]rune(old))).Insert(text)
		}); err != nil {
			t.Fatal(err)
		}
		if err := writer.WaitSynced(ctx); err != nil {
			t.Fatalf("edit %d: %v", i, err)
		}
		// The fast editor has every op so far, slow one or not.
		rev := writer.Rev()
		if err := fast.WaitRev(ctx, rev); err != nil {
			t.Fatalf("fast editor stuck before rev %d: %v", rev, err)
		}
		if got := fast.Text(); got != text {
			t.Fatalf("fast editor at rev %d has %d bytes, want the writer's text", rev, len(got))
		}
		present := slices.ContainsFunc(fast.Peers(), func(p ClientPeer) bool { return p.Author == srv.author(slowID) })
		dropped = !present
	}
	if !dropped {
		t.Fatalf("the editor that never reads was still connected after %d edits of 16 KiB and %v", maxEdits, minTime)
	}
	// Its connection ends, whatever it finds first in its buffers.
	if _, _, err := slow.closeStatus(ctx); err != nil && ctx.Err() != nil {
		t.Errorf("slow connection did not end: %v", err)
	}
	checkServing(t, ts, id)
}

// sndbufListener shrinks the send buffer of every accepted connection.
type sndbufListener struct{ net.Listener }

func (l sndbufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}
