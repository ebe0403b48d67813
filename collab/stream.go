package collab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/ot"
)

// POST /api/docs/{id}/stream?at=P&rev=R&name=NAME: a streamed request
// body inserted at a caret as it arrives (docs/protocol.md, "HTTP
// writes"). The handler owns two goroutines' worth of work: a reader
// that takes the body a chunk at a time into a bounded buffer (a body
// faster than the commits waits in TCP, so a stream holds no more than
// its buffer), and the handler's own loop, which commits what the buffer
// holds, one op in flight at a time, and writes a progress line after
// each commit. The caret is kept by the hub (writeReq.stream): it moves
// through everyone else's ops, and text typed right at it by others goes
// after it, so that the streamed text stays contiguous.

const (
	// streamBuffer bounds the text a stream holds before it is committed.
	streamBuffer = 64 << 10
	// streamChunk is what one read of the body takes at most.
	streamChunk = 16 << 10
)

// streamPiece makes a writeReq a stream's: insert text at caret (a
// position at the request's rev), or with no text just show the stream
// in presence; end takes it out of presence.
type streamPiece struct {
	caret int
	text  string
	name  string
	end   bool
}

// streamWrite handles a stream's writeReq on the hub's goroutine. In
// cluster mode a follower forwards the piece to the owner, which keeps
// the caret and answers with it (writefwd.go).
func (h *hub) streamWrite(m writeReq) {
	reply := m.reply
	if h.link != nil && !h.owner {
		sp := m.stream
		sub := Submission{Client: m.client, Seq: m.seq, Rev: m.rev,
			Stream: &StreamPiece{Caret: sp.caret, Text: sp.text, Name: sp.name, End: sp.end}}
		h.startForward(sub, fwdReply{write: reply})
		return
	}
	h.streamPiece(m, func(r writeReply) { reply <- r })
}

// streamPiece applies a stream's piece on the node that sequences the
// document and calls answer once: at once for a refusal or a presence
// change, once committed for text.
func (h *hub) streamPiece(m writeReq, answer func(writeReply)) {
	sp := m.stream
	author := h.authorOf(m.client)
	if sp.end {
		if _, ok := h.peers[author]; ok {
			delete(h.peers, author)
			h.sendEditors(mustJSON(leaveMessage{Type: typeLeave, Author: author}))
			if h.link != nil {
				h.notify(notice{Kind: "leave", Author: author})
			}
		}
		answer(writeReply{rev: h.rev})
		return
	}
	switch {
	case m.rev > h.rev:
		answer(writeReply{perr: errorf(CodeBadOp, "rev %d is in the future: the document is at rev %d", m.rev, h.rev)})
		return
	case m.rev < h.histBase:
		answer(writeReply{tooOld: true})
		return
	}
	caret := sp.caret
	for _, r := range h.history[m.rev-h.histBase:] {
		caret = stickyIndex(r.Op, caret)
	}
	if caret < 0 || caret > h.doc.Len() {
		answer(writeReply{perr: errorf(CodeBadOp, "at %d is past the end of rev %d", sp.caret, m.rev)})
		return
	}
	if sp.text == "" {
		h.showStream(author, sp.name, h.rev, caret)
		answer(writeReply{rev: h.rev, caret: caret})
		return
	}
	op := ot.Op{}.Retain(caret).Insert(sp.text).Retain(h.doc.Len() - caret)
	after := caret + utf8.RuneCountInString(sp.text)
	var st seqState
	msg := &opMessage{rev: h.rev, seq: m.seq, op: op}
	done := func(rev int64) {
		answer(writeReply{rev: rev, caret: after})
		h.showStream(author, sp.name, rev, after) // now that editors have the op
	}
	if perr := h.sequence(&st, m.client, msg, pendingOp{committed: done}); perr != nil {
		answer(writeReply{perr: perr})
	}
}

