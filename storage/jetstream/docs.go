package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/collabd/collabd/ot"
)

// Create records a new document, with first as revision 1 when it is not
// nil. It fails with ErrExists when the edit id or the view id is taken.
//
// NATS has no transaction spanning a bucket and a stream, so Create writes
// in an order that keeps every intermediate state harmless: the view id
// first (its Create is what makes view ids unique), then the first record
// (fenced on an empty subject), and the document's meta last, which is the
// commit point: without it the document does not exist for Load or Ops. A
// failure after the view id was taken deletes it again; a record published
// just before a failure stays, unreachable, on the subject of an id nobody
// got.
func (s *Store) Create(ctx context.Context, meta DocMeta, first *Record) error {
	if !validID.MatchString(meta.ID) || !validID.MatchString(meta.ViewID) {
		return fmt.Errorf("create doc %q view %q: ids must match %s: %w", meta.ID, meta.ViewID, validID, ErrBadRecord)
	}
	if first != nil {
		if first.Rev != 1 {
			return fmt.Errorf("create doc %s: first record has rev %d: %w", meta.ID, first.Rev, ErrBadRecord)
		}
		if err := first.Op.Validate(); err != nil {
			return fmt.Errorf("create doc %s: %w: %w", meta.ID, ErrBadRecord, err)
		}
		if first.Op.BaseLen() != 0 {
			return fmt.Errorf("create doc %s: first op needs %d code points: %w", meta.ID, first.Op.BaseLen(), ErrBadRecord)
		}
	}
	if _, err := s.docs.Get(ctx, meta.ID); err == nil {
		return fmt.Errorf("create doc %s: %w", meta.ID, ErrExists)
	} else if !errors.Is(err, natsjs.ErrKeyNotFound) {
		return fmt.Errorf("create doc %s: %w", meta.ID, err)
	}
	viewRev, err := s.views.Create(ctx, meta.ViewID, []byte(meta.ID))
	if errors.Is(err, natsjs.ErrKeyExists) {
		return fmt.Errorf("create doc %s: view %s: %w", meta.ID, meta.ViewID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create doc %s: view %s: %w", meta.ID, meta.ViewID, err)
	}
	undoView := func() {
		// A fresh context: the caller's may be what failed.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.views.Delete(ctx, meta.ViewID, natsjs.LastRevision(viewRev)); err != nil {
			s.log.Warn("jetstream: create: could not release view id", "view", meta.ViewID, "err", err)
		}
	}

	st := &docState{clients: map[string]ClientState{}}
	if first != nil {
		ack, err := s.js.PublishMsg(ctx, encodeGroup(meta.ID, []Record{*first}),
			natsjs.WithExpectStream(streamOps), natsjs.WithExpectLastSequencePerSubject(0))
		if err != nil {
			undoView()
			if isWrongLastSeq(err) {
				return fmt.Errorf("create doc %s: subject has records: %w", meta.ID, ErrExists)
			}
			return fmt.Errorf("create doc %s: first record: %w", meta.ID, err)
		}
		st.seq, st.rev = ack.Sequence, 1
		st.note(*first)
	}

	m, err := json.Marshal(wireMeta{V: 1, ViewID: meta.ViewID, Created: meta.Created.UnixNano()})
	if err != nil {
		return fmt.Errorf("create doc %s: %w", meta.ID, err)
	}
	if _, err := s.docs.Create(ctx, meta.ID, m); err != nil {
		undoView()
		if errors.Is(err, natsjs.ErrKeyExists) {
			return fmt.Errorf("create doc %s: %w", meta.ID, ErrExists)
		}
		return fmt.Errorf("create doc %s: meta: %w", meta.ID, err)
	}
	s.setState(meta.ID, st)
	return nil
}

