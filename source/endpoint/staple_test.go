package endpoint_test

// The stapled OCSP response travels from the handshake into the finding on
// every path a probe can take: plain TLS 1.2 and 1.3, after STARTTLS,
// through a CONNECT proxy, and from a remembered result.

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/internal/testtools"
	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/endpoint"
)

// epOCSPResponse is an OCSP response for chain's leaf, signed by its
// intermediate (the leaf's issuer acting as its own responder).
func epOCSPResponse(t testing.TB, chain *testpki.Chain, status int) []byte {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	tmpl := ocsp.Response{
		Status:       status,
		SerialNumber: chain.Leaf.Cert.SerialNumber,
		ThisUpdate:   now.Add(-time.Hour),
		NextUpdate:   now.Add(24 * time.Hour),
	}
	if status == ocsp.Revoked {
		tmpl.RevokedAt, tmpl.RevocationReason = now.Add(-2*time.Hour), ocsp.KeyCompromise
	}
	der, err := ocsp.CreateResponse(chain.Intermediate.Cert, chain.Intermediate.Cert, tmpl, chain.Intermediate.Key)
	if err != nil {
		t.Fatalf("creating an OCSP response: %v", err)
	}
	return der
}

// epStapling presents chain's leaf and intermediate, stapling staple (none
// when nil), at most at TLS version maxVersion (0: the newest).
func epStapling(chain *testpki.Chain, staple []byte, maxVersion uint16) *tls.Config {
	cert := testpki.TLSCertificate(chain.Leaf, chain.Intermediate)
	cert.OCSPStaple = staple
	return &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: maxVersion}
}

func TestProbeStaple(t *testing.T) {
	t.Parallel()
	chain := testpki.NewChain(t, testpki.Options{})
	good := epOCSPResponse(t, chain, ocsp.Good)
	// Any bytes: the source keeps what was stapled and judges nothing.
	huge := make([]byte, 70<<10)
	_, _ = rand.Read(huge)

	smtp := func(cfg *tls.Config) string {
		return epFake(t, cfg, epScript(true,
			epSay("220 mail.test ESMTP\r\n"), epExpect("EHLO "),
			epSay(epLines("250-mail.test", "250 STARTTLS")), epExpect("STARTTLS"), epSay("220 go ahead\r\n"))).Addr()
	}
	cases := []struct {
		name   string
		target func(t *testing.T) string
		module string // module lines beside the timeout
		want   []byte // nil: no staple in the finding
		class  source.Class
	}{
		{name: "TLS 1.3 staple", want: good,
			target: func(*testing.T) string { return epTLS(t, epStapling(chain, good, 0)).Addr() }},
		{name: "TLS 1.2 staple (CertificateStatus message)", want: good,
			target: func(*testing.T) string { return epTLS(t, epStapling(chain, good, tls.VersionTLS12)).Addr() }},
		{name: "no staple",
			target: func(*testing.T) string { return epTLS(t, epStapling(chain, nil, 0)).Addr() }},
		{name: "after STARTTLS", module: "starttls: smtp", want: good,
			target: func(*testing.T) string { return smtp(epStapling(chain, good, 0)) }},
		{name: "no staple after STARTTLS", module: "starttls: smtp",
			target: func(*testing.T) string { return smtp(epStapling(chain, nil, 0)) }},
		{name: "through a CONNECT proxy", want: good,
			module: "proxy_url: http://" + epStartProxy(t, epProxyOpts{}).Addr(),
			target: func(*testing.T) string { return epTLS(t, epStapling(chain, good, 0)).Addr() }},
		// TLS 1.3 carries the staple in an extension, whose 16-bit length
		// keeps it under 64 KiB: the largest it can hold is kept whole.
		{name: "60 KiB staple in TLS 1.3 is kept", want: huge[:60<<10],
			target: func(*testing.T) string { return epTLS(t, epStapling(chain, huge[:60<<10], 0)).Addr() }},
		// TLS 1.2 sends the staple in a handshake message of its own, which
		// crypto/tls refuses over 64 KiB: the probe fails as too large.
		{name: "over 64 KiB in TLS 1.2 fails the handshake", class: source.ClassTooLarge,
			target: func(*testing.T) string { return epTLS(t, epStapling(chain, huge, tls.VersionTLS12)).Addr() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logs := &testtools.SyncBuffer{}
			p := epStapleProber(t, "timeout: 5s\n"+tc.module, logs)
			f, _ := epProbe(p, tc.target(t), 10*time.Second)
			if tc.class != "" {
				epWantClass(t, f, tc.class)
				if f.Staple() != nil {
					t.Errorf("a failed probe carries a staple of %d bytes", len(f.Staple()))
				}
				return
			}
			epWantChain(t, f, chain.Leaf, chain.Intermediate)
			switch {
			case tc.want == nil && f.Staple() != nil:
				t.Errorf("OCSPStaple has %d bytes, want nil", len(f.Staple()))
			case !bytes.Equal(f.Staple(), tc.want):
				t.Errorf("OCSPStaple has %d bytes, want the %d stapled", len(f.Staple()), len(tc.want))
			}
			if logs.String() != "" {
				t.Errorf("unexpected log:\n%s", logs)
			}
		})
	}
}

// A result remembered for min_probe_interval keeps its staple, and a
// configured endpoint (CollectAll) carries it as /probe does.
func TestProbeStapleRemembered(t *testing.T) {
	t.Parallel()
	chain := testpki.NewChain(t, testpki.Options{})
	revoked := epOCSPResponse(t, chain, ocsp.Revoked)
	srv := epTLS(t, epStapling(chain, revoked, 0))
	yaml := epYAML("timeout: 5s\nmin_probe_interval: 1h",
		fmt.Sprintf("endpoints:\n  - module: m\n    targets: [%q]", srv.Addr()))
	p := epStapleProber(t, yaml, nil)

	first := p.CollectAll(t.Context())
	srv.state(t) // the one handshake
	second := p.CollectAll(t.Context())
	probed, _ := epProbe(p, srv.Addr(), 5*time.Second)
	for i, f := range []source.Finding{first[0], second[0], probed} {
		epWantChain(t, f, chain.Leaf, chain.Intermediate)
		if !bytes.Equal(f.Staple(), revoked) {
			t.Errorf("finding %d: OCSPStaple has %d bytes, want the %d stapled", i, len(f.Staple()), len(revoked))
		}
	}
	select {
	case <-srv.states:
		t.Error("the remembered result was not reused: the server saw a second handshake")
	default:
	}
}

// epStapleProber builds a prober for yaml (a module's lines, or a whole
// configuration starting with "modules:") logging to logs (nil: nowhere).
func epStapleProber(t *testing.T, yaml string, logs *testtools.SyncBuffer) *endpoint.Prober {
	t.Helper()
	if !strings.HasPrefix(yaml, "modules:") {
		yaml = epYAML(yaml)
	}
	cfg, err := config.Parse([]byte(yaml), t.TempDir())
	if err != nil {
		t.Fatalf("configuration: %v\n%s", err, yaml)
	}
	logger := epLog
	if logs != nil {
		logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	return endpoint.New(cfg, logger)
}
