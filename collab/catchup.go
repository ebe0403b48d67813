package collab

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// Catch-up from the store. A client resuming from a revision older than
// the hub's in-memory history gets exactly the ops it missed, read from
// the store in bounded pages by its own connection's writer, never by the
// hub and never all at once:
//
//   - an editor gets one welcome whose ops run to the revision the hub was
//     at when it joined (so its peers' selections and its own resent op
//     stand on that revision, as for any welcome), written as one
//     WebSocket message in fragments, a page at a time;
//   - a viewer gets the op events of the missed revisions, a page at a
//     time, before the events of the hub's queue.
//
// Every op up to that revision is committed (the hub handles joins and
// viewers only with no commit in flight) and so in the store; every op
// after it reaches the client through its queue, which its writer takes
// from only once the catch-up is written. So nothing is out of order,
// missing or sent twice. While a long catch-up is written, the queue
// fills with live ops as for any slow client, and overflows the same way.

// catchUpPage and catchUpPageBytes bound one store read of a catch-up,
// in ops and in (about) the memory they take decoded.
const (
	catchUpPage      = 512
	catchUpPageBytes = 1 << 20
)

// catchUpChunk is how much of a welcome is encoded before it is written
// out as one fragment.
const catchUpChunk = 64 << 10

// storeOps calls fn with every op of document id in (from, to], read from
// the store in pages, until fn fails.
func storeOps(ctx context.Context, st Store, id string, from, to int64, fn func([]Record) error) error {
	for after := from; after < to; {
		page, err := st.Ops(ctx, id, after, int(min(catchUpPage, to-after)), catchUpPageBytes)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return fmt.Errorf("store has no ops after rev %d of %d", after, to)
		}
		if n := len(page); page[0].Rev != after+1 || page[n-1].Rev != after+int64(n) {
			return fmt.Errorf("store returned revs %d..%d after rev %d", page[0].Rev, page[n-1].Rev, after)
		}
		if page[len(page)-1].Rev > to {
			page = page[:to-after]
		}
		if err := fn(page); err != nil {
			return err
		}
		after = page[len(page)-1].Rev
	}
	return nil
}

// welcomeStream is a welcome whose catch-up ops come from the store.
type welcomeStream struct {
	srv      *Server
	id       string
	head     []byte // the welcome without ops, up to but excluding its final '}'
	from, to int64  // the ops to send: (from, to]
}

// newWelcomeStream prepares w, which must have no text and no ops, to
// carry the ops (from, to] from the store.
func (h *hub) newWelcomeStream(w welcomeMessage, from, to int64) *welcomeStream {
	w.Ops, w.Text = nil, nil
	b := mustJSON(w)
	return &welcomeStream{srv: h.srv, id: h.id, head: b[:len(b)-1], from: from, to: to}
}

// write sends the welcome as one message in fragments. Each fragment must
// be taken within timeout, or the connection is given up: the welcome's
// context is cancelled and the message cut.
func (s *welcomeStream) write(ctx context.Context, ws *websocket.Conn, timeout time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stall := time.AfterFunc(timeout, cancel)
	defer stall.Stop()
	w, err := ws.Writer(ctx, websocket.MessageText)
	if err != nil {
		return err
	}
	buf := append(make([]byte, 0, catchUpChunk+4096), s.head...)
	buf = append(buf, `,"ops":[`...)
	first := true
	// The same few clients made most ops, and an author id is a MAC.
	authors := make(map[string]string)
	flush := func() error {
		stall.Reset(timeout)
		_, err := w.Write(buf)
		buf = buf[:0]
		return err
	}
	err = storeOps(ctx, s.srv.store, s.id, s.from, s.to, func(page []Record) error {
		for _, r := range page {
			if !first {
				buf = append(buf, ',')
			}
			first = false
			a, ok := authors[r.Client]
			if !ok {
				if len(authors) >= maxAuthorMemo {
					clear(authors)
				}
				a = s.srv.author(r.Client)
				authors[r.Client] = a
			}
			buf = append(buf, mustJSON(OpRecord{Rev: r.Rev, Op: r.Op, Author: a, Seq: r.Seq})...)
			if len(buf) >= catchUpChunk {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	buf = append(buf, "]}"...)
	if err := flush(); err != nil {
		return err
	}
	return w.Close()
}

// viewerStream is the part of a resuming viewer's catch-up that comes
// from the store: the op events (from, to].
type viewerStream struct {
	from, to int64
}

// writeViewerStream writes the op events (from, to] of document id, a page
// at a time, with write.
func (s *Server) writeViewerStream(ctx context.Context, id string, vs *viewerStream, write func(...[]byte) bool) error {
	return storeOps(ctx, s.store, id, vs.from, vs.to, func(page []Record) error {
		events := make([][]byte, len(page))
		for i, r := range page {
			events[i] = appendSSEOp(nil, r.Rev, r.Op)
		}
		if !write(events...) {
			return http.ErrAbortHandler // the viewer went away; nothing to report
		}
		return nil
	})
}
