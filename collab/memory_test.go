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

// The memory an idle connection, and a crowd of slow ones, may cost the
// server (docs/performance.md, "Abuse resistance: memory"). The tests
// assert these; the benchmarks below report the figures.
const (
	maxIdleConnBytes = 32 << 10

	largeDocChars   = 2_000_000
	slowViewers     = 200
	slowReaders     = 100 // of /text and /api/view, half each
	maxSlowPeakRSS  = 200 << 20
	abortSlowPeakAt = 600 << 20 // stop early, rather than eat the machine
)

func TestIdleConnectionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens a thousand connections")
	}
	f := measureIdle(t)
	if f.editor > maxIdleConnBytes {
		t.Errorf("an idle editor costs the server %d bytes, want at most %d", f.editor, maxIdleConnBytes)
	}
	if f.viewer > maxIdleConnBytes {
		t.Errorf("an idle viewer costs the server %d bytes, want at most %d", f.viewer, maxIdleConnBytes)
	}
}

// BenchmarkIdleConnectionMemory reports what one idle editor and one idle
// viewer cost the server. Run it with -benchtime 1x.
func BenchmarkIdleConnectionMemory(b *testing.B) {
	f := measureIdle(b)
	b.ReportMetric(float64(f.editor), "B/editor")
	b.ReportMetric(float64(f.viewer), "B/viewer")
	b.ReportMetric(float64(f.editorRSS), "RSS-B/editor")
	b.ReportMetric(float64(f.viewerRSS), "RSS-B/viewer")
}

// TestSlowViewersOfLargeDocument: viewers of a document of 2,000,000
// emoji (8 MB of UTF-8) that stop reading, and slow readers of its text,
// while an editor keeps changing it, do not make the server's memory grow
// with their number: they share one snapshot of the text instead of
// holding a copy each. It once took 150 such viewers to reach 2 GB.
func TestSlowViewersOfLargeDocument(t *testing.T) {
	if testing.Short() {
		t.Skip("a document of 8 MB and a few hundred connections")
	}
	f := measureSlowViewers(t)
	if f.peak > maxSlowPeakRSS {
		t.Errorf("server peak RSS %s, want at most %s", mib(f.peak), mib(maxSlowPeakRSS))
	}
	// Beyond the shared snapshots (two revisions' text and JSON), each
	// slow connection holds what an idle one does, plus its write under way.
	if f.perConn > 4*maxIdleConnBytes {
		t.Errorf("each slow connection holds %d bytes beyond the shared snapshots, want at most %d", f.perConn, 4*maxIdleConnBytes)
	}
}

