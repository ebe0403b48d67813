package jetstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// storeMsg publishes m to JetStream and waits for its PubAck, as natsjs's
// PublishMsg does but without its retries on "no responders" (callers
// retry as they see fit) and reading the common PubAck by hand: decoding
// it through encoding/json was a few percent of a node's CPU per op, for
// every append and every lease renewal. Errors are natsjs's: a refusal is
// an *natsjs.APIError, no stream natsjs.ErrNoStreamResponse.
func (s *Store) storeMsg(ctx context.Context, m *nats.Msg) (*natsjs.PubAck, error) {
	resp, err := s.nc.RequestMsgWithContext(ctx, m)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, natsjs.ErrNoStreamResponse
	}
	if err != nil {
		return nil, err
	}
	return parsePubAck(resp.Data)
}

// parsePubAck reads a PubAck: {"stream":"S","seq":N} with perhaps a
// domain and "duplicate": true, by hand; anything else (an error, a form
// not seen before) through encoding/json.
func parsePubAck(data []byte) (*natsjs.PubAck, error) {
	if ack, ok := quickPubAck(data); ok {
		return ack, nil
	}
	var r struct {
		Error *natsjs.APIError `json:"error"`
		*natsjs.PubAck
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, natsjs.ErrInvalidJSAck
	}
	if r.Error != nil {
		return nil, fmt.Errorf("nats: %w", r.Error)
	}
	if r.PubAck == nil || r.PubAck.Stream == "" || r.PubAck.Sequence == 0 {
		return nil, natsjs.ErrInvalidJSAck
	}
	return r.PubAck, nil
}

// quickPubAck parses the PubAck forms the server writes for a stored
// message; false for anything else.
func quickPubAck(data []byte) (*natsjs.PubAck, bool) {
	const head = `{"stream":"`
	// One flat object: nothing nested (an error, batch details).
	if !bytes.HasPrefix(data, []byte(head)) || bytes.Count(data, []byte("{")) != 1 || bytes.Contains(data, []byte(`"error"`)) {
		return nil, false
	}
	rest := data[len(head):]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 {
		return nil, false
	}
	ack := &natsjs.PubAck{Stream: string(rest[:end])}
	i := bytes.Index(data, []byte(`"seq":`))
	if i < 0 {
		return nil, false
	}
	digits := bytes.TrimLeft(data[i+len(`"seq":`):], " ")
	n := 0
	for n < len(digits) && digits[n] >= '0' && digits[n] <= '9' {
		n++
	}
	seq, err := strconv.ParseUint(string(digits[:n]), 10, 64)
	if err != nil || seq == 0 {
		return nil, false
	}
	ack.Sequence = seq
	if j := bytes.Index(data, []byte(`"duplicate":`)); j >= 0 {
		v := bytes.TrimLeft(data[j+len(`"duplicate":`):], " ")
		ack.Duplicate = bytes.HasPrefix(v, []byte("true"))
	}
	if j := bytes.Index(data, []byte(`"domain":"`)); j >= 0 {
		v := data[j+len(`"domain":"`):]
		if k := bytes.IndexByte(v, '"'); k >= 0 {
			ack.Domain = string(v[:k])
		}
	}
	return ack, true
}
