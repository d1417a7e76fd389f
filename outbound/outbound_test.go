package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/source"
)

// server is an HTTP server on addr (127.0.0.1:0 or 127.0.0.2:0) counting
// the requests that reached it.
type server struct {
	*httptest.Server
	requests atomic.Int64
}

func startServer(t *testing.T, addr string, tlsOn bool, h http.HandlerFunc) *server {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		h(w, r)
	}))
	s.Listener.Close()
	s.Listener = ln
	if tlsOn {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func hello(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("hello")) }

func client(t *testing.T, f config.Fetch, timeout time.Duration) (*Policy, *Client) {
	t.Helper()
	p, err := NewPolicy(f)
	if err != nil {
		t.Fatal(err)
	}
	c := p.Client(nil, timeout)
	t.Cleanup(c.CloseIdleConnections)
	return p, c
}

func wantClass(t *testing.T, err error, class source.Class, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", class)
	}
	if got := source.ClassOf(err); got != class {
		t.Fatalf("class %s, want %s: %v", got, class, err)
	}
	for _, s := range contains {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %q", err, s)
		}
	}
}

func TestAddressRules(t *testing.T) {
	one := startServer(t, "127.0.0.1:0", false, hello)
	two := startServer(t, "127.0.0.2:0", false, hello)
	_, onePort, _ := net.SplitHostPort(one.Listener.Addr().String())
	for _, tc := range []struct {
		name      string
		fetch     config.Fetch
		url       string
		reached   *server
		wantClass source.Class // "" for success
	}{
		{"loopback denied by default", config.Fetch{}, one.URL, one, source.ClassDenied},
		{"admitted by an address rule", config.Fetch{Allow: []string{"127.0.0.0/8:*"}}, one.URL, one, ""},
		{"address rule on another port", config.Fetch{Allow: []string{"127.0.0.1/32:1"}}, one.URL, one, source.ClassDenied},
		{"a broad rule does not open loopback", config.Fetch{Allow: []string{"0.0.0.0/0:*"}}, one.URL, one, source.ClassDenied},
		{"denied by a configured range", config.Fetch{Allow: []string{"127.0.0.0/8:*"}, Deny: []string{"127.0.0.2/32"}}, two.URL, two, source.ClassDenied},
		{"admitted beside a configured range", config.Fetch{Allow: []string{"127.0.0.0/8:*"}, Deny: []string{"127.0.0.2/32"}}, one.URL, one, ""},
		{"IPv4-mapped IPv6 checked as IPv4", config.Fetch{}, "http://[::ffff:127.0.0.1]:" + onePort + "/", one, source.ClassDenied},
		{"localhost resolves to loopback", config.Fetch{}, "http://localhost:" + onePort + "/", one, source.ClassDenied},
		{"localhost admitted by a name rule", config.Fetch{Allow: []string{"localhost:" + onePort}}, "http://localhost:" + onePort + "/", one, ""},
		{"numeric host read as an address", config.Fetch{Allow: []string{"**.example:*"}}, "http://2130706433:" + onePort + "/", one, source.ClassDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.reached.requests.Load()
			_, c := client(t, tc.fetch, 5*time.Second)
			resp, err := c.Get(context.Background(), tc.url, nil, 1<<10)
			if tc.wantClass == "" {
				if err != nil {
					t.Fatal(err)
				}
				if resp.Status != 200 || string(resp.Body) != "hello" {
					t.Fatalf("got %d %q", resp.Status, resp.Body)
				}
				return
			}
			wantClass(t, err, tc.wantClass)
			if n := tc.reached.requests.Load() - before; n != 0 {
				t.Errorf("%d requests reached the server", n)
			}
		})
	}
}

// TestDeniedLiteralsNeverDialed: link-local and metadata addresses are
// refused before any network I/O, even with a rule admitting everything
// that is not denied.
func TestDeniedLiteralsNeverDialed(t *testing.T) {
	_, c := client(t, config.Fetch{Allow: []string{"0.0.0.0/0:*", "[::/0]:*"}}, 5*time.Second)
	for _, u := range []string{
		"http://169.254.169.254/latest/meta-data/",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://[fe80::1]:8080/",
		"http://[::ffff:169.254.169.254]/",
		"http://0.0.0.0:80/",
		"http://[::1]/",
	} {
		_, err := c.Get(context.Background(), u, nil, 1<<10)
		wantClass(t, err, source.ClassDenied)
		// Checked before the request is built: no dial, no timeout.
		if !strings.Contains(err.Error(), "address") {
			t.Errorf("%s: error %q does not say why", u, err)
		}
	}
}

func TestRedirects(t *testing.T) {
	other := startServer(t, "127.0.0.2:0", false, hello)
	var hops atomic.Int64
	s := startServer(t, "127.0.0.1:0", false, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/final", http.StatusFound)
		case "/loop":
			hops.Add(1)
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/elsewhere":
			http.Redirect(w, r, other.URL+"/", http.StatusFound)
		case "/final":
			hello(w, r)
		}
	})
	_, c := client(t, config.Fetch{Allow: []string{"127.0.0.0/8:*"}}, 5*time.Second)
	resp, err := c.Get(context.Background(), s.URL+"/same", nil, 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Body) != "hello" || resp.URL != s.URL+"/final" {
		t.Errorf("got %q from %s", resp.Body, resp.URL)
	}
	_, err = c.Get(context.Background(), s.URL+"/elsewhere", nil, 1<<10)
	wantClass(t, err, source.ClassDenied, s.Listener.Addr().String(), other.Listener.Addr().String())
	if n := other.requests.Load(); n != 0 {
		t.Errorf("the other host got %d requests", n)
	}
	_, err = c.Get(context.Background(), s.URL+"/loop", nil, 1<<10)
	wantClass(t, err, source.ClassHTTP, "redirects")
	if n := hops.Load(); n != MaxRedirects+1 {
		t.Errorf("%d requests along the redirect loop, want %d", n, MaxRedirects+1)
	}
}

