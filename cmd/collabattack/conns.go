package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

func connsAttack() attack {
	return attack{
		name:    "conns",
		summary: "idle editors from many addresses fill -max-conns, then /healthz and / are probed",
		about: `Opens -conns idle sessions, spread over -addrs source addresses (127.0.1.x) so
that no one address passes -max-conns-per-addr: editors (-kind editors,
WebSockets that said hello and then only listen, -per-doc to a document, the
documents created from those addresses) or SSE streams of one document (-kind
streams). They open -pace at a time, 50 ms apart, until all are answered or
-duration has passed. Then, with the server's pool of requests full, one more
editor and each of -probe are asked for from another address (127.0.0.3), and
their answers and times printed; then every session is closed. Prints how
the sessions were answered (open, or the refusal's status) and the server's
RSS (-server-pid).`,
		duration: 30 * time.Second,
		honest:   false,
		flags: func(fs *flag.FlagSet) func(context.Context, *session) error {
			var o connsOptions
			fs.IntVar(&o.conns, "conns", 4200, "idle sessions to open (collabd's -max-conns is 4096 by default)")
			fs.IntVar(&o.addrs, "addrs", 75, "source addresses they come from")
			fs.StringVar(&o.kind, "kind", "editors", "`sessions`: editors or streams")
			fs.IntVar(&o.perDoc, "per-doc", 100, "editors per document (collabd's -max-editors is 100 by default)")
			fs.IntVar(&o.pace, "pace", 200, "sessions opened at once, 50 ms apart")
			fs.StringVar(&o.probes, "probe", "/healthz,/,/dist/edit.js", "comma-separated `paths` to GET once the sessions are open")
			return func(ctx context.Context, s *session) error {
				switch {
				case o.conns < 1 || o.addrs < 1 || o.perDoc < 1 || o.pace < 1:
					return fmt.Errorf("-conns, -addrs, -per-doc and -pace must be at least 1")
				case o.addrs > 250*254:
					return fmt.Errorf("-addrs %d: at most %d", o.addrs, 250*254)
				case o.kind != "editors" && o.kind != "streams":
					return fmt.Errorf("-kind %q: want editors or streams", o.kind)
				}
				return attackConns(ctx, s, &o)
			}
		},
	}
}

type connsOptions struct {
	conns, addrs, perDoc, pace int
	kind, probes               string
}

func attackConns(ctx context.Context, s *session, o *connsOptions) error {
	clients := make([]*http.Client, o.addrs)
	for i := range clients {
		clients[i] = s.t.client(attackerAddr(i))
	}
	docs := 1
	if o.kind == "editors" {
		docs = (o.conns + o.perDoc - 1) / o.perDoc
	}
	ids := make([]string, docs)
	for i := range ids {
		d, err := s.t.createDoc(ctx, clients[i%o.addrs], "x")
		if err != nil {
			return err
		}
		ids[i] = d.ID
	}
	fmt.Fprintf(s.out, "%d document(s) created\n", docs)

	m, err := s.begin(ctx)
	if err != nil {
		return err
	}
	// The sessions are held until released, once the probes are done.
	sessions, release := context.WithCancel(ctx)
	defer release()
	var answers tally
	var answered atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(s.duration)
	start := time.Now()
	for i := 0; i < o.conns && time.Now().Before(deadline) && ctx.Err() == nil; i++ {
		hc := clients[i%o.addrs]
		wg.Go(func() {
			var hold func()
			var err error
			if o.kind == "editors" {
				hold, err = openEditor(sessions, s.t, hc, ids[i/o.perDoc])
			} else {
				hold, err = openStream(sessions, s.t, hc, ids[0])
			}
			answered.Add(1)
			if err != nil {
				answers.add(err.Error())
				return
			}
			answers.add("open")
			hold()
		})
		if i%o.pace == o.pace-1 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	for answered.Load() < int64(o.conns) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(s.out, "%d of %d sessions answered in %v\n", answered.Load(), o.conns, time.Since(start).Round(time.Millisecond))

	// The probes, while the sessions are held.
	probe := s.t.client(probeAddr)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	t0 := time.Now()
	one := "open"
	if hold, err := openEditor(pctx, s.t, probe, ids[0]); err != nil {
		one = err.Error()
	} else {
		wg.Go(hold) // until cancel
	}
	fmt.Fprintf(s.out, "one more editor, from 127.0.0.3: %s (%v)\n", one, time.Since(t0).Round(time.Millisecond))
	for _, p := range strings.Split(o.probes, ",") {
		if p = strings.TrimSpace(p); p != "" {
			fmt.Fprintf(s.out, "GET %s from 127.0.0.3: %s\n", p, get(pctx, probe, s.t.url(p)))
		}
	}
	cancel()
	release()
	wg.Wait()
	answers.print(s.out, "sessions")
	m.end(s.out)
	return nil
}

// openEditor joins document id with hc, says hello and reads the welcome.
// The session is open once it returns; hold then listens (answering
// pings, as a browser would) until ctx ends, and closes it. The error
// names a refusal by its status.
func openEditor(ctx context.Context, t *target, hc *http.Client, id string) (hold func(), err error) {
	ws, resp, err := t.dialWS(ctx, hc, "/api/docs/"+id+"/ws")
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return nil, errors.New(statusKey(resp.StatusCode, body))
		}
		return nil, errors.New(errKey(err))
	}
	hello, _ := json.Marshal(map[string]string{"type": "hello", "client": uuid.NewString(), "name": "idle"})
	if err := ws.Write(ctx, websocket.MessageText, hello); err != nil {
		ws.CloseNow()
		return nil, errors.New(errKey(err))
	}
	if _, _, err := ws.Read(ctx); err != nil {
		ws.CloseNow()
		return nil, errors.New(errKey(err))
	}
	return func() {
		defer ws.CloseNow()
		for {
			if _, _, err := ws.Read(ctx); err != nil {
				return
			}
		}
	}, nil
}

// openStream opens document id's SSE stream with hc and reads its first
// line; hold then reads it until ctx ends.
func openStream(ctx context.Context, t *target, hc *http.Client, id string) (hold func(), err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url("/api/docs/"+id+"/events"), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, errors.New(errKey(err))
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, errors.New(statusKey(resp.StatusCode, body))
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		resp.Body.Close()
		return nil, errors.New(errKey(err))
	}
	return func() {
		defer resp.Body.Close()
		io.Copy(io.Discard, br)
	}, nil
}

// get asks for url and names the answer, with its time.
func get(ctx context.Context, hc *http.Client, url string) string {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return errKey(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Sprintf("%s (%v)", errKey(err), time.Since(start).Round(time.Millisecond))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return fmt.Sprintf("%s (%v)", statusKey(resp.StatusCode, body), time.Since(start).Round(time.Millisecond))
}
