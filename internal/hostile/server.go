// Package hostile is the hostile input of certwatch's soak test
// (soak_test.go) and of the bench soak command: loopback TLS servers that
// misbehave the way broken or malicious ones do, files that are corrupt,
// truncated, huge, locked by the wrong password or slow to read, and
// Kubernetes objects that are oversized or malformed. It is written once so
// that the short soak in the test suite and the long one in the bench run
// exactly the same setup.
//
// Every server listens on 127.0.0.1 only and is stopped by a cleanup of the
// testing.TB it was started with.
package hostile

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Handler serves one accepted connection. done is closed when the server
// stops; handlers that wait must wait on it, so that stopping never hangs.
type Handler func(c net.Conn, done <-chan struct{})

// Server accepts connections on a loopback port and runs its handler for
// each one until Close.
type Server struct {
	ln     net.Listener
	handle Handler
	done   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	// accepted gets a value per accepted connection (up to its capacity),
	// for tests that count or wait for connections.
	accepted chan struct{}
}

// Accepted receives a value for each connection the server accepted (the
// first 1024).
func (s *Server) Accepted() <-chan struct{} { return s.accepted }

// Serve starts a server on 127.0.0.1 and stops it when tb ends.
func Serve(tb testing.TB, handle Handler) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("hostile: listening: %v", err)
	}
	s := &Server{ln: ln, handle: handle, done: make(chan struct{}), conns: map[net.Conn]struct{}{}, accepted: make(chan struct{}, 1024)}
	s.wg.Add(1)
	go s.loop()
	tb.Cleanup(s.Close)
	return s
}

func (s *Server) loop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		select {
		case s.accepted <- struct{}{}:
		default:
		}
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.handle(c, s.done)
		}()
	}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops accepting, closes every connection and waits for the handlers.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Silent accepts and never answers: it reads what the client sends and
// throws it away.
func Silent(c net.Conn, _ <-chan struct{}) { _, _ = io.Copy(io.Discard, c) }

// TLS is a well-behaved TLS server (also the base of the huge-chain server).
func TLS(cfg *tls.Config) Handler {
	return func(c net.Conn, _ <-chan struct{}) {
		tc := tls.Server(c, cfg)
		_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
		if tc.Handshake() != nil {
			return
		}
		_, _ = io.Copy(io.Discard, tc)
	}
}

// Trickle is a real TLS server whose every byte goes out alone, one per
// interval: a handshake that is alive but never finishes in time.
func Trickle(cfg *tls.Config, interval time.Duration) Handler {
	return func(c net.Conn, done <-chan struct{}) {
		_ = tls.Server(&trickleConn{Conn: c, interval: interval, done: done}, cfg).Handshake()
	}
}

type trickleConn struct {
	net.Conn
	interval time.Duration
	done     <-chan struct{}
}

func (c *trickleConn) Write(p []byte) (int, error) {
	for i := range p {
		select {
		case <-c.done:
			return i, net.ErrClosed
		case <-time.After(c.interval):
		}
		if _, err := c.Conn.Write(p[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(p), nil
}

// StallAfterServerHello is a real TLS server whose connection lets the first
// TLS record it writes (the ServerHello) through and then blocks every write
// until the server stops: the client sees a handshake begin and stop.
func StallAfterServerHello(cfg *tls.Config) Handler {
	return func(c net.Conn, done <-chan struct{}) {
		_ = tls.Server(&stallConn{Conn: c, done: done}, cfg).Handshake()
	}
}

type stallConn struct {
	net.Conn
	done   <-chan struct{}
	header []byte // the first record's header, as far as written
	left   int    // bytes of the first record still to pass; -1 once it has
}

func (c *stallConn) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 && c.left >= 0 {
		if len(c.header) < 5 { // the record header: type, version, length
			k := min(5-len(c.header), len(p))
			c.header = append(c.header, p[:k]...)
			if len(c.header) == 5 {
				c.left = int(binary.BigEndian.Uint16(c.header[3:5]))
			}
			w, err := c.Conn.Write(p[:k])
			n += w
			if err != nil {
				return n, err
			}
			p = p[k:]
			continue
		}
		k := min(c.left, len(p))
		w, err := c.Conn.Write(p[:k])
		n += w
		if err != nil {
			return n, err
		}
		p, c.left = p[k:], c.left-k
		if c.left == 0 {
			c.left = -1 // the ServerHello is out: stall from here on
		}
	}
	if len(p) == 0 {
		return n, nil
	}
	<-c.done
	return n, net.ErrClosed
}

// ResetAfterClientHello reads the ClientHello and resets the connection
// (SO_LINGER 0, then close: the peer gets an RST in mid-handshake).
func ResetAfterClientHello(c net.Conn, _ <-chan struct{}) {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Read(make([]byte, 4096)); err != nil {
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
}

// EndlessSMTPBanner greets with an SMTP "220-" continuation line every
// interval and never ends the reply, so STARTTLS never begins.
func EndlessSMTPBanner(interval time.Duration) Handler {
	return func(c net.Conn, done <-chan struct{}) {
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(c, "220-soak.invalid ESMTP banner line %d, more follows\r\n", i); err != nil {
				return
			}
			select {
			case <-done:
				return
			case <-time.After(interval):
			}
		}
	}
}

// HTTP speaks plain HTTP/1.1 where TLS is expected: it reads the
// ClientHello as if it were a request and answers 400.
func HTTP(c net.Conn, _ <-chan struct{}) {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Read(make([]byte, 4096)); err != nil && !errors.Is(err, io.EOF) {
		return
	}
	_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request")
}
