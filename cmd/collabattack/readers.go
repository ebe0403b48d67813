package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func readersAttack() attack {
	return attack{
		name:    "readers",
		summary: "slow readers of a large document's text that never read (RSS, an honest editor's ack latency)",
		about: `Creates a document of -chars "文" (3 bytes each in UTF-8), commits a few
revisions to it, then opens -readers connections (-per-addr from each address,
127.0.1.x), each with a 4 KiB receive buffer, sends GET -path on each and
never reads the answer, for -duration. The server must hold or stream what
it cannot send. Prints the server's RSS, sampled for its peak, and an honest
editor's ack latency meanwhile; at the end, the first line each reader got.
In -path, {v} is the view id, {id} the edit id, and {n} the reader's number
from 1 (then as many revisions are made first, so that each reader asks for
a different one). With -moving an op is committed before each reader's
request, so that readers of the head hold different revisions.`,
		duration: 20 * time.Second,
		honest:   true,
		flags: func(fs *flag.FlagSet) func(context.Context, *session) error {
			readers := fs.Int("readers", 64, "slow readers")
			perAddr := fs.Int("per-addr", 60, "readers from each source address")
			chars := fs.Int("chars", 2_000_000, "length of the document, in characters")
			path := fs.String("path", "/api/view/{v}/text?rev=1", "`path` the readers ask for")
			moving := fs.Bool("moving", false, "commit an op before each reader's request")
			return func(ctx context.Context, s *session) error {
				if *readers < 1 || *perAddr < 1 || *chars < 1 {
					return fmt.Errorf("-readers, -per-addr and -chars must be at least 1")
				}
				if !strings.HasPrefix(*path, "/") {
					return fmt.Errorf("-path %q must start with /", *path)
				}
				return attackReaders(ctx, s, *readers, *perAddr, *chars, *path, *moving)
			}
		},
	}
}

func attackReaders(ctx context.Context, s *session, readers, perAddr, chars int, path string, moving bool) error {
	hc := s.t.client(attackerAddr(0))
	d, err := s.t.createDoc(ctx, hc, strings.Repeat("文", chars))
	if err != nil {
		return err
	}
	e, err := s.t.dialEditor(ctx, hc, d.ID)
	if err != nil {
		return err
	}
	defer e.close()
	// Revisions past the first, so that rev=1 is history; each replaces
	// the first character, leaving the length as it is.
	revise := func(i int) error {
		q, _ := json.Marshal(string(rune(0x4e00 + i%0x5000)))
		return e.apply(ctx, fmt.Appendf(nil, "[%s,-1,%d]", q, chars-1), 0)
	}
	revisions := 3
	if strings.Contains(path, "{n}") {
		revisions = readers + 2
	}
	for i := range revisions {
		if err := revise(i); err != nil {
			return fmt.Errorf("revise the document: %w", err)
		}
	}
	fmt.Fprintf(s.out, "document %s: %d characters (%d bytes) at revision %d\n", d.ID, chars, 3*chars, e.rev)

	m, err := s.begin(ctx)
	if err != nil {
		return err
	}
	conns := make([]net.Conn, 0, readers)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var failed tally
	small := func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }
	for i := range readers {
		if ctx.Err() != nil {
			break
		}
		if moving {
			if err := revise(revisions + i); err != nil {
				return fmt.Errorf("revise the document: %w", err)
			}
		}
		p := strings.NewReplacer("{v}", d.ViewID, "{id}", d.ID, "{n}", strconv.Itoa(i+1)).Replace(path)
		c, err := dialer(attackerAddr(i/perAddr), small).DialContext(ctx, "tcp", s.t.host)
		if err == nil {
			_, err = fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", p, s.t.host)
		}
		if err != nil {
			failed.add(errKey(err))
			if c != nil {
				c.Close()
			}
			continue
		}
		conns = append(conns, c)
	}
	fmt.Fprintf(s.out, "%d readers sent their requests and read nothing\n", len(conns))
	if failed.total() > 0 {
		failed.print(s.out, "readers that could not ask")
	}
	select {
	case <-ctx.Done():
	case <-time.After(s.duration):
	}
	m.end(s.out)

	// What the readers got: the first line of each answer.
	var got tally
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				got.add("no answer: " + errKey(err))
				return
			}
			got.add(strings.TrimSpace(line))
		})
	}
	wg.Wait()
	got.print(s.out, "readers' first lines")
	return nil
}
