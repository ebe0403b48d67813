package collab

// A committed batch goes to each editor as one frame (cork.go), and most
// editors wrote none of its ops: they get every op of it, in order. So
// the hub encodes those ops once as a ready batch frame (a JSON array,
// which the protocol allows) and queues that one slice on each such
// editor, instead of queueing every op on every editor: with hundreds of
// editors and batches of dozens of ops, the per-op queueing alone was
// ops × editors calls a second on the hub goroutine. An editor that wrote
// some of the batch still gets it op by op, with its acks in their
// places and without its own ops. The writer joins queued arrays and
// messages into one frame as it joins messages (encodeFrame).

// publishBatch sends a committed batch to this node's clients, as publish
// does for each of its records in turn.
func (h *hub) publishBatch(done []pendingOp) {
	if len(done) < 2 || len(h.editors) < 3 {
		for _, p := range done {
			h.publish(p.rec, h.ackTarget(p))
		}
		return
	}
	wrote := h.batchAuthors
	if wrote == nil {
		wrote = make(map[string]struct{})
		h.batchAuthors = wrote
	}
	msgs := make([][]byte, len(done))
	for i, p := range done {
		wrote[p.rec.Client] = struct{}{}
		msgs[i] = appendOpMessage(nil, p.rec.Rev, p.rec.Op, h.authorOf(p.rec.Client), p.rec.Seq)
	}
	runs := encodeRuns(msgs)
	for _, e := range h.editors {
		if _, ok := wrote[e.client]; !ok {
			for _, run := range runs {
				e.c.enqueue(run)
			}
			continue
		}
		for i, p := range done {
			if p.rec.Client != e.client {
				e.c.enqueue(msgs[i])
			} else if h.ackTarget(p) == e {
				h.ack(e, p.rec.Rev, p.rec.Seq)
			}
		}
	}
	clear(wrote)
	for _, p := range done {
		h.publishViewers(p.rec)
	}
}

// ackTarget returns the editor to acknowledge p to: the one whose
// connection sent it, if it is still connected (nil for ops from other
// nodes, and from connections superseded since).
func (h *hub) ackTarget(p pendingOp) *editor {
	if p.c == nil {
		return nil
	}
	return h.current(p.c)
}

// encodeRuns encodes msgs as JSON arrays of consecutive messages, each
// under half a frame (or of one message, if that one is larger), so that
// the writer can still join one with what else is queued.
func encodeRuns(msgs [][]byte) [][]byte {
	var runs [][]byte
	for start := 0; start < len(msgs); {
		end, size := start, 0
		for end < len(msgs) && (end == start || size+len(msgs[end]) <= maxFrameBytes/2) {
			size += len(msgs[end]) + 1
			end++
		}
		if end-start == 1 {
			runs = append(runs, msgs[start])
		} else {
			runs = append(runs, encodeFrame(make([]byte, 0, size+1), msgs[start:end]))
		}
		start = end
	}
	return runs
}
