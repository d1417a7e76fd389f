package endpoint_test

// An HTTP CONNECT proxy written for the tests: a net/http server that hijacks
// CONNECT requests and copies bytes both ways.

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

type epProxyOpts struct {
	user, pass string // Proxy-Authorization required when user is set
	status     int    // refuse every CONNECT with this status
	// coalesce waits for the target's first bytes (a STARTTLS greeting) and
	// sends them in the same write as the 200 response, so that they reach
	// the client's buffer together with the response.
	coalesce bool
}

type epProxyRequest struct {
	method, uri, host, auth string
}

type epProxy struct {
	opts epProxyOpts
	ln   net.Listener
	srv  *http.Server

	mu        sync.Mutex
	closed    bool
	wg        sync.WaitGroup
	conns     []net.Conn
	requests  []epProxyRequest
	coalesced int
}

func epStartProxy(t testing.TB, opts epProxyOpts) *epProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &epProxy{opts: opts, ln: ln}
	p.srv = &http.Server{Handler: p, ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 5 * time.Second}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_ = p.srv.Serve(ln)
	}()
	t.Cleanup(p.Close)
	return p
}

func (p *epProxy) Addr() string { return p.ln.Addr().String() }

func (p *epProxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	_ = p.srv.Close()
	p.wg.Wait()
}

// enter registers a running handler, unless the proxy is closing.
func (p *epProxy) enter(r *http.Request) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	p.requests = append(p.requests, epProxyRequest{method: r.Method, uri: r.RequestURI, host: r.Host, auth: r.Header.Get("Proxy-Authorization")})
	return true
}

func (p *epProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns = append(p.conns, c)
	return true
}

func (p *epProxy) seen() []epProxyRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]epProxyRequest(nil), p.requests...)
}

func (p *epProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.enter(r) {
		return
	}
	defer p.wg.Done()
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	if p.opts.user != "" {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(p.opts.user+":"+p.opts.pass))
		if r.Header.Get("Proxy-Authorization") != want {
			w.Header().Set("Proxy-Authenticate", `Basic realm="certwatch tests"`)
			http.Error(w, "proxy authentication required", http.StatusProxyAuthRequired)
			return
		}
	}
	if p.opts.status != 0 {
		http.Error(w, "not by this proxy", p.opts.status)
		return
	}
	up, err := net.DialTimeout("tcp", r.Host, 5*time.Second)
	if err != nil {
		http.Error(w, "cannot reach "+r.Host, http.StatusBadGateway)
		return
	}
	if !p.track(up) {
		return
	}
	down, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	if !p.track(down) {
		return
	}
	defer down.Close()
	defer up.Close()
	resp := []byte("HTTP/1.1 200 Connection established\r\n\r\n")
	if p.opts.coalesce {
		first := make([]byte, 4096)
		_ = up.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := up.Read(first)
		if err != nil {
			return
		}
		_ = up.SetReadDeadline(time.Time{})
		resp = append(resp, first[:n]...)
		p.mu.Lock()
		p.coalesced++
		p.mu.Unlock()
	}
	if _, err := down.Write(resp); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(up, buf) // buf holds anything the client sent early
		_ = up.(*net.TCPConn).CloseWrite()
	}()
	_, _ = io.Copy(down, up)
	down.Close()
	<-done
}

