package collab

// Test helpers for the SSE feed: an event-stream parser written from the
// WHATWG HTML standard (§9.2.6 "Parsing an event stream" and "Interpreting
// an event stream"), a check of collabd's exact framing on top of it, and
// a client that reads one stream in a goroutine and hands the test its
// messages.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/ot"
)

// sseGuard bounds every wait in the SSE tests. It only turns a hang into a
// failure; no test depends on how fast anything is.
const sseGuard = 20 * time.Second

// sseEvent is one dispatched event, as an EventSource delivers it.
type sseEvent struct {
	Type        string // "message" when the stream named none
	Data        string
	LastEventID string // the source's last event ID string at dispatch
}

// sseBlock is what the stream held up to and including one blank line:
// its lines as received (for framing checks) and the event it
// dispatched, if any.
type sseBlock struct {
	Lines []string
	Event *sseEvent
}

// eventParser parses a text/event-stream as a browser does.
type eventParser struct {
	br         *bufio.Reader
	bomChecked bool
	// skipLF: the last line ended with CR, so an LF right after it belongs
	// to that line ending (CRLF). The parser never waits to see that LF:
	// a line ends at its CR.
	skipLF bool

	// SawCR and SawInvalid record, for framing checks, that some line
	// ended with CR or that the stream was not valid UTF-8.
	SawCR, SawInvalid bool

	// The state the standard names.
	lastEventID string // the event source's last event ID string
	Retry       int64  // reconnection time in ms; -1 until a retry field sets it
	data        strings.Builder
	eventType   string
	idBuf       string // the last event ID buffer
}

func newEventParser(r io.Reader) *eventParser {
	return &eventParser{br: bufio.NewReader(r), Retry: -1}
}

// readLine returns the next line without its terminator (CRLF, LF or CR).
// A line the stream ends in the middle of is incomplete and dropped: the
// error is then io.EOF, or the reader's error.
func (p *eventParser) readLine() ([]byte, error) {
	if !p.bomChecked {
		// One leading U+FEFF BYTE ORDER MARK is dropped.
		if b, err := p.br.Peek(1); err == nil && b[0] == 0xEF {
			if b, err := p.br.Peek(3); err == nil && string(b) == "\uFEFF" {
				p.br.Discard(3)
			}
		}
		p.bomChecked = true
	}
	var line []byte
	for {
		b, err := p.br.ReadByte()
		if err != nil {
			return nil, err
		}
		if p.skipLF {
			p.skipLF = false
			if b == '\n' {
				continue
			}
		}
		switch b {
		case '\n':
			return line, nil
		case '\r':
			p.SawCR = true
			p.skipLF = true
			return line, nil
		}
		line = append(line, b)
	}
}

// decodeUTF8 decodes a line as the standard's UTF-8 decode does, replacing
// what is not UTF-8 with U+FFFD. (Go replaces each invalid byte; the
// standard replaces each maximal invalid subsequence. The server must send
// valid UTF-8 anyway, which the framing check asserts.)
func (p *eventParser) decodeUTF8(line []byte) string {
	if utf8.Valid(line) {
		return string(line)
	}
	p.SawInvalid = true
	var b strings.Builder
	for len(line) > 0 {
		r, n := utf8.DecodeRune(line)
		b.WriteRune(r)
		line = line[n:]
	}
	return b.String()
}

// Next reads up to and including the next blank line, processing every
// line as the standard says, and returns the block with the event it
// dispatched. At the end of the stream it returns the lines of an
// unfinished block, whose event is discarded, and io.EOF (or the
// reader's error).
func (p *eventParser) Next() (sseBlock, error) {
	var blk sseBlock
	for {
		raw, err := p.readLine()
		if err != nil {
			return blk, err
		}
		line := p.decodeUTF8(raw)
		blk.Lines = append(blk.Lines, line)
		if line == "" {
			blk.Event = p.dispatch()
			return blk, nil
		}
		p.processLine(line)
	}
}

func (p *eventParser) processLine(line string) {
	if strings.HasPrefix(line, ":") {
		return // a comment
	}
	field, value, found := strings.Cut(line, ":")
	if found {
		value = strings.TrimPrefix(value, " ") // one space, no more
	}
	switch field {
	case "event":
		p.eventType = value
	case "data":
		p.data.WriteString(value)
		p.data.WriteByte('\n')
	case "id":
		if !strings.ContainsRune(value, 0) {
			p.idBuf = value
		}
	case "retry":
		if value != "" && strings.Trim(value, "0123456789") == "" {
			if n, err := strconv.ParseInt(value, 10, 64); err == nil {
				p.Retry = n
			}
		}
	default:
		// Unknown fields are ignored.
	}
}

