package hostile

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certwatch/certwatch/internal/testpki"
)

// Place is one configured place and what every scrape must say about it.
type Place struct {
	Name   string // what it is, for messages
	Source string // the source label: endpoint, file, secret
	Target string
	Key    string // the key label (Kubernetes places), "" for none
	// Classes are the error classes that are a sensible report for the
	// place; empty means it must be read successfully.
	Classes []string
}

// Good tells a place that must succeed.
func (p Place) Good() bool { return len(p.Classes) == 0 }

func (p Place) String() string {
	s := p.Source + " " + p.Target
	if p.Key != "" {
		s += " key " + p.Key
	}
	return fmt.Sprintf("%s (%s)", p.Name, s)
}

// Options shape a Setup.
type Options struct {
	// ModuleTimeout is the endpoint modules' timeout; default 10s, longer
	// than a scrape's, so that the scrape deadline is what bounds answers.
	ModuleTimeout time.Duration
	// BigDirEntries is the size of the enormous directory listed on every
	// scrape; default 100,000; negative leaves it out.
	BigDirEntries int
	// NoSlowRead leaves out the throttled file even where it can be made.
	NoSlowRead bool
}

// Setup is the whole hostile mix: servers, files, the configuration naming
// them and what a scrape must report for each.
type Setup struct {
	Places []Place
	// Config is certwatch's configuration (YAML, absolute paths).
	Config string
	// Notes say what could not be set up here and why.
	Notes []string
	// SlowRead is the file whose reads stall (nil when it could not be made);
	// Confine the exporter's process to make its reads of it slow.
	SlowRead *SlowRead

	opts      Options
	dir       string
	pki       *testpki.Chain
	endpoints []string // config lines of the endpoints section
	files     []string // config lines of the files section
	kube      []string // config lines of the kubernetes section
}

// New starts the hostile servers and writes the hostile files into a
// temporary folder of tb; everything goes when tb ends.
func New(tb testing.TB, o Options) *Setup {
	tb.Helper()
	if o.ModuleTimeout == 0 {
		o.ModuleTimeout = 10 * time.Second
	}
	if o.BigDirEntries == 0 {
		o.BigDirEntries = 100_000
	}
	s := &Setup{opts: o, dir: tb.TempDir(), pki: testpki.NewChain(tb, testpki.Options{})}
	s.startServers(tb)
	s.writeFiles(tb, o)
	s.Config = s.config(o)
	return s
}

func (s *Setup) add(p Place) { s.Places = append(s.Places, p) }

func (s *Setup) path(name string) string { return filepath.Join(s.dir, name) }

func (s *Setup) startServers(tb testing.TB) {
	tb.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(s.pki.Leaf, s.pki.Intermediate)}}
	huge := &tls.Config{Certificates: []tls.Certificate{HugeChain(tb, 250<<10)}}

	var tlsTargets []string
	endpoint := func(name string, h Handler, classes ...string) {
		addr := Serve(tb, h).Addr()
		tlsTargets = append(tlsTargets, addr)
		s.add(Place{Name: name, Source: "endpoint", Target: addr, Classes: classes})
	}
	endpoint("good TLS server", TLS(cfg))
	endpoint("accepts and never answers", Silent, "timeout")
	endpoint("answers one byte a second", Trickle(cfg, time.Second), "timeout")
	endpoint("stalls right after ServerHello", StallAfterServerHello(cfg), "timeout")
	// About 250 KiB is under crypto/tls's 256 KiB limit on the Certificate
	// message: the chain is read whole and must be reported.
	endpoint("~250 KiB certificate chain", TLS(huge))
	endpoint("resets in mid-handshake", ResetAfterClientHello, "handshake", "refused")
	endpoint("speaks HTTP instead of TLS", HTTP, "handshake")
	smtp := Serve(tb, EndlessSMTPBanner(100*time.Millisecond)).Addr()
	// 128 lines at 10 a second outlast the scrape: timeout; a faster server
	// would hit the reply's line limit: starttls.
	s.add(Place{Name: "endless STARTTLS banner", Source: "endpoint", Target: smtp, Classes: []string{"timeout", "starttls"}})

	s.endpoints = append(s.endpoints,
		"  - targets: ["+quoteAll(tlsTargets)+"]\n    module: soak",
		"  - targets: ["+quoteAll([]string{smtp})+"]\n    module: soak_smtp")
}

