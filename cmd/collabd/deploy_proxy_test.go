package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The tests in this file put the proxy recipes of docs/deploy.md in front
// of a real collabd on loopback and use them as a browser would: an editor
// over WebSocket and a viewer over SSE, both through the proxy's TLS.

// deployFile reads a file of docs/deploy.
func deployFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs", "deploy", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// replaceOnce replaces old by new in s, failing the test unless old
// occurs exactly once: a recipe that changes shape must break the test
// rather than be tested half-templated.
func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("the recipe has %q %d times, want once: update the test's templating", old, n)
	}
	return strings.Replace(s, old, new, 1)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// collabdFlagExists reports whether this collabd has flag name, as -help
// lists it: the recipes mention flags that other changes add.
func collabdFlagExists(t *testing.T, name string) bool {
	t.Helper()
	var out bytes.Buffer
	run(context.Background(), []string{"-help"}, io.Discard, &out)
	return strings.Contains(out.String(), "\n  -"+name+" ")
}

// startProxied starts collabd for a proxy on this host: with
// -trusted-proxies 127.0.0.1/32 as the recipes say, when this collabd has
// the flag.
func startProxied(t *testing.T) *server {
	t.Helper()
	var args []string
	if collabdFlagExists(t, "trusted-proxies") {
		args = append(args, "-trusted-proxies", "127.0.0.1/32", "-max-conns-per-addr", strconv.Itoa(proxiedConnsPerAddr))
	} else {
		t.Log("collabd has no -trusted-proxies flag yet: not passing it")
	}
	return startServer(t, args...)
}

// proxiedConnsPerAddr is the -max-conns-per-addr of a proxied collabd: a
// few more than a session holds (an editor, a viewer, a request).
const proxiedConnsPerAddr = 4

// checkForwardedFor opens more viewer streams than one client address may
// hold, each claiming another address in its own X-Forwarded-For. The
// test's client is on loopback, which collabd trusts as the proxy, so a
// proxy that appended to the client's header instead of replacing it
// would let every claim through; the recipe's proxy must not.
func checkForwardedFor(t *testing.T, c *http.Client, base, viewID string) {
	t.Helper()
	refused := 0
	for i := range proxiedConnsPerAddr {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/view/"+viewID+"/events", nil)
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused == 0 {
		t.Errorf("%d viewer streams with made-up X-Forwarded-For addresses all passed -max-conns-per-addr %d: "+
			"the proxy forwards what the client claims", proxiedConnsPerAddr, proxiedConnsPerAddr)
	}
}

// startDaemon starts a proxy process in its own process group and stops
// it (SIGTERM, then SIGKILL to its group) when the test ends. ready is
// polled until the proxy answers.
func startDaemon(t *testing.T, name string, cmd *exec.Cmd, log *lockedBuffer, ready func() error) {
	t.Helper()
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttrGroup()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(sigTerm)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			killGroup(cmd.Process.Pid)
			<-exited
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := ready()
		if err == nil {
			return
		}
		select {
		case werr := <-exited:
			exited <- werr
			t.Fatalf("%s exited (%v) before it answered:\n%s", name, werr, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within 15s (%v):\n%s", name, err, log)
		}
	}
}

// proxyClients are HTTP clients for a proxy serving TLS with a test
// certificate: h2 may negotiate HTTP/2 (which browsers use for SSE and
// plain requests), h1 speaks HTTP/1.1 only, as a WebSocket needs.
type proxyClients struct {
	h2, h1 *http.Client
}

func newProxyClients(t *testing.T, pool *x509.CertPool) proxyClients {
	t.Helper()
	tr2 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	tr1 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}},
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	t.Cleanup(tr2.CloseIdleConnections)
	t.Cleanup(tr1.CloseIdleConnections)
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return proxyClients{
		h2: &http.Client{Transport: tr2, CheckRedirect: noRedirect},
		h1: &http.Client{Transport: tr1, CheckRedirect: noRedirect},
	}
}

// sseEvent is one event a viewer read, and when it arrived.
type sseEvent struct {
	typ, id, data string
	at            time.Time
}

