package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

// TestAttackMemoryBudget is issue 22's attack on memory: one address
// creates 64 documents and floods each with 40 ops that replace its text
// with 1 MB, one op in flight per connection (well within the rate
// limit), while an honest editor types on a document of its own from
// another address. It prints the server's peak RSS, anonymous and in
// all (the data file's pages mapped by bbolt come on top of the
// former), and the honest editor's ack latency. Like TestAttackFigures it
// is not part of the suite; run it with
//
//	COLLABD_ATTACK=1 COLLABD_ATTACK_MEMORY_BUDGET=268435456 go test -run TestAttackMemoryBudget -v -timeout 15m ./cmd/collabd
//
// and COLLABD_ATTACK_BIN=/path/to/older/collabd (without the budget
// variable) for the figure from before the budget.
func TestAttackMemoryBudget(t *testing.T) {
	bin := attackBin(t)
	var args []string
	if b := os.Getenv("COLLABD_ATTACK_MEMORY_BUDGET"); b != "" {
		args = append(args, "-memory-budget", b)
	}
	const (
		docs  = 64
		ops   = 40
		size  = 1_000_000 - 200 // just under -max-message
		abort = 8 << 30         // stop, rather than eat the machine
	)
	tg := startTarget(t, bin, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	ids := make([]string, 0, docs)
	for len(ids) < docs { // at -create-rate
		resp, err := http.Post(tg.url+"/api/docs", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		var d struct{ ID string }
		json.NewDecoder(resp.Body).Decode(&d)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusCreated:
			ids = append(ids, d.ID)
		case http.StatusTooManyRequests:
			time.Sleep(600 * time.Millisecond)
		default:
			t.Fatalf("create: %s", resp.Status)
		}
	}

	stop := make(chan struct{})
	var peakAnon int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			anon := procStatus(tg.cmd.Process.Pid, "RssAnon")
			peakAnon = max(peakAnon, anon)
			if procStatus(tg.cmd.Process.Pid, "VmRSS") > abort {
				cancel()
			}
		}
	}()
	typed := make(chan string, 1)
	go func() { typed <- typeAlong(ctx, tg.addr, stop) }()

	start := time.Now()
	type result struct {
		acked, refused int
		err            error
	}
	results := make(chan result, docs)
	payload := strings.Repeat("x", size)
	for _, id := range ids {
		go func() {
			a, r, err := floodDoc(ctx, tg.addr, id, ops, payload)
			results <- result{a, r, err}
		}()
	}
	var acked, refused, failed int
	for range ids {
		r := <-results
		acked, refused = acked+r.acked, refused+r.refused
		if r.err != nil {
			failed++
			t.Logf("flood: %v", r.err)
		}
	}
	close(stop)
	<-sampled
	_, peak := tg.mem(t)
	t.Logf("%d ops of %d bytes acked on %d documents, %d refused (too_large), %d connections failed, in %v",
		acked, size, docs, refused, failed, time.Since(start).Round(time.Second))
	t.Logf("server peak RSS (VmHWM) %.0f MiB; anonymous RSS peaked at %d MiB (sampled)", peak, peakAnon>>20)
	t.Log(<-typed)
	if ctx.Err() != nil {
		t.Errorf("stopped early: the server passed %d MiB or the attack its time", abort>>20)
	}
}

// floodDoc sends n ops to document id, each replacing its text with
// payload, one at a time; it stops at the first too_large.
func floodDoc(ctx context.Context, addr, id string, n int, payload string) (acked, refused int, err error) {
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/api/docs/"+id+"/ws", nil)
	if err != nil {
		return 0, 0, err
	}
	defer ws.CloseNow()
	ws.SetReadLimit(64 << 20)
	if err := ws.Write(ctx, websocket.MessageText, mustMarshal(map[string]any{"type": "hello", "client": uuid.NewString(), "rev": 0})); err != nil {
		return 0, 0, err
	}
	rev, length := int64(0), 0
	for seq := 1; seq <= n; seq++ {
		op := []any{payload}
		if length > 0 {
			op = []any{-length, payload}
		}
		if err := ws.Write(ctx, websocket.MessageText, mustMarshal(map[string]any{"type": "op", "rev": rev, "seq": seq, "op": op})); err != nil {
			return acked, refused, err
		}
		m, err := readUntil(ctx, ws, "ack")
		if err != nil {
			return acked, refused, err
		}
		if m["type"] == "error" {
			if m["code"] == "too_large" {
				return acked, refused + 1, nil
			}
			return acked, refused, fmt.Errorf("%v: %v", m["code"], m["message"])
		}
		rev, length = int64(m["rev"].(float64)), len(payload)
		acked++
	}
	return acked, refused, nil
}

// readUntil reads messages until one of type typ or an error message.
func readUntil(ctx context.Context, ws *websocket.Conn, typ string) (map[string]any, error) {
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		var msgs []map[string]any
		if bytes.HasPrefix(b, []byte("[")) {
			err = json.Unmarshal(b, &msgs)
		} else {
			msgs = make([]map[string]any, 1)
			err = json.Unmarshal(b, &msgs[0])
		}
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if m["type"] == typ || m["type"] == "error" {
				return m, nil
			}
		}
	}
}

// typeAlong is an honest editor on another loopback address (127.0.0.2):
// it types a character every 50 ms on a document of its own until stop,
// and reports its ack latencies.
func typeAlong(ctx context.Context, addr string, stop <-chan struct{}) string {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	resp, err := hc.Post("http://"+addr+"/api/docs", "application/json", nil)
	if err != nil {
		return "honest editor: " + err.Error()
	}
	var doc struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/api/docs/"+doc.ID+"/ws", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		return "honest editor: " + err.Error()
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, mustMarshal(map[string]any{"type": "hello", "client": uuid.NewString(), "rev": 0})); err != nil {
		return "honest editor: " + err.Error()
	}
	var lat []time.Duration
	rev := int64(0)
	for seq := 1; ; seq++ {
		select {
		case <-stop:
			if len(lat) == 0 {
				return "honest editor: no acks"
			}
			slices.Sort(lat)
			return fmt.Sprintf("honest editor: %d acks, ack p50 %v, p99 %v", len(lat),
				lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)*99/100].Round(time.Millisecond))
		case <-time.After(50 * time.Millisecond):
		}
		op := []any{"a"}
		if seq > 1 {
			op = []any{seq - 1, "a"}
		}
		sent := time.Now()
		if err := ws.Write(ctx, websocket.MessageText, mustMarshal(map[string]any{"type": "op", "rev": rev, "seq": seq, "op": op})); err != nil {
			return "honest editor: " + err.Error()
		}
		m, err := readUntil(ctx, ws, "ack")
		if err != nil {
			return "honest editor: " + err.Error()
		}
		if m["type"] == "error" {
			return fmt.Sprintf("honest editor refused: %v: %v", m["code"], m["message"])
		}
		rev = int64(m["rev"].(float64))
		lat = append(lat, time.Since(sent))
	}
}

// procStatus returns a field of /proc/pid/status in bytes, or 0.
func procStatus(pid int, key string) int64 {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
