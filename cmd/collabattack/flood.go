package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func floodAttack() attack {
	return attack{
		name:    "flood",
		summary: "one address fills its own documents with large inserts (RSS)",
		about: `From one address (127.0.1.1), creates -docs documents (waiting out the create
rate limit), then on each, over its own WebSocket, replaces the whole text
with -size bytes, one op in flight, -ops times: every op is within the rate
limits, and each document stays under -max-doc-chars, so only a bound on the
memory of all documents together stops it. Stops after -ops ops per
document, after -duration, or once the server's VmRSS passes -abort (with
-server-pid). Prints the ops acked and refused, how each document's flood
ended, the server's RSS (sampled for its peak) and an honest editor's ack
latency.`,
		duration: 5 * time.Minute,
		honest:   true,
		flags: func(fs *flag.FlagSet) func(context.Context, *session) error {
			docs := fs.Int("docs", 64, "documents to flood")
			ops := fs.Int("ops", 40, "ops per document, at most")
			size := fs.Int("size", 1_000_000-200, "`bytes` each op's text has (ASCII)")
			abort := fs.Int64("abort", 6<<30, "stop once the server's VmRSS passes this many `bytes` (with -server-pid)")
			return func(ctx context.Context, s *session) error {
				if *docs < 1 || *ops < 1 || *size < 1 || *abort < 1 {
					return fmt.Errorf("-docs, -ops, -size and -abort must be at least 1")
				}
				return attackFlood(ctx, s, *docs, *ops, *size, *abort)
			}
		},
	}
}

func attackFlood(ctx context.Context, s *session, docs, ops, size int, abort int64) error {
	hc := s.t.client(attackerAddr(0))
	ids := make([]string, 0, docs)
	for range docs {
		d, err := s.t.createDoc(ctx, hc, "")
		if err != nil {
			return err
		}
		ids = append(ids, d.ID)
	}
	fmt.Fprintf(s.out, "created %d documents\n", len(ids))
	q, _ := json.Marshal(strings.Repeat("x", size))

	m, err := s.begin(ctx)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, s.duration)
	defer cancel()
	m.w.abortPast(abort, func() {
		fmt.Fprintf(s.out, "server VmRSS past -abort %s: stopping\n", mib(abort))
		cancel()
	})
	var acked atomic.Int64
	var ends tally
	start := time.Now()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			n, err := floodDoc(actx, s.t, hc, id, ops, size, q)
			acked.Add(int64(n))
			var se *serverError
			switch {
			case err == nil:
				ends.add(fmt.Sprintf("all %d ops acked", ops))
			case errors.As(err, &se):
				ends.add("refused: " + se.code)
			case actx.Err() != nil:
				ends.add("stopped by the attack's end")
			default:
				ends.add(errKey(err))
			}
		})
	}
	wg.Wait()
	fmt.Fprintf(s.out, "%d ops of %d bytes acked in %v\n", acked.Load(), size, time.Since(start).Round(time.Millisecond))
	ends.print(s.out, "documents' floods ended by")
	m.end(s.out)
	return nil
}

// floodDoc replaces document id's text with q (a JSON string of size
// characters) ops times, and returns how many were acked.
func floodDoc(ctx context.Context, t *target, hc *http.Client, id string, ops, size int, q []byte) (int, error) {
	e, err := t.dialEditor(ctx, hc, id)
	if err != nil {
		return 0, err
	}
	defer e.close()
	for i := range ops {
		var op []byte
		if e.length > 0 {
			op = fmt.Appendf(op, "[-%d,", e.length)
		} else {
			op = append(op, '[')
		}
		op = append(append(op, q...), ']')
		if err := e.apply(ctx, op, size-e.length); err != nil {
			return i, err
		}
	}
	return ops, nil
}
