package collab

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
)

// TestSlowReaderIsCut: a reader that stops reading a large text is
// disconnected once its write deadline (WriteTimeout plus the size at
// MinWriteRate) has passed, so that it cannot pin an old revision's text
// for longer. Here the deadline is about WriteTimeout.
func TestSlowReaderIsCut(t *testing.T) {
	ts := newTestServer(t, Options{WriteTimeout: 200 * time.Millisecond, MinWriteRate: 1 << 30})
	// 8 MB: more than the socket buffers take (the server's send buffer
	// may grow to 4 MB).
	text := strings.Repeat("😀", 1_999_000)
	id, viewID := ts.createDoc(t, text)
	for _, path := range []string{"/api/docs/" + id + "/text", "/api/docs/" + id, "/api/view/" + viewID, "/api/view/" + viewID + "/events"} {
		conn := idleViewer(t, ts.URL, path, 4<<10, false)
		// Once the first bytes are here, the server is writing (however
		// long a loaded machine took to get there); then stop reading until
		// well past the deadline.
		conn.SetReadDeadline(time.Now().Add(guard))
		first, err := conn.Read(make([]byte, 1024))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		time.Sleep(time.Second)
		n, err := io.Copy(io.Discard, conn)
		n += int64(first)
		if err != nil {
			t.Errorf("%s: the server never closed the connection: %v after %d bytes", path, err, n)
		} else if n >= int64(len(text)) {
			t.Errorf("%s: got %d bytes, want the body cut short of %d", path, n, len(text))
		}
	}
	// The server still serves; checked on a small document, since this
	// server's 200 ms deadline cuts an honest reader of the 8 MB text too
	// on a loaded machine.
	small, _ := ts.createDoc(t, "small")
	checkServing(t, ts, small)
}

// TestLargeTextReachesReader: the same large text does reach a reader
// that reads, under the default deadline: sharing the snapshot changes
// nothing of what is sent.
func TestLargeTextReachesReader(t *testing.T) {
	ts := newTestServer(t, Options{})
	text := strings.Repeat("😀<\u2028>", 1<<16)
	id, viewID := ts.createDoc(t, text)
	resp, err := http.Get(ts.URL + "/api/docs/" + id + "/text")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != text || resp.Header.Get("Content-Length") == "" {
		t.Errorf("/text got %d bytes (%v), Content-Length %q; want the text", len(body), err, resp.Header.Get("Content-Length"))
	}
	var doc struct {
		ID, ViewID, Text string
		Rev              int64
	}
	getJSONStatus(t, ts.URL+"/api/docs/"+id, http.StatusOK, &doc)
	if doc.ID != id || doc.ViewID != viewID || doc.Rev != 1 || doc.Text != text {
		t.Errorf("/api/docs/{id} got id %q view %q rev %d and %d bytes, want %q %q 1 and the text", doc.ID, doc.ViewID, doc.Rev, len(doc.Text), id, viewID)
	}
	var view map[string]any
	getJSONStatus(t, ts.URL+"/api/view/"+viewID, http.StatusOK, &view)
	if len(view) != 3 || view["viewId"] != viewID || view["rev"] != float64(1) || view["text"] != text {
		t.Errorf("/api/view got %d fields, want exactly viewId, rev 1 and the text", len(view))
	}
}

// TestMaxViewers: a document's viewer past MaxViewers is answered 429
// with the JSON error body before any stream starts; once a viewer
// leaves, there is room again.
func TestMaxViewers(t *testing.T) {
	ts := newTestServer(t, Options{MaxViewers: 2})
	id, viewID := ts.createDoc(t, "watched")
	a := openSSE(t, ts.Client(), viewEventsURL(ts.URL, viewID), nil)
	openSSE(t, ts.Client(), docEventsURL(ts.URL, id), nil)
	var e apiError
	getJSONStatus(t, viewEventsURL(ts.URL, viewID), http.StatusTooManyRequests, &e)
	if e.Error.Code != CodeRateLimited || !strings.Contains(e.Error.Message, "viewers") {
		t.Errorf("third viewer got %+v, want rate_limited about viewers", e)
	}
	a.close()
	deadline := time.Now().Add(guard)
	for {
		resp, err := http.Get(viewEventsURL(ts.URL, viewID))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("after a viewer left: got %d, want 200", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestViewersShareSnapshot: a new viewer of a document edited since the
// hub's snapshot gets that snapshot followed by the ops since it, and
// ends at the same text as everyone; one resuming from a recent revision
// gets just the ops after it. Nothing is missing or repeated.
func TestViewersShareSnapshot(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, viewID := ts.createDoc(t, "abc")
	ctx := guardCtx(t)
	first := openSSE(t, ts.Client(), viewEventsURL(ts.URL, viewID), nil)
	if m := first.nextEvent(t); m.Kind != "snapshot" || m.ID != 1 || m.Text != "abc" {
		t.Fatalf("first viewer got %v, want snapshot 1 \"abc\"", m)
	}
	c := ts.dial(t, id, ClientOptions{})
	for i, s := range []string{"d", "e", "f"} {
		if err := c.Edit(ot.Op{ot.Retain(3 + i), ot.Insert(s)}); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		first.nextEvent(t)
	}
	late := openSSE(t, ts.Client(), viewEventsURL(ts.URL, viewID), nil)
	m := late.nextEvent(t)
	if m.Kind != "snapshot" || m.ID != 1 {
		t.Fatalf("late viewer got %v first, want the shared snapshot of rev 1", m)
	}
	text, rev := m.Text, m.ID
	for rev < 4 {
		m := late.nextEvent(t)
		if m.Kind != "op" || m.ID != rev+1 {
			t.Fatalf("late viewer at rev %d got %v, want op %d", rev, m, rev+1)
		}
		var err error
		if text, err = ot.Apply(text, m.Op); err != nil {
			t.Fatal(err)
		}
		rev = m.ID
	}
	if text != "abcdef" {
		t.Errorf("late viewer ends at %q, want %q", text, "abcdef")
	}
	resumed := openSSE(t, ts.Client(), viewEventsURL(ts.URL, viewID)+"?since=2", nil)
	for want := int64(3); want <= 4; want++ {
		if m := resumed.nextEvent(t); m.Kind != "op" || m.ID != want {
			t.Fatalf("resumed viewer got %v, want op %d", m, want)
		}
	}
}
