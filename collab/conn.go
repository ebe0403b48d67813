package collab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Close codes the protocol table does not list.
const (
	// closeSuperseded closes a connection whose client has opened a newer one.
	closeSuperseded = websocket.StatusNormalClosure
	// closeOverflow closes a connection too slow to take what it is sent;
	// the client reconnects and resumes from its revision.
	closeOverflow = websocket.StatusTryAgainLater
)

// maxFrameMessages and maxFrameBytes bound how many queued messages the
// writer coalesces into one frame (a JSON array).
const (
	maxFrameMessages = 128
	maxFrameBytes    = 256 << 10
)

// conn is one editor's WebSocket connection. The session's goroutine reads
// from it. The hub only ever calls enqueue, fail, closeWith and admit,
// which never block.
//
// Memory is what bounds how many idle connections a server holds, so an
// idle conn has no writer goroutine and no queue capacity: enqueue starts
// a writer when the queue goes from empty to not, and the writer ends
// when it has emptied it. The queue is a slice under mu, bounded by bytes
// (and by a count): what a slow connection can hold is counted in the
// bytes it pins. Messages are shared by every recipient; the queue holds
// references, never copies.
type conn struct {
	ws     *websocket.Conn
	client string // set from the hello before the hub first sees the conn
	// tokenName, from the access token, replaces the hello's name.
	tokenName string
	connMetrics

	// Set before the conn is shared, never changed after.
	ctx      context.Context // ends when the session does; writes end with it
	timeout  time.Duration   // the client write timeout
	minRate  int             // bytes per second a large write is allowed
	maxBytes int             // most bytes queued before the connection is dropped
	maxMsgs  int             // most messages queued
	// admitted is closed by the hub when it has handled this conn's hello
	// (welcomed it or refused it): from then on the hub closes the conn
	// itself if it stops.
	admitted chan struct{}
	// closing is closed, once, when the connection is to end with
	// closeCode; a writer flushes what is queued, then closes.
	closing chan struct{}
	// ended is closed once a writer has closed the WebSocket.
	ended   chan struct{}
	writers sync.WaitGroup
	// watch cuts the connection when a write takes longer than its
	// writeTimeout (watch.go).
	watch writeWatch
	// joiner, when set, is under the WebSocket's write buffer: it sends a
	// frame larger than the buffer in one system call (join.go).
	joiner *frameJoiner

	// mu orders enqueue against fail and closeWith: nothing is queued
	// once the connection is closing, so an error message is the last
	// thing the client hears before the close. It guards the fields below.
	mu        sync.Mutex
	queue     [][]byte
	queued    int  // bytes in queue
	writing   bool // a writer goroutine is running
	wsClosed  bool // a writer has closed, or is closing, the WebSocket
	closed    bool
	closeCode websocket.StatusCode
	closeMsg  string
	// corked holds the writer back while the hub fans out a batch of ops
	// (cork.go), until a frame's worth is queued.
	corked bool
	// held holds the writer back until holdTimer fires (hold.go), so that
	// others' ops go out together; urgent (an ack queued) lets it go at
	// once. lastFrame is when the writer last took a frame's messages.
	held, urgent bool
	lastFrame    time.Time
	holdTimer    *time.Timer
	// welcome, when set, is a welcome to write from the store before
	// anything else queued (catchup.go); a nil message at the head of the
	// queue marks its place.
	welcome *welcomeStream
}

func newConn(ctx context.Context, ws *websocket.Conn, opts *Options) *conn {
	// Writes run without a context (see write); the session's end still
	// fails one under way, by cutting the connection.
	context.AfterFunc(ctx, func() { ws.CloseNow() })
	c := &conn{
		ws:       ws,
		ctx:      ctx,
		timeout:  opts.WriteTimeout,
		minRate:  opts.MinWriteRate,
		maxBytes: opts.SendQueueBytes,
		maxMsgs:  opts.SendQueue,
		admitted: make(chan struct{}),
		closing:  make(chan struct{}),
		ended:    make(chan struct{}),

		connMetrics: connMetrics{metrics: opts.Metrics},
	}
	c.watch.cut = func() { ws.CloseNow() }
	return c
}

// admit tells the session that the hub has handled its hello. The hub
// calls it once per conn.
func (c *conn) admit() { close(c.admitted) }