// showStream puts a stream in presence, as a peer with no connection
// here, its caret at pos of revision rev; movePeers moves it with every
// later op. Editors hear of it at the revision they have been sent: ops
// applied here but not yet committed have not reached them.
func (h *hub) showStream(author, name string, rev int64, pos int) {
	if rev < h.histBase {
		return
	}
	if h.peers == nil {
		h.peers = make(map[string]*remotePeer)
	}
	p := h.peers[author]
	if p == nil {
		p = &remotePeer{Peer: Peer{Author: author, Name: name, Color: h.pickColor(author)}}
		h.peers[author] = p
	}
	// What editors have: in a commit callback, the batch just committed
	// has been sent out (h.committed); h.batch is the next one.
	sent := h.rev - int64(len(h.batch))
	shown := pos
	for _, r := range h.history[rev-h.histBase:] {
		pos = stickyIndex(r.Op, pos)
		if r.Rev <= sent {
			shown = stickyIndex(r.Op, shown)
		}
	}
	p.Ranges = []Range{{pos, pos}}
	p.rev, p.seen, p.shown = h.rev, time.Now(), true
	if h.link != nil {
		// Other nodes' editors see the stream too (cluster mode).
		h.notify(notice{Kind: "presence", Author: author, Name: name, Color: p.Color, Ranges: p.Ranges, Rev: h.rev})
	}
	if rev > sent {
		return // shown with its first commit
	}
	h.sendEditors(mustJSON(presenceMessage{Type: typePresence, Author: author, Name: name,
		Color: p.Color, Ranges: []Range{{shown, shown}}, Rev: sent}))
}

// stickyIndex is ot.TransformIndex for a caret that text inserted right
// at it does not push: the stream's next text goes right after its own.
func stickyIndex(op ot.Op, pos int) int {
	i, out := 0, pos
	for _, c := range op {
		switch {
		case c.IsRetain():
			if i += c.N; i >= pos {
				return out
			}
		case c.IsDelete():
			out -= min(-c.N, pos-i)
			if i -= c.N; i >= pos {
				return out
			}
		case c.IsInsert():
			if i < pos {
				out += utf8.RuneCountInString(c.S)
			}
		}
	}
	return out
}

// streamReader reads a stream's body into a bounded buffer. It is safe
// for concurrent use.
type streamReader struct {
	mu     sync.Mutex
	buf    []byte        // valid UTF-8, not yet taken
	err    error         // why the body ended (io.EOF when it did)
	ready  chan struct{} // has a value when buf or err changed
	space  chan struct{} // has a value when buf was taken
	closed bool
}

// read reads body until it ends, fails or stays silent for idle.
func (sr *streamReader) read(body io.Reader, rc *http.ResponseController, idle time.Duration) {
	var carry []byte // the start of a code point cut by a chunk's end
	chunk := make([]byte, streamChunk)
	for {
		rc.SetReadDeadline(time.Now().Add(idle))
		n, err := body.Read(chunk)
		b := append(carry, chunk[:n]...)
		cut := len(b)
		for k := 1; k <= 3 && k <= len(b); k++ {
			if utf8.RuneStart(b[len(b)-k]) {
				if !utf8.FullRune(b[len(b)-k:]) {
					cut = len(b) - k
				}
				break
			}
		}
		if !utf8.Valid(b[:cut]) {
			sr.finish(errNotUTF8)
			return
		}
		carry = append([]byte(nil), b[cut:]...)
		if cut > 0 && !sr.put(b[:cut]) {
			return
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(carry) > 0 {
				err = errNotUTF8
			}
			sr.finish(err)
			return
		}
	}
}

var errNotUTF8 = errors.New("the body is not valid UTF-8")

// put adds text, waiting while the buffer is full; false once closed.
func (sr *streamReader) put(b []byte) bool {
	for {
		sr.mu.Lock()
		if sr.closed {
			sr.mu.Unlock()
			return false
		}
		if len(sr.buf) == 0 || len(sr.buf)+len(b) <= streamBuffer {
			sr.buf = append(sr.buf, b...)
			sr.mu.Unlock()
			notify(sr.ready)
			return true
		}
		sr.mu.Unlock()
		<-sr.space
	}
}

