package endpoint_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"testing"
	"time"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/internal/testpki"
)

// TestSmallRSALeafIsObserved probes servers whose leaf has an RSA key under
// 1024 bits, which crypto/rsa refuses by default: certwatch observes, it
// does not enforce, so the handshake completes (go.mod's godebug
// rsa1024min=0), the chain is reported and the verdict is weak_key.
func TestSmallRSALeafIsObserved(t *testing.T) {
	t.Parallel()
	chain := testpki.NewChain(t, testpki.Options{})
	cases := []struct {
		name       string
		bits       int
		maxVersion uint16
	}{
		// RSA-PSS with SHA-256 (TLS 1.3) needs at least 528 bits.
		{"RSA-768, TLS 1.3", 768, 0},
		{"RSA-512, TLS 1.2", 512, tls.VersionTLS12},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key, err := rsa.GenerateKey(rand.Reader, tc.bits)
			if err != nil {
				t.Fatal(err)
			}
			leaf := testpki.New(t, chain.Intermediate, testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"}, Key: key})
			cfg := epServerConfig(leaf, chain.Intermediate)
			cfg.MaxVersion = tc.maxVersion
			srv := epTLS(t, cfg)
			p := epProberIn(t, t.TempDir(), epYAML("timeout: 5s\ntls:\n  server_name: localhost"))
			f, _ := epProbe(p, srv.Addr(), 10*time.Second)
			epWantChain(t, f, leaf, chain.Intermediate)
			f.Verify.Roots = testpki.Pool(chain.Root)
			f.Verify.RootsID = "test root"
			v := inspect.NewInspector(nil).Judge(f.Certs, nil, f.Verify)
			if v.Reason != inspect.ReasonWeakKey {
				t.Fatalf("verdict %q (%s), want weak_key", v.Reason, v.Detail)
			}
		})
	}
}
