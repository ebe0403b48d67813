package collab

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/collabd/collabd/ot"
)

// fanOutRig is n WebSocket connections over loopback, the server's end
// accepted as a session accepts it, the client's end read by a goroutine
// that counts the op messages it receives (a batch frame counts for each
// of its messages).
type fanOutRig struct {
	server    []*websocket.Conn
	delivered atomic.Int64
	stop      func()
}

func newFanOutRig(b *testing.B, n int) *fanOutRig {
	b.Helper()
	accepted := make(chan *websocket.Conn)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(&jsonErrorWriter{ResponseWriter: w}, r, nil)
		if err != nil {
			return
		}
		accepted <- ws
	}))
	rig := &fanOutRig{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var clients []*websocket.Conn
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	for range n {
		cws, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		cws.SetReadLimit(-1)
		clients = append(clients, cws)
		rig.server = append(rig.server, <-accepted)
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 64<<10)
			marker := []byte(`{"type":"op"`)
			for {
				_, r, err := cws.Reader(ctx)
				if err != nil {
					return
				}
				buf = buf[:0]
				for {
					if len(buf) == cap(buf) {
						buf = append(buf, 0)[:len(buf)]
					}
					k, err := r.Read(buf[len(buf):cap(buf)])
					buf = buf[:len(buf)+k]
					if err != nil {
						break
					}
				}
				rig.delivered.Add(int64(bytes.Count(buf, marker)))
			}
		}()
	}
	rig.stop = func() {
		cancel()
		for _, c := range clients {
			c.CloseNow()
		}
		for _, c := range rig.server {
			c.CloseNow()
		}
		wg.Wait()
		srv.Close()
	}
	return rig
}

// waitDelivered waits until the readers have counted want messages.
func (rig *fanOutRig) waitDelivered(b *testing.B, want int64) {
	deadline := time.Now().Add(time.Minute)
	for rig.delivered.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("delivered %d of %d messages in a minute", rig.delivered.Load(), want)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// fanOutWindow is how many ops may be on their way to the readers at
// once: the hub is paced by its editors' typing, not free to queue
// without bound, and neither is the bare loop.
const fanOutWindow = 32

// BenchmarkFanOut measures the deliveries per second (one op message to
// one editor) of the fan-out path against the bare loops that are its
// limit, over the same loopback sockets, with the same readers:
//
//   - conn: what hub.committed does per op (one message encoded, shared
//     by every recipient, its connections corked for the batch, here a
//     window) and conn's queue and writer goroutine, which coalesce what
//     is queued into batch frames; conn-uncorked is the same without the
//     cork;
//   - bare-frames: one goroutine writing each message as its own frame
//     to every socket in turn;
//   - bare-batched: one goroutine writing each window's ops as one batch
//     frame, encoded once, to every socket in turn (the least work that
//     delivers the same messages).
//
// The hub's commit (and fsync) is not in it: that is per op, not per
// delivery.
func BenchmarkFanOut(b *testing.B) {
	op := ot.Op{ot.Retain(1234), ot.Insert("x"), ot.Retain(567)}
	for _, n := range []int{100, 400} {
		for _, corked := range []bool{true, false} {
			name := "conn"
			if !corked {
				name = "conn-uncorked"
			}
			b.Run(fmt.Sprintf("editors=%d/%s", n, name), func(b *testing.B) {
				rig := newFanOutRig(b, n)
				defer rig.stop()
				opts := Options{SendQueue: 1 << 20, SendQueueBytes: 1 << 30}
				opts.setDefaults()
				ctx, cancel := context.WithCancel(context.Background())
				conns := make([]*conn, n)
				for i, ws := range rig.server {
					conns[i] = newConn(ctx, ws, &opts)
				}
				defer func() {
					cancel()
					for _, c := range conns {
						c.mu.Lock()
						c.wsClosed = true
						c.mu.Unlock()
						c.writers.Wait()
					}
				}()
				var flush func()
				if corked {
					// As hub.committed does for a batch: here a window.
					flush = func() {
						uncorkAll(conns)
						for _, c := range conns {
							c.cork()
						}
					}
					for _, c := range conns {
						c.cork()
					}
				}
				runFanOut(b, rig, n, func(i int) {
					msg := appendOpMessage(nil, int64(i+1), op, "author-id-0123456789", int64(i+1))
					for _, c := range conns {
						c.enqueue(msg)
					}
				}, flush)
			})
		}
		b.Run(fmt.Sprintf("editors=%d/bare-frames", n), func(b *testing.B) {
			rig := newFanOutRig(b, n)
			defer rig.stop()
			ctx := context.Background()
			runFanOut(b, rig, n, func(i int) {
				msg := appendOpMessage(nil, int64(i+1), op, "author-id-0123456789", int64(i+1))
				for _, ws := range rig.server {
					if err := ws.Write(ctx, websocket.MessageText, msg); err != nil {
						panic(err)
					}
				}
			}, nil)
		})
		b.Run(fmt.Sprintf("editors=%d/bare-batched", n), func(b *testing.B) {
			rig := newFanOutRig(b, n)
			defer rig.stop()
			ctx := context.Background()
			var batch [][]byte
			var frame []byte
			flush := func() {
				if len(batch) == 0 {
					return
				}
				frame = encodeFrame(frame[:0], batch)
				for _, ws := range rig.server {
					if err := ws.Write(ctx, websocket.MessageText, frame); err != nil {
						panic(err)
					}
				}
				batch = batch[:0]
			}
			runFanOut(b, rig, n, func(i int) {
				batch = append(batch, appendOpMessage(nil, int64(i+1), op, "author-id-0123456789", int64(i+1)))
			}, flush)
		})
	}
}

// runFanOut fans out b.N ops with send, fanOutWindow at a time, calling
// flush (if any) after each window, and reports deliveries per second.
func runFanOut(b *testing.B, rig *fanOutRig, n int, send func(i int), flush func()) {
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		send(i)
		if (i+1)%fanOutWindow == 0 || i == b.N-1 {
			if flush != nil {
				flush()
			}
			// One window may be in flight while the next is sent.
			rig.waitDelivered(b, int64(max(0, i+1-fanOutWindow)*n))
		}
	}
	rig.waitDelivered(b, int64(b.N*n))
	b.StopTimer()
	b.ReportMetric(float64(b.N*n)/time.Since(start).Seconds(), "deliveries/s")
	b.ReportMetric(0, "ns/op")
}
