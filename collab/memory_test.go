package collab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

// Memory the server may spend on one idle connection: its goroutines'
// stacks, buffers and queue (docs/performance.md, "Abuse resistance:
// memory").
const maxIdleConnBytes = 32 << 10

// createChildDoc makes a document on a child server.
func createChildDoc(t *testing.T, c *memChild, body string) (id, viewID string) {
	t.Helper()
	resp, err := c.http.Post(c.URL+"/api/docs", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct{ ID, ViewID string }
	if err := decodeJSON(resp, &d); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %v", resp.StatusCode, err)
	}
	return d.ID, d.ViewID
}

// idleEditor opens an editing session on a child and waits for its
// welcome; it then stays connected without reading.
func idleEditor(t *testing.T, ctx context.Context, c *memChild, id string) {
	t.Helper()
	r, _, err := dialRaw(ctx, "ws"+strings.TrimPrefix(c.URL, "http")+"/api/docs/"+id+"/ws")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { r.ws.CloseNow() })
	r.hello(t, ctx, uuid.NewString(), -1)
}

// idleViewer sends GET path over a raw connection and, with untilEvent,
// reads up to the end of the first SSE event; then it reads no more. rcvbuf, when
// positive, is the connection's receive buffer, set before it connects.
func idleViewer(t *testing.T, baseURL, path string, rcvbuf int, untilEvent bool) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: guard}
	if rcvbuf > 0 {
		d.Control = setRcvbuf(rcvbuf)
	}
	conn, err := d.Dial("tcp", strings.TrimPrefix(baseURL, "http://"))
	if err != nil {
		t.Fatalf("dial viewer: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", path, conn.RemoteAddr())
	if !untilEvent {
		return conn
	}
	conn.SetReadDeadline(time.Now().Add(guard))
	var got []byte
	buf := make([]byte, 4096)
	for i := -1; i < 0 || !bytes.Contains(got[i:], []byte("\n\n")); i = bytes.Index(got, []byte("\nevent: ")) {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("viewer: %v after %q", err, got)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 200")) {
		t.Fatalf("viewer got %.200q, want 200", got)
	}
	conn.SetReadDeadline(time.Time{})
	return conn
}

// TestIdleConnectionMemory measures what the server holds for each idle
// editor and each idle viewer: heap and stacks after a full GC, in a
// child process. Each must stay under maxIdleConnBytes.
func TestIdleConnectionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens a thousand connections")
	}
	const docs, perDoc = 10, 50
	child := startMemChild(t, Options{MaxEditors: perDoc + 1})
	ctx := guardCtx(t)
	ids := make([]string, docs)
	for i := range ids {
		ids[i], _ = createChildDoc(t, child, `{"text":"hello, world"}`)
		// One of each first, so that the baseline has the documents
		// loaded and the code paths warm.
		idleEditor(t, ctx, child, ids[i])
		idleViewer(t, child.URL, "/api/docs/"+ids[i]+"/events", 0, true)
	}
	measure := func(what string, open func(id string)) {
		before := child.mem(t)
		for range perDoc - 1 {
			for _, id := range ids {
				open(id)
			}
		}
		time.Sleep(200 * time.Millisecond) // let the last writes finish
		after := child.mem(t)
		if dir := os.Getenv("COLLAB_HEAP_PROFILE"); dir != "" {
			resp, err := child.http.Get(child.URL + "/debug/heap")
			if err == nil {
				f, _ := os.Create(filepath.Join(dir, what+".pprof"))
				io.Copy(f, resp.Body)
				f.Close()
				resp.Body.Close()
			}
		}
		n := int64(docs * (perDoc - 1))
		live := (after.Live() - before.Live()) / n
		t.Logf("%d idle %ss: %d bytes each (heap %d, stacks %d, goroutines %d); RSS %d bytes each",
			n, what, live, (int64(after.HeapInuse)-int64(before.HeapInuse))/n,
			(int64(after.StackInuse)-int64(before.StackInuse))/n,
			(after.Goroutines-before.Goroutines)/int(n), (after.RSS-before.RSS)/n)
		if live > maxIdleConnBytes {
			t.Errorf("an idle %s costs the server %d bytes, want at most %d", what, live, maxIdleConnBytes)
		}
	}
	measure("editor", func(id string) { idleEditor(t, ctx, child, id) })
	measure("viewer", func(id string) { idleViewer(t, child.URL, "/api/docs/"+id+"/events", 0, true) })
}

