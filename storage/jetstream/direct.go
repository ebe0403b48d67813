package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Reads of the op stream without consumers.
//
// Every read of a range used to open an ordered consumer (a server-side
// object created through the stream leader, then a pull); on three
// replicas about one in 36 delivered nothing until its heartbeat gave up,
// ten seconds later. A document's messages are addressed by subject and
// stream sequence, which JetStream's direct get serves without a consumer:
// one request for one message, or a batch ("the next n messages of subject
// S from sequence a, up to sequence b") answered as a burst of messages and
// an end-of-batch marker. The stream allows direct gets (AllowDirect), so
// any replica that is caught up answers.
//
// A replica may lag the leader by a few messages. Every read here starts
// from the subject's end as the leader knows it (last, a leader read), so
// it knows which messages must exist: a replica that does not have them
// answers "not found" or ends its batch early, and the read asks again,
// then falls back to the leader's own get. A message a replica does
// return is the stored one: the stream only grows (DenyDelete), so a
// replica's copy of sequence n never changes.

// apiMsgGet is the JetStream API's message get request (stream direct get
// and leader get alike).
type apiMsgGet struct {
	Seq      uint64 `json:"seq,omitempty"`
	LastFor  string `json:"last_by_subj,omitempty"`
	NextFor  string `json:"next_by_subj,omitempty"`
	Batch    int    `json:"batch,omitempty"`
	MaxBytes int    `json:"max_bytes,omitempty"`
}

// apiMsgGetReply is the leader get's answer.
type apiMsgGetReply struct {
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error,omitempty"`
	Message *struct {
		Subject  string    `json:"subject"`
		Sequence uint64    `json:"seq"`
		Header   []byte    `json:"hdrs,omitempty"`
		Data     []byte    `json:"data,omitempty"`
		Time     time.Time `json:"time"`
	} `json:"message,omitempty"`
}

// errNoMessage is JetStream's "no message found" (JSErrCodeMessageNotFound).
const errNoMessage = 10037

// Batches of a range read: how many messages and bytes one request asks
// for, and how long the first answer may take before the read asks again.
const (
	directBatch    = 256
	directMaxBytes = 4 << 20
	directWait     = 2 * time.Second
	// directTries is how many times a range read asks the replicas before
	// it reads from the leader, one message at a time.
	directTries = 3
)

// leaderGet asks the stream leader for a message ($JS.API.STREAM.MSG.GET):
// never stale, unlike a direct get. ErrMsgNotFound if there is none.
func (s *Store) leaderGet(ctx context.Context, req apiMsgGet) (*natsjs.RawStreamMsg, error) {
	return s.leaderGetFrom(ctx, streamOps, req)
}

// leaderGetFrom is leaderGet on stream, which may be a bucket's.
func (s *Store) leaderGetFrom(ctx context.Context, stream string, req apiMsgGet) (*natsjs.RawStreamMsg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	m, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, body)
	if err != nil {
		return nil, err
	}
	var r apiMsgGetReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return nil, fmt.Errorf("message get: %w", err)
	}
	if r.Error != nil {
		if r.Error.ErrCode == errNoMessage {
			return nil, natsjs.ErrMsgNotFound
		}
		return nil, fmt.Errorf("message get: %s (%d)", r.Error.Description, r.Error.ErrCode)
	}
	if r.Message == nil {
		return nil, natsjs.ErrInvalidJetStreamResponse
	}
	var hdr nats.Header
	if len(r.Message.Header) > 0 {
		if hdr, err = nats.DecodeHeadersMsg(r.Message.Header); err != nil {
			return nil, err
		}
	}
	return &natsjs.RawStreamMsg{Subject: r.Message.Subject, Sequence: r.Message.Sequence,
		Header: hdr, Data: r.Message.Data, Time: r.Message.Time}, nil
}

// nextMsg returns the first message of subj at or after stream sequence
// seq, which must exist: from any replica, or from the leader when the
// replica that answered has not stored it yet, or none answered.
func (s *Store) nextMsg(ctx context.Context, seq uint64, subj string) (*natsjs.RawStreamMsg, error) {
	m, err := s.ops.GetMsg(ctx, seq, natsjs.WithGetMsgSubject(subj))
	if err != nil && ctx.Err() == nil {
		// Not found: the replica lags. Anything else (no replica serves
		// direct gets: a node of an older version set the stream back)
		// is for the leader too.
		m, err = s.leaderGet(ctx, apiMsgGet{Seq: seq, NextFor: subj})
	}
	if err == nil {
		if first, last, err := revRange(m.Header); err == nil {
			s.seekNote(subj, m.Sequence, first, last)
		}
	}
	return m, err
}

