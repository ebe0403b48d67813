package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"
)

func historyAttack() attack {
	return attack{
		name:    "history",
		summary: "ops of many one-character components grow and shrink a document until refused (op log vs -max-doc-history)",
		about: `Creates a document of -chars characters, then sends ops over one WebSocket,
one at a time, that insert a character after each one (2 × -chars components)
and then delete them again, in turn: the text stays small while the op log
grows by a large op each time. Stops at the first refusal (too_large, once
the document's op log passes -max-doc-history), after -ops ops or after
-duration. Prints the ops taken, the bytes of ops sent, the refusal, and the
data file's growth (-data).`,
		duration: 2 * time.Minute,
		honest:   false,
		flags: func(fs *flag.FlagSet) func(context.Context, *session) error {
			chars := fs.Int("chars", 120_000, "length of the document, in characters: each op has twice as many components")
			ops := fs.Int("ops", 10_000, "ops to send at most")
			return func(ctx context.Context, s *session) error {
				if *chars < 1 || *ops < 1 {
					return fmt.Errorf("-chars and -ops must be at least 1")
				}
				return attackHistory(ctx, s, *chars, *ops)
			}
		},
	}
}

func attackHistory(ctx context.Context, s *session, chars, ops int) error {
	hc := s.t.client(attackerAddr(0))
	d, err := s.t.createDoc(ctx, hc, strings.Repeat("x", chars))
	if err != nil {
		return err
	}
	e, err := s.t.dialEditor(ctx, hc, d.ID)
	if err != nil {
		return err
	}
	defer e.close()
	grow, shrink := componentOps(chars)
	fmt.Fprintf(s.out, "document %s: %d characters; ops of %d components, %d and %d bytes of JSON\n",
		d.ID, chars, 2*chars, len(grow), len(shrink))
	m, err := s.begin(ctx)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, s.duration)
	defer cancel()
	start := time.Now()
	taken, bytesTaken := 0, int64(0)
	var stopped error
	for i := range ops {
		op, delta := grow, chars
		if i%2 == 1 {
			op, delta = shrink, -chars
		}
		if stopped = e.apply(actx, op, delta); stopped != nil {
			break
		}
		taken++
		bytesTaken += int64(len(op))
	}
	elapsed := time.Since(start).Round(time.Millisecond)
	fmt.Fprintf(s.out, "ops taken: %d (%.1f MiB of op JSON) in %v\n", taken, float64(bytesTaken)/(1<<20), elapsed)
	var se *serverError
	switch {
	case stopped == nil:
		fmt.Fprintf(s.out, "never refused: stopped after -ops %d\n", ops)
	case errors.As(stopped, &se):
		fmt.Fprintf(s.out, "refused after %d ops: %s\n", taken, se)
	case actx.Err() != nil && ctx.Err() == nil:
		fmt.Fprintf(s.out, "never refused: stopped after -duration %v\n", s.duration)
	default:
		fmt.Fprintf(s.out, "stopped after %d ops: %s\n", taken, errKey(stopped))
	}
	m.end(s.out)
	return nil
}

// componentOps returns the JSON of two ops on a document of n characters:
// grow inserts an "a" after each character, and shrink, on the text grow
// made, deletes them again.
func componentOps(n int) (grow, shrink []byte) {
	var g, sh bytes.Buffer
	g.WriteByte('[')
	sh.WriteByte('[')
	for i := range n {
		if i > 0 {
			g.WriteByte(',')
			sh.WriteByte(',')
		}
		g.WriteString(`1,"a"`)
		sh.WriteString(`1,-1`)
	}
	g.WriteByte(']')
	sh.WriteByte(']')
	return g.Bytes(), sh.Bytes()
}
