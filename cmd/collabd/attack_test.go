package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

// TestAttackFigures attacks a collabd binary from outside, as issue 9's
// attacker did, and prints what it cost the server (its RSS from /proc)
// and what the attacker got. It is not part of the suite: it takes
// minutes and loads the machine. Run it with
//
//	COLLABD_ATTACK=1 go test -run TestAttackFigures -v -timeout 10m ./cmd/collabd
//
// (add -run 'TestAttackFigures/create' and so on for one attack).
// The figures go into docs/performance.md, "Abuse resistance: HTTP".
func TestAttackFigures(t *testing.T) {
	bin := attackBin(t)
	t.Run("slow bodies", func(t *testing.T) { attackSlowBodies(t, bin) })
	t.Run("dripping bodies", func(t *testing.T) { attackDrip(t, bin) })
	t.Run("churned ops page", func(t *testing.T) { attackOpsPage(t, bin) })
	t.Run("create flood", func(t *testing.T) { attackCreateFlood(t, bin) })
	t.Run("streams from one address", func(t *testing.T) { attackStreams(t, bin) })
	t.Run("slow readers", func(t *testing.T) { attackSlowReaders(t, bin) }) // attack_readers_test.go
}

// target is a collabd process under attack.
type target struct {
	cmd  *exec.Cmd
	url  string
	addr string
	data string
}

func startTarget(t *testing.T, bin string, args ...string) *target {
	t.Helper()
	data := filepath.Join(t.TempDir(), "collab.db")
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0", "-data", data}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	url := strings.TrimSpace(line[strings.Index(line, "http://"):])
	return &target{cmd: cmd, url: url, addr: strings.TrimPrefix(url, "http://"), data: data}
}

// mem returns the process's resident set and its peak, in MiB.
func (tg *target) mem(t *testing.T) (rss, peak float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tg.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return rss, peak
}

// openConns counts the attacker's connections the server has not closed:
// a read that times out means still open.
func openConns(conns []net.Conn) int {
	n := 0
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			var b [1]byte
			_, err := c.Read(b[:])
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				mu.Lock()
				n++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return n
}

// attackSlowBodies: 40 connections each send 20 MB of a create's body
// and stop 1 KB short.
func attackSlowBodies(t *testing.T, bin string) {
	tg := startTarget(t, bin, "-max-doc-chars", "2000000")
	rss0, _ := tg.mem(t)
	const n, size = 40, 20 << 20
	chunk := bytes.Repeat([]byte("a"), 1<<20)
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	for i := range n {
		c, err := net.Dial("tcp", tg.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			fmt.Fprintf(c, "POST /api/docs HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"text\":\"", tg.addr, size)
			left := size - 1024 - 9
			for left > 0 {
				k := min(left, len(chunk))
				c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(chunk[:k]); err != nil {
					return // refused and closed
				}
				left -= k
			}
		}()
	}
	wg.Wait()
	rss1, _ := tg.mem(t)
	open1 := openConns(conns)
	time.Sleep(32 * time.Second) // past -body-timeout's 30 s
	rss2, peak := tg.mem(t)
	open2 := openConns(conns)
	t.Logf("slow bodies: %d connections x %d MiB stopping 1 KiB short: RSS %.0f MiB before, %.0f MiB with all sent (%d connections open), %.0f MiB 32 s later (%d open); peak %.0f MiB",
		n, size>>20, rss0, rss1, open1, rss2, open2, peak)
}

// attackDrip: 2,000 create bodies dripping one byte every 5 s.
func attackDrip(t *testing.T, bin string) {
	tg := startTarget(t, bin)
	const n = 2000
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", tg.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /api/docs HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", tg.addr)
		conns = append(conns, c)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Second):
			}
			for _, c := range conns {
				c.SetWriteDeadline(time.Now().Add(time.Second))
				c.Write([]byte("a"))
			}
		}
	}()
	time.Sleep(2 * time.Second)
	open1 := openConns(conns)
	rss1, _ := tg.mem(t)
	time.Sleep(31 * time.Second)
	open2 := openConns(conns)
	rss2, peak := tg.mem(t)
	t.Logf("dripping bodies: %d connections, a byte every 5 s: %d open after 2 s (RSS %.0f MiB), %d open after 33 s (RSS %.0f MiB); peak %.0f MiB",
		n, open1, rss1, open2, rss2, peak)
}