// Peak memory the server may reach with slowViewers slow viewers of a
// document of largeDocChars code points (docs/performance.md).
const (
	largeDocChars   = 2_000_000
	slowViewers     = 200
	maxSlowPeakRSS  = 200 << 20
	abortSlowPeakAt = 600 << 20 // stop early, rather than eat the machine
)

// TestSlowViewersOfLargeDocument: viewers of a document of 2,000,000
// emoji (8 MB of UTF-8) that stop reading, and slow readers of its text,
// while an editor keeps changing it, do not make the server's memory grow
// with their number: they share one snapshot of the text instead of
// holding a copy each. It once took 150 such viewers to reach 2 GB.
func TestSlowViewersOfLargeDocument(t *testing.T) {
	if testing.Short() {
		t.Skip("a document of 8 MB and a few hundred connections")
	}
	child := startMemChild(t, Options{MaxDocChars: largeDocChars})
	ctx := guardCtx(t)
	text := strings.Repeat("😀", largeDocChars)
	id, viewID := createChildDoc(t, child, `{"text":"`+text+`"}`)
	text = ""

	// An editor, to change the document while viewers arrive.
	ed, _, err := dialRaw(ctx, "ws"+strings.TrimPrefix(child.URL, "http")+"/api/docs/"+id+"/ws")
	if err != nil {
		t.Fatal(err)
	}
	defer ed.ws.CloseNow()
	ed.hello(t, ctx, uuid.NewString(), -1)
	var seq int64
	edit := func() {
		seq++
		// Replace one emoji: the length stays at the limit.
		ed.sendOp(t, ctx, seq, seq, ot.Op{ot.Insert("🙂"), ot.Delete(1), ot.Retain(largeDocChars - 1)})
		if ack := ed.expect(t, ctx, typeAck); ack.Seq != seq {
			t.Fatalf("ack got seq %d, want %d", ack.Seq, seq)
		}
	}

	base := child.mem(t)
	t.Logf("baseline with the document loaded: live %s, RSS %s, peak so far %s (creating it)", mib(base.Live()), mib(base.RSS), mib(base.HWM))
	// From here on, the peak is that of the slow readers' phase.
	child.resetPeak(t)
	check := func(stage string) {
		rss, hwm := child.procMem()
		if hwm > abortSlowPeakAt {
			t.Fatalf("%s: server peak RSS %s, over %s: stopped early", stage, mib(hwm), mib(abortSlowPeakAt))
		}
		_ = rss
	}
	const rcvbuf = 16 << 10
	for i := range slowViewers {
		if i%40 == 39 {
			edit()
		}
		idleViewer(t, child.URL, "/api/view/"+viewID+"/events", rcvbuf, false)
		if i%10 == 9 {
			time.Sleep(20 * time.Millisecond) // let the server reach its writes
			check(fmt.Sprintf("%d viewers", i+1))
		}
	}
	for i := range 50 {
		idleViewer(t, child.URL, "/api/docs/"+id+"/text", rcvbuf, false)
		idleViewer(t, child.URL, "/api/view/"+viewID, rcvbuf, false)
		if i%10 == 9 {
			time.Sleep(20 * time.Millisecond)
			check(fmt.Sprintf("%d slow readers of the text", 2*(i+1)))
		}
	}
	time.Sleep(500 * time.Millisecond) // every handler is blocked in its write by now
	check("all connected")
	after := child.mem(t)
	t.Logf("%d slow viewers and 100 slow readers: live %s (%+d KiB each), RSS %s, peak %s",
		slowViewers, mib(after.Live()), (after.Live()-base.Live())/(slowViewers+100)>>10, mib(after.RSS), mib(after.HWM))
	if after.HWM > maxSlowPeakRSS {
		t.Errorf("server peak RSS %s, want at most %s", mib(after.HWM), mib(maxSlowPeakRSS))
	}
	// Beyond the shared snapshots, each slow connection holds what an
	// idle one does, plus what its write has in flight.
	if per := (after.Live() - base.Live() - 4*largeDocChars*4) / (slowViewers + 100); per > 4*maxIdleConnBytes {
		t.Errorf("each slow connection holds %d bytes beyond the shared snapshots, want at most %d", per, 4*maxIdleConnBytes)
	}
	// The server still serves: the editor's next op is acknowledged.
	edit()
}
