package jetstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/collabd/collabd/ot"
)

// Submission is an editor's op forwarded by a node that is not the
// document's owner: exactly what the editor sent in its op message.
type Submission struct {
	Client string `json:"client"`
	Seq    int64  `json:"seq"`
	Rev    int64  `json:"rev"`
	Op     ot.Op  `json:"op"`
	// Strict, for an HTTP write, asks the owner to apply the op only if
	// its head is still Rev.
	Strict bool `json:"strict,omitempty"`
	// Stream, instead of Op, is a piece of an HTTP stream: text to
	// insert at a caret kept by the owner.
	Stream *StreamPiece `json:"stream,omitempty"`
	// Rotate, instead of Op, asks the owner to move the document to new
	// ids.
	Rotate *DocMeta `json:"rotate,omitempty"`
}

// StreamPiece is a stream's piece: Text to insert at Caret (a position
// at the submission's Rev), none to show the stream in presence as Name,
// or End to take it out.
type StreamPiece struct {
	Caret int    `json:"caret,omitempty"`
	Text  string `json:"text,omitempty"`
	Name  string `json:"name,omitempty"`
	End   bool   `json:"end,omitempty"`
}

// Reply is the owner's answer to a Submission: empty Code when it took the
// op (the ack travels later, through Follow, once the op is durable), else
// a protocol error code and message for the editor.
type Reply struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// Rev, when set, is the revision the submission became: for a
	// resent op already committed, or for a server op (Client "") once it
	// is committed.
	Rev int64 `json:"rev,omitempty"`
	// Caret is a stream's caret after its piece, at Rev.
	Caret int `json:"caret,omitempty"`
}

// Handler answers a Submission for the document it was served for. It runs
// on the subscription's goroutine, one request at a time, so it should hand
// the op to the document's hub and wait only for the hub's verdict.
type Handler func(ctx context.Context, sub Submission) Reply

// handlerTimeout bounds one Handler call: about what a requester waits.
const handlerTimeout = 10 * time.Second

// Serving is a document's request/reply subscriptions: the owners' queue
// group on the document's subject, which Forward uses, and this node's own
// subject for the document, which ForwardTo uses. Close ends them.
type Serving struct {
	subs []*nats.Subscription
}

// Serve answers submissions for document id with h, in the queue group of
// owners: if two nodes briefly both serve, each request reaches one of
// them, and fencing decides which one's append counts. A malformed request
// gets Code "bad_request".
func (s *Store) Serve(id string, h Handler) (*Serving, error) {
	return s.ServeAsync(id, func(sub Submission, respond func(Reply)) {
		// Bound the handler by what a requester waits, at most.
		ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
		defer cancel()
		respond(h(ctx, sub))
	})
}

// AsyncHandler takes a Submission and answers it by calling respond, once,
// from any goroutine and possibly after it has returned: so that a
// document's hub can take the next submission while the verdict on this
// one waits for its turn. A submission never answered times out at the
// requester, which then retries (deduplicated by (client, seq)).
type AsyncHandler func(sub Submission, respond func(Reply))

// ServeAsync is Serve with an AsyncHandler.
func (s *Store) ServeAsync(id string, h AsyncHandler) (*Serving, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	handle := func(m *nats.Msg) {
		respond := func(rep Reply) {
			b := acceptedReply
			if rep != (Reply{}) {
				b, _ = json.Marshal(rep) // strings and numbers cannot fail to encode
			}
			if err := m.Respond(b); err != nil {
				s.log.Warn("jetstream: reply to forwarded op", "doc", id, "err", err)
			}
		}
		var sub Submission
		if err := decodeSubmission(m.Data, &sub); err != nil {
			respond(Reply{Code: "bad_request", Message: err.Error()})
			return
		}
		h(sub, respond)
	}
	shared, err := s.nc.QueueSubscribe(subjectRPC+id, queueOwner, handle)
	if err != nil {
		return nil, fmt.Errorf("serve doc %s: %w", id, err)
	}
	own, err := s.nc.Subscribe(nodeSubject(id, s.node), handle)
	if err != nil {
		_ = shared.Unsubscribe()
		return nil, fmt.Errorf("serve doc %s: %w", id, err)
	}
	return &Serving{subs: []*nats.Subscription{shared, own}}, nil
}

// acceptedReply is the encoding of Reply{}: the answer to nearly every
// submission.
var acceptedReply = []byte("{}")

// encodeSubmission encodes sub as encoding/json does, by hand for a plain
// op (nearly every forwarded one): reflection over a Submission was a
// few percent of a node's CPU per forwarded op, on each side.
// TestSubmissionCodec checks the two agree.
func encodeSubmission(sub Submission) ([]byte, error) {
	if sub.Strict || sub.Stream != nil || sub.Rotate != nil {
		return json.Marshal(sub)
	}
	b := make([]byte, 0, 64+len(sub.Client)+len(sub.Op)*8)
	b = append(b, `{"client":`...)
	b = appendJSONString(b, sub.Client)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, sub.Seq, 10)
	b = append(b, `,"rev":`...)
	b = strconv.AppendInt(b, sub.Rev, 10)
	b = append(b, `,"op":`...)
	b = sub.Op.AppendJSON(b)
	return append(b, '}'), nil
}

