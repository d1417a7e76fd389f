package endpoint_test

// These tests probe real TLS servers (crypto/tls listeners on 127.0.0.1
// started by the tests) with certificates generated at test time by testpki.
// Helpers carry an "ep" prefix so they cannot collide with the internal
// test files of the package.
//
// Tests that assert how long a probe takes are not parallel at the top
// level: Go runs them before any parallel test of the binary starts, so the
// STARTTLS daemon tests (parallel, CPU-heavy) cannot slow them down. Their
// own cases still run in parallel with each other.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/internal/hostile"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/endpoint"
)

var epLog = slog.New(slog.DiscardHandler)

// epServer is a loopback server (hostile.Server) running a handler per
// connection until the test ends.
type epServer struct{ *hostile.Server }

func epServe(t testing.TB, handle func(net.Conn)) *epServer {
	t.Helper()
	return &epServer{hostile.Serve(t, func(c net.Conn, _ <-chan struct{}) { handle(c) })}
}

func (s *epServer) Port() string {
	_, port, _ := net.SplitHostPort(s.Addr())
	return port
}

// waitAccepted waits until the server has accepted a connection.
func (s *epServer) waitAccepted(t testing.TB) {
	t.Helper()
	select {
	case <-s.Accepted():
	case <-time.After(5 * time.Second):
		t.Fatal("the server accepted no connection")
	}
}

// epSilent accepts and never speaks.
func epSilent(t testing.TB) *epServer {
	return &epServer{hostile.Serve(t, hostile.Silent)}
}

// epServeTLS runs the server side of a TLS handshake on c and reports the
// connection state on states, then holds the connection until the client
// closes it.
func epServeTLS(c net.Conn, cfg *tls.Config, states chan<- tls.ConnectionState) {
	tc := tls.Server(c, cfg)
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		return
	}
	if states != nil {
		select {
		case states <- tc.ConnectionState():
		default:
		}
	}
	_, _ = io.Copy(io.Discard, tc)
}

type epTLSServer struct {
	*epServer
	states chan tls.ConnectionState
}

func epTLS(t testing.TB, cfg *tls.Config) *epTLSServer {
	t.Helper()
	states := make(chan tls.ConnectionState, 64)
	return &epTLSServer{epServer: epServe(t, func(c net.Conn) { epServeTLS(c, cfg, states) }), states: states}
}

// state returns the server's view of the next completed handshake.
func (s *epTLSServer) state(t testing.TB) tls.ConnectionState {
	t.Helper()
	select {
	case st := <-s.states:
		return st
	case <-time.After(5 * time.Second):
		t.Fatal("the server completed no handshake")
	}
	return tls.ConnectionState{}
}

// epServerConfig presents leaf and chain.
func epServerConfig(leaf *testpki.Cert, chain ...*testpki.Cert) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(leaf, chain...)}}
}

// epYAML is a configuration with one module "m" whose settings are module
// (YAML lines relative to the module), plus any further top-level YAML.
func epYAML(module string, more ...string) string {
	var b strings.Builder
	b.WriteString("modules:\n  m:\n")
	for _, l := range strings.Split(strings.TrimSpace(module), "\n") {
		b.WriteString("    " + l + "\n")
	}
	for _, m := range more {
		b.WriteString(m + "\n")
	}
	return b.String()
}

func epProber(t testing.TB, yaml string) *endpoint.Prober {
	t.Helper()
	return epProberIn(t, t.TempDir(), yaml)
}

func epProberIn(t testing.TB, dir, yaml string) *endpoint.Prober {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), dir)
	if err != nil {
		t.Fatalf("configuration: %v\n%s", err, yaml)
	}
	return endpoint.New(cfg, epLog)
}

// epProbe probes target with module "m" under a context of the given life.
func epProbe(p *endpoint.Prober, target string, life time.Duration) (source.Finding, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), life)
	defer cancel()
	start := time.Now()
	f := p.Probe(ctx, target, "m")
	return f, time.Since(start)
}

// epWantChain asserts a successful probe that returned exactly chain.
func epWantChain(t testing.TB, f source.Finding, chain ...*testpki.Cert) {
	t.Helper()
	if f.Err != nil {
		t.Fatalf("probe failed: %v (class %s)", f.Err, source.ClassOf(f.Err))
	}
	if f.Source != source.KindEndpoint {
		t.Errorf("Source = %q, want %q", f.Source, source.KindEndpoint)
	}
	if len(f.Certs) != len(chain) {
		t.Fatalf("got %d certificates (%s), want %d", len(f.Certs), epNames(f.Certs), len(chain))
	}
	for i, c := range chain {
		if !bytes.Equal(f.Certs[i].Raw, c.Cert.Raw) {
			t.Fatalf("certificate %d is %q, want %q", i, f.Certs[i].Subject.CommonName, c.Cert.Subject.CommonName)
		}
	}
	if f.TLS == nil {
		t.Fatal("no TLS state")
	}
	if f.TLS.HandshakeDuration <= 0 {
		t.Errorf("HandshakeDuration = %s, want > 0", f.TLS.HandshakeDuration)
	}
	if f.TLS.Version == "" || f.TLS.CipherSuite == "" || strings.HasPrefix(f.TLS.CipherSuite, "0x") {
		t.Errorf("TLS state incomplete: %+v", *f.TLS)
	}
}

