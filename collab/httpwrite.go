package collab

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/collabd/collabd/ot"
	"github.com/google/uuid"
)

// HTTP writes (docs/protocol.md, "HTTP writes"): scripts, bots and agents
// edit a live document with plain requests, no WebSocket or OT client.
// Every write is a run with a public run id (a UUID). Its ops are stored
// under the client id "http:<run id>", which no WebSocket hello can claim
// (a hello's client id must be a UUID), so the store's per-client dedupe
// state (ClientSeq) is the run's: that is how an Idempotency-Key, from
// which the run id is derived, survives restarts. The author id of the
// ops is derived from that client id like any other, so from the run.
//
// A write is a writeReq handled on the hub's goroutine like an editor's
// op: transformed over the ops committed since its base revision,
// admitted (sequence, admitGrowth), batched and answered once durable.
// An op made on a revision older than the hub's memory is first rebased
// over the store's ops off the hub's goroutine (rebaseFromStore), so a
// write can reach as far back as Options.MaxWriteRebase ops.

const (
	// httpClientPrefix starts the client id of every HTTP run.
	httpClientPrefix = "http:"
	// maxIdempotencyKey bounds an Idempotency-Key header, in bytes.
	maxIdempotencyKey = 128
	// rebasePage is how many ops rebaseFromStore reads at a time.
	rebasePage = 1000
	// CodeConflict is the error code of a strict write whose base is not
	// the head (409).
	CodeConflict = "conflict"
)

// writeReq asks a hub to apply op, made on revision rev, as op seq of
// an HTTP run's client.
type writeReq struct {
	client string
	seq    int64
	rev    int64
	op     ot.Op
	strict bool
	bytes  int
	reply  chan writeReply // room for one
	// stream, for a stream's piece (stream.go), replaces op.
	stream *streamPiece
}

// writeReply is a hub's answer to a writeReq.
type writeReply struct {
	rev  int64 // the revision the op became; the head for a no-op or a conflict
	perr *protoError
	// conflict: strict, and rev, the head, is not the op's base.
	conflict bool
	// tooOld: the op's base is older than the hub's memory; rebase it
	// over the store's ops and send it again.
	tooOld bool
	// unanswered: forwarded to the owner, which did not answer (cluster
	// mode); the write may or may not have been made.
	unanswered bool
	// caret, for a stream's piece, is its caret after it, at rev.
	caret int
}

// write handles a writeReq on the hub's goroutine. In cluster mode a
// follower forwards it to the owner (writefwd.go).
func (h *hub) write(m writeReq) {
	if m.stream != nil {
		h.streamWrite(m)
		return
	}
	if h.link != nil {
		if h.owner {
			h.writeOwner(m, func(r writeReply) { m.reply <- r })
		} else {
			h.writeFollower(m)
		}
		return
	}
	var st seqState
	h.applyWrite(m, &st, func(r writeReply) { m.reply <- r })
}

// applyWrite applies a write's op as op m.seq of m.client, whose dedupe
// state is st, and answers it once (on the hub's goroutine): at once for
// a refusal or an op that changes nothing, else once it is durable.
func (h *hub) applyWrite(m writeReq, st *seqState, answer func(writeReply)) {
	badOp := func(format string, args ...any) {
		answer(writeReply{perr: &protoError{Code: CodeBadOp, Message: fmt.Sprintf(format, args...)}})
	}
	switch {
	case m.rev > h.rev:
		badOp("rev %d is in the future: the document is at rev %d", m.rev, h.rev)
		return
	case m.strict && m.rev != h.rev:
		answer(writeReply{conflict: true, rev: h.rev})
		return
	case m.rev < h.histBase:
		answer(writeReply{tooOld: true})
		return
	}
	op := m.op
	if m.rev < h.rev {
		concurrent, err := h.opsAfter(m.rev) // from memory: m.rev >= histBase
		if err != nil {
			h.log.Error("read ops to transform against", "from", m.rev, "err", err)
			answer(writeReply{perr: errorf(CodeInternal, "internal error")})
			return
		}
		// Committed ops win ties: their inserts stay to the left.
		h.rebase.Reset(op)
		for _, r := range concurrent {
			if err := h.rebase.Over(r.Op); err != nil {
				badOp("op does not apply to rev %d: %v", m.rev, err)
				return
			}
		}
		op = h.rebase.Op()
	}
	if op.BaseLen() != h.doc.Len() {
		badOp("op does not apply to rev %d: %v (op covers %d code points, document has %d)",
			m.rev, ot.ErrLengthMismatch, op.BaseLen(), h.doc.Len())
		return
	}
	if op.IsNoop() {
		// Nothing to commit: the answer is the head, once it is durable
		// (an op in the batch may still be on its way to disk).
		answer(writeReply{rev: h.durableRev()})
		return
	}
	msg := &opMessage{rev: h.rev, seq: m.seq, op: op}
	done := func(rev int64) { answer(writeReply{rev: rev}) }
	if perr := h.sequence(st, m.client, msg, pendingOp{committed: done}); perr != nil {
		answer(writeReply{perr: perr})
	}
}