// HugeChain is a certificate for localhost followed by a chain of distinct
// generated intermediates, each signing the one before, of about size bytes.
func HugeChain(tb testing.TB, size int) tls.Certificate {
	tb.Helper()
	const pad = 4 << 10
	root := testpki.New(tb, nil, testpki.Options{CommonName: "soak huge-chain root", IsCA: true})
	chain := []*testpki.Cert{root}
	total := len(root.Cert.Raw)
	for i := 0; total < size-2*pad; i++ {
		c := testpki.New(tb, chain[len(chain)-1], testpki.Options{CommonName: fmt.Sprintf("soak intermediate %d", i), IsCA: true, PadBytes: pad})
		chain = append(chain, c)
		total += len(c.Cert.Raw)
	}
	leaf := testpki.New(tb, chain[len(chain)-1], testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"}})
	// Leaf first, then each issuer in turn; the root is sent too.
	rev := make([]*testpki.Cert, 0, len(chain))
	for i := len(chain) - 1; i >= 0; i-- {
		rev = append(rev, chain[i])
	}
	return testpki.TLSCertificate(leaf, rev...)
}

func (s *Setup) writeFiles(tb testing.TB, o Options) {
	tb.Helper()
	good := append(testpki.PEM(s.pki.Leaf, s.pki.Intermediate), testpki.KeyPEM(tb, s.pki.Leaf.Key)...)
	write(tb, s.path("ca.pem"), testpki.PEM(s.pki.Root))

	var paths []string
	file := func(name string, data []byte, classes ...string) {
		p := s.path(name)
		if data != nil {
			write(tb, p, data)
		}
		paths = append(paths, p)
		s.add(Place{Name: name, Source: "file", Target: p, Classes: classes})
	}
	file("good.pem", good)
	file("corrupt.pem", []byte("-----BEGIN CERTIFICATE-----\nthis is not base64 !!!\n-----END CERTIFICATE-----\n"), "parse")
	file("truncated.pem", good[:len(good)/3], "parse")
	file("missing.pem", nil, "not_found")

	// Over the 1 MiB max_file_size of the configuration: never read (sparse,
	// so it costs no disk).
	huge := s.path("huge.pem")
	f, err := os.Create(huge)
	if err == nil {
		err = f.Truncate(64 << 20)
		f.Close()
	}
	if err != nil {
		tb.Fatalf("hostile: %v", err)
	}
	file("huge.pem", nil, "too_large")

	// A FIFO named explicitly. certwatch checks the type before opening and
	// refuses anything but regular files, so a FIFO never blocks it: it is a
	// parse failure, not the slow read (that is SlowRead).
	if fifoSupported {
		if err := mkfifo(s.path("fifo.pem")); err != nil {
			tb.Fatalf("hostile: mkfifo: %v", err)
		}
		file("fifo.pem", nil, "parse")
	} else {
		tb.Logf("hostile: no FIFO place: this platform has no named pipes")
	}

	s.files = append(s.files, "  - paths: ["+quoteAll(paths)+"]\n    ca_file: "+quote(s.path("ca.pem")))

	// A keystore with another password than the group's password_file.
	write(tb, s.path("keystore.p12"), testpki.PKCS12(tb, s.pki.Leaf, []*testpki.Cert{s.pki.Intermediate}, "the right one"))
	write(tb, s.path("wrong-password.txt"), []byte("not the right one\n"))
	s.add(Place{Name: "keystore.p12 with the wrong password", Source: "file", Target: s.path("keystore.p12"), Classes: []string{"wrong_password"}})
	s.files = append(s.files, "  - paths: ["+quote(s.path("keystore.p12"))+"]\n    password_file: "+quote(s.path("wrong-password.txt")))

	if o.BigDirEntries > 0 {
		dir, needle := s.bigDir(tb, o.BigDirEntries, good)
		s.add(Place{Name: fmt.Sprintf("one file in a directory of %d entries", o.BigDirEntries), Source: "file", Target: needle})
		s.files = append(s.files, "  - paths: ["+quote(filepath.Join(dir, "needle-*.pem"))+"]\n    ca_file: "+quote(s.path("ca.pem")))
	}

	if !o.NoSlowRead {
		sr, err := newSlowRead(tb, s.dir)
		if err != nil {
			s.Notes = append(s.Notes, "no slow read: "+err.Error())
		} else {
			s.SlowRead = sr
			s.add(Place{Name: "file whose reads stall (throttled block device)", Source: "file", Target: sr.Path, Classes: []string{"timeout"}})
			s.files = append(s.files, "  - paths: ["+quote(sr.Path)+"]")
		}
	}
}

// bigDir makes a directory of n entries on a tmpfs when there is one, of
// which one (the needle) matches the glob the configuration names: every
// scrape lists all n to find it.
func (s *Setup) bigDir(tb testing.TB, n int, needle []byte) (string, string) {
	tb.Helper()
	parent := s.dir
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		parent = "/dev/shm"
	}
	dir, err := os.MkdirTemp(parent, "certwatch-soak-bigdir-")
	if err != nil {
		tb.Fatalf("hostile: %v", err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	for i := range n - 1 {
		fd, err := syscall.Open(filepath.Join(dir, fmt.Sprintf("entry-%06d.txt", i)), syscall.O_CREAT|syscall.O_WRONLY|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			tb.Fatalf("hostile: filling %s: %v", dir, err)
		}
		_ = syscall.Close(fd)
	}
	p := filepath.Join(dir, "needle-0.pem")
	write(tb, p, needle)
	return dir, p
}

func (s *Setup) config(o Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  max_file_size: 1MiB\n")
	fmt.Fprintf(&b, "modules:\n  soak:\n    timeout: %s\n    tls:\n      ca_file: %s\n      server_name: localhost\n", o.ModuleTimeout, quote(s.path("ca.pem")))
	fmt.Fprintf(&b, "  soak_smtp:\n    timeout: %s\n    starttls: smtp\n    tls:\n      ca_file: %s\n      server_name: localhost\n", o.ModuleTimeout, quote(s.path("ca.pem")))
	b.WriteString("endpoints:\n" + strings.Join(s.endpoints, "\n") + "\n")
	b.WriteString("files:\n" + strings.Join(s.files, "\n") + "\n")
	if len(s.kube) > 0 {
		b.WriteString("kubernetes:\n" + strings.Join(s.kube, "\n") + "\n")
	}
	return b.String()
}

func write(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatalf("hostile: %v", err)
	}
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quote(s)
	}
	return strings.Join(q, ", ")
}