func (sr *streamReader) finish(err error) {
	sr.mu.Lock()
	sr.err = err
	sr.mu.Unlock()
	notify(sr.ready)
}

// take returns the text buffered so far and, once the body has ended,
// why.
func (sr *streamReader) take() (string, error) {
	sr.mu.Lock()
	s, err := string(sr.buf), sr.err
	sr.buf = sr.buf[:0]
	sr.mu.Unlock()
	notify(sr.space)
	return s, err
}

// close makes a reader waiting for space give up.
func (sr *streamReader) close() {
	sr.mu.Lock()
	sr.closed = true
	sr.mu.Unlock()
	notify(sr.space)
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// streamLine is one NDJSON line of a stream's answer.
type streamLine struct {
	Rev      int64         `json:"rev"`
	Inserted int64         `json:"inserted"`
	Run      string        `json:"run,omitempty"`
	Done     bool          `json:"done,omitempty"`
	Error    *apiErrorBody `json:"error,omitempty"`
}

// apiErrorBody is the inside of an API error.
type apiErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// handleStream answers POST /api/docs/{id}/stream.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	id, ok := docID(r)
	if !ok {
		refuse(w, r, http.StatusNotFound, CodeNotFound, "no such document")
		return
	}
	if err := checkOrigin(r, s.opts.AllowedOrigins); err != nil {
		refuse(w, r, http.StatusForbidden, CodeForbidden, err.Error())
		return
	}
	if s.httpWrites.rate != nil && !s.httpWrites.rate.allow(s.requestAddr(r), time.Now()) {
		w.Header().Set("Retry-After", "1")
		refuse(w, r, http.StatusTooManyRequests, CodeRateLimited,
			fmt.Sprintf("more than %g writes per second (burst %d) from this address; try again later", s.opts.WriteRate, s.opts.WriteBurst))
		return
	}
	q := r.URL.Query()
	var baseRev int64 = -1
	if q.Has("rev") {
		v, err := strconv.ParseInt(q.Get("rev"), 10, 64)
		if err != nil || v < 0 {
			refuse(w, r, http.StatusBadRequest, CodeBadOp, "rev must be a revision >= 0")
			return
		}
		baseRev = v
	}
	at := -1 // the end
	if v := q.Get("at"); v != "" && v != "end" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			refuse(w, r, http.StatusBadRequest, CodeBadOp, `at must be a code point position >= 0, or "end"`)
			return
		}
		at = n
	}
	token, bodyName := tokenName(r.Context()), q.Get("name")
	name := token
	if name == "" {
		name = cleanName(bodyName)
	}
	release, msg := s.httpWrites.openStream(id, s.requestAddr(r), s.opts)
	if release == nil {
		w.Header().Set("Retry-After", "1")
		refuse(w, r, http.StatusTooManyRequests, CodeRateLimited, msg)
		return
	}
	defer release()
	h, err := s.acquire(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	defer s.release(h)

	// Where the caret starts: at, of baseRev (default: the head).
	var length int
	if baseRev >= 0 {
		text, err := s.loadPastText(r.Context(), id, baseRev)
		switch {
		case errors.Is(err, ErrNoRevision):
			refuse(w, r, http.StatusBadRequest, CodeBadOp, fmt.Sprintf("rev %d is in the future: the document has no such revision", baseRev))
			return
		case err != nil:
			s.writeStoreError(w, r, err)
			return
		}
		length = utf8.RuneCountInString(text)
	} else {
		t, err := h.text(r.Context(), false)
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		baseRev, length = t.rev, utf8.RuneCountInString(t.text)
	}
	if at < 0 {
		at = length
	} else if at > length {
		refuse(w, r, http.StatusBadRequest, CodeBadOp, fmt.Sprintf("at %d is past the end of rev %d (%d code points)", at, baseRev, length))
		return
	}
	who := writerWho(token, bodyName)
	run := s.runFor(id, who, "")
	st := &streamState{s: s, h: h, client: httpClient(run, who), name: name, rev: baseRev, caret: at}
	// Into presence, the caret placed at the head.
	if rep, err := st.send(r.Context(), ""); err != nil || rep.perr != nil || rep.unanswered {
		s.writeResult(w, r, rep, err, nil)
		return
	}
	defer func() {
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		defer cancel()
		m := writeReq{client: st.client, stream: &streamPiece{end: true}, reply: make(chan writeReply, 1)}
		h.send(ctx, m)
	}()

	rc := http.NewResponseController(w)
	rc.EnableFullDuplex()
	if r.ProtoMajor == 1 {
		// The body may end unread (an error, a timeout, the caller's
		// limit): the connection is not reused after a stream.
		w.Header().Set("Connection", "close")
	}
	sr := &streamReader{ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.MaxStreamDuration)
	defer cancel()
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		sr.read(r.Body, rc, s.opts.StreamIdle)
	}()
	defer func() {
		// The reader stops at once: its read fails, its wait ends.
		sr.close()
		rc.SetReadDeadline(time.Now())
		<-readerDone
	}()

	started := false
	start := func() {
		if !started {
			started = true
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
		}
	}
	line := func(l streamLine) {
		start()
		rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		w.Write(append(mustJSON(l), '\n'))
		rc.Flush()
	}
	var inserted int64
	var last time.Time
	for {
		select {
		case <-sr.ready:
		case <-ctx.Done():
		}
		if wait := time.Duration(float64(time.Second)/s.opts.StreamCommitRate) - time.Since(last); wait > 0 && ctx.Err() == nil {
			time.Sleep(wait)
		}
		text, end := sr.take()
		if ctx.Err() != nil && end == nil {
			// The server cancels the request's context when a read of
			// its body fails, its idle deadline say, which may be seen
			// here before the reader has said why: give it a moment.
			select {
			case <-readerDone:
			case <-time.After(100 * time.Millisecond):
			}
			more, why := sr.take()
			text += more
			if end = why; end == nil {
				end = ctx.Err()
			}
		}
		if text != "" {
			last = time.Now()
			rep, err := st.send(r.Context(), text)
			if err != nil || rep.perr != nil || rep.unanswered {
				if !started {
					s.writeResult(w, r, rep, err, nil)
					return
				}
				if err == nil {
					body := &apiErrorBody{CodeShuttingDown, "this node no longer owns the document; what was committed stays"}
					if rep.perr != nil {
						body = &apiErrorBody{rep.perr.Code, rep.perr.Message}
					}
					line(streamLine{Rev: st.rev, Inserted: inserted, Run: run, Done: true, Error: body})
				}
				return
			}
			inserted += int64(utf8.RuneCountInString(text))
			line(streamLine{Rev: rep.rev, Inserted: inserted})
		}
		if end == nil {
			continue
		}
		var body *apiErrorBody
		var tooBig *http.MaxBytesError
		switch {
		case errors.Is(end, io.EOF):
		case errors.Is(end, errNotUTF8):
			body = &apiErrorBody{CodeBadMessage, end.Error()}
		case errors.As(end, &tooBig):
			body = &apiErrorBody{CodeTooLarge, fmt.Sprintf("the body is larger than %d bytes", tooBig.Limit)}
		case errors.Is(end, context.DeadlineExceeded) && r.Context().Err() == nil:
			body = &apiErrorBody{CodeRateLimited, fmt.Sprintf("the stream was open for %s, its limit", s.opts.MaxStreamDuration)}
		case isTimeout(end):
			body = &apiErrorBody{CodeRateLimited, fmt.Sprintf("the body sent nothing for %s", s.opts.StreamIdle)}
		case errors.Is(context.Cause(r.Context()), errAccessRevoked):
			// Signed in, and no longer allowed to edit (access.go).
			body = &apiErrorBody{CodeForbidden, context.Cause(r.Context()).Error() + "; what was committed stays"}
		case r.Context().Err() != nil:
			return // the client went away; what was committed stays
		default:
			body = &apiErrorBody{CodeBadMessage, "reading the body: " + end.Error()}
		}
		if body != nil && !started && inserted == 0 && (body.Code == CodeBadMessage || body.Code == CodeTooLarge) {
			writeError(w, protoStatus(body.Code), body.Code, body.Message)
			return
		}
		line(streamLine{Rev: st.rev, Inserted: inserted, Run: run, Done: true, Error: body})
		return
	}
}

