package collab

import (
	"net"
	"sync"
)

// frameJoiner sits between a session's WebSocket write buffer
// (wsWriteBufferSize, kept small for idle memory) and its connection. A
// frame larger than the buffer reaches the connection as two writes: the
// buffer, full, with the frame's header and the start of its payload, and
// then the rest. That was two system calls for every frame over 1 KiB,
// which batch frames to many editors often are (docs/cpu.md). While the
// connection's writer sends such a frame, the joiner keeps the first
// write and sends it with the next one in a single writev.
//
// It only ever delays bytes until the next write or flush, in order: if
// the frame turns out to fit the buffer after all, flush, which the
// writer calls once the frame's write has returned, sends what is held.
// It is safe for concurrent use: coder/websocket writes control frames
// (pongs, the close) from other goroutines.
type frameJoiner struct {
	net.Conn

	mu      sync.Mutex
	expect  bool    // the frame being written is larger than the buffer
	pending *[]byte // the held first write, from joinPool
}

// joinPool holds the buffers of held writes: one is in use only for the
// length of one frame's write.
var joinPool = sync.Pool{New: func() any { b := make([]byte, 0, wsWriteBufferSize); return &b }}

// expectLarge tells the joiner whether the next frame the writer sends
// has n bytes of payload, more than the buffer holds with its header.
func (j *frameJoiner) expectLarge(n int) {
	j.mu.Lock()
	j.expect = n+maxServerFrameHeader > wsWriteBufferSize
	j.mu.Unlock()
}

// maxServerFrameHeader is the longest header of an unmasked frame.
const maxServerFrameHeader = 10

func (j *frameJoiner) Write(p []byte) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.pending != nil {
		first := *j.pending
		bufs := net.Buffers{first, p}
		n, err := bufs.WriteTo(j.Conn)
		j.release()
		return min(max(int(n)-len(first), 0), len(p)), err
	}
	if j.expect && len(p) == wsWriteBufferSize {
		j.expect = false
		b := joinPool.Get().(*[]byte)
		*b = append((*b)[:0], p...)
		j.pending = b
		return len(p), nil
	}
	return j.Conn.Write(p)
}

// flush sends what is held, if anything; the writer calls it after each
// frame.
func (j *frameJoiner) flush() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.expect = false
	if j.pending == nil {
		return nil
	}
	_, err := j.Conn.Write(*j.pending)
	j.release()
	return err
}

func (j *frameJoiner) release() {
	joinPool.Put(j.pending)
	j.pending = nil
}