// httpWrites is the Server's state for HTTP writes. It is safe for
// concurrent use.
type httpWrites struct {
	rate *addrBuckets // nil: no per-address rate

	mu sync.Mutex
	// runs holds a lock per run being written, so that two requests
	// with one Idempotency-Key take turns: the second finds the first's
	// op committed and applies nothing.
	runs map[string]*runLock
	// streams counts the streams open per document (stream.go).
	streams map[string]int
}

type runLock struct {
	mu   sync.Mutex
	refs int // guarded by httpWrites.mu
}

func newHTTPWrites(o Options) *httpWrites {
	w := &httpWrites{runs: make(map[string]*runLock), streams: make(map[string]int)}
	if o.WriteRate > 0 {
		w.rate = newAddrBuckets(o.WriteRate, o.WriteBurst, o.MaxTrackedAddrs)
	}
	return w
}

// lock takes the lock of the run key names and returns its unlock.
func (w *httpWrites) lock(key string) func() {
	w.mu.Lock()
	l := w.runs[key]
	if l == nil {
		l = &runLock{}
		w.runs[key] = l
	}
	l.refs++
	w.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		w.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(w.runs, key)
		}
		w.mu.Unlock()
	}
}

// The client id of an HTTP run is httpClientPrefix, the run id, for a
// revert revertMark and the run it reverts, and, when the writer is
// named, whoSep and who: "t:" and the name of the request's access
// token, or "n:" and the name the request gives. A name never holds a
// control character (cleanName), so whoSep ends the run's part. The name
// is kept with every op of the run this way, so /revisions shows it; a
// token's name, which the token's issuer vouches for, also gives the
// run's ops their author id (Server.author): the same for every run of
// that agent, as an editor's is across reconnects.
const (
	whoSep   = "\x1f"
	whoToken = "t:"
	whoBody  = "n:"
)

// httpClient returns the client id of an HTTP run by who (see whoSep).
func httpClient(run, who string) string {
	if who == "" {
		return httpClientPrefix + run
	}
	return httpClientPrefix + run + whoSep + who
}

// revertClient returns the client id of a run by who that reverts the
// run target: the revert of a run is found again as such (revert.go).
func revertClient(run, target, who string) string {
	return httpClient(run+revertMark+target, who)
}

const revertMark = "/revert/"

// writerWho returns the who of a client id (see whoSep) for a writer
// whose token names it tokenName, or who gives the name body.
func writerWho(tokenName, body string) string {
	switch {
	case tokenName != "":
		return whoToken + tokenName
	case body != "":
		return whoBody + cleanName(body)
	}
	return ""
}

// splitClient returns an HTTP run's client id without its who, and its
// who; any other client id as it is, and "".
func splitClient(client string) (base, who string) {
	if !strings.HasPrefix(client, httpClientPrefix) {
		return client, ""
	}
	base, who, _ = strings.Cut(client, whoSep)
	return base, who
}

// clientName returns the name an HTTP run's client id carries, or "".
func clientName(client string) string {
	_, who := splitClient(client)
	return who[min(len(who), len(whoToken)):]
}

// agentName returns the token name of an HTTP run's client id, if its
// writer had a token that names it.
func agentName(client string) (string, bool) {
	_, who := splitClient(client)
	return strings.CutPrefix(who, whoToken)
}

// runOf returns the run id of an HTTP run's client id, or "".
func runOf(client string) string {
	base, _ := splitClient(client)
	run, ok := strings.CutPrefix(base, httpClientPrefix)
	if !ok {
		return ""
	}
	run, _, _ = strings.Cut(run, revertMark)
	return run
}

// revertOf returns the run that an HTTP run's client id reverts, or "".
func revertOf(client string) string {
	base, _ := splitClient(client)
	if !strings.HasPrefix(base, httpClientPrefix) {
		return ""
	}
	_, target, _ := strings.Cut(base, revertMark)
	return target
}