// epWantClass asserts a failed probe of the given class.
func epWantClass(t testing.TB, f source.Finding, class source.Class) {
	t.Helper()
	if f.Err == nil {
		t.Fatalf("probe succeeded with %d certificates, want class %s", len(f.Certs), class)
	}
	if got := source.ClassOf(f.Err); got != class {
		t.Fatalf("class %q (%v), want %q", got, f.Err, class)
	}
	if f.Certs != nil || f.TLS != nil {
		t.Errorf("failed probe carries certificates or TLS state: %d certs, %+v", len(f.Certs), f.TLS)
	}
	if strings.Contains(f.Err.Error(), "PRIVATE KEY") {
		t.Errorf("error carries key material: %v", f.Err)
	}
}

func epNames(certs []*x509.Certificate) string {
	var names []string
	for _, c := range certs {
		names = append(names, c.Subject.CommonName)
	}
	return strings.Join(names, ", ")
}

// epClosedPort returns a loopback address that refuses connections until
// the test ends: a TCP socket bound to it that never listens, so no other
// test (these run in parallel) can be given the port meanwhile, as could
// happen to a port merely listened on and closed.
func epClosedPort(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}

// TestProbeTLS probes plain TLS servers of several versions and asserts the
// chain in presented order, the negotiated version and cipher as the server
// saw them, and the verification parameters handed to the inspector.
func TestProbeTLS(t *testing.T) {
	t.Parallel()
	ecChain := testpki.NewChain(t, testpki.Options{})
	rsaChain := testpki.NewChain(t, testpki.Options{KeyType: "rsa2048"})

	cases := []struct {
		name    string
		server  *tls.Config
		module  string
		host    string // "127.0.0.1" or "localhost"
		chain   []*testpki.Cert
		version string
		cipher  string // "" means: whatever the server says
	}{
		{name: "TLS 1.3 full chain", server: epServerConfig(ecChain.Leaf, ecChain.Intermediate),
			module: "timeout: 5s", host: "localhost", chain: []*testpki.Cert{ecChain.Leaf, ecChain.Intermediate}, version: "TLS 1.3"},
		{name: "TLS 1.3 leaf, intermediate and root", server: epServerConfig(ecChain.Leaf, ecChain.Intermediate, ecChain.Root),
			module: "timeout: 5s", host: "127.0.0.1", chain: []*testpki.Cert{ecChain.Leaf, ecChain.Intermediate, ecChain.Root}, version: "TLS 1.3"},
		{name: "TLS 1.2 with one cipher suite",
			server: &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(ecChain.Leaf, ecChain.Intermediate)},
				MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}},
			module: "timeout: 5s\ntls:\n  min_version: TLS12", host: "127.0.0.1", chain: []*testpki.Cert{ecChain.Leaf, ecChain.Intermediate},
			version: "TLS 1.2", cipher: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
		{name: "TLS 1.0-only server, default module (min_version TLS10)",
			server: &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(ecChain.Leaf, ecChain.Intermediate)},
				MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10},
			module: "timeout: 5s", host: "127.0.0.1", chain: []*testpki.Cert{ecChain.Leaf, ecChain.Intermediate}, version: "TLS 1.0"},
		{name: "TLS 1.2 server that only speaks RSA key exchange (an insecure suite Go leaves out by default)",
			server: &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(rsaChain.Leaf, rsaChain.Intermediate)},
				MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA}},
			module: "timeout: 5s", host: "127.0.0.1", chain: []*testpki.Cert{rsaChain.Leaf, rsaChain.Intermediate},
			version: "TLS 1.2", cipher: "TLS_RSA_WITH_AES_128_CBC_SHA"},
		{name: "preferred_ip_protocol ip4 resolves localhost", server: epServerConfig(ecChain.Leaf, ecChain.Intermediate),
			module: "timeout: 5s\npreferred_ip_protocol: ip4\nip_protocol_fallback: false", host: "localhost",
			chain: []*testpki.Cert{ecChain.Leaf, ecChain.Intermediate}, version: "TLS 1.3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := epTLS(t, tc.server)
			p := epProber(t, epYAML(tc.module))
			target := net.JoinHostPort(tc.host, srv.Port())
			f, _ := epProbe(p, target, 10*time.Second)
			epWantChain(t, f, tc.chain...)
			st := srv.state(t)
			if f.TLS.Version != tc.version || f.TLS.Version != tls.VersionName(st.Version) {
				t.Errorf("Version = %q, want %q (server: %q)", f.TLS.Version, tc.version, tls.VersionName(st.Version))
			}
			if f.TLS.CipherSuite != tls.CipherSuiteName(st.CipherSuite) || (tc.cipher != "" && f.TLS.CipherSuite != tc.cipher) {
				t.Errorf("CipherSuite = %q, want %q (server: %q)", f.TLS.CipherSuite, tc.cipher, tls.CipherSuiteName(st.CipherSuite))
			}
			// The verification parameters: the target's host is the name to
			// verify, serverAuth is required, the system roots are used.
			if f.Target != target || f.TLS.ServerName != tc.host || f.Verify.DNSName != tc.host {
				t.Errorf("Target %q, ServerName %q, DNSName %q; want %q and %q", f.Target, f.TLS.ServerName, f.Verify.DNSName, target, tc.host)
			}
			if !f.Verify.ServerAuth || f.Verify.Roots != nil || f.Verify.RootsID != "system" {
				t.Errorf("Verify = %+v, want serverAuth against the system roots", f.Verify)
			}
			if tc.host == "localhost" && st.ServerName != "localhost" {
				t.Errorf("server saw SNI %q, want localhost", st.ServerName)
			}
		})
	}
}