// scan calls fn with the records of each of the document's messages with
// stream sequence from..to, in order, through batched direct gets; to must
// be a message of the subject. An error from fn stops the scan and is
// returned as is.
func (s *Store) scan(ctx context.Context, id string, from, to uint64, fn func(seq uint64, recs []Record) error) error {
	subj := opsSubject(id)
	tries := 0
	for from <= to {
		if tries >= directTries {
			// The replicas did not serve this read: the leader serves
			// the rest of it, one message at a time.
			m, err := s.leaderGet(ctx, apiMsgGet{Seq: from, NextFor: subj})
			if err != nil {
				return fmt.Errorf("doc %s: read from seq %d: %w", id, from, err)
			}
			if err := s.scanOne(id, m, fn); err != nil {
				return err
			}
			from = m.Sequence + 1
			continue
		}
		next, err := s.directBatch(ctx, subj, from, to, fn)
		switch {
		case err != nil:
			var ferr fnError
			if errors.As(err, &ferr) {
				return ferr.err
			}
			if errors.Is(err, ErrCorrupt) || ctx.Err() != nil {
				return err
			}
			s.log.Debug("direct get", "doc", id, "from", from, "err", err)
		case next > from:
			from, tries = next, 0
			continue
		}
		// Nothing read: the replica that answered lags, or none did.
		tries++
	}
	return nil
}

// fnError carries an error of scan's callback through directBatch.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// scanOne hands one message's records to fn.
func (s *Store) scanOne(id string, m *natsjs.RawStreamMsg, fn func(seq uint64, recs []Record) error) error {
	recs, err := decodeGroup(m.Header, m.Data)
	if err != nil {
		return fmt.Errorf("doc %s seq %d: %v: %w", id, m.Sequence, err, ErrCorrupt)
	}
	s.scanned.Add(int64(len(recs)))
	s.seekNote(opsSubject(id), m.Sequence, recs[0].Rev, recs[len(recs)-1].Rev)
	return fn(m.Sequence, recs)
}

// directBatch asks a replica for the messages of subj from stream sequence
// from and hands each one up to to to fn (the batch may run past to: the
// server has no bound for a batch by subject). It returns the sequence after the
// last one handled (from if none was), and fn's error wrapped in fnError.
func (s *Store) directBatch(ctx context.Context, subj string, from, to uint64, fn func(seq uint64, recs []Record) error) (uint64, error) {
	body, err := json.Marshal(apiMsgGet{Seq: from, NextFor: subj, Batch: directBatch, MaxBytes: directMaxBytes})
	if err != nil {
		return from, err
	}
	inbox := s.nc.NewInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return from, err
	}
	defer sub.Unsubscribe()
	if err := s.nc.PublishRequest("$JS.API.DIRECT.GET."+streamOps, inbox, body); err != nil {
		return from, err
	}
	next := from
	for {
		wctx, cancel := context.WithTimeout(ctx, directWait)
		m, err := sub.NextMsgWithContext(wctx)
		cancel()
		if err != nil {
			return next, err
		}
		if st := m.Header.Get("Status"); st != "" {
			// 204 ends the batch, 404 means the replica has nothing
			// from next on, anything else is an error (503: no replica
			// serves direct gets yet).
			switch st {
			case "204", "404":
				return next, nil
			default:
				return next, fmt.Errorf("direct get: status %s %s", st, m.Header.Get("Description"))
			}
		}
		seq, err := strconv.ParseUint(m.Header.Get(natsjs.SequenceHeader), 10, 64)
		if err == nil && seq > to {
			return to + 1, nil // committed after the read began
		}
		if err != nil || seq < next {
			return next, fmt.Errorf("direct get: message seq %q from %d to %d", m.Header.Get(natsjs.SequenceHeader), next, to)
		}
		raw := &natsjs.RawStreamMsg{Subject: subj, Sequence: seq, Header: m.Header, Data: m.Data}
		if err := s.scanOne(subj[len(subjectOps):], raw, fn); err != nil {
			if errors.Is(err, ErrCorrupt) {
				return next, err
			}
			return next, fnError{err}
		}
		next = seq + 1
		if seq == to {
			return next, nil
		}
	}
}