// runFor returns the run id of a write by who (see whoSep) with an
// Idempotency-Key: a UUID derived one-way from the document, the writer
// and the key under the server's secret, so that a retry, even after a
// restart, is the same run, and nobody can tell the key from the run id.
// A key is its writer's: the same key under another name is another
// run. Without a key, a fresh run.
func (s *Server) runFor(id, who, key string) string {
	if key == "" {
		return uuid.NewString()
	}
	m := hmac.New(sha256.New, s.authorKey)
	m.Write([]byte("run\x00" + id + "\x00" + key))
	if who != "" {
		m.Write([]byte("\x00" + who))
	}
	var u uuid.UUID
	copy(u[:], m.Sum(nil))
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u.String()
}

// idempotencyKey returns the request's Idempotency-Key ("" if none), or
// an error for a malformed one.
func idempotencyKey(r *http.Request) (string, error) {
	vs := r.Header.Values("Idempotency-Key")
	if len(vs) == 0 {
		return "", nil
	}
	k := vs[0]
	if len(vs) > 1 || len(k) < 1 || len(k) > maxIdempotencyKey {
		return "", fmt.Errorf("Idempotency-Key must be one header of 1 to %d printable ASCII characters", maxIdempotencyKey)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return "", fmt.Errorf("Idempotency-Key must be one header of 1 to %d printable ASCII characters", maxIdempotencyKey)
		}
	}
	return k, nil
}

// writeRequest is what every HTTP write starts with: the document, the
// checks that cost nothing, the body read within the create body limits.
type writeRequest struct {
	id     string
	key    string // Idempotency-Key, or ""
	run    string // set by setName
	client string // the run's client id: httpClient, or revertClient; set by setName
	token  string // the access token's name, or ""
	who    string // set by setName
	body   []byte
}

// beginWrite runs the checks every HTTP write shares and reads its JSON
// body. It answers the request itself when it reports false.
func (s *Server) beginWrite(w http.ResponseWriter, r *http.Request) (*writeRequest, bool) {
	id, ok := docID(r)
	if !ok {
		refuse(w, r, http.StatusNotFound, CodeNotFound, "no such document")
		return nil, false
	}
	// As for creates (origin.go): a page elsewhere may not make its
	// visitors' browsers write.
	if err := checkOrigin(r, s.opts.AllowedOrigins); err != nil {
		refuse(w, r, http.StatusForbidden, CodeForbidden, err.Error())
		return nil, false
	}
	key, err := idempotencyKey(r)
	if err != nil {
		refuse(w, r, http.StatusBadRequest, CodeBadMessage, err.Error())
		return nil, false
	}
	if s.httpWrites.rate != nil && !s.httpWrites.rate.allow(s.requestAddr(r), time.Now()) {
		w.Header().Set("Retry-After", "1")
		refuse(w, r, http.StatusTooManyRequests, CodeRateLimited,
			fmt.Sprintf("more than %g writes per second (burst %d) from this address; try again later", s.opts.WriteRate, s.opts.WriteBurst))
		return nil, false
	}
	if !isJSON(r) {
		refuse(w, r, http.StatusUnsupportedMediaType, CodeBadMessage, "the body must have Content-Type application/json")
		return nil, false
	}
	body, ok := s.readCreateBody(w, r)
	if !ok {
		return nil, false
	}
	if !utf8.Valid(body) {
		writeError(w, http.StatusBadRequest, CodeBadMessage, "body is not valid UTF-8")
		return nil, false
	}
	return &writeRequest{id: id, key: key, token: tokenName(r.Context()), body: body}, true
}

// setName names the writer, from the token or else from the body's name,
// and so makes the run: its id and client id.
func (s *Server) setName(wr *writeRequest, body string) {
	wr.who = writerWho(wr.token, body)
	wr.run = s.runFor(wr.id, wr.who, wr.key)
	wr.client = httpClient(wr.run, wr.who)
}

// replayed answers a write whose Idempotency-Key already made its op:
// the first answer again. It reports whether it answered.
func (s *Server) replayed(w http.ResponseWriter, r *http.Request, wr *writeRequest, answer func(writeReply) any) bool {
	if wr.key == "" {
		return false
	}
	seq, rev, err := s.store.ClientSeq(r.Context(), wr.id, wr.client)
	if err != nil {
		s.writeStoreError(w, r, err)
		return true
	}
	if seq == 0 {
		return false
	}
	writeJSON(w, http.StatusOK, answer(writeReply{rev: rev}))
	return true
}