// TestProbeProxy probes through HTTP CONNECT proxies: plain TLS, with basic
// authentication, refusals, broken proxies, and STARTTLS with a server that
// speaks first, whose greeting arrives in the same read as the proxy's
// response.
func TestProbeProxy(t *testing.T) {
	t.Parallel()
	chain := testpki.NewChain(t, testpki.Options{})
	tlsSrv := epTLS(t, epServerConfig(chain.Leaf, chain.Intermediate))
	smtpSrv := epFake(t, epServerConfig(chain.Leaf, chain.Intermediate), epScript(true,
		epSay(epLines("220-mail.test ESMTP behind a proxy", "220 hello")), epExpect("EHLO "),
		epSay(epLines("250-mail.test", "250 STARTTLS")), epExpect("STARTTLS"), epSay("220 go ahead\r\n")))
	mysqlSrv := epFake(t, epServerConfig(chain.Leaf, chain.Intermediate), epMySQL(epMySQLGreeting(epMySQLServerCaps|epMySQLSSL), true))
	imapSrv := epFake(t, epServerConfig(chain.Leaf, chain.Intermediate), epScript(true,
		epSay("* OK ready\r\n"), epExpect("a1 STARTTLS"), epSay("a1 OK begin\r\n")))
	const user, pass = "certwatch", "s3cret-pa55"
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))

	cases := []struct {
		name      string
		opts      *epProxyOpts               // nil: no proxy of ours (see proxyURL)
		proxyURL  func(t *testing.T) string  // overrides the URL of our proxy
		userinfo  string                     // "user:pass@" in the proxy URL
		target    func(t *testing.T) string  // default: the TLS server on 127.0.0.1
		module    string                     // extra module lines
		class     source.Class               // "" for success
		message   string                     // in the error
		check     func(*testing.T, *epProxy) // on success or failure
		wantChain bool
	}{
		{name: "plain TLS", opts: &epProxyOpts{}, wantChain: true, check: func(t *testing.T, p *epProxy) {
			reqs := p.seen()
			if len(reqs) != 1 || reqs[0].method != "CONNECT" || reqs[0].uri != tlsSrv.Addr() || reqs[0].host != tlsSrv.Addr() || reqs[0].auth != "" {
				t.Errorf("proxy saw %+v, want one CONNECT %s without credentials", reqs, tlsSrv.Addr())
			}
		}},
		{name: "host name target is resolved by the proxy", opts: &epProxyOpts{}, wantChain: true,
			target: func(*testing.T) string { return net.JoinHostPort("localhost", tlsSrv.Port()) },
			check: func(t *testing.T, p *epProxy) {
				if reqs := p.seen(); len(reqs) != 1 || reqs[0].uri != net.JoinHostPort("localhost", tlsSrv.Port()) {
					t.Errorf("proxy saw %+v, want CONNECT localhost:%s", reqs, tlsSrv.Port())
				}
			}},
		{name: "basic auth accepted", opts: &epProxyOpts{user: user, pass: pass}, userinfo: user + ":" + pass + "@", wantChain: true,
			check: func(t *testing.T, p *epProxy) {
				if reqs := p.seen(); len(reqs) != 1 || reqs[0].auth != basic {
					t.Errorf("proxy saw %+v, want Proxy-Authorization %q", reqs, basic)
				}
			}},
		{name: "basic auth with a wrong password", opts: &epProxyOpts{user: user, pass: pass}, userinfo: user + ":wrong-" + pass + "@",
			class: source.ClassProxy, message: "407"},
		{name: "basic auth required, none given", opts: &epProxyOpts{user: user, pass: pass}, class: source.ClassProxy, message: "407 Proxy Authentication Required"},
		{name: "403", opts: &epProxyOpts{status: http.StatusForbidden}, class: source.ClassProxy, message: "403 Forbidden"},
		{name: "target unreachable from the proxy", opts: &epProxyOpts{}, target: func(t *testing.T) string { return epClosedPort(t) },
			class: source.ClassProxy, message: "502"},
		{name: "proxy port closed", proxyURL: func(t *testing.T) string { return "http://" + epClosedPort(t) },
			class: source.ClassProxy, message: "connecting to proxy"},
		{name: "proxy answers garbage", proxyURL: func(t *testing.T) string {
			return "http://" + epServe(t, func(c net.Conn) {
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = http.ReadRequest(bufio.NewReader(c))
				_, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n\r\n")
			}).Addr()
		}, class: source.ClassProxy, message: "reading CONNECT response"},
		{name: "https proxy with a certificate the system does not trust", proxyURL: func(t *testing.T) string {
			return "https://" + epTLS(t, epServerConfig(chain.Leaf, chain.Intermediate)).Addr()
		}, class: source.ClassProxy, message: "TLS to proxy"},

		{name: "STARTTLS smtp, greeting sent with the CONNECT response", opts: &epProxyOpts{coalesce: true}, wantChain: true,
			target: func(*testing.T) string { return smtpSrv.Addr() }, module: "starttls: smtp",
			check: func(t *testing.T, p *epProxy) {
				p.mu.Lock()
				defer p.mu.Unlock()
				if p.coalesced != 1 {
					t.Errorf("the greeting went out with the response %d times, want 1", p.coalesced)
				}
			}},
		{name: "STARTTLS mysql, greeting sent with the CONNECT response", opts: &epProxyOpts{coalesce: true}, wantChain: true,
			target: func(*testing.T) string { return mysqlSrv.Addr() }, module: "starttls: mysql"},
		{name: "STARTTLS imap through a proxy", opts: &epProxyOpts{}, wantChain: true,
			target: func(*testing.T) string { return imapSrv.Addr() }, module: "starttls: imap"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var proxy *epProxy
			var proxyURL string
			if tc.opts != nil {
				proxy = epStartProxy(t, *tc.opts)
				proxyURL = "http://" + tc.userinfo + proxy.Addr()
			} else {
				proxyURL = tc.proxyURL(t)
			}
			target := tlsSrv.Addr()
			if tc.target != nil {
				target = tc.target(t)
			}
			module := "timeout: 5s"
			if tc.module != "" {
				module = tc.module
				if !strings.Contains(module, "timeout:") {
					module = "timeout: 5s\n" + module
				}
			}
			module += fmt.Sprintf("\nproxy_url: %q\ntls:\n  server_name: localhost", proxyURL)
			p := epProber(t, epYAML(module))
			f, _ := epProbe(p, target, 10*time.Second)
			if tc.wantChain {
				epWantChain(t, f, chain.Leaf, chain.Intermediate)
			} else {
				epWantClass(t, f, tc.class)
				if !strings.Contains(f.Err.Error(), tc.message) {
					t.Errorf("error %q does not contain %q", f.Err, tc.message)
				}
				if strings.Contains(f.Err.Error(), pass) {
					t.Errorf("error reveals the proxy password: %v", f.Err)
				}
			}
			if tc.check != nil {
				tc.check(t, proxy)
			}
		})
	}
}

