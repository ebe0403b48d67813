package collab

import (
	"testing"

	"github.com/collabd/collabd/collab/client"
)

// The tests of this package drive editing sessions with collab/client, the
// Go client that embedders import; these aliases keep the tests' names of
// it short (a package-qualified name would collide with the many test
// variables called client).
type (
	Client        = client.Client
	ClientOptions = client.Options
	ServerError   = client.ServerError
	FrameDecoder  = client.FrameDecoder
	ClientRange   = client.Range
	ClientPeer    = client.Peer
	ClientView    = client.View
)

var (
	Dial         = client.Dial
	ErrLostEdits = client.ErrLostEdits
)

// TestClientProtocolMatchesServer: collab/client takes the protocol
// version, like the messages, from collab/wire (it must not import this
// package); were either to declare its own, the two must still be one
// version, or the client refuses every welcome.
func TestClientProtocolMatchesServer(t *testing.T) {
	if client.ProtocolVersion != ProtocolVersion {
		t.Fatalf("client speaks protocol %d, server %d", client.ProtocolVersion, ProtocolVersion)
	}
}
