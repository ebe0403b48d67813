package collab

// Link rotation (POST /api/docs/{id}/access/rotate): a document whose
// links went too far gets a new edit id and view id, and the old ones name
// nothing from then on. The document keeps its text, its whole history and
// its access record; only its ids change. Its hub does it, between
// commits, so that no op lands under the old id after the copy: it copies
// the op log to the new ids, deletes the old ones and stops, closing its
// editors with forbidden (4403) and ending its viewers' streams.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// rotateTimeout bounds the copy of a document's history.
const rotateTimeout = 2 * time.Minute

// rotatePage is how many ops one read of the copy takes.
const rotatePage = 1000

// rotateReq asks a hub to move its document to meta's ids and stop.
type rotateReq struct {
	meta  DocMeta
	reply chan error // room for one
}

// errNotSequencer is a rotation that the document's owner did not make
// (cluster mode): no node answered for it, or ownership moved meanwhile.
var errNotSequencer = errors.New("the node that holds the document did not rotate its links (it moved, or did not answer): try again")

// rotate handles a rotateReq. It runs on the hub's goroutine with no
// commit in flight (processQueue hands it over only then). In cluster
// mode a node that does not own the document forwards the rotation to the
// owner, whose hub makes it: the copy must not race the owner's appends.
func (h *hub) rotate(m rotateReq) {
	if h.link != nil && !h.owner {
		meta := m.meta
		h.startForward(Submission{Rotate: &meta}, fwdReply{rotate: m.reply})
		return
	}
	ctx, cancel := context.WithTimeout(h.srv.ctx, rotateTimeout)
	defer cancel()
	store := h.srv.store
	m.meta.Created = time.Now().UTC()
	if err := h.copyTo(ctx, m.meta); err != nil {
		if derr := store.Delete(context.WithoutCancel(ctx), m.meta.ID); derr != nil && !errors.Is(derr, ErrNotFound) {
			h.log.Error("rotate: the partial copy stays", "err", derr)
		}
		m.reply <- err
		return
	}
	if err := store.Delete(ctx, h.id); err != nil {
		// Both exist now; the new one is not handed out, so it is the
		// copy that goes.
		store.Delete(context.WithoutCancel(ctx), m.meta.ID)
		m.reply <- fmt.Errorf("rotate: delete the old ids: %w", err)
		return
	}
	// To an application listening (webhook.go), the old ids went and
	// new ones came.
	h.srv.docDeleted(h.srv.ctx, h.id, h.viewID)
	h.srv.webhooks.created(h.srv.ctx, m.meta, h.rev, h.doc.Len())
	h.notify(notice{Kind: "deleted"}) // other nodes close theirs (cluster.go)
	h.deleted = true
	h.srv.forget(h)
	for _, e := range h.editors {
		e.c.fail(errorf(CodeForbidden, "the document's links were rotated; ask its owner for the new one"))
	}
	for v := range h.viewers {
		v.kick()
	}
	h.log.Info("links rotated", "rev", h.rev)
	m.reply <- nil
}

// copyTo copies the document, every op with its author, seq and time,
// to a new document with meta's ids, and leaves a snapshot of its text.
func (h *hub) copyTo(ctx context.Context, meta DocMeta) error {
	store := h.srv.store
	if err := store.Create(ctx, meta, nil); err != nil {
		return fmt.Errorf("rotate: create: %w", err)
	}
	for after := int64(0); after < h.rev; {
		recs, err := store.Ops(ctx, h.id, after, rotatePage, h.srv.opts.MaxOpsPageBytes)
		if err != nil {
			return fmt.Errorf("rotate: read ops after %d: %w", after, err)
		}
		if len(recs) == 0 {
			return fmt.Errorf("rotate: ops after %d are missing", after)
		}
		if err := store.Append(ctx, meta.ID, recs); err != nil {
			return fmt.Errorf("rotate: append ops after %d: %w", after, err)
		}
		after = recs[len(recs)-1].Rev
	}
	if h.rev > 0 {
		if err := store.SaveSnapshot(ctx, meta.ID, h.rev, h.doc.String()); err != nil {
			return fmt.Errorf("rotate: snapshot: %w", err)
		}
	}
	return nil
}