func (p *eventParser) dispatch() *sseEvent {
	p.lastEventID = p.idBuf // even when nothing is dispatched
	data := p.data.String()
	typ := p.eventType
	p.data.Reset()
	p.eventType = ""
	if data == "" {
		return nil
	}
	if typ == "" {
		typ = "message"
	}
	return &sseEvent{Type: typ, Data: strings.TrimSuffix(data, "\n"), LastEventID: p.lastEventID}
}

// sseMsg is one block of collabd's stream, checked and decoded.
type sseMsg struct {
	Kind string // "retry", "ping", "snapshot" or "op"
	ID   int64  // snapshot and op: the id, equal to the data's rev
	Text string // snapshot
	Op   ot.Op  // op
}

func (m sseMsg) String() string {
	switch m.Kind {
	case "snapshot":
		return fmt.Sprintf("snapshot %d %q", m.ID, m.Text)
	case "op":
		return fmt.Sprintf("op %d %s", m.ID, m.Op)
	}
	return m.Kind
}

// checkFraming checks that a block is exactly what collabd sends, byte for
// byte, and decodes it. first says whether it is the stream's first block,
// which must be the retry line. Framing is LF-only, fields in a fixed
// order with one space after the colon, one data line of compact JSON,
// an id on every event equal to the revision in its data.
func checkFraming(p *eventParser, blk sseBlock, first bool) (sseMsg, error) {
	fail := func(format string, args ...any) (sseMsg, error) {
		return sseMsg{}, fmt.Errorf("bad framing in block %q: %s", blk.Lines, fmt.Sprintf(format, args...))
	}
	if p.SawCR {
		return fail("a line ended with CR; collabd ends lines with LF only")
	}
	if p.SawInvalid {
		return fail("the stream is not valid UTF-8")
	}
	lines := blk.Lines
	if first {
		if len(lines) != 2 || lines[0] != "retry: 2000" || lines[1] != "" || p.Retry != 2000 || blk.Event != nil {
			return fail(`the first block must be "retry: 2000\n\n"`)
		}
		return sseMsg{Kind: "retry"}, nil
	}
	if len(lines) == 2 && lines[0] == ": ping" && lines[1] == "" {
		if blk.Event != nil {
			return fail("a ping dispatched an event")
		}
		return sseMsg{Kind: "ping"}, nil
	}
	if len(lines) != 4 || lines[3] != "" {
		return fail(`want "event: ...\nid: ...\ndata: ...\n\n" or ": ping\n\n"`)
	}
	kind, ok := strings.CutPrefix(lines[0], "event: ")
	if !ok || (kind != "snapshot" && kind != "op") {
		return fail(`first line must be "event: snapshot" or "event: op"`)
	}
	idText, ok := strings.CutPrefix(lines[1], "id: ")
	id, err := strconv.ParseInt(idText, 10, 64)
	if !ok || err != nil || id < 0 || strconv.FormatInt(id, 10) != idText {
		return fail(`second line must be "id: " and a revision in canonical decimal`)
	}
	data, ok := strings.CutPrefix(lines[2], "data: ")
	if !ok {
		return fail(`third line must be "data: " and JSON`)
	}
	if ev := blk.Event; ev == nil || ev.Type != kind || ev.Data != data || ev.LastEventID != idText {
		return fail("the parser dispatched %+v", blk.Event)
	}
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	m := sseMsg{Kind: kind, ID: id}
	var rev int64
	switch kind {
	case "snapshot":
		var d struct {
			Rev  *int64  `json:"rev"`
			Text *string `json:"text"`
		}
		if err := dec.Decode(&d); err != nil || d.Rev == nil || d.Text == nil {
			return fail(`data must be {"rev":N,"text":"..."}: %v`, err)
		}
		rev, m.Text = *d.Rev, *d.Text
	case "op":
		var d struct {
			Rev *int64 `json:"rev"`
			Op  *ot.Op `json:"op"`
		}
		if err := dec.Decode(&d); err != nil || d.Rev == nil || d.Op == nil {
			return fail(`data must be {"rev":N,"op":[...]}: %v`, err)
		}
		rev, m.Op = *d.Rev, *d.Op
	}
	if dec.More() {
		return fail("data has more than one JSON value")
	}
	if rev != id {
		return fail("id %d differs from the data's rev %d", id, rev)
	}
	return m, nil
}

