package jetstream

import (
	"context"
	"errors"
	"fmt"
	"maps"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// docState is what this node last saw of a document: the stream sequence
// of its last message, the revision there and, when known, the text's
// length and the client table at that revision. A cache, never trusted for
// safety: Append is fenced by JetStream, and ClientSeq checks seq against
// the subject's end before answering.
type docState struct {
	seq     uint64
	rev     int64
	runes   int                    // -1 when unknown
	clients map[string]ClientState // nil when unknown
	// unsnapped counts the records this node appended since it last
	// scheduled a snapshot of the document.
	unsnapped int64
}

// note records r in the client table, if the table is known.
func (st *docState) note(r Record) {
	if st.clients != nil {
		noteClient(st.clients, r)
	}
	st.runes = r.Op.TargetLen()
}

func noteClient(clients map[string]ClientState, r Record) {
	if r.Client != "" && r.Seq > clients[r.Client].Seq {
		clients[r.Client] = ClientState{Seq: r.Seq, Rev: r.Rev}
	}
}

func copyClients(m map[string]ClientState) map[string]ClientState {
	if m == nil {
		return nil
	}
	return maps.Clone(m)
}

// setState caches st unless the cache already holds a later position:
// a Load or catch-up that read the subject's end just before this node
// appended must not move the cache back, or the next Append would be
// fenced on a stale sequence and refused for nothing.
func (s *Store) setState(id string, st *docState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.states[id]; ok && old.seq > st.seq {
		return
	}
	if len(s.states) >= maxStates {
		clear(s.states)
	}
	s.states[id] = st
}

func (s *Store) dropState(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.states, id)
}

// Forget drops what this node holds of document id, for when its hub
// closes; the next call reads NATS again.
func (s *Store) Forget(id string) {
	s.dropState(id)
	s.seekCache().drop(id)
}

// position returns where this node believes the document ends: from its
// cache, else from the subject's last message.
func (s *Store) position(ctx context.Context, id string) (docState, error) {
	s.mu.Lock()
	st, ok := s.states[id]
	var pos docState
	if ok {
		pos = docState{seq: st.seq, rev: st.rev, runes: st.runes}
	}
	s.mu.Unlock()
	if ok && pos.runes >= 0 {
		return pos, nil
	}
	end, err := s.last(ctx, id)
	if err != nil {
		return docState{}, err
	}
	if end.seq == 0 {
		// No records: a document created empty, or none at all.
		if _, err := s.meta(ctx, id); err != nil {
			return docState{}, err
		}
	}
	s.setState(id, &docState{seq: end.seq, rev: end.rev, runes: end.runes})
	return docState{seq: end.seq, rev: end.rev, runes: end.runes}, nil
}

// advance moves the cached state past recs, just stored at stream
// sequences after from up to to, unless another call moved it meanwhile.
func (s *Store) advance(id string, from, to uint64, recs []Record) {
	// The message at to holds the last record (and, unless the group was
	// split, all of them).
	last := recs[len(recs)-1].Rev
	s.seekNote(opsSubject(id), to, last, last)
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[id]
	switch {
	case ok && st.seq == from:
		for _, r := range recs {
			st.note(r)
		}
		st.seq, st.rev = to, recs[len(recs)-1].Rev
	case ok && st.seq > to:
		return // someone else's records, read after ours
	default:
		st = &docState{seq: to, rev: recs[len(recs)-1].Rev, runes: recs[len(recs)-1].Op.TargetLen()}
		s.states[id] = st
	}
	st.unsnapped += int64(len(recs))
	if s.snapEvery > 0 && st.unsnapped >= s.snapEvery {
		st.unsnapped = 0
		s.scheduleSnapshot(id)
	}
}

// current returns client's entry in the document's client table at the
// subject's end, catching the cached table up or, without one, loading.
func (s *Store) current(ctx context.Context, id, client string) (ClientState, error) {
	end, err := s.last(ctx, id)
	if err != nil {
		return ClientState{}, err
	}
	if end.seq == 0 {
		_, err := s.meta(ctx, id)
		return ClientState{}, err
	}
	s.mu.Lock()
	var base *docState
	if st, ok := s.states[id]; ok && st.clients != nil && st.seq <= end.seq {
		if st.seq == end.seq {
			cs := st.clients[client]
			s.mu.Unlock()
			return cs, nil
		}
		base = &docState{seq: st.seq, rev: st.rev, runes: -1, clients: copyClients(st.clients)}
	}
	s.mu.Unlock()
	if base == nil {
		d, err := s.Load(ctx, id)
		if err != nil {
			return ClientState{}, err
		}
		return d.Clients[client], nil
	}
	from := base.seq
	err = s.scan(ctx, id, from+1, end.seq, func(_ uint64, recs []Record) error {
		for _, r := range recs {
			if r.Rev != base.rev+1 {
				return fmt.Errorf("doc %s: rev %d follows %d: %w", id, r.Rev, base.rev, ErrCorrupt)
			}
			base.note(r)
			base.rev = r.Rev
		}
		return nil
	})
	if err != nil {
		return ClientState{}, err
	}
	base.seq = end.seq
	s.mu.Lock()
	if st, ok := s.states[id]; ok && st.seq == from {
		s.states[id] = base
	}
	s.mu.Unlock()
	return base.clients[client], nil
}

// end is a document's last message: its stream sequence, the revisions
// it holds and the text's length after it; zeros when the subject is
// empty.
type end struct {
	seq        uint64
	first, rev int64
	runes      int
}

// last reads the subject's last message from the stream leader.
func (s *Store) last(ctx context.Context, id string) (end, error) {
	if err := checkID(id); err != nil {
		return end{}, err
	}
	m, err := s.leaderGet(ctx, apiMsgGet{LastFor: opsSubject(id)})
	if errors.Is(err, natsjs.ErrMsgNotFound) {
		return end{}, nil
	}
	if err != nil {
		return end{}, fmt.Errorf("doc %s: last message: %w", id, err)
	}
	recs, err := decodeGroup(m.Header, m.Data)
	if err != nil {
		return end{}, fmt.Errorf("doc %s seq %d: %v: %w", id, m.Sequence, err, ErrCorrupt)
	}
	last := recs[len(recs)-1]
	s.seekNote(m.Subject, m.Sequence, recs[0].Rev, last.Rev)
	return end{seq: m.Sequence, first: recs[0].Rev, rev: last.Rev, runes: last.Op.TargetLen()}, nil
}

// seek returns the stream sequence of the document's message holding
// revision after+1, given its last message e (after < e.rev). Messages of
// one subject are in revision order but spread over the stream's
// sequences, so it binary-searches with "next message of the subject at or
// after sequence n": about log2(stream length) reads, only for catch-up
// from before the last message. The search starts from the closest
// messages of the document this node knows (seekcache.go): none read when
// it knows the one sought. A point of a deleted document's messages can
// only make it answer early (see seekcache.go), which the callers' reads
// skip.
func (s *Store) seek(ctx context.Context, id string, after int64, e end) (uint64, error) {
	if after >= e.first-1 {
		return e.seq, nil
	}
	c := s.seekCache()
	seq, ok, err := s.search(ctx, id, after, c.bounds(id, after, e))
	if err == nil && !ok {
		// The points led past a message no longer stored.
		c.drop(id)
		seq, _, err = s.search(ctx, id, after, seekBounds{lo: 1, hi: e.seq})
	}
	return seq, err
}