// handleRotate answers POST /api/docs/{id}/access/rotate (owners): 200
// {"id","viewId"}, the document's new ids.
func (s *Server) handleRotate(w http.ResponseWriter, r *http.Request) {
	if s.access == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "sign-in is off on this server")
		return
	}
	id, _ := docID(r)
	if !s.access.rotations.allow(s.requestAddr(r), time.Now()) {
		w.Header().Set("Retry-After", "10")
		refuse(w, r, http.StatusTooManyRequests, CodeRateLimited, "too many link rotations from this address; try again later")
		return
	}
	if err := s.storageFull(r.Context()); err != nil {
		refuse(w, r, http.StatusInsufficientStorage, CodeTooLarge, err.Error()+"; links cannot be rotated now")
		return
	}
	rec, err := s.accessOf(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if rec.Owner == "" {
		if who := identityOf(r.Context()); who != nil {
			rec.Owner = who.User
		}
	}
	meta := DocMeta{ID: uuid.NewString(), ViewID: uuid.NewString()}
	// The record goes first: the new ids are never without it. Should the
	// rotation fail, it goes again.
	if err := s.access.store.SetAccess(r.Context(), meta.ID, rec); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	// Not the request's context: once asked, the hub finishes the
	// rotation (bounded by rotateTimeout) whether or not the client waits.
	err = s.rotateHub(context.WithoutCancel(r.Context()), id, meta)
	if err != nil {
		// In cluster mode this node's hub may close (the owner's
		// "deleted" notice) before the owner's answer reaches it: the
		// rotation was made if the new ids name the document.
		if got, verr := s.store.ViewDoc(context.WithoutCancel(r.Context()), meta.ViewID); verr == nil && got == meta.ID {
			err = nil
		}
	}
	if err != nil {
		if !errors.Is(err, errNotSequencer) {
			s.access.store.DeleteAccess(context.WithoutCancel(r.Context()), meta.ID)
		} // else the owner may have made it: the new ids keep their record
		if errors.Is(err, errNotSequencer) {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, CodeShuttingDown, errNotSequencer.Error())
			return
		}
		s.writeStoreError(w, r, err)
		return
	}
	if err := s.access.store.DeleteAccess(context.WithoutCancel(r.Context()), id); err != nil && !errors.Is(err, ErrNotFound) {
		s.log.Warn("rotated document keeps its old access record", "err", err)
	}
	s.workspace.rotated(context.WithoutCancel(r.Context()), id, meta.ID)
	keep, _ := r.Context().Value(watchKey{}).(*watch)
	s.access.revoke(id, nil, keep, fmt.Errorf("%w: the document's links were rotated", errAccessRevoked))
	writeJSON(w, http.StatusOK, map[string]string{"id": meta.ID, "viewId": meta.ViewID})
}

// rotateHub has document id's hub move it to meta's ids.
func (s *Server) rotateHub(ctx context.Context, id string, meta DocMeta) error {
	h, err := s.acquire(ctx, id)
	if err != nil {
		return err
	}
	defer s.release(h)
	m := rotateReq{meta: meta, reply: make(chan error, 1)}
	if !h.send(ctx, m) {
		return h.goneErr(ctx)
	}
	select {
	case err = <-m.reply:
		return err
	case <-h.done:
		select {
		case err = <-m.reply:
			return err
		default:
			return h.goneErr(ctx)
		}
	}
}

// rotateForwarded hands a forwarded rotation's outcome to its request
// (follower). The owner's "deleted" notice closes this node's editors.
func (h *hub) rotateForwarded(r fwdReply) {
	switch {
	case errors.Is(r.err, ErrNoOwner):
		h.link.TryOwn()
		r.rotate <- fmt.Errorf("%w: %w", ErrUnavailable, errNotSequencer)
	case r.err != nil:
		r.rotate <- fmt.Errorf("%w: %w: %v", ErrUnavailable, errNotSequencer, r.err)
	case r.rep.Code == CodeShuttingDown:
		r.rotate <- fmt.Errorf("%w: %w", ErrUnavailable, errNotSequencer)
	case r.rep.Code != "":
		r.rotate <- fmt.Errorf("rotate: the owner refused: %s: %s", r.rep.Code, r.rep.Message)
	default:
		r.rotate <- nil
	}
}

// submittedRotate makes a rotation another node forwarded (owner). It
// waits for its turn in the hub's queue (no commit in flight) like a
// local one, on a goroutine that the hub's forwards wait for at close.
func (h *hub) submittedRotate(s Submission, respond func(SubmitReply)) {
	if !h.owner {
		respond(SubmitReply{Code: CodeShuttingDown, Message: "this node no longer owns the document"})
		return
	}
	m := rotateReq{meta: *s.Rotate, reply: make(chan error, 1)}
	h.fwdWG.Add(1)
	go func() {
		defer h.fwdWG.Done()
		ctx, cancel := context.WithTimeout(h.fwdCtx, rotateTimeout)
		defer cancel()
		if !h.send(ctx, m) {
			respond(SubmitReply{Code: CodeShuttingDown, Message: "the document closed"})
			return
		}
		var err error
		select {
		case err = <-m.reply:
		case <-ctx.Done():
			err = ctx.Err()
		}
		switch {
		case err == nil:
			respond(SubmitReply{})
		case errors.Is(err, ErrUnavailable) || ctx.Err() != nil:
			respond(SubmitReply{Code: CodeShuttingDown, Message: err.Error()})
		default:
			respond(SubmitReply{Code: CodeInternal, Message: "rotation failed"})
			h.log.Error("forwarded rotation", "err", err)
		}
	}()
}