// streamState is a stream's caret, kept by its handler between commits.
type streamState struct {
	s      *Server
	h      *hub
	client string
	name   string
	seq    int64
	rev    int64 // the revision caret is at
	caret  int
}

// send inserts text at the caret (with no text, shows the stream in
// presence) and moves the caret after it, at the revision it became.
func (st *streamState) send(ctx context.Context, text string) (writeReply, error) {
	seq := st.seq
	if text != "" {
		seq++
	}
	for attempt := 0; ; attempt++ {
		m := writeReq{client: st.client, seq: seq, rev: st.rev, bytes: len(text),
			stream: &streamPiece{caret: st.caret, text: text, name: st.name}, reply: make(chan writeReply, 1)}
		if !st.h.send(ctx, m) {
			return writeReply{}, st.h.goneErr(ctx)
		}
		var rep writeReply
		select {
		case rep = <-m.reply:
		case <-st.h.done:
			select {
			case rep = <-m.reply:
			default:
				return writeReply{}, st.h.goneErr(ctx)
			}
		case <-ctx.Done():
			return writeReply{}, ctx.Err()
		}
		if rep.tooOld && attempt < 3 {
			if err := st.catchUp(ctx); err != nil {
				return writeReply{}, err
			}
			continue
		}
		if rep.tooOld {
			return writeReply{perr: errorf(CodeRateLimited, "the document is changing too fast to place the stream's caret")}, nil
		}
		if rep.perr == nil && !rep.unanswered {
			st.seq, st.rev, st.caret = seq, rep.rev, rep.caret
		}
		return rep, nil
	}
}