func TestBodyAndStatus(t *testing.T) {
	big := strings.Repeat("x", 5000)
	s := startServer(t, "127.0.0.1:0", false, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sized":
			_, _ = w.Write([]byte(big))
		case "/chunked":
			for range 50 {
				_, _ = w.Write([]byte(big[:100]))
				w.(http.Flusher).Flush()
			}
		case "/missing":
			http.Error(w, "secret-body-text", http.StatusNotFound)
		case "/etag":
			if r.Header.Get("If-None-Match") == `"v1"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("ETag", `"v1"`)
			hello(w, r)
		case "/post":
			if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/ocsp-request" {
				http.Error(w, "bad", http.StatusBadRequest)
				return
			}
			buf := make([]byte, 10)
			n, _ := r.Body.Read(buf)
			_, _ = w.Write(buf[:n])
		}
	})
	_, c := client(t, config.Fetch{Allow: []string{"127.0.0.1/32:*"}}, 5*time.Second)
	ctx := context.Background()
	for _, path := range []string{"/sized", "/chunked"} {
		_, err := c.Get(ctx, s.URL+path, nil, 1000)
		wantClass(t, err, source.ClassTooLarge, "1000")
		resp, err := c.Get(ctx, s.URL+path, nil, 5000)
		if err != nil || len(resp.Body) != 5000 {
			t.Errorf("%s at the cap: %v", path, err)
		}
	}
	_, err := c.Get(ctx, s.URL+"/missing", nil, 1000)
	wantClass(t, err, source.ClassHTTP, "404")
	if strings.Contains(err.Error(), "secret-body-text") {
		t.Errorf("error carries the body: %v", err)
	}
	resp, err := c.Get(ctx, s.URL+"/etag", nil, 1000)
	if err != nil || resp.Header.Get("ETag") != `"v1"` {
		t.Fatalf("etag: %v", err)
	}
	resp, err = c.Get(ctx, s.URL+"/etag", http.Header{"If-None-Match": {`"v1"`}}, 1000)
	if err != nil || resp.Status != http.StatusNotModified {
		t.Fatalf("revalidation: %v %v", resp, err)
	}
	resp, err = c.Post(ctx, s.URL+"/post", "application/ocsp-request", []byte("request"), 1000)
	if err != nil || string(resp.Body) != "request" {
		t.Fatalf("post: %v %v", resp, err)
	}
	_, err = c.Get(ctx, "http://user:pw@"+s.Listener.Addr().String()+"/", nil, 1000)
	wantClass(t, err, source.ClassDenied, "credentials")
	if strings.Contains(err.Error(), "pw") {
		t.Errorf("error carries the password: %v", err)
	}
	_, err = c.Get(ctx, "ftp://"+s.Listener.Addr().String()+"/", nil, 1000)
	wantClass(t, err, source.ClassDenied, "scheme")
}

func TestHTTPS(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", true, hello)
	roots := x509.NewCertPool()
	roots.AddCert(s.Certificate())
	tlsConfig := &tls.Config{RootCAs: roots}
	allow := []string{"127.0.0.1/32:*"}

	p, _ := NewPolicy(config.Fetch{Allow: allow})
	c := p.Client(tlsConfig, 5*time.Second)
	defer c.CloseIdleConnections()
	_, err := c.Get(context.Background(), s.URL, nil, 1000)
	wantClass(t, err, source.ClassDenied, "https")
	if n := s.requests.Load(); n != 0 {
		t.Errorf("%d requests reached the server", n)
	}

	p, _ = NewPolicy(config.Fetch{Allow: allow, HTTPS: true})
	c = p.Client(tlsConfig, 5*time.Second)
	defer c.CloseIdleConnections()
	if _, err := c.Get(context.Background(), s.URL, nil, 1000); err != nil {
		t.Fatal(err)
	}

	// A configured URL is trusted as written: https and a loopback address
	// without any rule.
	p, _ = NewPolicy(config.Fetch{})
	c = p.Client(tlsConfig, 5*time.Second)
	defer c.CloseIdleConnections()
	_, err = c.Get(context.Background(), s.URL, nil, 1000)
	wantClass(t, err, source.ClassDenied)
	p.Trust(s.Listener.Addr().String())
	if _, err := c.Get(context.Background(), s.URL, nil, 1000); err != nil {
		t.Fatal(err)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	s := startServer(t, "127.0.0.1:0", false, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/headers":
			<-release
		case "/body":
			w.Header().Set("Content-Length", "100")
			_, _ = w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			<-release
		}
	})
	defer close(release)
	_, c := client(t, config.Fetch{Allow: []string{"127.0.0.1/32:*"}}, 200*time.Millisecond)
	for _, path := range []string{"/headers", "/body"} {
		_, err := c.Get(context.Background(), s.URL+path, nil, 1000)
		wantClass(t, err, source.ClassTimeout)
	}
}

func TestRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, c := client(t, config.Fetch{Allow: []string{"127.0.0.1/32:*"}}, 5*time.Second)
	_, err = c.Get(context.Background(), "http://"+addr+"/", nil, 1000)
	wantClass(t, err, source.ClassRefused)
}
