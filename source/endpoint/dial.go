package endpoint

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/certwatch/certwatch/source"
)

// dial opens the TCP connection to target, through the module's proxy when
// it has one. Otherwise it resolves the name once (or uses the addresses it
// was admitted with), refuses denied addresses when the route is guarded,
// and dials the addresses themselves, of the preferred IP family first: the
// name is never looked up again between the check and the connection.
func (m *module) dial(ctx context.Context, target string, rt route) (net.Conn, error) {
	if m.proxy != nil {
		return m.dialProxy(ctx, target) // the proxy resolves the name
	}
	host, port, _ := net.SplitHostPort(target)
	addrs := rt.addrs
	if addrs == nil {
		var err error
		if addrs, err = m.lookup(ctx, host); err != nil {
			return nil, err
		}
	}
	if rt.guarded {
		if err := m.access.checkAddrs(target, m.name, rt.port, addrs); err != nil {
			return nil, source.WithClass(source.ClassConfig, err)
		}
	}
	if !isIP(host) && m.cfg.PreferredIPProtocol != "" {
		var err error
		if addrs, err = preferFamily(addrs, host, m.cfg.PreferredIPProtocol, *m.cfg.IPProtocolFallback); err != nil {
			return nil, err
		}
	}
	conn, err := m.dialAddrs(ctx, addrs, port)
	if err != nil {
		return nil, source.WithClass(inferClass(err, source.ClassRefused), fmt.Errorf("connecting to %s: %w", target, err))
	}
	return conn, nil
}

// preferFamily puts the addresses of the preferred family first and keeps
// the others only when fallback is allowed.
func preferFamily(addrs []netip.Addr, host, preferred string, fallback bool) ([]netip.Addr, error) {
	var first, other []netip.Addr
	for _, a := range addrs {
		if a.Is4() == (preferred == "ip4") {
			first = append(first, a)
		} else {
			other = append(other, a)
		}
	}
	if fallback {
		first = append(first, other...)
	}
	if len(first) == 0 {
		return nil, source.Errorf(source.ClassDNS, "resolving %s: no %s address", host, preferred)
	}
	return first, nil
}

// minAttempt is the least time one address is given while others remain,
// as net.Dialer gives it.
const minAttempt = 2 * time.Second

// dialAddrs tries addrs in order until one connects. While others remain,
// an address gets an equal share of the time left (at least minAttempt), so
// one that does not answer cannot take it all. The first error is returned.
func (m *module) dialAddrs(ctx context.Context, addrs []netip.Addr, port string) (net.Conn, error) {
	var first error
	for i, a := range addrs {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok && i < len(addrs)-1 {
			share := time.Until(dl) / time.Duration(len(addrs)-i)
			if share < minAttempt {
				share = minAttempt
			}
			actx, cancel = context.WithTimeout(ctx, share)
		}
		conn, err := m.access.dial(actx, "tcp", net.JoinHostPort(a.String(), port))
		cancel()
		if err == nil {
			return conn, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// dialProxy opens a tunnel with HTTP CONNECT.
func (m *module) dialProxy(ctx context.Context, target string) (net.Conn, error) {
	proxyAddr := m.proxy.Host
	if m.proxy.Port() == "" {
		if m.proxy.Scheme == "https" {
			proxyAddr = net.JoinHostPort(m.proxy.Hostname(), "443")
		} else {
			proxyAddr = net.JoinHostPort(m.proxy.Hostname(), "80")
		}
	}
	conn, err := m.access.dial(ctx, "tcp", proxyAddr)
	if err != nil {
		class := inferClass(err, source.ClassProxy)
		if class != source.ClassTimeout {
			class = source.ClassProxy
		}
		return nil, source.Errorf(class, "connecting to proxy %s: %w", proxyAddr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// As in handshake: cancellation unblocks the CONNECT exchange too.
	raw := conn
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if m.proxy.Scheme == "https" {
		tc := tls.Client(conn, &tls.Config{ServerName: m.proxy.Hostname(), MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			class := source.ClassProxy
			if inferClass(err, "") == source.ClassTimeout {
				class = source.ClassTimeout // as for a plain proxy that does not answer
			}
			return nil, source.Errorf(class, "TLS to proxy %s: %w", proxyAddr, err)
		}
		conn = tc
	}
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: target},
		Host:   target,
		Header: http.Header{},
	}
	if u := m.proxy.User; u != nil {
		pw, _ := u.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)))
	}
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, source.WithClass(inferClass(err, source.ClassProxy), fmt.Errorf("proxy %s: sending CONNECT: %w", proxyAddr, err))
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, source.WithClass(inferClass(err, source.ClassProxy), fmt.Errorf("proxy %s: reading CONNECT response: %w", proxyAddr, err))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		conn.Close()
		return nil, source.Errorf(source.ClassProxy, "proxy %s refused CONNECT %s: %s", proxyAddr, target, resp.Status)
	}
	// Bytes the proxy relayed after its response (a STARTTLS greeting) sit in br.
	return &bufferedConn{Conn: conn, r: br}, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