// BenchmarkSlowViewersOfLargeDocument reports the server's peak RSS with
// 200 slow viewers and 100 slow readers of a 2,000,000-emoji document.
// Run it with -benchtime 1x.
func BenchmarkSlowViewersOfLargeDocument(b *testing.B) {
	f := measureSlowViewers(b)
	b.ReportMetric(float64(f.peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(f.rss)/(1<<20), "RSS-MiB")
	b.ReportMetric(float64(f.live)/(1<<20), "live-MiB")
}

type idleFigures struct {
	editor, viewer       int64 // heap and stacks per connection
	editorRSS, viewerRSS int64 // RSS per connection
}

// measureIdle opens 490 idle editors, then 490 idle viewers, on a child
// server and measures what each costs it: heap and stacks after a full
// GC, and RSS.
func measureIdle(tb testing.TB) idleFigures {
	const docs, perDoc = 10, 50
	child := startMemChild(tb, Options{MaxEditors: perDoc + 1, MaxConns: 1 << 20, MaxConnsPerAddr: 1 << 20}) // all on loopback
	ctx, cancel := context.WithTimeout(context.Background(), 4*guard)
	defer cancel()
	ids := make([]string, docs)
	for i := range ids {
		ids[i], _ = createChildDoc(tb, child, `{"text":"hello, world"}`)
		// One of each first, so that the baseline has the documents
		// loaded and the code paths warm.
		idleEditor(tb, ctx, child.URL, ids[i])
		idleViewer(tb, child.URL, "/api/docs/"+ids[i]+"/events", 0, true)
	}
	var f idleFigures
	n := int64(docs * (perDoc - 1))
	// goroutines is how many an idle connection of the kind runs: writers
	// that are still sending (presence, on a loaded machine) are waited for.
	measure := func(what string, goroutines int, live, rss *int64, open func(id string)) {
		before := child.mem(tb)
		for range perDoc - 1 {
			for _, id := range ids {
				open(id)
			}
		}
		after := child.mem(tb)
		for deadline := time.Now().Add(guard); after.Goroutines-before.Goroutines > int(n)*goroutines && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			after = child.mem(tb)
		}
		if dir := os.Getenv("COLLAB_HEAP_PROFILE"); dir != "" {
			if resp, err := child.http.Get(child.URL + "/debug/heap"); err == nil {
				if f, err := os.Create(filepath.Join(dir, what+".pprof")); err == nil {
					io.Copy(f, resp.Body)
					f.Close()
				}
				resp.Body.Close()
			}
		}
		*live = (after.Live() - before.Live()) / n
		*rss = (after.RSS - before.RSS) / n
		tb.Logf("%d idle %ss: %d bytes each (heap %d, stacks %d, goroutines %d); RSS %d bytes each",
			n, what, *live, (int64(after.HeapInuse)-int64(before.HeapInuse))/n,
			(int64(after.StackInuse)-int64(before.StackInuse))/n,
			(after.Goroutines-before.Goroutines)/int(n), *rss)
	}
	measure("editor", 1, &f.editor, &f.editorRSS, func(id string) { idleEditor(tb, ctx, child.URL, id) })
	measure("viewer", 2, &f.viewer, &f.viewerRSS, func(id string) { idleViewer(tb, child.URL, "/api/docs/"+id+"/events", 0, true) })
	return f
}

type slowFigures struct {
	live, rss, peak int64 // of the server, with every slow connection open
	perConn         int64 // live memory per connection beyond the snapshots
}

// measureSlowViewers opens slowViewers SSE viewers that never read on a
// child server holding a document of largeDocChars emoji, while an editor
// changes it every 40 viewers, then slowReaders readers of its text that
// never read either, and measures the server's memory. It stops early if
// the server's RSS passes abortSlowPeakAt.
func measureSlowViewers(tb testing.TB) slowFigures {
	child := startMemChild(tb, Options{MaxDocChars: largeDocChars, MaxConns: 1 << 20, MaxConnsPerAddr: 1 << 20}) // all on loopback
	ctx, cancel := context.WithTimeout(context.Background(), 4*guard)
	defer cancel()
	text := strings.Repeat("😀", largeDocChars)
	id, viewID := createChildDoc(tb, child, `{"text":"`+text+`"}`)
	text = ""

	// An editor, to change the document while viewers arrive.
	ed := idleEditor(tb, ctx, child.URL, id)
	var seq int64
	edit := func() {
		seq++
		// Replace one emoji: the length stays at the limit. Rev = seq:
		// only this editor edits, after op 1.
		op := ot.Op{ot.Insert("🙂"), ot.Delete(1), ot.Retain(largeDocChars - 1)}
		if err := ed.send(ctx, fmt.Sprintf(`{"type":"op","rev":%d,"seq":%d,"op":%s}`, seq, seq, op)); err != nil {
			tb.Fatal(err)
		}
		for {
			m, err := ed.next(ctx)
			if err != nil {
				tb.Fatalf("editor: %v", err)
			}
			if m.Type == typeAck && m.Seq == seq {
				return
			}
			if m.Type != typePresence {
				tb.Fatalf("editor got %s, want the ack of seq %d", m.raw, seq)
			}
		}
	}

	base := child.mem(tb)
	tb.Logf("baseline with the document loaded: live %s, RSS %s, peak so far %s (creating it)", mib(base.Live()), mib(base.RSS), mib(base.HWM))
	// From here on, the peak is that of the slow readers' phase.
	child.resetPeak(tb)
	check := func(stage string) {
		if _, hwm := child.procMem(); hwm > abortSlowPeakAt {
			tb.Fatalf("%s: server peak RSS %s, over %s: stopped early", stage, mib(hwm), mib(abortSlowPeakAt))
		}
	}
	const rcvbuf = 16 << 10
	for i := range slowViewers {
		if i%40 == 39 {
			edit()
		}
		idleViewer(tb, child.URL, "/api/view/"+viewID+"/events", rcvbuf, false)
		if i%10 == 9 {
			time.Sleep(20 * time.Millisecond) // let the server reach its writes
			check(fmt.Sprintf("%d viewers", i+1))
		}
	}
	for i := range slowReaders / 2 {
		idleViewer(tb, child.URL, "/api/docs/"+id+"/text", rcvbuf, false)
		idleViewer(tb, child.URL, "/api/view/"+viewID, rcvbuf, false)
		if i%10 == 9 {
			time.Sleep(20 * time.Millisecond)
			check(fmt.Sprintf("%d slow readers of the text", 2*(i+1)))
		}
	}
	time.Sleep(500 * time.Millisecond) // every handler is blocked in its write by now
	check("all connected")
	after := child.mem(tb)
	n := int64(slowViewers + slowReaders)
	// Each is being served (a goroutine or two of its own), not refused.
	if got := after.Goroutines - base.Goroutines; got < int(n) {
		tb.Fatalf("the server runs %d more goroutines, want at least one per slow connection (%d): were they refused?", got, n)
	}
	f := slowFigures{live: after.Live(), rss: after.RSS, peak: after.HWM}
	// Two revisions' snapshots, text and JSON, 4 bytes a code point each.
	f.perConn = (after.Live() - base.Live() - 4*largeDocChars*4) / n
	tb.Logf("%d slow viewers and %d slow readers: live %s (%d bytes each beyond the snapshots), RSS %s, peak %s",
		slowViewers, slowReaders, mib(after.Live()), f.perConn, mib(after.RSS), mib(after.HWM))
	// The server still serves: the editor's next op is acknowledged.
	edit()
	return f
}

