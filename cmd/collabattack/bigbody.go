package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

func bigbodyAttack() attack {
	return attack{
		name:    "bigbody",
		summary: "POST /api/docs with a body past the limit: is the 413 read, or the connection reset?",
		about: `Sends -requests POST /api/docs requests one after another, each on a new
connection from 127.0.1.1, with a JSON body of -bytes bytes (past the create
limit of 12 bytes per -max-doc-chars: 24 MB by default), with Content-Length
or, with -chunked, in chunks. Like curl without "Expect: 100-continue", it
writes the whole body before it reads, stopping at the first write error,
and then reads the answer. A server that closes at once after refusing
makes the upload fail (broken pipe or reset), and curl and browsers give up
there without reading; one that reads and drops the rest of the body for a
while lets the upload finish and the client read the 413. Prints the
answers by status, each with whether the body went out in full: only
"body sent in full" answers are ones curl and browsers show.`,
		duration: time.Minute,
		honest:   false,
		flags: func(fs *flag.FlagSet) func(context.Context, *session) error {
			size := fs.Int64("bytes", 30_000_000, "body `bytes` of each request")
			requests := fs.Int("requests", 10, "requests to send")
			chunked := fs.Bool("chunked", false, "send the body with Transfer-Encoding: chunked, not Content-Length")
			return func(ctx context.Context, s *session) error {
				if *size < 16 || *requests < 1 {
					return fmt.Errorf("-bytes must be at least 16 and -requests at least 1")
				}
				return attackBigBody(ctx, s, *size, *requests, *chunked)
			}
		},
	}
}

func attackBigBody(ctx context.Context, s *session, size int64, requests int, chunked bool) error {
	m, err := s.begin(ctx)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, s.duration)
	defer cancel()
	var answers tally
	start := time.Now()
	for i := 0; i < requests && actx.Err() == nil; i++ {
		answers.add(bigPost(actx, s.t, size, chunked))
	}
	fmt.Fprintf(s.out, "%d requests of %d bytes (%s) in %v\n", answers.total(), size,
		map[bool]string{false: "Content-Length", true: "chunked"}[chunked], time.Since(start).Round(time.Millisecond))
	answers.print(s.out, "answers")
	m.end(s.out)
	return nil
}

// bodyChunk is what the body is written in.
const bodyChunk = 64 << 10

// bigPost sends one create of size bytes over raw TCP, as curl would,
// and names the answer.
func bigPost(ctx context.Context, t *target, size int64, chunked bool) string {
	nc, err := dialer(attackerAddr(0), nil).DialContext(ctx, "tcp", t.host)
	if err != nil {
		return "dial " + errKey(err)
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	framing := fmt.Sprintf("Content-Length: %d", size)
	if chunked {
		framing = "Transfer-Encoding: chunked"
	}
	_, werr := fmt.Fprintf(nc, "POST /api/docs HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%s\r\n\r\n", t.host, framing)

	// The body, {"text":"aaa...a"}, is written until it is all out or a
	// write fails.
	const prefix, suffix = `{"text":"`, `"}`
	buf := make([]byte, bodyChunk)
	sent := int64(0)
	for werr == nil && sent < size {
		n := min(bodyChunk, size-sent)
		part := buf[:n]
		for i := range part {
			switch at := sent + int64(i); {
			case at < int64(len(prefix)):
				part[i] = prefix[at]
			case at >= size-int64(len(suffix)):
				part[i] = suffix[at-(size-int64(len(suffix)))]
			default:
				part[i] = 'a'
			}
		}
		if chunked {
			part = append(append(fmt.Appendf(nil, "%x\r\n", n), part...), "\r\n"...)
		}
		if _, werr = nc.Write(part); werr == nil {
			sent += n
		}
	}
	if chunked && werr == nil {
		_, werr = io.WriteString(nc, "0\r\n\r\n")
	}
	body := "body sent in full"
	if werr != nil {
		body = fmt.Sprintf("body cut by %s", errKey(werr))
	}

	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		return fmt.Sprintf("no answer (%s), %s", errKey(err), body)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return fmt.Sprintf("%s, %s", statusKey(resp.StatusCode, answer), body)
}