// TestProbeMinVersion: a module's min_version refuses older servers, and the
// refusal is a handshake failure.
func TestProbeMinVersion(t *testing.T) {
	t.Parallel()
	chain := testpki.NewChain(t, testpki.Options{})
	cases := []struct {
		name       string
		serverMax  uint16
		minVersion string
	}{
		{"TLS 1.0-only server, min_version TLS12", tls.VersionTLS10, "TLS12"},
		{"TLS 1.1-only server, min_version TLS12", tls.VersionTLS11, "TLS12"},
		{"TLS 1.2 server, min_version TLS13", tls.VersionTLS12, "TLS13"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := epTLS(t, &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(chain.Leaf, chain.Intermediate)},
				MinVersion: tls.VersionTLS10, MaxVersion: tc.serverMax})
			p := epProber(t, epYAML("timeout: 5s\ntls:\n  min_version: "+tc.minVersion))
			f, _ := epProbe(p, srv.Addr(), 10*time.Second)
			epWantClass(t, f, source.ClassHandshake)
			if !strings.Contains(f.Err.Error(), "TLS handshake") {
				t.Errorf("error %q does not name the phase", f.Err)
			}
		})
	}
}

// TestProbeCAFile: with a CA file, the finding carries its anchors (its
// self-signed certificates) and the intermediates it also holds; those
// intermediates are not trust anchors, so a server that omits one is judged
// an incomplete chain, not ok.
func TestProbeCAFile(t *testing.T) {
	t.Parallel()
	chain := testpki.NewChain(t, testpki.Options{})
	leafOnly := epTLS(t, epServerConfig(chain.Leaf))
	full := epTLS(t, epServerConfig(chain.Leaf, chain.Intermediate))

	cases := []struct {
		name    string
		caFile  []byte
		server  *epTLSServer
		extra   int
		verdict inspect.Reason
	}{
		{"root only, full chain", testpki.PEM(chain.Root), full, 0, inspect.ReasonOK},
		{"root only, leaf alone", testpki.PEM(chain.Root), leafOnly, 0, inspect.ReasonUnknownAuthority},
		{"root and intermediate, full chain", testpki.PEM(chain.Root, chain.Intermediate), full, 1, inspect.ReasonOK},
		{"root and intermediate, leaf alone", testpki.PEM(chain.Intermediate, chain.Root), leafOnly, 1, inspect.ReasonIncompleteChain},
		// Only self-signed certificates are anchors, as for openssl without
		// -partial_chain: a CA file of an intermediate alone trusts nothing.
		{"pinned intermediate without its root, leaf alone", testpki.PEM(chain.Intermediate), leafOnly, 1, inspect.ReasonUnknownAuthority},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			testpki.WriteFile(t, dir, "ca.pem", tc.caFile)
			p := epProberIn(t, dir, epYAML("timeout: 5s\ntls:\n  ca_file: ca.pem\n  server_name: localhost"))
			f, _ := epProbe(p, tc.server.Addr(), 10*time.Second)
			if tc.server == full {
				epWantChain(t, f, chain.Leaf, chain.Intermediate)
			} else {
				epWantChain(t, f, chain.Leaf)
			}
			ca, err := source.ParseCA(tc.caFile)
			if err != nil {
				t.Fatal(err)
			}
			if f.Verify.RootsID != ca.ID || f.Verify.Roots == nil {
				t.Errorf("RootsID %q, Roots %v: want the CA file's hash and its pool", f.Verify.RootsID, f.Verify.Roots)
			}
			if len(f.Verify.Extra) != tc.extra || (tc.extra == 1 && !f.Verify.Extra[0].Equal(chain.Intermediate.Cert)) {
				t.Errorf("Extra holds %d certificates (%s), want %d", len(f.Verify.Extra), epNames(f.Verify.Extra), tc.extra)
			}
			v := inspect.NewInspector(nil).Judge(f.Certs, f.KeyPublics, f.Verify)
			if v.Reason != tc.verdict {
				t.Errorf("verdict %q (%s), want %q", v.Reason, v.Detail, tc.verdict)
			}
		})
	}
}