// ViewDoc returns the edit id of the document whose view id is viewID.
func (s *Store) ViewDoc(ctx context.Context, viewID string) (string, error) {
	if err := checkID(viewID); err != nil {
		return "", err
	}
	e, err := s.views.Get(ctx, viewID)
	if err == nil {
		return string(e.Value()), nil
	}
	var value []byte
	if errors.Is(err, natsjs.ErrKeyNotFound) {
		// Perhaps a lagging replica: as in meta.
		value, err = s.leaderKey(ctx, bucketViews, viewID)
	}
	if errors.Is(err, natsjs.ErrKeyNotFound) {
		return "", fmt.Errorf("view %s: %w", viewID, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("view %s: %w", viewID, err)
	}
	return string(value), nil
}

// meta reads a document's meta.
func (s *Store) meta(ctx context.Context, id string) (DocMeta, error) {
	if err := checkID(id); err != nil {
		return DocMeta{}, err
	}
	var value []byte
	e, err := s.docs.Get(ctx, id)
	if errors.Is(err, natsjs.ErrKeyNotFound) {
		// A replica answered (the bucket allows direct gets), and one
		// that lags does not have a document another node has just
		// created: the leader decides.
		value, err = s.leaderKey(ctx, bucketDocs, id)
	} else if err == nil {
		value = e.Value()
	}
	if errors.Is(err, natsjs.ErrKeyNotFound) {
		return DocMeta{}, fmt.Errorf("doc %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return DocMeta{}, fmt.Errorf("doc %s meta: %w", id, err)
	}
	var w wireMeta
	if err := json.Unmarshal(value, &w); err != nil {
		return DocMeta{}, fmt.Errorf("doc %s meta: %v: %w", id, err, ErrCorrupt)
	}
	m := DocMeta{ID: id, ViewID: w.ViewID}
	if w.Created != 0 {
		m.Created = time.Unix(0, w.Created).UTC()
	}
	return m, nil
}

// leaderKey reads key of bucket from the bucket's stream leader, which,
// unlike a direct get, is never behind a write acknowledged before it:
// natsjs.ErrKeyNotFound when the key is absent or deleted.
func (s *Store) leaderKey(ctx context.Context, bucket, key string) ([]byte, error) {
	m, err := s.leaderGetFrom(ctx, "KV_"+bucket, apiMsgGet{LastFor: "$KV." + bucket + "." + key})
	if errors.Is(err, natsjs.ErrMsgNotFound) {
		return nil, natsjs.ErrKeyNotFound
	}
	if err != nil {
		return nil, err
	}
	switch m.Header.Get("KV-Operation") {
	case "DEL", "PURGE":
		return nil, natsjs.ErrKeyNotFound
	}
	return m.Data, nil
}

// Load returns document id at its latest revision: its latest snapshot with
// the subject's tail after it replayed through ot, and the client table
// rebuilt from the snapshot's and the tail's records. A gap, an undecodable
// message or an op that does not fit the text is ErrCorrupt; Load never
// returns wrong text. It also primes the position the next Append from
// this node is fenced on.
func (s *Store) Load(ctx context.Context, id string) (*StoredDoc, error) {
	return s.load(ctx, id, true)
}

// load is Load; schedule says whether a long replay schedules a snapshot
// (not when the snapshotter itself loads).
func (s *Store) load(ctx context.Context, id string, schedule bool) (*StoredDoc, error) {
	meta, err := s.meta(ctx, id)
	if err != nil {
		return nil, err
	}
	// The snapshot before the end: the end read afterwards is then never
	// behind it, whoever writes meanwhile.
	snap, err := s.readSnapshot(ctx, id)
	if err != nil {
		return nil, err
	}
	end, err := s.last(ctx, id)
	if err != nil {
		return nil, err
	}
	d, text, err := s.replay(ctx, id, meta, snap, end, end.rev)
	if err != nil {
		return nil, err
	}
	d.Text = text.String()
	d.Seq = end.seq
	s.setState(id, &docState{seq: end.seq, rev: end.rev, runes: text.Len(), clients: copyClients(d.Clients)})
	if schedule && s.snapEvery > 0 && d.Tail >= s.snapEvery {
		s.scheduleSnapshot(id)
	}
	return d, nil
}

// replay rebuilds document id at revision rev from snap (nil: from the
// start) and the subject's messages up to end: its text, the client
// table, and in d.Seq the sequence of the message holding rev. Load and
// LoadAt share it.
func (s *Store) replay(ctx context.Context, id string, meta DocMeta, snap *wireSnapshot, end end, rev int64) (*StoredDoc, *ot.Doc, error) {
	d := &StoredDoc{Meta: meta, Clients: map[string]ClientState{}}
	text := ot.NewDoc("")
	from := uint64(1)
	if snap != nil {
		if end.rev < snap.Rev {
			return nil, nil, fmt.Errorf("doc %s: snapshot at rev %d, stream ends at %d: %w", id, snap.Rev, end.rev, ErrCorrupt)
		}
		text = ot.NewDoc(snap.Text)
		if text.Len() != snap.Runes {
			return nil, nil, fmt.Errorf("doc %s snapshot rev %d: %d code points, recorded %d: %w", id, snap.Rev, text.Len(), snap.Runes, ErrCorrupt)
		}
		d.Rev, d.Seq, from = snap.Rev, snap.Seq, snap.Seq
		for c, v := range snap.Clients {
			d.Clients[c] = ClientState{Seq: v[0], Rev: v[1]}
		}
	}
	if d.Rev < rev {
		err := s.scan(ctx, id, from, end.seq, func(seq uint64, recs []Record) error {
			for _, r := range recs {
				if r.Rev <= d.Rev {
					continue
				}
				if r.Rev != d.Rev+1 {
					return fmt.Errorf("doc %s: rev %d follows %d: %w", id, r.Rev, d.Rev, ErrCorrupt)
				}
				if err := text.Apply(r.Op); err != nil {
					return fmt.Errorf("doc %s rev %d: %v: %w", id, r.Rev, err, ErrCorrupt)
				}
				d.Rev, d.Seq = r.Rev, seq
				d.Tail++
				noteClient(d.Clients, r)
				if d.Rev == rev {
					return errStop
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return nil, nil, err
		}
	}
	if d.Rev != rev {
		return nil, nil, fmt.Errorf("doc %s: replay reached rev %d, wanted %d (stream ends at %d): %w", id, d.Rev, rev, end.rev, ErrCorrupt)
	}
	return d, text, nil
}

// Append durably adds recs, which must continue the document's revisions
// without a gap and each fit the text before it (else ErrBadRecord), as
// the next message(s) of its subject, fenced on the
// subject's last sequence as this node last saw it. It returns ErrConflict
// when that position is taken or recs do not continue the revision there:
// nothing was stored, and the caller must reload before writing again.
// Any other failure is ambiguous (see the package comment).
//
// A group is one message, so it is atomic; only a group larger than the
// connection's max payload is split, at record boundaries, each part fenced
// on the one before (ErrPartial if a later part fails).
func (s *Store) Append(ctx context.Context, id string, recs []Record) error {
	if err := checkID(id); err != nil {
		return err
	}
	if len(recs) == 0 {
		return fmt.Errorf("append doc %s: no records: %w", id, ErrBadRecord)
	}
	for i, r := range recs {
		if i > 0 && r.Rev != recs[i-1].Rev+1 {
			return fmt.Errorf("append doc %s: rev %d follows %d: %w", id, r.Rev, recs[i-1].Rev, ErrBadRecord)
		}
		if err := r.Op.Validate(); err != nil {
			return fmt.Errorf("append doc %s rev %d: %w: %w", id, r.Rev, ErrBadRecord, err)
		}
	}
	pos, err := s.position(ctx, id)
	if err != nil {
		return err
	}
	if recs[0].Rev != pos.rev+1 {
		s.dropState(id)
		return fmt.Errorf("append doc %s: rev %d after rev %d: %w", id, recs[0].Rev, pos.rev, ErrConflict)
	}
	// Stored, an op that does not fit the text would make every later
	// Load of the document fail; refuse it, as package storage does.
	n := pos.runes
	for _, r := range recs {
		if b := r.Op.BaseLen(); b != n {
			return fmt.Errorf("append doc %s: op %d covers %d code points, the text has %d: %w", id, r.Rev, b, n, ErrBadRecord)
		}
		n = r.Op.TargetLen()
	}
	parts, err := s.split(id, recs)
	if err != nil {
		return err
	}
	seq := pos.seq
	nonce := uuid.NewString()
	for i, part := range parts {
		ack, err := s.publish(ctx, part, seq, nonce+"."+strconv.Itoa(i))
		if err != nil {
			s.dropState(id)
			switch {
			case i > 0:
				return fmt.Errorf("append doc %s: part %d of %d: %w: %w", id, i+1, len(parts), ErrPartial, err)
			case isWrongLastSeq(err):
				return fmt.Errorf("append doc %s at seq %d: %w", id, seq, ErrConflict)
			}
			return fmt.Errorf("append doc %s: %w", id, err)
		}
		seq = ack.Sequence
	}
	s.advance(id, pos.seq, seq, recs)
	return nil
}

// publishTry bounds the wait for one publish's ack. A publish whose
// stream leader died (killed, cut off) is never acked: the client would
// wait for the whole store timeout (30 s) while the survivors elect a new
// leader in a few seconds. Asking again under the same message id is
// safe: JetStream checks the id (its duplicate window is two minutes)
// before the expected sequence, so a publish that was stored answers with
// its sequence rather than a conflict, and one that was not is stored now.
const publishTry = time.Second

// maxRefused bounds how often publish asks again when JetStream refuses
// a position nobody has taken (see publish): about two seconds.
const maxRefused = 20

// publish stores m as the next message of its subject after seq, asking
// again under msgID while no stream leader answers in time.
func (s *Store) publish(ctx context.Context, m *nats.Msg, seq uint64, msgID string) (*natsjs.PubAck, error) {
	refused := 0
	unanswered := false // an attempt got no answer: it may be stored yet
	for {
		tctx, cancel := context.WithTimeout(ctx, publishTry)
		m.Header.Set(natsjs.ExpectedStreamHeader, streamOps)
		m.Header.Set(natsjs.ExpectedLastSubjSeqHeader, strconv.FormatUint(seq, 10))
		m.Header.Set(natsjs.MsgIDHeader, msgID)
		ack, err := s.storeMsg(tctx, m)
		cancel()
		if err != nil && isWrongLastSeq(err) {
			switch last, lerr := s.leaderGet(ctx, apiMsgGet{LastFor: m.Subject}); {
			case lerr != nil:
			case last.Header.Get(natsjs.MsgIDHeader) == msgID:
				// Ours after all: a new leader may not know the id of
				// a message the old one stored.
				return &natsjs.PubAck{Stream: streamOps, Sequence: last.Sequence, Duplicate: true}, nil
			case last.Sequence == seq && refused < maxRefused:
				// Nobody wrote since: a stream leader just elected,
				// or one still storing an earlier attempt of ours,
				// refused a position that is free. Ask again.
				refused++
				s.log.Debug("jetstream: free position refused; asking again", "subject", m.Subject, "seq", seq)
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			if unanswered {
				// An earlier attempt may be ours being stored still, or
				// stored after all: ambiguous, not a conflict (which
				// says nothing was stored). The caller reloads.
				return nil, fmt.Errorf("jetstream: publish unanswered, then its position taken: %v", err)
			}
		}
		if err == nil || ctx.Err() != nil {
			return ack, err
		}
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) &&
			!errors.Is(err, natsjs.ErrNoStreamResponse) && !errors.Is(err, nats.ErrNoResponders) {
			return ack, err
		}
		s.log.Debug("jetstream: publish unanswered; asking again", "subject", m.Subject, "err", err)
		unanswered = true
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// split cuts recs into groups that each fit one message, and returns
// their messages.
func (s *Store) split(id string, recs []Record) ([]*nats.Msg, error) {
	limit := s.nc.MaxPayload() - 512 // headers and the group's framing
	if m := encodeGroup(id, recs); int64(len(m.Data)) <= limit {
		return []*nats.Msg{m}, nil
	}
	var parts []*nats.Msg
	start := 0
	for start < len(recs) {
		end := start + 1
		part := encodeGroup(id, recs[start:end])
		if int64(len(part.Data)) > limit {
			return nil, fmt.Errorf("append doc %s rev %d: %d bytes, max payload %d: %w", id, recs[start].Rev, len(part.Data), limit, ErrTooLarge)
		}
		// Grow the part while it fits; quadratic only in how far a group
		// exceeds one message, which is rare and small.
		for end < len(recs) {
			m := encodeGroup(id, recs[start:end+1])
			if int64(len(m.Data)) > limit {
				break
			}
			part = m
			end++
		}
		parts = append(parts, part)
		start = end
	}
	return parts, nil
}

// Ops returns up to limit records with Rev > after, oldest first (limit <= 0
// means 1000), stopping early before the record that would take the page
// over maxBytes of op text (maxBytes <= 0: no bound); a page holds at least
// one record when there is one. ErrNotFound for an unknown document.
func (s *Store) Ops(ctx context.Context, id string, after int64, limit, maxBytes int) ([]Record, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 1000
	}
	after = max(after, 0)
	end, err := s.last(ctx, id)
	if err != nil {
		return nil, err
	}
	out := []Record{} // not nil: callers encode it as a JSON array
	if end.seq == 0 {
		if _, err := s.meta(ctx, id); err != nil {
			return nil, err
		}
		return out, nil
	}
	if after >= end.rev {
		return out, nil
	}
	from, err := s.seek(ctx, id, after, end)
	if err != nil {
		return nil, err
	}
	size := 0
	errFull := errors.New("page full")
	err = s.scan(ctx, id, from, end.seq, func(_ uint64, recs []Record) error {
		for _, r := range recs {
			if r.Rev <= after {
				continue
			}
			if want := after + int64(len(out)) + 1; r.Rev != want {
				return fmt.Errorf("doc %s: rev %d where %d belongs: %w", id, r.Rev, want, ErrCorrupt)
			}
			n := opBytes(r.Op)
			if len(out) > 0 && maxBytes > 0 && size+n > maxBytes {
				return errFull
			}
			size += n
			out = append(out, r)
			if len(out) == limit {
				return errFull
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFull) {
		return nil, err
	}
	return out, nil
}

// opBytes is the size of an op for paging: its inserted text plus a few
// bytes a component, about its JSON size.
func opBytes(op ot.Op) int {
	n := 0
	for _, c := range op {
		n += len(c.S) + 8
	}
	return n
}

// ClientSeq returns the highest seq applied from client on document id and
// the revision that op became, or zeros. It is answered from the client
// table this node holds, brought up to the subject's end first (one round
// trip when nothing changed), so it is right on any node.
func (s *Store) ClientSeq(ctx context.Context, id, client string) (seq, rev int64, err error) {
	cs, err := s.current(ctx, id, client)
	if err != nil {
		return 0, 0, err
	}
	return cs.Seq, cs.Rev, nil
}

// Meta returns a document's metadata and its latest revision.
func (s *Store) Meta(ctx context.Context, id string) (DocMeta, int64, error) {
	m, err := s.meta(ctx, id)
	if err != nil {
		return DocMeta{}, 0, err
	}
	end, err := s.last(ctx, id)
	if err != nil {
		return DocMeta{}, 0, err
	}
	return m, end.rev, nil
}