// isClosed reports whether the connection is closing: nothing more is
// sent on it, and nothing more from it should be acted on.
func (c *conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// enqueue queues one encoded message. A connection whose queue is full is
// closed rather than allowed to hold up the hub; one that is closing
// takes nothing more. A message larger than the whole budget (a welcome
// with a large text, say) is taken when the queue is empty.
func (c *conn) enqueue(msg []byte) { c.enqueueMsg(msg, false) }

// enqueueMsg queues msg; an urgent one (an ack) lets a held writer go
// at once (hold.go).
func (c *conn) enqueueMsg(msg []byte, urgent bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.wsClosed {
		return
	}
	c.urgent = c.urgent || urgent
	if !c.pushLocked(msg) {
		// What is queued is let go of at once: a connection closed for
		// being slow would otherwise stay attached while it slowly takes
		// a full queue. The client resumes from its revision.
		c.slowEditor()
		clear(c.queue)
		c.queue, c.queued = nil, 0
		c.closeLocked(closeOverflow, "too slow to keep up; reconnect")
	}
}

// enqueueWelcome queues a welcome whose ops the writer reads from the
// store. It must be the first message queued on the connection.
func (c *conn) enqueueWelcome(w *welcomeStream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.wsClosed {
		return
	}
	c.welcome = w
	c.pushLocked(nil) // the queue is empty, so it fits
}

func (c *conn) takeWelcome() *welcomeStream {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.welcome
	c.welcome = nil
	return w
}

// pushLocked queues msg if it fits, and makes sure a writer runs.
func (c *conn) pushLocked(msg []byte) bool {
	if len(c.queue) > 0 && (c.queued+len(msg) > c.maxBytes || len(c.queue) >= c.maxMsgs) {
		return false
	}
	c.queue = append(c.queue, msg)
	c.queued += len(msg)
	c.startWriterLocked() // unless corked
	return true
}

// fail sends an error message, if there is room, and closes the
// connection with the error's close code.
func (c *conn) fail(e *protoError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.wsClosed {
		return
	}
	c.protoErrorSent(e.Code)
	c.pushLocked(encodeError(e))
	c.closeLocked(websocket.StatusCode(closeCodes[e.Code]), e.Code)
}

// closeWith closes the connection with a code and a short reason.
func (c *conn) closeWith(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed && !c.wsClosed {
		c.closeLocked(code, reason)
	}
}

func (c *conn) closeLocked(code websocket.StatusCode, reason string) {
	c.closed = true
	c.closeCode, c.closeMsg = code, reason
	close(c.closing)
	c.startWriterLocked() // to flush and close, even with nothing queued
}

func (c *conn) startWriterLocked() {
	if c.writing || c.wsClosed {
		return
	}
	if !c.closed && len(c.queue) < maxFrameMessages && c.queued < maxFrameBytes && (c.corked || c.held && !c.urgent) {
		return
	}
	c.unholdLocked()
	c.writing = true
	c.writers.Add(1)
	go c.writeOut()
}

// takeLocked moves up to a frame's worth of queued messages into batch,
// which must be empty. When all of the queue fits, the two slices swap:
// the writer and the hub reuse each other's, without copying or
// allocating, for as long as the writer runs.
func (c *conn) takeLocked(batch [][]byte) [][]byte {
	size, n := 0, 0
	if len(c.queue) > 0 && c.queue[0] == nil {
		// A welcome's mark goes alone: the writer streams the welcome
		// from the store before anything queued after it.
		batch = append(batch, nil)
		n = 1
	} else {
		for n < len(c.queue) && n < maxFrameMessages && (n == 0 || size+len(c.queue[n]) <= maxFrameBytes) {
			size += len(c.queue[n])
			n++
		}
		if n == len(c.queue) {
			c.queued -= size
			batch, c.queue = c.queue, batch
			return batch
		}
		batch = append(batch, c.queue[:n]...)
	}
	c.queued -= size
	rest := copy(c.queue, c.queue[n:])
	clear(c.queue[rest:])
	c.queue = c.queue[:rest]
	return batch
}

// writeOut sends what is queued, batching what is waiting into frames,
// until the queue is empty; then, if the connection is closing, it
// closes it with its code. Only one writer runs at a time.
func (c *conn) writeOut() {
	defer c.writers.Done()
	var batch [][]byte
	for {
		c.mu.Lock()
		batch = c.takeLocked(batch[:0])
		if len(c.queue) == 0 {
			c.urgent = false
		}
		if len(batch) == 0 {
			c.queue = nil // an idle connection keeps no capacity
			c.writing = false
			closeNow := c.closed && !c.wsClosed
			c.wsClosed = c.wsClosed || closeNow
			code, reason := c.closeCode, c.closeMsg
			c.mu.Unlock()
			if closeNow {
				c.ws.Close(code, reason)
				close(c.ended)
			}
			return
		}
		c.lastFrame = time.Now()
		c.mu.Unlock()
		var err error
		if batch[0] == nil {
			batch = batch[:0]
			if w := c.takeWelcome(); w != nil {
				if err = w.write(c.ctx, c.ws, c.timeout); err != nil {
					err = fmt.Errorf("catch-up from the store: %w", err)
				}
			}
		} else {
			err = c.write(batch)
		}
		if err != nil {
			c.mu.Lock()
			if !c.closed {
				c.closeLocked(websocket.StatusAbnormalClosure, "write failed")
			}
			clear(c.queue)
			c.queue, c.queued = nil, 0
			c.writing, c.wsClosed = false, true
			c.mu.Unlock()
			c.ws.CloseNow()
			close(c.ended)
			return
		}
	}
}

// write sends batch as one frame. A single message goes as it is, shared
// with its other recipients, not copied; a batch is encoded into a
// buffer from framePool. The deadline grows with the frame, so that a
// large one is not cut for want of time, and yet what a slow reader pins
// is let go of in bounded time.
func (c *conn) write(batch [][]byte) error {
	msg := batch[0]
	var buf *[]byte
	if len(batch) > 1 {
		buf, _ = framePool.Get().(*[]byte)
		if buf == nil {
			buf = new([]byte)
		}
		*buf = encodeFrame((*buf)[:0], batch)
		msg = *buf
	}
	// The deadline is a timer of the connection's that cuts it, not a
	// context per write: coder/websocket would register a callback on
	// each one, and the allocations for the two came to a tenth of the
	// server's. The session's end cuts a write under way (newConn).
	c.watch.begin(writeTimeout(c.timeout, c.minRate, len(msg)))
	acked := c.acking(batch) // metrics.go
	if c.joiner != nil {
		c.joiner.expectLarge(len(msg))
	}
	err := c.ws.Write(context.Background(), websocket.MessageText, msg)
	if c.joiner != nil {
		if ferr := c.joiner.flush(); err == nil {
			err = ferr
		}
	}
	c.watch.end()
	if err == nil {
		c.wrote(acked, len(msg))
	}
	clear(batch)
	if buf != nil && cap(*buf) <= maxPooledFrame {
		framePool.Put(buf)
	}
	return err
}

// framePool holds *[]byte buffers for encoding batch frames. A writer
// lives only while its connection has something queued, so a buffer of
// its own would be allocated again for nearly every frame; shared by
// every connection, a few buffers serve them all. It holds no state
// anybody can observe, so it is the one package-level variable here.
var framePool sync.Pool

// maxPooledFrame bounds the buffers framePool keeps: a frame holds at
// most maxFrameBytes, plus the messages of one more (a single message
// larger than that goes unbatched).
const maxPooledFrame = 2 * maxFrameBytes

// finish ends the connection once its session stops reading: a closing
// one gets up to the write timeout to flush its error and close with its
// code; then whatever is left is cut, and finish waits for the writer.
func (c *conn) finish(cancel context.CancelFunc) {
	if c.isClosed() {
		select {
		case <-c.ended:
		case <-time.After(c.timeout):
		}
	}
	cancel() // a write under way fails
	// Not closed: ops it sent before it went are still applied. But no
	// writer starts, or closes gracefully, from now on, and nothing more
	// is queued.
	c.mu.Lock()
	c.wsClosed = true
	c.unholdLocked()
	clear(c.queue)
	c.queue, c.queued = nil, 0
	c.mu.Unlock()
	c.writers.Wait()
	c.watch.stop()
	c.ws.CloseNow()
}

// writeTimeout is the deadline of one write of n bytes: the client write
// timeout, plus the time n bytes take at minRate bytes per second. A
// reader slower than that is disconnected, so nobody pins a large message
// (an old revision's text, say) for longer.
func writeTimeout(timeout time.Duration, minRate, n int) time.Duration {
	return timeout + time.Duration(int64(n)*int64(time.Second)/int64(minRate))
}

// encodeFrame writes several messages as a JSON array. An element that
// is itself an array of messages (fanout.go) has its messages joined in.
func encodeFrame(dst []byte, batch [][]byte) []byte {
	dst = append(dst, '[')
	for i, m := range batch {
		if i > 0 {
			dst = append(dst, ',')
		}
		if len(m) > 1 && m[0] == '[' {
			m = m[1 : len(m)-1]
		}
		dst = append(dst, m...)
	}
	return append(dst, ']')
}

// wsWriteBufferSize is the size of a WebSocket session's write buffer. It
// lives as long as the session, so it is small: a message larger than it
// is written straight through.
const wsWriteBufferSize = 1 << 10

// Hijack hands websocket.Accept the connection with a write buffer of
// wsWriteBufferSize instead of net/http's 4 KiB one, and read through
// w.meter, if set.
//
// net/http's read buffer stays: reading through a buffer of our own (of
// any size) measured deeper goroutine stacks than it saved in heap.
func (w *jsonErrorWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		nc.Close()
		return nil, nil, err
	}
	// net/http's connection keeps pointing at the buffer it handed us for
	// as long as this handler runs; emptying it lets its memory go.
	*brw.Writer = bufio.Writer{}
	var wr io.Writer = nc
	if w.joiner != nil {
		w.joiner.Conn = nc
		wr = w.joiner
	}
	bw := bufio.NewWriterSize(wr, wsWriteBufferSize)
	if w.meter != nil {
		// coder/websocket reads what net/http has buffered past the
		// request, then the connection it is given: the meter (frames.go)
		// counts the one now and reads the other.
		prefix, _ := brw.Reader.Peek(brw.Reader.Buffered())
		if !w.meter.attach(nc, prefix) {
			brw.Reader.Discard(len(prefix))
		}
		nc = w.meter
	}
	return nc, bufio.NewReadWriter(brw.Reader, bw), nil
}
