package files

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/internal/testtools"
	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/decode"
)

// TestFileOverTheCertificateLimit reads a generated 1,500-certificate PEM
// file with global.max_certificates_per_place at its default (1000): the
// file is one too_large target without certificates, and the log line names
// the file and the count. main applies the setting to the decoder the same
// way on every configuration load.
func TestFileOverTheCertificateLimit(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.New(t, nil, testpki.Options{CommonName: "bundle ca", IsCA: true})
	key := testpki.NewKey(t, "")
	certs := make([]*testpki.Cert, 1500)
	for i := range certs {
		certs[i] = testpki.New(t, ca, testpki.Options{CommonName: "bundle leaf", Key: key})
	}
	big := write(t, dir, "big.pem", testpki.PEM(certs...))
	small := write(t, dir, "small.pem", testpki.PEM(certs[:1000]...))

	cfg, err := config.Parse([]byte("files:\n  - paths: [big.pem, small.pem]\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	decode.SetMaxCertificates(cfg.Global.MaxCertificatesPerPlace)
	t.Cleanup(func() { decode.SetMaxCertificates(0) })

	var logs testtools.SyncBuffer
	s := New(cfg, NewCache(), slog.New(slog.NewTextHandler(&logs, nil)))
	findings := collect(t, s)
	if len(findings) != 2 {
		t.Fatalf("%d findings, want 2", len(findings))
	}
	for _, f := range findings {
		switch f.Target {
		case big:
			if source.ClassOf(f.Err) != source.ClassTooLarge || len(f.Certs) != 0 {
				t.Errorf("%s: class %q, %d certificates; want too_large and none", f.Target, source.ClassOf(f.Err), len(f.Certs))
			}
		case small:
			if f.Err != nil || len(f.Certs) != 1000 {
				t.Errorf("%s: %v, %d certificates; want all 1000", f.Target, f.Err, len(f.Certs))
			}
		default:
			t.Errorf("unexpected finding %s", f.Target)
		}
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "class=too_large") {
			line = l
		}
	}
	for _, w := range []string{"target=" + big, "holds 1500 certificates", "limit of 1000"} {
		if !strings.Contains(line, w) {
			t.Errorf("log line %q does not contain %q", line, w)
		}
	}
}

// TestCertificateLimitChangeRereadsFiles: a reload that changes
// global.max_certificates_per_place applies to unchanged files at once,
// not only when they change, though the file cache outlives the reload.
func TestCertificateLimitChangeRereadsFiles(t *testing.T) {
	dir := t.TempDir()
	chain := testpki.NewChain(t, testpki.Options{})
	path := write(t, dir, "chain.pem", testpki.PEM(chain.Leaf, chain.Intermediate, chain.Root))
	t.Cleanup(func() { decode.SetMaxCertificates(0) })
	cache := NewCache()
	for _, tc := range []struct {
		limit int
		class source.Class
	}{{10, ""}, {2, source.ClassTooLarge}, {3, ""}} {
		cfg, err := config.Parse([]byte(fmt.Sprintf("global:\n  max_certificates_per_place: %d\nfiles:\n  - paths: [chain.pem]\n", tc.limit)), dir)
		if err != nil {
			t.Fatal(err)
		}
		decode.SetMaxCertificates(cfg.Global.MaxCertificatesPerPlace) // as main does on every load
		findings := collect(t, New(cfg, cache, slog.New(slog.DiscardHandler)))
		if len(findings) != 1 || findings[0].Target != path || source.ClassOf(findings[0].Err) != tc.class {
			t.Errorf("limit %d: %+v, want class %q", tc.limit, findings, tc.class)
		}
	}
}
