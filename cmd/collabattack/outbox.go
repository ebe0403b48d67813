package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"
)

func outboxAttack() attack {
	return attack{
		name:    "outbox",
		summary: "a large document edited steadily while the webhook receiver is down (webhook outbox growth)",
		about: `Against a collabd whose webhook receiver is down and that sends texts, e.g.
  collabd -webhook-url http://127.0.0.1:1/hook -webhook-secret-file FILE \
          -webhook-text -webhook-debounce 100ms
creates a document of -chars characters and appends a character to it every
-every, one op in flight, for -duration or -ops ops. Every changed event
waits in the server's outbox with the whole text. Prints the ops made, the
data file's growth (-data) and the server's RSS (-server-pid).`,
		duration: 40 * time.Second,
		honest:   false,
		flags: func(fs *flag.FlagSet) func(context.Context, *session) error {
			chars := fs.Int("chars", 1_000_000, "length of the document, in characters")
			every := fs.Duration("every", 20*time.Millisecond, "interval between edits")
			ops := fs.Int("ops", 100_000, "edits to make at most")
			return func(ctx context.Context, s *session) error {
				if *chars < 1 || *ops < 1 || *every <= 0 {
					return fmt.Errorf("-chars and -ops must be at least 1, -every positive")
				}
				return attackOutbox(ctx, s, *chars, *every, *ops)
			}
		},
	}
}

func attackOutbox(ctx context.Context, s *session, chars int, every time.Duration, ops int) error {
	hc := s.t.client(attackerAddr(0))
	d, err := s.t.createDoc(ctx, hc, strings.Repeat("a", chars))
	if err != nil {
		return err
	}
	e, err := s.t.dialEditor(ctx, hc, d.ID)
	if err != nil {
		return err
	}
	defer e.close()
	fmt.Fprintf(s.out, "document %s: %d characters\n", d.ID, chars)
	m, err := s.begin(ctx)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, s.duration)
	defer cancel()
	tick := time.NewTicker(every)
	defer tick.Stop()
	start := time.Now()
	made := 0
	var stopped error
	for made < ops {
		select {
		case <-actx.Done():
		case <-tick.C:
		}
		if actx.Err() != nil {
			break
		}
		if stopped = e.apply(actx, typeAt(e.length, "!"), 1); stopped != nil {
			break
		}
		made++
	}
	fmt.Fprintf(s.out, "%d edits in %v\n", made, time.Since(start).Round(time.Millisecond))
	if stopped != nil && actx.Err() == nil {
		fmt.Fprintf(s.out, "edits stopped: %s\n", errKey(stopped))
	}
	m.end(s.out)
	return nil
}
