package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/collabd/collabd/ot"
)

// This file holds the calls that mirror the JavaScript SDK's
// CollabDocument: Open by server and document id, Insert and Delete by
// code point, and listeners for changes and presence.

// Open connects to document id on server, the base URL of a collabd
// (http://, https://, ws:// or wss://, with or without a trailing slash):
// the Go twin of the JavaScript SDK's CollabDocument.open.
func Open(ctx context.Context, server, id string, opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(server, "/"))
	if err != nil {
		return nil, fmt.Errorf("server URL: %w", err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("server URL %q: want http(s):// or ws(s)://", server)
	}
	u = u.JoinPath("api", "docs", id, "ws")
	return Dial(ctx, u.String(), opts)
}

// withToken returns wsURL with ?token=tok (replacing one there); tok ""
// leaves it as it is.
func withToken(wsURL, tok string) string {
	if tok == "" {
		return wsURL
	}
	u, err := url.Parse(wsURL)
	if err != nil {
		return wsURL // Dial reports the bad URL
	}
	q := u.Query()
	q.Set("token", tok)
	u.RawQuery = q.Encode()
	return u.String()
}

// SetToken replaces the access token for the next connection: call it
// with a fresh token before the current one expires (the server closes a
// session whose token has expired with 4401), then Reconnect, or let the
// next Reconnect use it.
func (c *Client) SetToken(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opts.Token = tok
}

// ErrOutOfRange is returned by Insert and Delete for a position or count
// outside the local text.
var ErrOutOfRange = errors.New("client: position outside the text")

// Insert inserts text at code point pos of the local text.
func (c *Client) Insert(pos int, text string) error {
	var bad bool
	err := c.EditLenFunc(func(n int) ot.Op {
		if pos < 0 || pos > n {
			bad = true
			return nil
		}
		return ot.Op{}.Retain(pos).Insert(text).Retain(n - pos)
	})
	if bad {
		return fmt.Errorf("insert at %d: %w", pos, ErrOutOfRange)
	}
	return err
}

// Delete deletes count code points from pos of the local text.
func (c *Client) Delete(pos, count int) error {
	var bad bool
	err := c.EditLenFunc(func(n int) ot.Op {
		if pos < 0 || count < 0 || pos+count > n {
			bad = true
			return nil
		}
		return ot.Op{}.Retain(pos).Delete(count).Retain(n - pos - count)
	})
	if bad {
		return fmt.Errorf("delete %d at %d: %w", count, pos, ErrOutOfRange)
	}
	return err
}

// SetSelection is SetCursor under the JavaScript SDK's name.
func (c *Client) SetSelection(ranges []Range) error { return c.SetCursor(ranges) }

// Change is an op applied to the local text, as OnChange reports it.
type Change struct {
	// Rev is the server revision the op was (for Local: the revision it
	// was made on).
	Rev int64
	// Op applies to the local text as it was just before.
	Op ot.Op
	// Author is the author id of whoever made the op ("" for the
	// server's own, and for a resync that replaced the text).
	Author string
	// Local is set for this client's own edits.
	Local bool
}

// listeners are the registered callbacks. Guarded by the Client's mu.
type listeners struct {
	next     int
	change   map[int]func(Change)
	presence map[int]func([]Peer)
}

func (l *listeners) changes() bool { return len(l.change) > 0 }

// event is one queued callback: a change, or else a presence update.
type event struct {
	change *Change
	peers  []Peer
}

// OnChange calls fn with every op applied to the local text from now on,
// local and remote, in the order they were applied; the returned func
// removes it. fn runs on the goroutine that made the change (the
// connection's reader, for remote ops) after the Client's lock is
// released, so it may call the Client; it must not block for long, since
// the reader waits for it.
func (c *Client) OnChange(fn func(Change)) (remove func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.listeners.change == nil {
		c.listeners.change = make(map[int]func(Change))
	}
	id := c.listeners.next
	c.listeners.next++
	c.listeners.change[id] = fn
	return func() { c.mu.Lock(); delete(c.listeners.change, id); c.mu.Unlock() }
}

// OnPresence calls fn with the other editors (as Peers returns them)
// whenever one arrives, moves its selection or leaves. It runs as
// OnChange's listeners do.
func (c *Client) OnPresence(fn func([]Peer)) (remove func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.listeners.presence == nil {
		c.listeners.presence = make(map[int]func([]Peer))
	}
	id := c.listeners.next
	c.listeners.next++
	c.listeners.presence[id] = fn
	return func() { c.mu.Lock(); delete(c.listeners.presence, id); c.mu.Unlock() }
}

// queuePresence queues a presence event, if anyone listens. Called with
// mu held.
func (c *Client) queuePresence() {
	if len(c.listeners.presence) > 0 {
		c.queue = append(c.queue, event{peers: c.peersLocked()})
	}
}

// maxQueued bounds the events queued for listeners while another
// goroutine runs them: past it the connection's reader waits (and the
// server, past its own bound, drops this slow client, which resumes).
var maxQueued = 1 << 14 // a variable for the test of the bound

// stopReader lets a reader waiting in deliver go, so that the connection
// can end while a listener is stuck. Called with mu held.
func (c *Client) stopReader() {
	c.stopping = true
	c.drained.Broadcast()
}

// deliver runs the listeners for the queued events, in order. One
// goroutine delivers at a time; another that queues meanwhile leaves its
// events to it, so a listener that edits does not deadlock. The reader
// (reader set) first waits while the queue is past maxQueued; an edit
// does not, since it may be a listener's own, on the delivering
// goroutine.
func (c *Client) deliver(reader bool) {
	c.mu.Lock()
	for reader && c.delivering && len(c.queue) > maxQueued && !c.stopping {
		c.drained.Wait()
	}
	if c.delivering || len(c.queue) == 0 {
		c.mu.Unlock()
		return
	}
	c.delivering = true
	for len(c.queue) > 0 {
		q := c.queue
		c.queue = nil
		c.drained.Broadcast()
		var onChange []func(Change)
		var onPresence []func([]Peer)
		for _, f := range c.listeners.change {
			onChange = append(onChange, f)
		}
		for _, f := range c.listeners.presence {
			onPresence = append(onPresence, f)
		}
		c.mu.Unlock()
		for _, e := range q {
			if e.change != nil {
				for _, f := range onChange {
					f(*e.change)
				}
				continue
			}
			for _, f := range onPresence {
				f(e.peers)
			}
		}
		c.mu.Lock()
	}
	c.delivering = false
	c.mu.Unlock()
}

// View reads a Client's state while its lock is held: Wait passes one to
// its condition and EditView to its function, and it is valid only
// during that call (calling the Client itself there would deadlock).
type View struct{ c *Client }

// Rev is the latest server revision the client has applied.
func (v View) Rev() int64 { return v.c.state.Rev() }

// Text is the local text, including unacknowledged edits.
func (v View) Text() string { return v.c.doc.String() }

// Len is the local text's length in code points.
func (v View) Len() int { return v.c.doc.Len() }

// Synced reports whether every local edit has been acknowledged.
func (v View) Synced() bool { return v.c.state.State() == ot.Synchronized }

// LastSeq is the highest seq the client has given an op.
func (v View) LastSeq() int64 { return v.c.state.LastSeq() }

// Peer returns the other editor with author id a.
func (v View) Peer(a string) (Peer, bool) { p, ok := v.c.peers[a]; return p, ok }

// Peers returns the other editors, as Client.Peers does.
func (v View) Peers() []Peer { return v.c.peersLocked() }