// createChildDoc makes a document on a child server.
func createChildDoc(tb testing.TB, c *memChild, body string) (id, viewID string) {
	tb.Helper()
	resp, err := c.http.Post(c.URL+"/api/docs", "application/json", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct{ ID, ViewID string }
	if err := decodeJSON(resp, &d); err != nil || resp.StatusCode != http.StatusCreated {
		tb.Fatalf("create: %d %v", resp.StatusCode, err)
	}
	return d.ID, d.ViewID
}

// idleEditor opens an editing session and waits for its welcome; unless
// the caller reads from it, it then reads nothing more.
func idleEditor(tb testing.TB, ctx context.Context, baseURL, id string) *rawConn {
	tb.Helper()
	r, _, err := dialRaw(ctx, "ws"+strings.TrimPrefix(baseURL, "http")+"/api/docs/"+id+"/ws")
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	tb.Cleanup(func() { r.ws.CloseNow() })
	if err := r.send(ctx, map[string]any{"type": "hello", "client": uuid.NewString(), "name": "idle"}); err != nil {
		tb.Fatal(err)
	}
	for {
		m, err := r.next(ctx)
		if err != nil {
			tb.Fatalf("waiting for the welcome: %v", err)
		}
		if m.Type == typeWelcome {
			return r
		}
	}
}

// idleViewer sends GET path over a raw connection and, with untilEvent,
// reads up to the end of the first SSE event; then it reads no more.
// rcvbuf, when positive, is the connection's receive buffer, set before
// it connects.
func idleViewer(tb testing.TB, baseURL, path string, rcvbuf int, untilEvent bool) net.Conn {
	tb.Helper()
	d := net.Dialer{Timeout: guard}
	if rcvbuf > 0 {
		d.Control = setRcvbuf(rcvbuf)
	}
	conn, err := d.Dial("tcp", strings.TrimPrefix(baseURL, "http://"))
	if err != nil {
		tb.Fatalf("dial viewer: %v", err)
	}
	tb.Cleanup(func() { conn.Close() })
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
			tb.Fatalf("viewer: %v after %q", err, got)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 200")) {
		tb.Fatalf("viewer got %.200q, want 200", got)
	}
	conn.SetReadDeadline(time.Time{})
	return conn
}
