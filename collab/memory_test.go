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

// idleViewer opens an SSE stream on a child over a raw connection, reads
// up to the end of its first event, and then reads no more. rcvbuf, when
// positive, is the connection's receive buffer, set before it connects.
func idleViewer(t *testing.T, c *memChild, path string, rcvbuf int, untilEvent bool) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: guard}
	if rcvbuf > 0 {
		d.Control = setRcvbuf(rcvbuf)
	}
	conn, err := d.Dial("tcp", strings.TrimPrefix(c.URL, "http://"))
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
		idleViewer(t, child, "/api/docs/"+ids[i]+"/events", 0, true)
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
	measure("viewer", func(id string) { idleViewer(t, child, "/api/docs/"+id+"/events", 0, true) })
}