// catchUp moves the caret over the ops the store has after its revision.
func (st *streamState) catchUp(ctx context.Context) error {
	for n := 0; ; {
		page, err := st.s.store.Ops(ctx, st.h.id, st.rev, rebasePage, st.s.opts.MaxOpsPageBytes)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for _, r := range page {
			st.caret = stickyIndex(r.Op, st.caret)
			st.rev = r.Rev
		}
		if n += len(page); n > st.s.opts.MaxWriteRebase {
			return fmt.Errorf("stream caret more than %d ops behind", st.s.opts.MaxWriteRebase)
		}
	}
}

// openStream counts a stream of document id from client address addr,
// refusing one past MaxStreamsPerDoc for the document or
// MaxStreamsPerAddr for the address, with the message to answer.
func (w *httpWrites) openStream(id, addr string, o Options) (func(), string) {
	doc, from := "doc\x00"+id, "addr\x00"+addr
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.streams[doc] >= o.MaxStreamsPerDoc:
		return nil, fmt.Sprintf("the document has %d streams open, its limit; try again later", o.MaxStreamsPerDoc)
	case w.streams[from] >= o.MaxStreamsPerAddr:
		return nil, fmt.Sprintf("this address has %d streams open, its limit; try again later", o.MaxStreamsPerAddr)
	}
	w.streams[doc]++
	w.streams[from]++
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, k := range []string{doc, from} {
			if w.streams[k]--; w.streams[k] <= 0 {
				delete(w.streams, k)
			}
		}
	}, ""
}
