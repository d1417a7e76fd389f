package hostile

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
)

func serverConfig(t *testing.T) *tls.Config {
	chain := testpki.NewChain(t, testpki.Options{})
	return &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(chain.Leaf, chain.Intermediate)}}
}

// countingConn counts the bytes the client received.
type countingConn struct {
	net.Conn
	got []byte
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.got = append(c.got, p[:n]...)
	return n, err
}

// handshake runs a TLS client handshake against addr for at most life.
func handshake(t *testing.T, addr string, life time.Duration) (*countingConn, *tls.Conn, error) {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	cc := &countingConn{Conn: raw}
	tc := tls.Client(cc, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	_ = tc.SetDeadline(time.Now().Add(life))
	return cc, tc, tc.Handshake()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestServers: each hostile server misbehaves as it says, against a real
// crypto/tls client.
func TestServers(t *testing.T) {
	t.Parallel()
	cfg := serverConfig(t)
	cases := []struct {
		name  string
		h     Handler
		check func(t *testing.T, cc *countingConn, err error)
	}{
		{"good", TLS(cfg), func(t *testing.T, _ *countingConn, err error) {
			if err != nil {
				t.Errorf("handshake: %v", err)
			}
		}},
		{"silent", Silent, func(t *testing.T, cc *countingConn, err error) {
			if !isTimeout(err) || len(cc.got) != 0 {
				t.Errorf("got %d bytes and %v, want nothing and a timeout", len(cc.got), err)
			}
		}},
		{"trickle", Trickle(cfg, 100*time.Millisecond), func(t *testing.T, cc *countingConn, err error) {
			// 700ms at one byte per 100ms: a few bytes, no handshake.
			if !isTimeout(err) || len(cc.got) < 3 || len(cc.got) > 8 {
				t.Errorf("got %d bytes and %v, want a few bytes and a timeout", len(cc.got), err)
			}
		}},
		{"stall after ServerHello", StallAfterServerHello(cfg), func(t *testing.T, cc *countingConn, err error) {
			if !isTimeout(err) {
				t.Fatalf("handshake: %v, want a timeout", err)
			}
			// Exactly one record, a handshake record holding a ServerHello (type 2).
			if len(cc.got) < 6 || cc.got[0] != 0x16 || cc.got[5] != 2 || len(cc.got) != 5+int(cc.got[3])<<8+int(cc.got[4]) {
				t.Errorf("received %d bytes (% x...), want one ServerHello record", len(cc.got), cc.got[:min(len(cc.got), 8)])
			}
		}},
		{"reset", ResetAfterClientHello, func(t *testing.T, _ *countingConn, err error) {
			if err == nil || !strings.Contains(err.Error(), "reset") {
				t.Errorf("handshake: %v, want a connection reset", err)
			}
		}},
		{"HTTP", HTTP, func(t *testing.T, _ *countingConn, err error) {
			if err == nil || !strings.Contains(err.Error(), "does not look like a TLS handshake") {
				t.Errorf("handshake: %v, want a non-TLS answer", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := Serve(t, tc.h)
			cc, _, err := handshake(t, s.Addr(), 700*time.Millisecond)
			tc.check(t, cc, err)
		})
	}
}

func TestEndlessSMTPBanner(t *testing.T) {
	t.Parallel()
	s := Serve(t, EndlessSMTPBanner(10*time.Millisecond))
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for i := range 50 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if !strings.HasPrefix(line, "220-") {
			t.Fatalf("line %d is %q, want a 220- continuation", i, line)
		}
	}
}

// TestHugeChain: about 250 KiB of distinct intermediates, under crypto/tls's
// 256 KiB limit, so a client reads it whole.
func TestHugeChain(t *testing.T) {
	t.Parallel()
	cert := HugeChain(t, 250<<10)
	size := 0
	for _, c := range cert.Certificate {
		size += len(c)
	}
	if size < 240<<10 || size > 254<<10 || len(cert.Certificate) < 50 {
		t.Fatalf("%d certificates, %d bytes; want over 50 making about 250 KiB", len(cert.Certificate), size)
	}
	s := Serve(t, TLS(&tls.Config{Certificates: []tls.Certificate{cert}}))
	_, tc, err := handshake(t, s.Addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if n := len(tc.ConnectionState().PeerCertificates); n != len(cert.Certificate) {
		t.Errorf("client got %d certificates, want %d", n, len(cert.Certificate))
	}
}

// TestSetupConfig: the configuration is valid for certwatch and names every
// place.
func TestSetupConfig(t *testing.T) {
	t.Parallel()
	s := New(t, Options{BigDirEntries: 100, NoSlowRead: true})
	if _, err := config.Parse([]byte(s.Config), t.TempDir()); err != nil {
		t.Fatalf("configuration: %v\n%s", err, s.Config)
	}
	good := 0
	for _, p := range s.Places {
		if p.Good() {
			good++
		}
		if p.Source == "endpoint" || strings.HasSuffix(p.Target, "missing.pem") {
			if !strings.Contains(s.Config, p.Target) {
				t.Errorf("%s is not in the configuration", p)
			}
		}
	}
	if good < 3 || len(s.Places)-good < 10 {
		t.Errorf("%d good and %d hostile places", good, len(s.Places)-good)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	s := &Setup{Places: []Place{
		{Name: "ok", Source: "file", Target: "/a"},
		{Name: "broken", Source: "file", Target: "/b", Classes: []string{"parse"}},
		{Name: "silently missing", Source: "endpoint", Target: "x:1", Classes: []string{"timeout"}},
		{Name: "wrong class", Source: "endpoint", Target: "y:1", Classes: []string{"timeout"}},
	}}
	mfs, err := Parse([]byte(`# TYPE certwatch_target_success gauge
certwatch_target_success{source="file",target="/a"} 1
certwatch_target_success{source="file",target="/b"} 0
certwatch_target_success{source="endpoint",target="y:1"} 0
# TYPE certwatch_target_error_info gauge
certwatch_target_error_info{source="file",target="/b",class="parse"} 1
certwatch_target_error_info{source="endpoint",target="y:1",class="refused"} 1
# TYPE certwatch_cert_not_after_timestamp_seconds gauge
certwatch_cert_not_after_timestamp_seconds{source="file",target="/a",index="0"} 2e9
# TYPE go_goroutines gauge
go_goroutines 12
# TYPE process_open_fds gauge
process_open_fds 9
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 3.3554432e+07
`))
	if err != nil {
		t.Fatal(err)
	}
	problems := s.Check(mfs)
	if len(problems) != 2 || !strings.Contains(problems[0], "silently missing") || !strings.Contains(problems[1], `class "refused"`) {
		t.Errorf("problems: %q", problems)
	}
	f, err := FiguresOf(mfs)
	if err != nil || f != (Figures{Goroutines: 12, OpenFDs: 9, RSS: 32 << 20}) {
		t.Errorf("figures %+v, %v", f, err)
	}
	if _, err := Parse([]byte("not { prometheus")); err == nil {
		t.Error("junk parsed")
	}
}

func TestFlat(t *testing.T) {
	t.Parallel()
	base := []Figures{{10, 8, 30 << 20}, {12, 9, 31 << 20}, {11, 8, 30 << 20}}
	if g := Flat(base, []Figures{{14, 10, 35 << 20}, {13, 9, 36 << 20}, {40, 9, 33 << 20}}, DefaultSlack); len(g) != 0 {
		t.Errorf("within slack, but: %q", g)
	}
	g := Flat(base, []Figures{{30, 20, 50 << 20}, {31, 21, 51 << 20}, {32, 22, 52 << 20}}, DefaultSlack)
	if len(g) != 3 {
		t.Errorf("every figure grew, but: %q", g)
	}
}

// TestSlowRead: a confined process cannot read the slow file for seconds;
// once the throttle is lifted it can, and stops. It runs where the slow
// read can be made (root, loop devices, cgroup v1 blkio).
func TestSlowRead(t *testing.T) {
	sr, err := newSlowRead(t, t.TempDir())
	if err != nil {
		t.Skipf("the slow read cannot be made here: %v", err)
	}
	// Through the wrapper, cat is confined before it reads.
	cat, err := exec.LookPath("cat")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sr.Wrapper(t, cat), sr.Path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Registered before Confine, so it runs after the throttle is lifted.
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the reader did not end after the throttle was lifted")
		}
	})
	if err := sr.Confine(t, cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("the confined reader finished within 3s: %v", err)
	case <-time.After(3 * time.Second):
	}
}
