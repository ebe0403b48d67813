package collab

import (
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestDetachedSessionKeepsItsPlace: an editing session runs on a
// goroutine of its own once the handshake is done, and yet it keeps its
// place under the connection caps until it ends, and frees it then.
func TestDetachedSessionKeepsItsPlace(t *testing.T) {
	ts := newTestServer(t, Options{MaxConnsPerAddr: 1})
	id, _ := ts.createDoc(t, "x")
	ctx := guardCtx(t)
	first := ts.dial(t, id, ClientOptions{})
	if _, resp, err := websocket.Dial(ctx, ts.wsURL(id), nil); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a second session from the address: %v, want 429", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(guard); ; {
		ws, resp, err := websocket.Dial(ctx, ts.wsURL(id), nil)
		if err == nil {
			ws.CloseNow()
			break
		}
		if resp == nil || resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("after the first session ended: %v, want its place freed", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
