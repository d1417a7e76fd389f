package endpoint

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/certwatch/certwatch/source"
)

// dial opens the TCP connection to target, through the module's proxy when
// it has one, honouring its IP family preference.
func (m *module) dial(ctx context.Context, target string) (net.Conn, error) {
	if m.proxy != nil {
		return m.dialProxy(ctx, target)
	}
	host, port, _ := net.SplitHostPort(target)
	addr := target
	if !isIP(host) && m.cfg.PreferredIPProtocol != "" {
		ip, err := resolve(ctx, host, m.cfg.PreferredIPProtocol, *m.cfg.IPProtocolFallback)
		if err != nil {
			return nil, err
		}
		addr = net.JoinHostPort(ip.String(), port)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, source.WithClass(inferClass(err, source.ClassRefused), fmt.Errorf("connecting to %s: %w", addr, err))
	}
	return conn, nil
}

// resolve picks an address of the preferred family, or of the other family
// when fallback is allowed.
func resolve(ctx context.Context, host, preferred string, fallback bool) (net.IP, error) {
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, source.WithClass(inferClass(err, source.ClassDNS), fmt.Errorf("resolving %s: %w", host, err))
	}
	var other net.IP
	for _, a := range addrs {
		is4 := a.IP.To4() != nil
		if (preferred == "ip4") == is4 {
			return a.IP, nil
		}
		if other == nil {
			other = a.IP
		}
	}
	if fallback && other != nil {
		return other, nil
	}
	return nil, source.Errorf(source.ClassDNS, "resolving %s: no %s address", host, preferred)
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
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", proxyAddr)
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