// sseStream is one open SSE stream, read by a goroutine that parses and
// checks every block and passes the messages on. Only the test's
// goroutine calls its methods.
type sseStream struct {
	Resp   *http.Response
	cancel context.CancelFunc
	msgs   chan sseMsg
	stop   chan struct{}
	done   chan struct{} // closed when the reader ends
	err    error         // why it ended: nil for a clean end; set before done closes

	rawMu sync.Mutex
	raw   bytes.Buffer // every byte of the body, when asked for
}

// openSSE opens an SSE stream and checks the answer is 200 with the
// headers of the contract. The stream is closed when the test ends.
func openSSE(t *testing.T, client *http.Client, url string, hdr http.Header) *sseStream {
	t.Helper()
	s, err := startSSE(client, url, hdr, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s
}

// startSSE is openSSE without a test: it returns what went wrong. keepRaw
// keeps a copy of the body for rawBytes.
func startSSE(client *http.Client, url string, hdr http.Header, keepRaw bool) (*sseStream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if err := checkSSEHeaders(resp); err != nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET %s: %w (body %q)", url, err, body)
	}
	s := &sseStream{
		Resp:   resp,
		cancel: cancel,
		msgs:   make(chan sseMsg, 1024),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	var body io.Reader = resp.Body
	if keepRaw {
		body = io.TeeReader(resp.Body, lockedWriter{&s.rawMu, &s.raw})
	}
	go s.read(body)
	return s, nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// checkSSEHeaders checks the status and headers the contract requires.
func checkSSEHeaders(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("got status %d, want 200", resp.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-store, no-transform",
		"X-Accel-Buffering": "no",
	} {
		if got := resp.Header.Values(k); len(got) != 1 || got[0] != want {
			return fmt.Errorf("got header %s %q, want %q", k, got, want)
		}
	}
	if resp.ContentLength != -1 {
		return fmt.Errorf("got Content-Length %d, want none (a stream)", resp.ContentLength)
	}
	return nil
}

func (s *sseStream) read(body io.Reader) {
	defer close(s.done)
	p := newEventParser(body)
	for first := true; ; first = false {
		blk, err := p.Next()
		if err != nil {
			switch {
			case err == io.EOF && len(blk.Lines) == 0:
				// A clean end, between blocks.
			case err == io.EOF:
				s.err = fmt.Errorf("stream ended inside a block: %q", blk.Lines)
			default:
				s.err = err
			}
			return
		}
		m, err := checkFraming(p, blk, first)
		if err != nil {
			s.err = err
			return
		}
		select {
		case s.msgs <- m:
		case <-s.stop:
			return
		}
	}
}

// next returns the next message, failing the test if the stream ends or
// nothing comes within sseGuard.
func (s *sseStream) next(t *testing.T) sseMsg {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	default:
	}
	select {
	case m := <-s.msgs:
		return m
	case <-s.done:
		// Messages sent before the end come first.
		select {
		case m := <-s.msgs:
			return m
		default:
		}
		t.Fatalf("stream ended (err %v) while a message was expected", s.err)
	case <-time.After(sseGuard):
		t.Fatalf("no message within %s", sseGuard)
	}
	panic("unreachable")
}

// nextEvent returns the next snapshot or op, skipping the retry line and
// pings.
func (s *sseStream) nextEvent(t *testing.T) sseMsg {
	t.Helper()
	for {
		if m := s.next(t); m.Kind != "ping" && m.Kind != "retry" {
			return m
		}
	}
}

// end waits for the server to end the stream and returns the messages
// not yet read and why the stream ended (nil for a clean end).
func (s *sseStream) end(t *testing.T) ([]sseMsg, error) {
	t.Helper()
	var rest []sseMsg
	timeout := time.After(sseGuard)
	for {
		select {
		case m := <-s.msgs:
			rest = append(rest, m)
		case <-s.done:
			for {
				select {
				case m := <-s.msgs:
					rest = append(rest, m)
				default:
					return rest, s.err
				}
			}
		case <-timeout:
			t.Fatalf("stream did not end within %s", sseGuard)
		}
	}
}

// rawBytes returns the body received so far, if startSSE kept it.
func (s *sseStream) rawBytes() []byte {
	s.rawMu.Lock()
	defer s.rawMu.Unlock()
	return bytes.Clone(s.raw.Bytes())
}

// close ends the stream from the client's side and waits for the reader.
func (s *sseStream) close() {
	s.cancel()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.Resp.Body.Close()
	<-s.done
}

// viewState is what a viewer knows: the text at the last revision it
// received. apply checks the order of events: ids are consecutive, with
// no gap and no repeat, and an op follows a snapshot.
type viewState struct {
	rev       int64 // -1 before the first snapshot
	text      string
	snapshots int
	ops       int
}

func newViewState() *viewState { return &viewState{rev: -1} }

func (v *viewState) apply(m sseMsg) error {
	switch m.Kind {
	case "snapshot":
		v.rev, v.text = m.ID, m.Text
		v.snapshots++
	case "op":
		if v.rev < 0 {
			return fmt.Errorf("got op %d before any snapshot", m.ID)
		}
		if m.ID != v.rev+1 {
			return fmt.Errorf("got op %d after rev %d, want op %d", m.ID, v.rev, v.rev+1)
		}
		text, err := ot.Apply(v.text, m.Op)
		if err != nil {
			return fmt.Errorf("op %d %s does not apply to the text at rev %d: %v", m.ID, m.Op, v.rev, err)
		}
		v.rev, v.text = m.ID, text
		v.ops++
	}
	return nil
}

// follow reads events from s into v until v reaches rev.
func (v *viewState) follow(t *testing.T, s *sseStream, rev int64) {
	t.Helper()
	for v.rev < rev {
		if err := v.apply(s.nextEvent(t)); err != nil {
			t.Fatal(err)
		}
	}
	if v.rev != rev {
		t.Fatalf("viewer went past rev %d to %d", rev, v.rev)
	}
}

// serverText returns a document's committed text and revision.
func serverText(t *testing.T, baseURL, id string) (string, int64) {
	t.Helper()
	resp, err := http.Get(baseURL + "/api/docs/" + id + "/text")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET text: status %d, err %v", resp.StatusCode, err)
	}
	rev, err := strconv.ParseInt(resp.Header.Get("X-Collab-Rev"), 10, 64)
	if err != nil {
		t.Fatalf("X-Collab-Rev: %v", err)
	}
	return string(body), rev
}