// watch opens the SSE feed of a view id through base and returns its
// events as they arrive. The stream is closed when the test ends.
func watch(t *testing.T, c *http.Client, base, viewID string, wantProto int) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/view/"+viewID+"/events", nil)
	// A proxy that buffers may hold back even the headers.
	headerTimeout := time.AfterFunc(20*time.Second, cancel)
	resp, err := c.Do(req)
	if !headerTimeout.Stop() {
		cancel()
		t.Fatal("no response headers for the SSE stream within 20s: the proxy buffers it")
	}
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("GET events through the proxy: got %s %q, want 200 text/event-stream", resp.Status, resp.Header.Get("Content-Type"))
	}
	if resp.ProtoMajor != wantProto {
		t.Errorf("GET events through the proxy: got %s, want HTTP/%d", resp.Proto, wantProto)
	}
	events := make(chan sseEvent, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.typ != "" {
					ev.at = time.Now()
					events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return events
}

// wsEditor is an editor speaking the protocol directly over coder/websocket
// (client.Client has no way to trust a test certificate).
type wsEditor struct {
	ws   *websocket.Conn
	msgs chan map[string]any
	seq  int64
	rev  int64
	text []rune
}

func dialEditor(t *testing.T, c *http.Client, base, id, origin string) *wsEditor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	ws, resp, err := websocket.Dial(ctx, base+"/api/docs/"+id+"/ws", &websocket.DialOptions{HTTPClient: c, HTTPHeader: h})
	if err != nil {
		status := "no response"
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("WebSocket through the proxy: %v (%s)", err, status)
	}
	e := &wsEditor{ws: ws, msgs: make(chan map[string]any, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(e.msgs)
		for {
			_, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var batch []map[string]any
			if bytes.HasPrefix(b, []byte("[")) {
				err = json.Unmarshal(b, &batch)
			} else {
				var m map[string]any
				err = json.Unmarshal(b, &m)
				batch = append(batch, m)
			}
			if err != nil {
				return
			}
			for _, m := range batch {
				e.msgs <- m
			}
		}
	}()
	t.Cleanup(func() {
		ws.CloseNow()
		<-done
	})
	e.send(t, map[string]any{"type": "hello", "client": newClientID(t), "name": "proxy test"})
	w := e.next(t, "welcome")
	e.rev = int64(w["rev"].(float64))
	e.text = []rune(w["text"].(string))
	return e
}

func newClientID(t *testing.T) string {
	t.Helper()
	var b [16]byte
	if _, err := io.ReadFull(randReader, b[:]); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func (e *wsEditor) send(t *testing.T, m map[string]any) {
	t.Helper()
	b, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.ws.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("WebSocket write through the proxy: %v", err)
	}
}

// next returns the next message of type typ, skipping presence and the
// like; it fails the test if the connection ends first.
func (e *wsEditor) next(t *testing.T, typ string) map[string]any {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m, ok := <-e.msgs:
			if !ok {
				t.Fatalf("the WebSocket through the proxy closed while waiting for %q", typ)
			}
			if m["type"] == "error" {
				t.Fatalf("server error while waiting for %q: %v", typ, m)
			}
			if m["type"] == typ {
				return m
			}
		case <-timeout:
			t.Fatalf("no %q within 20s", typ)
		}
	}
}

// appendText sends an op appending s and waits for its ack; it returns
// the revision and the moment the ack arrived.
func (e *wsEditor) appendText(t *testing.T, s string) (int64, time.Time) {
	t.Helper()
	e.seq++
	op := []any{s}
	if n := len(e.text); n > 0 {
		op = []any{n, s}
	}
	e.send(t, map[string]any{"type": "op", "rev": e.rev, "seq": e.seq, "op": op})
	ack := e.next(t, "ack")
	at := time.Now()
	if int64(ack["seq"].(float64)) != e.seq {
		t.Fatalf("got ack %v, want seq %d", ack, e.seq)
	}
	e.rev = int64(ack["rev"].(float64))
	e.text = append(e.text, []rune(s)...)
	return e.rev, at
}

// nextOpEvent returns the viewer's next op event, which must be for rev.
func nextOpEvent(t *testing.T, events <-chan sseEvent, rev int64) sseEvent {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the SSE stream through the proxy ended while waiting for rev %d", rev)
			}
			if ev.typ != "op" {
				continue
			}
			if ev.id != strconv.FormatInt(rev, 10) {
				t.Fatalf("got op event id %s, want %d", ev.id, rev)
			}
			return ev
		case <-timeout:
			t.Fatalf("no op event for rev %d within 20s: the proxy buffers the stream?", rev)
		}
	}
}

// driveThroughProxy is the browser's session through a proxy at base
// (https): create a document, open an editor and a viewer, and check that
// each op reaches the viewer no more than 100 ms after the editor's ack
// (so the proxy does not buffer the stream), and that both connections
// survive idle for idle.
func driveThroughProxy(t *testing.T, c proxyClients, base string, idle time.Duration) {
	t.Helper()
	resp, err := c.h2.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Errorf("GET /healthz through the proxy: got %s %s, want 200 over HTTP/2", resp.Proto, resp.Status)
	}
	resp, err = c.h2.Post(base+"/api/docs", "application/json", strings.NewReader(`{"text":"proxied"}`))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ ID, ViewID string }
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create through the proxy: %s, %v", resp.Status, err)
	}

	events := watch(t, c.h2, base, doc.ViewID, 2)
	select {
	case ev := <-events:
		if ev.typ != "snapshot" {
			t.Fatalf("first event: got %q, want snapshot", ev.typ)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no snapshot event through the proxy within 20s")
	}
	// The Origin a browser on the proxy's address sends: collabd must see
	// the Host it came with, port included.
	ed := dialEditor(t, c.h1, base, doc.ID, base)

	// The ack and the event leave collabd together; only buffering on the
	// way to the viewer can set them far apart.
	const bound = 100 * time.Millisecond
	check := func(what string) {
		for i := range 5 {
			rev, ackAt := ed.appendText(t, fmt.Sprintf(" %s%d", what, i))
			ev := nextOpEvent(t, events, rev)
			if lag := ev.at.Sub(ackAt); lag > bound {
				t.Errorf("%s: op %d reached the viewer %v after its ack, want at most %v: the proxy buffers SSE", what, rev, lag, bound)
			}
		}
	}
	check("fresh")

	t.Logf("idling %v with an editor and a viewer connected", idle)
	time.Sleep(idle)
	check("after-idle")
	if t.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/docs/"+doc.ID+"/text", nil)
	resp, err = c.h2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := string(ed.text); string(body) != want {
		t.Errorf("text through the proxy: got %q, want %q", body, want)
	}
	if collabdFlagExists(t, "trusted-proxies") {
		checkForwardedFor(t, c.h2, base, doc.ViewID)
	}
}