// submitWrite sends op, made on rev, to the hub as op seq of client and
// waits until it is committed (or found to change nothing, or refused).
// A base older than the hub's memory is rebased over the store's ops
// here, off the hub's goroutine, and sent again.
func (s *Server) submitWrite(ctx context.Context, h *hub, client string, seq, rev int64, op ot.Op, strict bool) (writeReply, error) {
	for attempt := 0; ; attempt++ {
		m := writeReq{client: client, seq: seq, rev: rev, op: op, strict: strict, bytes: opBytes(op), reply: make(chan writeReply, 1)}
		if !h.send(ctx, m) {
			return writeReply{}, h.goneErr(ctx)
		}
		var rep writeReply
		select {
		case rep = <-m.reply:
		case <-h.done:
			select {
			case rep = <-m.reply:
			default:
				return writeReply{}, h.goneErr(ctx)
			}
		case <-ctx.Done():
			return writeReply{}, ctx.Err()
		}
		if !rep.tooOld {
			return rep, nil
		}
		if attempt == 3 {
			// The document moves faster than the rebase catches up.
			return writeReply{perr: errorf(CodeRateLimited, "the document is changing too fast to rebase this write; try again")}, nil
		}
		var perr *protoError
		var err error
		rev, op, perr, err = s.rebaseFromStore(ctx, h.id, rev, op)
		if err != nil {
			return writeReply{}, err
		}
		if perr != nil {
			return writeReply{perr: perr}, nil
		}
	}
}

// rebaseFromStore transforms op, made on rev, over the ops the store has
// after rev, a page at a time, and returns it with the revision it now
// applies to. Past Options.MaxWriteRebase ops it gives up.
func (s *Server) rebaseFromStore(ctx context.Context, id string, rev int64, op ot.Op) (int64, ot.Op, *protoError, error) {
	var rb ot.Rebaser
	rb.Reset(op)
	from, n := rev, 0
	for {
		page, err := s.store.Ops(ctx, id, rev, rebasePage, s.opts.MaxOpsPageBytes)
		if err != nil {
			return 0, nil, nil, err
		}
		for _, r := range page {
			if r.Rev != rev+1 {
				return 0, nil, nil, fmt.Errorf("store returned rev %d after rev %d", r.Rev, rev)
			}
			if err := rb.Over(r.Op); err != nil {
				return 0, nil, errorf(CodeBadOp, "op does not apply to rev %d: %v", from, err), nil
			}
			rev = r.Rev
		}
		if n += len(page); n > s.opts.MaxWriteRebase {
			return 0, nil, errorf(CodeBadOp, "rev %d is more than %d ops behind the head; read the document again and write on a newer revision", from, s.opts.MaxWriteRebase), nil
		}
		if len(page) == 0 {
			return rev, rb.Op(), nil, nil
		}
	}
}

// writeResult answers a write from the hub's reply.
func (s *Server) writeResult(w http.ResponseWriter, r *http.Request, rep writeReply, err error, answer func(writeReply) any) {
	switch {
	case err != nil:
		s.writeStoreError(w, r, err)
	case rep.unanswered:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, CodeShuttingDown,
			"the document's owner did not answer (cluster mode); try again: with the same Idempotency-Key a retry applies nothing twice")
	case rep.conflict:
		var e struct {
			apiError
			Rev int64 `json:"rev"`
		}
		e.Error.Code, e.Error.Message = CodeConflict, fmt.Sprintf("the document is at rev %d, not the rev given (strict)", rep.rev)
		e.Rev = rep.rev
		if c, ok := w.(errorCounter); ok {
			c.countError(CodeConflict)
		}
		writeJSON(w, http.StatusConflict, e)
	case rep.perr != nil:
		writeError(w, protoStatus(rep.perr.Code), rep.perr.Code, rep.perr.Message)
	default:
		writeJSON(w, http.StatusOK, answer(rep))
	}
}