// attackOpsPage: 1 MB inserted and deleted 40 times over a WebSocket,
// then two GET .../ops?limit=1000 at once.
func attackOpsPage(t *testing.T, bin string) {
	tg := startTarget(t, bin)
	id := createDocAt(t, tg.url, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+tg.addr+"/api/docs/"+id+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(64 << 20)
	send := func(v any) {
		if err := ws.Write(ctx, websocket.MessageText, mustMarshal(v)); err != nil {
			t.Fatal(err)
		}
	}
	// read returns the next message of one of the types, skipping others.
	read := func(types ...string) map[string]any {
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var msgs []map[string]any
			if b[0] == '[' {
				json.Unmarshal(b, &msgs)
			} else {
				var m map[string]any
				json.Unmarshal(b, &m)
				msgs = append(msgs, m)
			}
			for _, m := range msgs {
				for _, typ := range types {
					if m["type"] == typ {
						return m
					}
				}
			}
		}
	}
	send(map[string]any{"type": "hello", "client": uuid.NewString(), "name": "attacker", "rev": 0})
	read("welcome")
	big := strings.Repeat("x", 1_000_000) // within -max-message as JSON
	rev, seq := 0, 0
	for range 40 {
		seq++
		send(map[string]any{"type": "op", "rev": rev, "seq": seq, "op": []any{big}})
		if m := read("ack", "error"); m["type"] == "error" {
			t.Fatalf("insert refused: %v", m)
		}
		rev++
		seq++
		send(map[string]any{"type": "op", "rev": rev, "seq": seq, "op": []any{-1_000_000}})
		read("ack")
		rev++
	}
	ws.Close(websocket.StatusNormalClosure, "")
	rss0, _ := tg.mem(t)
	var wg sync.WaitGroup
	sizes := make([]int64, 2)
	counts := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(tg.url + "/api/docs/" + id + "/ops?limit=1000")
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			sizes[i] = int64(len(b))
			var page []json.RawMessage
			json.Unmarshal(b, &page)
			counts[i] = len(page)
		}()
	}
	wg.Wait()
	rss1, peak := tg.mem(t)
	t.Logf("churned ops page: 40 x 1 MB insert+delete; two GET ops?limit=1000 at once got %d ops / %.1f MiB and %d ops / %.1f MiB; RSS %.0f MiB before, %.0f MiB after; peak %.0f MiB (the churn itself included)",
		counts[0], float64(sizes[0])/(1<<20), counts[1], float64(sizes[1])/(1<<20), rss0, rss1, peak)
}

// attackCreateFlood: POST /api/docs with a 1 MB text in a loop for 5 s,
// from 4 connections.
func attackCreateFlood(t *testing.T, bin string) {
	tg := startTarget(t, bin)
	body := mustMarshal(map[string]string{"text": strings.Repeat("y", 1<<20)})
	var created, limited, other atomic.Int64
	deadline := time.Now().Add(5 * time.Second)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				resp, err := http.Post(tg.url+"/api/docs", "application/json", bytes.NewReader(body))
				if err != nil {
					other.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusCreated:
					created.Add(1)
				case http.StatusTooManyRequests:
					limited.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	fi, _ := os.Stat(tg.data)
	t.Logf("create flood: 5 s of 1 MiB creates from one address: %d created, %d refused 429, %d other; data file %.0f MiB",
		created.Load(), limited.Load(), other.Load(), float64(fi.Size())/(1<<20))
}

// attackStreams: 200 SSE streams of one document from one address.
func attackStreams(t *testing.T, bin string) {
	tg := startTarget(t, bin)
	id := createDocAt(t, tg.url, "watched")
	ok, refused := 0, 0
	var bodies []io.Closer
	defer func() {
		for _, b := range bodies {
			b.Close()
		}
	}()
	tr := &http.Transport{MaxConnsPerHost: 0}
	client := &http.Client{Transport: tr}
	for range 200 {
		resp, err := client.Get(tg.url + "/api/docs/" + id + "/events")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusOK {
			ok++
			bodies = append(bodies, resp.Body)
			continue
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			refused++
		}
		resp.Body.Close()
	}
	rss, _ := tg.mem(t)
	t.Logf("streams: 200 SSE streams from one address: %d served, %d refused 429; RSS %.0f MiB", ok, refused, rss)
}

func createDocAt(t *testing.T, base, text string) string {
	t.Helper()
	resp, err := http.Post(base+"/api/docs", "application/json", bytes.NewReader(mustMarshal(map[string]string{"text": text})))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %v", resp.StatusCode, err)
	}
	return out.ID
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// attackBin skips the test unless COLLABD_ATTACK is set, and returns the
// collabd binary to attack: COLLABD_ATTACK_BIN names another build (an
// older one, for a figure from before a fix), else this tree's is built.
func attackBin(t *testing.T) string {
	t.Helper()
	if os.Getenv("COLLABD_ATTACK") == "" {
		t.Skip("set COLLABD_ATTACK=1 to attack a collabd binary and print the figures")
	}
	bin := os.Getenv("COLLABD_ATTACK_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "collabd")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	return bin
}
