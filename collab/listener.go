package collab

import (
	"net"
	"sync"
)

// LimitListener wraps ln so that it holds at most MaxTCPConns connections,
// and MaxTCPConnsPerAddr from one peer address (an IPv6 /64) unless the
// peer is a trusted proxy. Protect's caps count requests in progress; this
// one counts what they cannot see: connections idle between requests and
// connections that have not finished sending their first request, each of
// which costs a goroutine and buffers until ReadHeaderTimeout or
// IdleTimeout ends it. A connection past a cap is closed as soon as it is
// accepted.
func (s *Server) LimitListener(ln net.Listener) net.Listener {
	return &limitListener{
		Listener: ln,
		srv:      s,
		conns:    newConnLimiter("connections", s.opts.MaxTCPConns, s.opts.MaxTCPConnsPerAddr),
	}
}

type limitListener struct {
	net.Listener
	srv   *Server
	conns *connLimiter
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer := parseIP(c.RemoteAddr().String())
		key := addrKey(peer)
		if peer.IsValid() && l.srv.trusted(peer) {
			key = "" // proxies share one count that only the total bounds
		}
		release, status := l.conns.acquireTCP(key)
		if status != 0 {
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, release: release}, nil
	}
}

// limitedConn gives its place back when it is closed, however often.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
