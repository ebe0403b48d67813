package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func restoreAttack() attack {
	return attack{
		name:    "restore",
		summary: "clients alternately restore a large document to its empty and full revisions (data file growth)",
		about: `Creates a document of -chars random letters, then -clients clients, all from
one address (127.0.1.1), POST /api/docs/{id}/restore with {"rev":0} (empty)
and {"rev":1} (the full text) in turn, as fast as they are answered, for
-duration or -requests in all. Each restore that is taken writes the whole
difference to the op log. Prints the answers by status and code, the data
file's growth (-data) and the server's CPU and RSS (-server-pid).`,
		duration: 20 * time.Second,
		honest:   true,
		flags: func(fs *flag.FlagSet) func(context.Context, *session) error {
			clients := fs.Int("clients", 4, "concurrent clients")
			chars := fs.Int("chars", 2_000_000, "length of the document, in characters")
			requests := fs.Int("requests", 100_000, "restores to send in all, at most")
			return func(ctx context.Context, s *session) error {
				if *clients < 1 || *chars < 1 || *requests < 1 {
					return fmt.Errorf("-clients, -chars and -requests must be at least 1")
				}
				return attackRestore(ctx, s, *clients, *chars, *requests)
			}
		},
	}
}

func attackRestore(ctx context.Context, s *session, clients, chars, requests int) error {
	hc := s.t.client(attackerAddr(0))
	text := make([]byte, chars)
	for i := range text {
		text[i] = byte('a' + rand.IntN(26))
	}
	d, err := s.t.createDoc(ctx, hc, string(text))
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "document %s: %d characters at revision %d\n", d.ID, chars, d.Rev)
	m, err := s.begin(ctx)
	if err != nil {
		return err
	}
	var answers tally
	var sent atomic.Int64
	// A restore in progress at the deadline is waited for: its answer
	// counts too.
	start := time.Now()
	deadline := start.Add(s.duration)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := c; time.Now().Before(deadline) && ctx.Err() == nil && sent.Add(1) <= int64(requests); i++ {
				answers.add(restore(ctx, s.t, hc, d.ID, int64(i%2)))
			}
		})
	}
	wg.Wait()
	fmt.Fprintf(s.out, "%d restores in %v\n", min(sent.Load(), int64(requests)), time.Since(start).Round(time.Millisecond))
	answers.print(s.out, "answers")
	m.end(s.out)
	return nil
}

// restore asks for document id to be restored to rev, and names the answer.
func restore(ctx context.Context, t *target, hc *http.Client, id string, rev int64) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url("/api/docs/"+id+"/restore"),
		strings.NewReader(fmt.Sprintf(`{"rev":%d}`, rev)))
	if err != nil {
		return errKey(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return errKey(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return statusKey(resp.StatusCode, body)
}
