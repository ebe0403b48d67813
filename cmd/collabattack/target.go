package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// errNotLoopback is returned for a -url, or a connection, to any address
// outside 127.0.0.0/8: these attacks are for a server of one's own, on
// this machine.
var errNotLoopback = errors.New("only loopback addresses (127.0.0.0/8) may be attacked")

// target is the server under attack. Every connection to it goes through
// dialer, which refuses any remote address that is not loopback, so
// neither a redirect nor a proxy setting can send traffic elsewhere.
type target struct {
	base string // http://127.0.0.1:port, no trailing slash
	host string // 127.0.0.1:port
}

// newTarget checks -url: plain http to an IPv4 loopback address or
// localhost, which is taken to mean 127.0.0.1 (a name is not resolved,
// so what is checked is what is dialled). IPv6's ::1 is refused because
// the attacks speak from several source addresses, which only
// 127.0.0.0/8 has.
func newTarget(raw string) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("-url %q: want http://127.0.0.1:PORT", raw)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("-url %q: want only scheme, host and port", raw)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("-url %q: %w", raw, errNotLoopback)
	}
	hp := net.JoinHostPort(ip.String(), port)
	return &target{base: "http://" + hp, host: hp}, nil
}

// Source addresses. Limits count per client address, so an attack that
// means to look like many clients speaks from many loopback addresses,
// and the honest editor and the probes from addresses of their own.
var (
	honestAddr = net.IPv4(127, 0, 0, 2)
	probeAddr  = net.IPv4(127, 0, 0, 3)
)

// attackerAddr returns the i-th attacking source address: 127.0.1.1,
// 127.0.1.2, ... 127.0.1.254, 127.0.2.1, ...
func attackerAddr(i int) net.IP {
	return net.IPv4(127, 0, byte(1+i/254), byte(1+i%254))
}

// dialer returns a dialer from source address src that connects only to
// loopback addresses. control, if not nil, is called on each socket too
// (to shrink a buffer, say).
func dialer(src net.IP, control func(fd uintptr)) *net.Dialer {
	return &net.Dialer{
		LocalAddr: &net.TCPAddr{IP: src},
		Timeout:   10 * time.Second,
		Control: func(_, address string, c syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
				return fmt.Errorf("dial %s: %w", address, errNotLoopback)
			}
			if control != nil {
				return c.Control(control)
			}
			return nil
		},
	}
}

// client returns an HTTP client speaking from src. It follows no
// redirects and uses no proxy.
func (t *target) client(src net.IP) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         dialer(src, nil).DialContext,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// url returns the URL of path on the target.
func (t *target) url(path string) string { return t.base + path }

// dialWS opens a WebSocket to path with hc (a client from t.client),
// with the server's own origin. The HTTP response is returned for a
// refused handshake.
func (t *target) dialWS(ctx context.Context, hc *http.Client, path string) (*websocket.Conn, *http.Response, error) {
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(t.base, "http")+path, &websocket.DialOptions{
		HTTPClient: hc,
		HTTPHeader: http.Header{"Origin": {t.base}},
	})
}
