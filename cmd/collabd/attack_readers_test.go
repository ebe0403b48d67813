package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/collabd/collabd/collab/client"
	"github.com/collabd/collabd/ot"
)

// attackSlowReaders: readers that ask for a 2,000,000-code-point text
// (6 MB) and never read it, from connections with a 4 KiB receive buffer,
// while an honest editor types one keystroke at a time and times its
// acks (issue 22). Each case is a path and how the readers pick their
// revisions.
func attackSlowReaders(t *testing.T, bin string) {
	cases := []struct {
		name, path string
		readers    int
		distinct   bool // reader i asks for rev=i+1
		moving     bool // an op is committed before each reader's request
		args       []string
	}{
		{"past text", "/api/view/{v}/text?rev=1", 64, false, false, nil},
		{"past text", "/api/view/{v}/text?rev=1", 128, false, false, nil},
		{"past JSON", "/api/view/{v}?rev=1", 64, false, false, nil},
		{"distinct revisions", "/api/view/{v}/text?rev=1", 64, true, false, nil},
		{"moving head", "/api/view/{v}/text", 128, false, true, nil},
		{"head text with metrics on", "/api/view/{v}/text", 64, false, false, []string{"-admin-addr", "127.0.0.1:0"}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s x%d", c.name, c.readers), func(t *testing.T) {
			tg := startTarget(t, bin, c.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			const chars = 2_000_000
			id := createDocAt(t, tg.url, strings.Repeat("文", chars))
			ed, err := client.Dial(ctx, "ws://"+tg.addr+"/api/docs/"+id+"/ws", client.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ed.Close()
			// Ops that keep the length (the document is at -max-doc-chars).
			edit := func(s string) {
				ed.EditLenFunc(func(n int) ot.Op { return ot.Op{}.Insert(s).Delete(1).Retain(n - 1) })
				if err := ed.WaitSynced(ctx); err != nil {
					t.Fatal(err)
				}
			}
			revs := 3
			if c.distinct {
				revs = c.readers + 2
			}
			for range revs {
				edit("x")
			}
			viewID := ed.ViewID()

			conns := make([]net.Conn, 0, c.readers)
			defer func() {
				for _, nc := range conns {
					nc.Close()
				}
			}()
			for i := range c.readers {
				// 60 a source address, under -max-conns-per-addr.
				d := net.Dialer{
					LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i/60))},
					Control: func(_, _ string, rc syscall.RawConn) error {
						return rc.Control(func(fd uintptr) {
							syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
						})
					},
				}
				nc, err := d.DialContext(ctx, "tcp", tg.addr)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, nc)
				if c.moving {
					edit(string(rune(0x4e00 + i)))
				}
				p := strings.Replace(c.path, "{v}", viewID, 1)
				if c.distinct {
					p = strings.Replace(p, "rev=1", fmt.Sprintf("rev=%d", i+1), 1)
				}
				fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", p, tg.addr)
			}

			var lat []time.Duration
			for stop := time.Now().Add(15 * time.Second); time.Now().Before(stop); {
				start := time.Now()
				ed.EditLenFunc(func(n int) ot.Op { return ot.Op{}.Retain(n - 1).Insert("y").Delete(1) })
				seq, _ := ed.Seqs()
				if err := ed.WaitAcked(ctx, seq); err != nil {
					t.Fatal(err)
				}
				lat = append(lat, time.Since(start))
				time.Sleep(50 * time.Millisecond)
			}
			slices.Sort(lat)
			_, peak := tg.mem(t)

			statuses := map[string]int{}
			for _, nc := range conns {
				nc.SetReadDeadline(time.Now().Add(2 * time.Second))
				line, err := bufio.NewReader(nc).ReadString('\n')
				if err != nil {
					line = "no answer"
				}
				statuses[strings.TrimSpace(line)]++
			}
			t.Logf("slow readers: %d x GET %s%s%s: peak RSS %.0f MiB; editor's ack p50 %v, p99 %v (%d acks in 15 s); readers got %v",
				c.readers, c.path, map[bool]string{true: " (each its own revision)"}[c.distinct],
				map[bool]string{true: " (an op before each)"}[c.moving], peak,
				lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)*99/100].Round(time.Millisecond), len(lat), statuses)
		})
	}
}