// Edits made by the tests' editors: every kind of character that JSON or
// SSE framing could trip on, and ones that count as one code point but
// two UTF-16 units.
var editPieces = []string{
	"a", "bc", "é", "😀", "日本", "\n", "\r\n", "\r", `"`, `\`, "\u2028", "data: x\n\n", ": ", "\t", "ok ",
}

// randomOp returns a random insert or delete on a text of n code points.
func randomOp(r *rand.Rand, n int) ot.Op {
	var op ot.Op
	if n > 0 && r.IntN(3) == 0 {
		pos := r.IntN(n)
		del := 1 + r.IntN(min(n-pos, 4))
		return op.Retain(pos).Delete(del).Retain(n - pos - del)
	}
	pos := r.IntN(n + 1)
	var b strings.Builder
	for range 1 + r.IntN(3) {
		b.WriteString(editPieces[r.IntN(len(editPieces))])
	}
	return op.Retain(pos).Insert(b.String()).Retain(n - pos)
}

// editRandomly makes n random edits through c. Incoming ops change the
// local text concurrently, so an edit made on a length that just changed
// is made again on the new one. Most edits wait for their ack, so that
// each becomes its own revision; the others let the client compose.
func editRandomly(ctx context.Context, c *Client, r *rand.Rand, n int) error {
	for range n {
		for {
			err := c.Edit(randomOp(r, c.Len()))
			if err == nil {
				break
			}
			if !errors.Is(err, ot.ErrLengthMismatch) {
				return fmt.Errorf("edit: %w", err)
			}
		}
		if r.IntN(4) != 0 {
			if err := c.WaitSynced(ctx); err != nil {
				return fmt.Errorf("wait for ack: %w", err)
			}
		}
	}
	if err := c.WaitSynced(ctx); err != nil {
		return fmt.Errorf("wait for ack: %w", err)
	}
	return nil
}

// editConcurrently runs editRandomly on every client at once and returns
// a channel that yields nil, or the first error, when all are done.
func editConcurrently(clients []*Client, seed uint64, n int) <-chan error {
	out := make(chan error, 1)
	errs := make(chan error, len(clients))
	ctx, cancel := context.WithTimeout(context.Background(), sseGuard)
	for i, c := range clients {
		r := rand.New(rand.NewPCG(seed, uint64(i)))
		go func() { errs <- editRandomly(ctx, c, r, n) }()
	}
	go func() {
		defer cancel()
		var first error
		for range clients {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		out <- first
	}()
	return out
}

// waitErr waits for a result from a goroutine the test started.
func waitErr(t *testing.T, what string, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(sseGuard):
		t.Fatalf("%s: not done within %s", what, sseGuard)
	}
}
