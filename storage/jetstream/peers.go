package jetstream

import (
	"fmt"

	"github.com/nats-io/nats.go"
)

// Peer notices: what the hubs of one document on different nodes tell each
// other that is not part of the document: cursors and names (presence),
// editors leaving, a client connecting on another node (so that its old
// connection here is closed), a deletion. They travel on core NATS subject
// collab.peers.<doc>: at most once, in order from one publisher, and never
// stored, as presence needs nothing more. The payload is the caller's.

const subjectPeers = "collab.peers."

// PublishPeer sends a notice to the other nodes following document id.
// A notice sent while disconnected fails (there is no reconnect buffer).
func (s *Store) PublishPeer(id string, data []byte) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := s.nc.Publish(subjectPeers+id, data); err != nil {
		return fmt.Errorf("publish peer notice for doc %s: %w", id, err)
	}
	return nil
}

// SubscribePeers calls fn with every notice published for document id, by
// any node (this one's own included: the caller tells them apart), on one
// goroutine of the NATS connection's, in order. Unsubscribe ends it.
func (s *Store) SubscribePeers(id string, fn func(data []byte)) (*nats.Subscription, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	sub, err := s.nc.Subscribe(subjectPeers+id, func(m *nats.Msg) { fn(m.Data) })
	if err != nil {
		return nil, fmt.Errorf("subscribe to peer notices of doc %s: %w", id, err)
	}
	return sub, nil
}

// Conn is the NATS connection the store uses, for its status.
func (s *Store) Conn() *nats.Conn { return s.nc }