// decodeSubmission decodes what encodeSubmission wrote: by hand when it
// has exactly the plain op's form, else through encoding/json.
func decodeSubmission(data []byte, sub *Submission) error {
	if quickSubmission(data, sub) {
		return nil
	}
	*sub = Submission{}
	return json.Unmarshal(data, sub)
}

// quickSubmission parses {"client":"C","seq":N,"rev":N,"op":OP} with a
// client that needs no escaping; false for anything else.
func quickSubmission(data []byte, sub *Submission) bool {
	rest, ok := bytes.CutPrefix(data, []byte(`{"client":"`))
	if !ok {
		return false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return false
	}
	client := string(rest[:end])
	rest = rest[end+1:]
	num := func(prefix string) (int64, bool) {
		r, ok := bytes.CutPrefix(rest, []byte(prefix))
		if !ok {
			return 0, false
		}
		n := 0
		for n < len(r) && (r[n] >= '0' && r[n] <= '9' || n == 0 && r[n] == '-') {
			n++
		}
		v, err := strconv.ParseInt(string(r[:n]), 10, 64)
		rest = r[n:]
		return v, err == nil
	}
	seq, ok1 := num(`,"seq":`)
	rev, ok2 := num(`,"rev":`)
	if !ok1 || !ok2 {
		return false
	}
	opJSON, ok := bytes.CutPrefix(rest, []byte(`,"op":`))
	if !ok || len(opJSON) == 0 || opJSON[len(opJSON)-1] != '}' {
		return false
	}
	var op ot.Op
	if err := op.UnmarshalJSON(opJSON[:len(opJSON)-1]); err != nil {
		return false
	}
	*sub = Submission{Client: client, Seq: seq, Rev: rev, Op: op}
	return true
}

// nodeSubject is the subject on which node serves document id.
func nodeSubject(id, node string) string { return subjectRPC + id + "." + node }

// Stop stops taking requests at once, without waiting for those received:
// for an AsyncHandler that answers nothing more once its owner has
// stopped. Unlike Close it does not wait for NATS, so it does not block
// while disconnected; requests still in flight time out at the requester.
func (sv *Serving) Stop() {
	for _, sub := range sv.subs {
		// An error means the connection or the subscription is gone
		// already: either way nothing more arrives.
		_ = sub.Unsubscribe()
	}
}

// Close stops taking requests and waits until those already received have
// been answered (at most the handler's bound), so that after it returns
// this node answers no more submissions for the document.
func (sv *Serving) Close() error {
	for _, sub := range sv.subs {
		closed := sub.StatusChanged(nats.SubscriptionClosed)
		if err := sub.Drain(); err != nil {
			if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrBadSubscription) {
				continue // nothing more can arrive
			}
			return fmt.Errorf("stop serving: %w", err)
		}
		select {
		case <-closed:
		case <-time.After(handlerTimeout + 5*time.Second):
			return fmt.Errorf("stop serving: drain did not finish")
		}
	}
	return nil
}

// Forward sends sub to the owner of document id and returns its reply.
// ErrNoOwner means nobody serves the document right now: the caller should
// acquire the lease itself or retry after the lease TTL. A timeout is
// ambiguous, like an Append's: the op may have been taken, so the editor's
// resend (deduplicated by (client, seq)) is the recovery.
func (s *Store) Forward(ctx context.Context, id string, sub Submission) (Reply, error) {
	if err := checkID(id); err != nil {
		return Reply{}, err
	}
	b, err := encodeSubmission(sub)
	if err != nil {
		return Reply{}, fmt.Errorf("forward doc %s: %w", id, err)
	}
	m, err := s.nc.RequestWithContext(ctx, subjectRPC+id, b)
	if errors.Is(err, nats.ErrNoResponders) {
		return Reply{}, fmt.Errorf("forward doc %s: %w", id, ErrNoOwner)
	}
	if err != nil {
		return Reply{}, fmt.Errorf("forward doc %s: %w", id, err)
	}
	var rep Reply
	if bytes.Equal(m.Data, acceptedReply) {
		return rep, nil
	}
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		return Reply{}, fmt.Errorf("forward doc %s: bad reply: %w", id, err)
	}
	return rep, nil
}

// ForwardTo sends sub to node, which the document's lease names as its
// owner, rather than to the owners' queue group: a node that is paused
// (SIGSTOP, a long GC, a frozen VM) keeps its subscriptions until NATS
// notices, minutes later, and would take its share of a queue group's
// requests all that time. ErrNoOwner when node does not serve the
// document (it died, or gave it up); a timeout when it does not answer.
func (s *Store) ForwardTo(ctx context.Context, id, node string, sub Submission) (Reply, error) {
	if err := checkID(id); err != nil {
		return Reply{}, err
	}
	b, err := encodeSubmission(sub)
	if err != nil {
		return Reply{}, fmt.Errorf("forward doc %s: %w", id, err)
	}
	m, err := s.nc.RequestWithContext(ctx, nodeSubject(id, node), b)
	if errors.Is(err, nats.ErrNoResponders) {
		return Reply{}, fmt.Errorf("forward doc %s to %s: %w", id, node, ErrNoOwner)
	}
	if err != nil {
		return Reply{}, fmt.Errorf("forward doc %s to %s: %w", id, node, err)
	}
	var rep Reply
	if bytes.Equal(m.Data, acceptedReply) {
		return rep, nil
	}
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		return Reply{}, fmt.Errorf("forward doc %s: bad reply: %w", id, err)
	}
	return rep, nil
}
