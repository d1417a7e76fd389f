package decode_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/decode"
)

// opensslCert makes a self-signed certificate with openssl, which writes
// what crypto/x509 refuses to create or parse.
func opensslCert(t *testing.T, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("openssl is needed (installed by .ci/install-test-deps.sh): %v", err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "cert.pem")
	cmd := exec.Command("openssl", append([]string{"req", "-x509", "-nodes", "-keyout", filepath.Join(dir, "key.pem"),
		"-days", "30", "-out", out}, args...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestDecodeUnparsable reads certificates crypto/x509 refuses: their dates
// are still there, marked with why.
func TestDecodeUnparsable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		args   []string
		cn     string
		hasKey bool
		reason inspect.Reason // as a file
	}{
		{"P-192 key", []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime192v1", "-subj", "/CN=p192.example"}, "p192.example", false, inspect.ReasonWeakKey},
		{"negative serial", []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-set_serial", "-5", "-subj", "/CN=negative.example"}, "negative.example", true, inspect.ReasonInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			entries, err := decode.Decode(opensslCert(t, tc.args...), nil)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(entries) != 1 || len(entries[0].Certs) != 1 {
				t.Fatalf("entries %+v, want one certificate", entries)
			}
			c := entries[0].Certs[0]
			if source.ParseFailure(c) == nil {
				t.Error("not marked as unparsed")
			}
			if c.Subject.CommonName != tc.cn {
				t.Errorf("CN %q, want %q", c.Subject.CommonName, tc.cn)
			}
			if d := c.NotAfter.Sub(c.NotBefore); d < 29*24*time.Hour || d > 31*24*time.Hour {
				t.Errorf("validity %s to %s, want 30 days", c.NotBefore, c.NotAfter)
			}
			if (c.PublicKey != nil) != tc.hasKey {
				t.Errorf("public key %T, want one: %t", c.PublicKey, tc.hasKey)
			}
			v := inspect.NewInspector(nil).Judge(entries[0].Certs, nil, source.VerifyParams{RootsID: "system"})
			if v.Reason != tc.reason || !strings.Contains(v.Detail, "crypto/x509") {
				t.Errorf("verdict %q (%s), want %q saying crypto/x509 refused it", v.Reason, v.Detail, tc.reason)
			}
			// An endpoint presenting it: the same reason, its dates first.
			late := inspect.NewInspector(func() time.Time { return c.NotAfter.Add(time.Hour) })
			if v := late.Judge(entries[0].Certs, nil, source.VerifyParams{RootsID: "system", DNSName: tc.cn, ServerAuth: true}); v.Reason != inspect.ReasonExpired {
				t.Errorf("after its not-after: %q (%s), want expired", v.Reason, v.Detail)
			}
		})
	}
	if _, err := decode.Decode([]byte("-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n"), nil); err == nil {
		t.Error("a truncated certificate decoded")
	}
}
