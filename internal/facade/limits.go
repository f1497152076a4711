/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package facade

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/netutil"
)

// perKey counts what each key holds open and refuses more than max (0: no bound). Keys that
// hold nothing are forgotten, so memory follows the clients connected now.
type perKey[K comparable] struct {
	max  int
	mu   sync.Mutex
	open map[K]int
}

func newPerKey[K comparable](limit int) *perKey[K] {
	return &perKey[K]{max: limit, open: map[K]int{}}
}

// acquire takes one slot of k and returns its release, or false when k holds max already.
func (p *perKey[K]) acquire(k K) (release func(), ok bool) {
	if p.max <= 0 {
		return func() {}, true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open[k] >= p.max {
		return nil, false
	}
	p.open[k]++
	var once sync.Once
	return func() { once.Do(func() { p.release(k) }) }, true
}

func (p *perKey[K]) release(k K) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open[k]--; p.open[k] <= 0 {
		delete(p.open, k)
	}
}

// Listen opens the API's listener on addr with the connection limits of the configuration:
// MaxConnections in all, waiting in the accept backlog beyond it, and MaxConnectionsPerClient per
// peer address, refused beyond it. The order matters: a refused connection never takes one of
// the MaxConnections slots, so one host cannot make everyone else wait.
func (f *Facade) Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	if f.cfg.MaxConnectionsPerClient > 0 {
		ln = &perClientListener{
			Listener: ln, conns: newPerKey[netip.Addr](f.cfg.MaxConnectionsPerClient),
			exempt: f.cfg.TrustedProxies, refusals: make(chan struct{}, maxRefusals), refused: f.metrics.refusedConns,
		}
	}
	if f.cfg.MaxConnections > 0 {
		ln = netutil.LimitListener(ln, f.cfg.MaxConnections)
	}
	return ln, nil
}

// The answer to a connection over its client's limit. It is written before the request is
// read, which HTTP/1.1 clients accept; the Retry-After is short because a slot frees as soon as
// one of the client's connections closes.
var tooManyConnections = func() []byte {
	body := `{"error":{"code":"` + CodeTooManyConnections + `","message":"` + msgTooManyConnections + `"}}` + "\n"
	return []byte("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n" +
		"Retry-After: 1\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

const (
	// maxRefusals bounds the refusals being written at once; beyond it a connection is closed
	// without an answer, so a flood of connections costs no more than the accept itself.
	maxRefusals = 64
	// refusalTimeout bounds how long one refusal may take, whatever the client does.
	refusalTimeout = time.Second
	// refusalDrain is how much of the request a refusal reads before closing: closing a socket
	// with unread data makes the kernel reset the connection, and the client could lose the 429.
	refusalDrain = 16 << 10
)

// perClientListener counts connections by peer address when they are accepted. Behind a
// proxy the peer is the proxy, so peers in exempt (the trusted proxies) are not counted: the
// client behind them is known only per request, where the rate limit and the stream cap apply.
type perClientListener struct {
	net.Listener
	conns    *perKey[netip.Addr]
	exempt   []netip.Prefix
	refusals chan struct{}
	refused  interface{ Inc() }
}

func (l *perClientListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer, err := netip.ParseAddrPort(conn.RemoteAddr().String())
		addr := peer.Addr().Unmap()
		if err != nil || trusted(addr, l.exempt) {
			return conn, nil
		}
		if release, ok := l.conns.acquire(addr); ok {
			return &countedConn{Conn: conn, release: release}, nil
		}
		l.refused.Inc()
		l.refuse(conn)
	}
}

// refuse answers 429 and closes the connection, in the background: Accept must go on at once.
func (l *perClientListener) refuse(conn net.Conn) {
	select {
	case l.refusals <- struct{}{}:
	default:
		_ = conn.Close()
		return
	}
	go func() {
		defer func() { <-l.refusals }()
		defer func() { _ = conn.Close() }()
		_ = conn.SetDeadline(time.Now().Add(refusalTimeout))
		if _, err := conn.Write(tooManyConnections); err != nil {
			return
		}
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(conn, refusalDrain))
	}()
}

// countedConn gives its client's slot back when it closes, however often Close is called.
type countedConn struct {
	net.Conn
	release func()
}

func (c *countedConn) Close() error {
	c.release()
	return c.Conn.Close()
}