// TestProbeProxyHung: a proxy that accepts and never answers CONNECT ends
// the probe at the module timeout, as a timeout.
func TestProbeProxyHung(t *testing.T) {
	// Not parallel at the top (see endpoint_test.go): it times the probe.
	hung := epSilent(t)
	p := epProber(t, epYAML(fmt.Sprintf("timeout: 500ms\nproxy_url: http://%s", hung.Addr())))
	f, took := epProbe(p, "127.0.0.1:443", 10*time.Second)
	epWantClass(t, f, source.ClassTimeout)
	if !strings.Contains(f.Err.Error(), "reading CONNECT response") {
		t.Errorf("error %q, want it stuck reading the CONNECT response", f.Err)
	}
	if took < 400*time.Millisecond || took > 2*time.Second {
		t.Errorf("took %s with a 500ms timeout", took)
	}
}

// TestProbeProxyCancel: cancelling the caller's context ends a probe stuck
// in the CONNECT exchange at once, not at the module timeout.
func TestProbeProxyCancel(t *testing.T) {
	// Not parallel at the top (see endpoint_test.go): it times the probe.
	hung := epSilent(t)
	p := epProber(t, epYAML(fmt.Sprintf("timeout: 30s\nproxy_url: http://%s", hung.Addr())))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan source.Finding, 1)
	go func() { done <- p.Probe(ctx, "127.0.0.1:443", "m") }()
	hung.waitAccepted(t)
	time.Sleep(50 * time.Millisecond) // let the CONNECT request go out
	cancelled := time.Now()
	cancel()
	select {
	case f := <-done:
		epWantClass(t, f, source.ClassTimeout)
		if took := time.Since(cancelled); took > time.Second {
			t.Errorf("returned %s after cancellation", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a probe stuck in CONNECT did not return after cancellation")
	}
}