// protoStatus is the HTTP status of a protocol error code.
func protoStatus(code string) int {
	switch code {
	case CodeBadOp, CodeBadMessage:
		return http.StatusBadRequest
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeNotFound:
		return http.StatusNotFound
	case CodeShuttingDown:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// opsRequest is the body of POST /api/docs/{id}/ops.
type opsRequest struct {
	Rev    *int64          `json:"rev"`
	Op     json.RawMessage `json:"op"`
	Name   string          `json:"name"`
	Strict bool            `json:"strict"`
}

// handlePostOps answers POST /api/docs/{id}/ops {"rev","op","name","strict"}.
func (s *Server) handlePostOps(w http.ResponseWriter, r *http.Request) {
	wr, ok := s.beginWrite(w, r)
	if !ok {
		return
	}
	var req opsRequest
	if err := json.Unmarshal(wr.body, &req); err != nil || req.Rev == nil || req.Op == nil {
		writeError(w, http.StatusBadRequest, CodeBadMessage, `the body must be {"rev": R, "op": [...]} with optional "name" and "strict"`)
		return
	}
	if *req.Rev < 0 {
		writeError(w, http.StatusBadRequest, CodeBadOp, "rev must be a revision >= 0")
		return
	}
	var op ot.Op
	if err := json.Unmarshal(req.Op, &op); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadOp, "op: "+err.Error())
		return
	}
	if err := op.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadOp, "op: "+err.Error())
		return
	}
	s.setName(wr, req.Name)
	s.commitWrite(w, r, wr, req.Strict, func() (int64, ot.Op, bool) { return *req.Rev, op, true })
}

// commitWrite submits a write's op, made on rev, as its run's one op,
// and answers: once per Idempotency-Key. build makes the op; it answers
// the request itself when it reports false. It is called only when the
// write is not a retry of one already made.
func (s *Server) commitWrite(w http.ResponseWriter, r *http.Request, wr *writeRequest, strict bool, build func() (rev int64, op ot.Op, ok bool)) {
	s.commitRun(w, r, wr, strict, build, func(rep writeReply) any {
		return map[string]any{"rev": rep.rev, "run": wr.run}
	})
}

// commitRun is commitWrite with the answer's body made by answer.
func (s *Server) commitRun(w http.ResponseWriter, r *http.Request, wr *writeRequest, strict bool,
	build func() (int64, ot.Op, bool), answer func(writeReply) any) {
	if wr.key != "" {
		defer s.httpWrites.lock(wr.id + "\x00" + wr.run)()
		if s.replayed(w, r, wr, answer) {
			return
		}
	}
	rev, op, ok := build()
	if !ok {
		return
	}
	h, err := s.acquire(r.Context(), wr.id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	defer s.release(h)
	rep, err := s.submitWrite(r.Context(), h, wr.client, 1, rev, op, strict)
	s.writeResult(w, r, rep, err, answer)
}

// textRequest is the body of PUT /api/docs/{id}/text.
type textRequest struct {
	Rev    *int64  `json:"rev"`
	Text   *string `json:"text"`
	Name   string  `json:"name"`
	Strict bool    `json:"strict"`
}

// handlePutText answers PUT /api/docs/{id}/text {"rev","text","name",
// "strict"}: the diff of the text at rev (default: the head) against the
// body's text, written as an op made on rev.
func (s *Server) handlePutText(w http.ResponseWriter, r *http.Request) {
	wr, ok := s.beginWrite(w, r)
	if !ok {
		return
	}
	var req textRequest
	if err := json.Unmarshal(wr.body, &req); err != nil || req.Text == nil {
		writeError(w, http.StatusBadRequest, CodeBadMessage, `the body must be {"text": "..."} with optional "rev", "name" and "strict"`)
		return
	}
	if req.Rev != nil && *req.Rev < 0 {
		writeError(w, http.StatusBadRequest, CodeBadOp, "rev must be a revision >= 0")
		return
	}
	if n := utf8.RuneCountInString(*req.Text); n > s.opts.MaxDocChars {
		writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge,
			fmt.Sprintf("text has %d code points; the limit is %d", n, s.opts.MaxDocChars))
		return
	}
	s.setName(wr, req.Name)
	s.commitWrite(w, r, wr, req.Strict, func() (int64, ot.Op, bool) {
		if req.Rev == nil {
			t, err := s.docText(r.Context(), wr.id, false)
			if err != nil {
				s.writeStoreError(w, r, err)
				return 0, nil, false
			}
			return t.rev, textDiff(t.text, *req.Text), true
		}
		// The text at a past revision never changes: read it outside the
		// hub, shared and under the held-bytes budget (pastrev.go).
		text, err := s.loadPastText(r.Context(), wr.id, *req.Rev)
		switch {
		case errors.Is(err, ErrNoRevision):
			writeError(w, http.StatusBadRequest, CodeBadOp, fmt.Sprintf("rev %d is in the future: the document has no such revision", *req.Rev))
			return 0, nil, false
		case err != nil:
			s.writeStoreError(w, r, err)
			return 0, nil, false
		}
		return *req.Rev, textDiff(text, *req.Text), true
	})
}
