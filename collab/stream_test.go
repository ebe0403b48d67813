package collab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/collabd/collabd/ot"
)

// openStream starts POST .../stream?query with a body the test writes
// to, and returns the writer and, once the server has answered, the
// response's lines.
type testStream struct {
	body  *io.PipeWriter
	resp  chan *http.Response
	errc  chan error
	lines *bufio.Scanner
}

func startStream(t *testing.T, ts *testServer, id, query string) *testStream {
	t.Helper()
	pr, pw := io.Pipe()
	st := &testStream{body: pw, resp: make(chan *http.Response, 1), errc: make(chan error, 1)}
	req, err := http.NewRequestWithContext(guardCtx(t), "POST", ts.URL+"/api/docs/"+id+"/stream?"+query, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			st.errc <- err
			return
		}
		st.resp <- resp
	}()
	t.Cleanup(func() { pw.Close() })
	return st
}

// write sends text on the body.
func (st *testStream) write(t *testing.T, text string) {
	t.Helper()
	if _, err := st.body.Write([]byte(text)); err != nil {
		t.Fatalf("stream body: %v", err)
	}
}

// response waits for the answer's headers.
func (st *testStream) response(t *testing.T) *http.Response {
	t.Helper()
	select {
	case resp := <-st.resp:
		t.Cleanup(func() { resp.Body.Close() })
		st.lines = bufio.NewScanner(resp.Body)
		return resp
	case err := <-st.errc:
		t.Fatalf("stream: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("stream: no answer")
	}
	return nil
}

// streamProgress is one NDJSON line.
type streamProgress struct {
	Rev      int64  `json:"rev"`
	Inserted int64  `json:"inserted"`
	Run      string `json:"run"`
	Done     bool   `json:"done"`
	Error    *struct{ Code, Message string }
}

func (st *testStream) next(t *testing.T) streamProgress {
	t.Helper()
	if !st.lines.Scan() {
		t.Fatalf("stream: no more lines: %v", st.lines.Err())
	}
	var p streamProgress
	if err := json.Unmarshal(st.lines.Bytes(), &p); err != nil {
		t.Fatalf("stream line %q: %v", st.lines.Text(), err)
	}
	return p
}

// untilDone reads lines up to the last one.
func (st *testStream) untilDone(t *testing.T) streamProgress {
	t.Helper()
	for {
		if p := st.next(t); p.Done {
			return p
		}
	}
}

// TestStreamWhileEditing: text streamed at a caret stays contiguous while
// an editor types before it, after it and right at its caret; the stream
// is a peer in presence while open; the last line names the run.
func TestStreamWhileEditing(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "before || after")
	ctx := guardCtx(t)
	c := ts.dial(t, id, ClientOptions{})
	st := startStream(t, ts, id, "at=8&name=Claude")
	st.write(t, "The ")
	resp := st.response(t)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/x-ndjson" {
		t.Fatalf("stream: got %d %q, want 200 application/x-ndjson", resp.StatusCode, ct)
	}
	p := st.next(t)
	if p.Inserted != 4 || p.Done {
		t.Fatalf("first line: got %+v, want 4 inserted", p)
	}
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if err := c.Wait(pctx, func(v ClientView) bool {
		for _, peer := range v.Peers() {
			if peer.Name == "Claude" && len(peer.Ranges) == 1 && peer.Ranges[0] == (ClientRange{12, 12}) {
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatalf("stream in presence: %v (peers %+v)", err, c.Peers())
	}
	words := []string{"quick ", "brown ", "fox ", "jumps"}
	for i, wd := range words {
		// The editor types at the start, at the end, and right where
		// the stream's caret is.
		at := c.Len()
		switch i % 3 {
		case 0:
			at = 0
		case 2:
			at = strings.Index(c.Text(), "|The") + 1 + len("The "+strings.Join(words[:i], ""))
		}
		if err := c.Edit(ot.Op{}.Retain(at).Insert(fmt.Sprintf("[%d]", i)).Retain(c.Len() - at)); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
		st.write(t, wd)
		st.next(t)
	}
	st.body.Close()
	last := st.untilDone(t)
	if last.Run == "" || last.Inserted != int64(len("The quick brown fox jumps")) {
		t.Errorf("last line: got %+v", last)
	}
	text, head := serverText(t, ts.URL, id)
	if !strings.Contains(text, "|The quick brown fox jumps") || last.Rev != head {
		t.Errorf("after the stream: got %q at %d (last line %+v), want the streamed text whole after the first bar", text, head, last)
	}
	if err := c.WaitRev(ctx, head); err != nil {
		t.Fatal(err)
	}
	if c.Text() != text {
		t.Errorf("editor: got %q, want %q", c.Text(), text)
	}
	pctx, pcancel = context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if err := c.Wait(pctx, func(v ClientView) bool { return len(v.Peers()) == 0 }); err != nil {
		t.Errorf("stream still in presence after it ended: %+v", c.Peers())
	}
	// The run reverts like any other.
	mustWrite(t, "POST", revertURL(ts, id), map[string]any{"run": last.Run})
	if text, _ := serverText(t, ts.URL, id); strings.Contains(text, "quick") || !strings.Contains(text, "[2]") {
		t.Errorf("after reverting the stream: got %q", text)
	}
}

// TestStreamEnds: an idle body ends the stream and keeps what was
// committed; a non-UTF-8 body is refused; a bad caret is refused.
func TestStreamEnds(t *testing.T) {
	ts := newTestServer(t, Options{StreamIdle: 300 * time.Millisecond})
	id, _ := ts.createDoc(t, "abc")
	st := startStream(t, ts, id, "at=end&name=slow")
	st.write(t, "def")
	st.response(t)
	st.next(t)
	last := st.untilDone(t) // nothing more comes: the idle timeout
	if last.Inserted != 3 || last.Run == "" {
		t.Errorf("idle stream's last line: got %+v", last)
	}
	if text, _ := serverText(t, ts.URL, id); text != "abcdef" {
		t.Errorf("after the idle stream: got %q", text)
	}

	bad := startStream(t, ts, id, "")
	bad.write(t, "ok\xff\xfe")
	bad.body.Close()
	resp := bad.response(t)
	var b strings.Builder
	io.Copy(&b, resp.Body)
	if resp.StatusCode != 400 && !strings.Contains(b.String(), CodeBadMessage) {
		t.Errorf("non-UTF-8 stream: got %d %s", resp.StatusCode, b.String())
	}
	for _, q := range []string{"at=99", "at=-1", "rev=99", "at=x"} {
		code, hdr, body := httpWrite(t, "POST", ts.URL+"/api/docs/"+id+"/stream?"+q, "x")
		wantAPIError(t, "stream "+q, code, hdr, body, 400, CodeBadOp)
	}
	code, hdr, body := httpWrite(t, "POST", ts.URL+"/api/docs/"+id+"/stream", "x", "Origin", "https://evil.example")
	wantAPIError(t, "stream from a foreign origin", code, hdr, body, 403, CodeForbidden)
}

// TestStreamDisconnect: a client that goes away mid-stream leaves what was
// committed, and the document takes other writes.
func TestStreamDisconnect(t *testing.T) {
	ts := newTestServer(t, Options{})
	id, _ := ts.createDoc(t, "")
	st := startStream(t, ts, id, "")
	st.write(t, "kept")
	resp := st.response(t)
	st.next(t)
	st.body.CloseWithError(fmt.Errorf("client gone"))
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		text, rev := serverText(t, ts.URL, id)
		if text == "kept" && rev == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after disconnect: got %q at %d", text, rev)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mustWrite(t, "PUT", textURL(ts, id), map[string]any{"text": "kept, then more"})
}

// TestStreamCaps: a document takes at most MaxStreamsPerDoc streams and
// an address at most MaxStreamsPerAddr; one past either is answered 429
// rate_limited with Retry-After before anything is read, and a stream
// that ends frees its place.
func TestStreamCaps(t *testing.T) {
	ts := newTestServer(t, Options{MaxStreamsPerDoc: 3, MaxStreamsPerAddr: 2})
	a, _ := ts.createDoc(t, "")
	b, _ := ts.createDoc(t, "")
	open := func(id string) *testStream {
		st := startStream(t, ts, id, "")
		st.write(t, "x")
		if resp := st.response(t); resp.StatusCode != http.StatusOK {
			t.Fatalf("stream on %s: got %d, want 200", id, resp.StatusCode)
		}
		st.next(t)
		return st
	}
	first := open(a)
	open(b)
	// All requests come from 127.0.0.1: the address is at its cap.
	code, hdr, body := httpWrite(t, "POST", ts.URL+"/api/docs/"+a+"/stream", "x")
	wantAPIError(t, "a third stream from one address", code, hdr, body, 429, CodeRateLimited)
	if hdr.Get("Retry-After") == "" || !strings.Contains(string(body), "this address") {
		t.Errorf("a third stream from one address: Retry-After %q, body %s", hdr.Get("Retry-After"), body)
	}
	first.body.Close()
	first.untilDone(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _, body = httpWrite(t, "POST", ts.URL+"/api/docs/"+a+"/stream", "y")
		if code == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code != http.StatusOK {
		t.Errorf("a stream once another ended: got %d %s, want 200", code, body)
	}

	// Per document, with room per address.
	ts2 := newTestServer(t, Options{MaxStreamsPerDoc: 1, MaxStreamsPerAddr: 10})
	c, _ := ts2.createDoc(t, "")
	st := startStream(t, ts2, c, "")
	st.write(t, "x")
	st.response(t)
	st.next(t)
	code, hdr, body = httpWrite(t, "POST", ts2.URL+"/api/docs/"+c+"/stream", "x")
	wantAPIError(t, "a second stream on a one-stream document", code, hdr, body, 429, CodeRateLimited)
	if !strings.Contains(string(body), "the document") {
		t.Errorf("a second stream on a one-stream document: body %s", body)
	}
}