// TestProbeMTLS: a server that requires and verifies a client certificate.
func TestProbeMTLS(t *testing.T) {
	t.Parallel()
	server := testpki.NewChain(t, testpki.Options{})
	clientRoot := testpki.New(t, nil, testpki.Options{CommonName: "client root", IsCA: true})
	client := testpki.New(t, clientRoot, testpki.Options{CommonName: "certwatch-client", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	rotated := testpki.New(t, clientRoot, testpki.Options{CommonName: "certwatch-client-rotated", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	stranger := testpki.New(t, nil, testpki.Options{CommonName: "stranger", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})

	mtls := func(maxVersion uint16) *epTLSServer {
		return epTLS(t, &tls.Config{
			Certificates: []tls.Certificate{testpki.TLSCertificate(server.Leaf, server.Intermediate)},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    testpki.Pool(clientRoot),
			MaxVersion:   maxVersion,
		})
	}
	withCert := func(t *testing.T, c *testpki.Cert) (*endpoint.Prober, string) {
		dir := t.TempDir()
		testpki.WriteFile(t, dir, "client.pem", testpki.PEM(c))
		testpki.WriteFile(t, dir, "client.key", testpki.KeyPEM(t, c.Key))
		return epProberIn(t, dir, epYAML("timeout: 5s\ntls:\n  cert_file: client.pem\n  key_file: client.key")), dir
	}

	for _, v := range []struct {
		name string
		max  uint16
	}{{"TLS 1.2", tls.VersionTLS12}, {"TLS 1.3", tls.VersionTLS13}} {
		t.Run("client certificate accepted, "+v.name, func(t *testing.T) {
			t.Parallel()
			srv := mtls(v.max)
			p, _ := withCert(t, client)
			f, _ := epProbe(p, srv.Addr(), 10*time.Second)
			epWantChain(t, f, server.Leaf, server.Intermediate)
			st := srv.state(t)
			if len(st.PeerCertificates) != 1 || !st.PeerCertificates[0].Equal(client.Cert) {
				t.Fatalf("server saw client certificates %s, want certwatch-client", epNames(st.PeerCertificates))
			}
		})
	}

	t.Run("no client certificate, TLS 1.2: handshake", func(t *testing.T) {
		t.Parallel()
		srv := mtls(tls.VersionTLS12)
		f, _ := epProbe(epProber(t, epYAML("timeout: 5s")), srv.Addr(), 10*time.Second)
		epWantClass(t, f, source.ClassHandshake)
	})
	t.Run("untrusted client certificate, TLS 1.2: handshake", func(t *testing.T) {
		t.Parallel()
		srv := mtls(tls.VersionTLS12)
		p, _ := withCert(t, stranger)
		f, _ := epProbe(p, srv.Addr(), 10*time.Second)
		epWantClass(t, f, source.ClassHandshake)
	})
	// In TLS 1.3 the client's handshake is complete before the server judges
	// the client certificate, so the server's chain is still recorded; the
	// server's refusal arrives after certwatch has hung up.
	t.Run("no client certificate, TLS 1.3: the chain is still read", func(t *testing.T) {
		t.Parallel()
		srv := mtls(tls.VersionTLS13)
		f, _ := epProbe(epProber(t, epYAML("timeout: 5s")), srv.Addr(), 10*time.Second)
		epWantChain(t, f, server.Leaf, server.Intermediate)
	})

	t.Run("rotated client certificate is picked up without a reload", func(t *testing.T) {
		t.Parallel()
		srv := mtls(tls.VersionTLS13)
		p, dir := withCert(t, client)
		f, _ := epProbe(p, srv.Addr(), 10*time.Second)
		epWantChain(t, f, server.Leaf, server.Intermediate)
		if st := srv.state(t); !st.PeerCertificates[0].Equal(client.Cert) {
			t.Fatalf("first probe presented %s", epNames(st.PeerCertificates))
		}
		certPath := testpki.WriteFile(t, dir, "client.pem", testpki.PEM(rotated))
		keyPath := testpki.WriteFile(t, dir, "client.key", testpki.KeyPEM(t, rotated.Key))
		later := time.Now().Add(time.Minute) // a modification time the loader cannot have seen
		for _, path := range []string{certPath, keyPath} {
			if err := os.Chtimes(path, later, later); err != nil {
				t.Fatal(err)
			}
		}
		f, _ = epProbe(p, srv.Addr(), 10*time.Second)
		epWantChain(t, f, server.Leaf, server.Intermediate)
		if st := srv.state(t); !st.PeerCertificates[0].Equal(rotated.Cert) {
			t.Fatalf("after rotation the client presented %s, want certwatch-client-rotated", epNames(st.PeerCertificates))
		}
	})

	t.Run("client key replaced by a foreign one: config, without key material", func(t *testing.T) {
		t.Parallel()
		srv := mtls(tls.VersionTLS13)
		p, dir := withCert(t, client)
		foreign := testpki.KeyPEM(t, testpki.NewKey(t, "ecdsa"))
		keyPath := testpki.WriteFile(t, dir, "client.key", foreign)
		later := time.Now().Add(time.Minute)
		if err := os.Chtimes(keyPath, later, later); err != nil {
			t.Fatal(err)
		}
		f, _ := epProbe(p, srv.Addr(), 10*time.Second)
		epWantClass(t, f, source.ClassConfig)
		body := strings.Join(strings.Split(string(foreign), "\n")[1:3], "")
		if strings.Contains(f.Err.Error(), body[:32]) {
			t.Fatalf("error echoes the key: %v", f.Err)
		}
	})
}

// TestProbeSNI: a server choosing its certificate by SNI; server_name picks
// the chain, and IP targets send no SNI.
func TestProbeSNI(t *testing.T) {
	t.Parallel()
	a := testpki.NewChain(t, testpki.Options{CommonName: "a.test", DNSNames: []string{"a.test"}})
	b := testpki.NewChain(t, testpki.Options{CommonName: "b.test", DNSNames: []string{"b.test"}})
	def := testpki.NewChain(t, testpki.Options{CommonName: "default"})
	certA, certB, certDef := testpki.TLSCertificate(a.Leaf, a.Intermediate), testpki.TLSCertificate(b.Leaf, b.Intermediate), testpki.TLSCertificate(def.Leaf, def.Intermediate)
	var mu sync.Mutex
	var seen []string
	srv := epTLS(t, &tls.Config{GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		mu.Lock()
		seen = append(seen, hello.ServerName)
		mu.Unlock()
		switch hello.ServerName {
		case "a.test":
			return &certA, nil
		case "b.test":
			return &certB, nil
		}
		return &certDef, nil
	}})

	cases := []struct {
		name, serverName, host, wantSNI, wantDNSName string
		chain                                        *testpki.Chain
	}{
		{"server_name a.test", "a.test", "127.0.0.1", "a.test", "a.test", a},
		{"server_name b.test", "b.test", "127.0.0.1", "b.test", "b.test", b},
		{"server_name overrides the target's host", "b.test", "localhost", "b.test", "b.test", b},
		{"no server_name, host name target", "", "localhost", "localhost", "localhost", def},
		{"no server_name, IP target sends no SNI", "", "127.0.0.1", "", "127.0.0.1", def},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			module := "timeout: 5s"
			if tc.serverName != "" {
				module += "\ntls:\n  server_name: " + tc.serverName
			}
			p := epProber(t, epYAML(module))
			f, _ := epProbe(p, net.JoinHostPort(tc.host, srv.Port()), 10*time.Second)
			epWantChain(t, f, tc.chain.Leaf, tc.chain.Intermediate)
			st := srv.state(t)
			if st.ServerName != tc.wantSNI {
				t.Errorf("server saw SNI %q, want %q", st.ServerName, tc.wantSNI)
			}
			if f.Verify.DNSName != tc.wantDNSName || f.TLS.ServerName != tc.wantDNSName {
				t.Errorf("DNSName %q, ServerName %q, want %q", f.Verify.DNSName, f.TLS.ServerName, tc.wantDNSName)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(cases) {
		t.Errorf("server saw %d ClientHellos (%q), want one per probe (%d): no session resumption, no retries", len(seen), seen, len(cases))
	}
}

// epHugeChain is a chain whose TLS Certificate message is about size bytes.
func epHugeChain(t testing.TB, size int) (tls.Certificate, int) {
	t.Helper()
	const each = 16 << 10
	root := testpki.New(t, nil, testpki.Options{CommonName: "huge root", IsCA: true})
	padded := testpki.New(t, root, testpki.Options{CommonName: "padded intermediate", IsCA: true, PadBytes: each})
	leaf := testpki.New(t, root, testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"}})
	n := size / len(padded.Cert.Raw)
	chain := make([]*testpki.Cert, n)
	for i := range chain {
		chain[i] = padded
	}
	return testpki.TLSCertificate(leaf, chain...), n + 1
}

// TestProbeErrorClasses: each way a probe can fail maps to its class, and
// nothing waits longer than the module's timeout.
func TestProbeErrorClasses(t *testing.T) {
	chain := testpki.NewChain(t, testpki.Options{})
	huge300, _ := epHugeChain(t, 300<<10)

	cases := []struct {
		name    string
		start   func(t *testing.T) string // returns the target
		module  string
		class   source.Class
		message string
		maxTime time.Duration
	}{
		{name: "connection refused", start: func(t *testing.T) string { return epClosedPort(t) },
			module: "timeout: 5s", class: source.ClassRefused, message: "connecting to", maxTime: 2 * time.Second},
		// These two ask the system's resolver, which must answer (NXDOMAIN or
		// an error) within the timeout; one that answers nothing makes them
		// timeouts.
		{name: "DNS failure", start: func(*testing.T) string { return "certwatch-no-such-host.invalid:443" },
			module: "timeout: 4s", class: source.ClassDNS, maxTime: 4 * time.Second},
		{name: "DNS failure with a preferred IP family", start: func(*testing.T) string { return "certwatch-no-such-host.invalid:443" },
			module: "timeout: 4s\npreferred_ip_protocol: ip6", class: source.ClassDNS, message: "resolving", maxTime: 4 * time.Second},
		{name: "server accepts and never speaks", start: func(t *testing.T) string { return epSilent(t).Addr() },
			module: "timeout: 500ms", class: source.ClassTimeout, maxTime: 2 * time.Second},
		{name: "plain-text HTTP server", start: func(t *testing.T) string {
			return epServe(t, func(c net.Conn) {
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = c.Read(make([]byte, 1024))
				_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request")
			}).Addr()
		}, module: "timeout: 5s", class: source.ClassHandshake, message: "TLS handshake", maxTime: 2 * time.Second},
		{name: "server hangs up at once", start: func(t *testing.T) string {
			return epServe(t, func(net.Conn) {}).Addr()
		}, module: "timeout: 5s", class: source.ClassHandshake, maxTime: 2 * time.Second},
		{name: "server resets after the ClientHello", start: func(t *testing.T) string {
			return epServe(t, func(c net.Conn) {
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = c.Read(make([]byte, 4096))
				_ = c.(*net.TCPConn).SetLinger(0)
			}).Addr()
		}, module: "timeout: 5s", class: source.ClassHandshake, maxTime: 2 * time.Second},
		{name: "Certificate message over 256 KiB", start: func(t *testing.T) string {
			return epTLS(t, &tls.Config{Certificates: []tls.Certificate{huge300}}).Addr()
		}, module: "timeout: 5s", class: source.ClassTooLarge, message: "exceeds maximum", maxTime: 3 * time.Second},
		{name: "Certificate message over 256 KiB, TLS 1.2", start: func(t *testing.T) string {
			return epTLS(t, &tls.Config{Certificates: []tls.Certificate{huge300}, MaxVersion: tls.VersionTLS12}).Addr()
		}, module: "timeout: 5s", class: source.ClassTooLarge, message: "exceeds maximum", maxTime: 3 * time.Second},
		{name: "server without a certificate", start: func(t *testing.T) string {
			// An anonymous server is impossible with crypto/tls, so the
			// server aborts the handshake: a handshake failure either way.
			return epTLS(t, &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return nil, fmt.Errorf("no certificate for you")
			}}).Addr()
		}, module: "timeout: 5s", class: source.ClassHandshake, maxTime: 2 * time.Second},
		{name: "good server, for contrast", start: func(t *testing.T) string {
			return epTLS(t, epServerConfig(chain.Leaf, chain.Intermediate)).Addr()
		}, module: "timeout: 5s", maxTime: 2 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := tc.start(t)
			p := epProber(t, epYAML(tc.module))
			f, took := epProbe(p, target, 30*time.Second)
			if tc.class == "" {
				epWantChain(t, f, chain.Leaf, chain.Intermediate)
			} else {
				epWantClass(t, f, tc.class)
				if !strings.Contains(f.Err.Error(), tc.message) {
					t.Errorf("error %q does not contain %q", f.Err, tc.message)
				}
			}
			if took > tc.maxTime {
				t.Errorf("probe took %s, want under %s", took, tc.maxTime)
			}
		})
	}
}

// TestProbeLargeChain: a Certificate message over 64 KiB but under crypto/tls's
// 256 KiB limit for that message is read whole.
func TestProbeLargeChain(t *testing.T) {
	t.Parallel()
	huge, n := epHugeChain(t, 100<<10)
	srv := epTLS(t, &tls.Config{Certificates: []tls.Certificate{huge}})
	f, _ := epProbe(epProber(t, epYAML("timeout: 5s")), srv.Addr(), 10*time.Second)
	if f.Err != nil {
		t.Fatalf("probe failed: %v (class %s)", f.Err, source.ClassOf(f.Err))
	}
	size := 0
	for _, c := range f.Certs {
		size += len(c.Raw)
	}
	if len(f.Certs) != n || size < 64<<10 {
		t.Fatalf("got %d certificates, %d bytes; want %d certificates over 64 KiB", len(f.Certs), size, n)
	}
}

// TestProbeTimeoutBounds: the module timeout bounds a probe of a silent
// server, and the caller's deadline bounds it when that comes first.
func TestProbeTimeoutBounds(t *testing.T) {
	silent := epSilent(t)
	cases := []struct {
		name          string
		module        string
		life          time.Duration
		atLeast, most time.Duration
	}{
		{"module timeout 500ms", "timeout: 500ms", 30 * time.Second, 400 * time.Millisecond, 2 * time.Second},
		{"caller deadline 300ms before a 30s module timeout", "timeout: 30s", 300 * time.Millisecond, 200 * time.Millisecond, 2 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, took := epProbe(epProber(t, epYAML(tc.module)), silent.Addr(), tc.life)
			epWantClass(t, f, source.ClassTimeout)
			if took < tc.atLeast || took > tc.most {
				t.Errorf("took %s, want between %s and %s", took, tc.atLeast, tc.most)
			}
		})
	}
}

// TestProbeCancel: cancelling the caller's context (a scrape abandoned)
// ends a hung probe at once, long before the module timeout.
func TestProbeCancel(t *testing.T) {
	silent := epSilent(t)
	p := epProber(t, epYAML("timeout: 30s"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan source.Finding)
	go func() { done <- p.Probe(ctx, silent.Addr(), "m") }()
	silent.waitAccepted(t)
	time.Sleep(50 * time.Millisecond) // let the ClientHello go out
	cancelled := time.Now()
	cancel()
	select {
	case f := <-done:
		epWantClass(t, f, source.ClassTimeout)
		if took := time.Since(cancelled); took > time.Second {
			t.Errorf("returned %s after cancellation", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("probe did not return after cancellation")
	}
}

// TestProbeSlotWait: with every probe slot taken, a probe waits for one only
// until its context's deadline.
func TestProbeSlotWait(t *testing.T) {
	holder, silent := epSilent(t), epSilent(t)
	p := epProber(t, epYAML("timeout: 30s", "global:\n  probe_concurrency: 1"))

	holderCtx, cancelHolder := context.WithCancel(context.Background())
	defer cancelHolder()
	held := make(chan source.Finding, 1)
	go func() { held <- p.Probe(holderCtx, holder.Addr(), "m") }()
	holder.waitAccepted(t) // the only slot is taken

	f, took := epProbe(p, silent.Addr(), 300*time.Millisecond)
	epWantClass(t, f, source.ClassTimeout)
	if !strings.Contains(f.Err.Error(), "waiting for a free probe slot") {
		t.Errorf("error %q, want a slot wait", f.Err)
	}
	if took < 250*time.Millisecond || took > 2*time.Second {
		t.Errorf("waited %s for a slot, want about 300ms", took)
	}
	select {
	case <-silent.Accepted():
		t.Error("the waiting probe connected although no slot was free")
	default:
	}

	cancelHolder()
	select {
	case f := <-held:
		epWantClass(t, f, source.ClassTimeout)
	case <-time.After(5 * time.Second):
		t.Fatal("the slot holder did not return after cancellation")
	}
	// The slot is free again.
	good := testpki.NewChain(t, testpki.Options{})
	srv := epTLS(t, epServerConfig(good.Leaf, good.Intermediate))
	f, _ = epProbe(p, srv.Addr(), 5*time.Second)
	epWantChain(t, f, good.Leaf, good.Intermediate)
}

// TestCollectAllDeadline: CollectAll returns by its context's deadline with
// hung servers among the endpoints, one finding per endpoint in order.
func TestCollectAllDeadline(t *testing.T) {
	good := testpki.NewChain(t, testpki.Options{})
	goodSrv := epTLS(t, epServerConfig(good.Leaf, good.Intermediate))

	t.Run("mixed endpoints", func(t *testing.T) {
		t.Parallel()
		hung1, hung2 := epSilent(t), epSilent(t)
		refused := epClosedPort(t)
		targets := []string{hung1.Addr(), goodSrv.Addr(), refused, hung2.Addr()}
		yaml := epYAML("timeout: 30s", fmt.Sprintf("endpoints:\n  - targets: [%q, %q, %q, %q]\n    module: m\n    labels:\n      team: edge",
			targets[0], targets[1], targets[2], targets[3]))
		p := epProber(t, yaml)
		if p.Targets() != 4 {
			t.Fatalf("Targets() = %d, want 4", p.Targets())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		findings := p.CollectAll(ctx)
		took := time.Since(start)
		if took > 3*time.Second {
			t.Fatalf("CollectAll took %s with a 1s deadline", took)
		}
		if len(findings) != len(targets) {
			t.Fatalf("%d findings, want %d", len(findings), len(targets))
		}
		for i, f := range findings {
			if f.Target != targets[i] || f.Labels["team"] != "edge" {
				t.Errorf("finding %d is for %q labels %v, want %q in configuration order", i, f.Target, f.Labels, targets[i])
			}
		}
		epWantClass(t, findings[0], source.ClassTimeout)
		epWantChain(t, findings[1], good.Leaf, good.Intermediate)
		epWantClass(t, findings[2], source.ClassRefused)
		epWantClass(t, findings[3], source.ClassTimeout)
	})

	t.Run("more hung endpoints than probe slots", func(t *testing.T) {
		t.Parallel()
		var targets []string
		var servers []*epServer
		for range 4 {
			s := epSilent(t)
			servers = append(servers, s)
			targets = append(targets, fmt.Sprintf("%q", s.Addr()))
		}
		yaml := epYAML("timeout: 30s", "global:\n  probe_concurrency: 1",
			"endpoints:\n  - targets: ["+strings.Join(targets, ", ")+"]\n    module: m")
		p := epProber(t, yaml)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		findings := p.CollectAll(ctx)
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("CollectAll took %s with a 1s deadline", took)
		}
		for _, f := range findings {
			epWantClass(t, f, source.ClassTimeout)
		}
		// One slot: only one probe ever reached a server. (The others
		// either time out waiting, or take the slot as the deadline frees
		// it and give up before connecting.)
		time.Sleep(100 * time.Millisecond) // let late accepts land
		connected := 0
		for _, s := range servers {
			connected += len(s.Accepted())
		}
		if connected != 1 {
			t.Errorf("%d servers saw a connection, want 1 with probe_concurrency 1", connected)
		}
	})
}

// TestGoroutinesAfterHostileServers runs the hostile cases (hung servers, a
// hung proxy, endless STARTTLS lines, oversized chains, cancelled probes)
// and checks that every goroutine they started ends. It is not parallel:
// runtime.NumGoroutine counts the whole process, and parallel tests are
// paused while it runs.
func TestGoroutinesAfterHostileServers(t *testing.T) {
	baseline := runtime.NumGoroutine()
	func() {
		silent := epSilent(t)
		endless := epServe(t, epEndlessLine)
		huge, _ := epHugeChain(t, 300<<10)
		hugeSrv := epTLS(t, &tls.Config{Certificates: []tls.Certificate{huge}})
		hungProxy := epSilent(t)
		defer func() {
			for _, s := range []*epServer{silent, endless, hugeSrv.epServer, hungProxy} {
				s.Close()
			}
		}()

		p := epProber(t, epYAML("timeout: 400ms",
			"  big:\n    timeout: 3s",
			"  smtp:\n    timeout: 3s\n    starttls: smtp",
			fmt.Sprintf("  proxied:\n    timeout: 400ms\n    proxy_url: http://%s", hungProxy.Addr()),
			// The proxied target is never reached (the proxy hangs); it is
			// spelt apart from the first because a target may be listed once.
			fmt.Sprintf("endpoints:\n  - targets: [%q]\n    module: m\n  - targets: [%q]\n    module: big\n  - targets: [%q]\n    module: smtp\n  - targets: [%q]\n    module: proxied",
				silent.Addr(), hugeSrv.Addr(), endless.Addr(), strings.Replace(silent.Addr(), "127.0.0.1", "localhost", 1))))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		findings := p.CollectAll(ctx)
		for i, want := range []source.Class{source.ClassTimeout, source.ClassTooLarge, source.ClassStartTLS, source.ClassTimeout} {
			if got := source.ClassOf(findings[i].Err); got != want {
				t.Errorf("finding %d (%s): class %q (%v), want %q", i, findings[i].Target, got, findings[i].Err, want)
			}
		}
		// A cancelled probe and a cancelled proxied probe.
		for _, module := range []string{"m", "proxied"} {
			cctx, ccancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, ccancel)
			if f := p.Probe(cctx, silent.Addr(), module); source.ClassOf(f.Err) != source.ClassTimeout {
				t.Errorf("cancelled probe with module %s: %v", module, f.Err)
			}
		}
	}()

	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= baseline {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines remain, baseline %d:\n%s", n, baseline, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
