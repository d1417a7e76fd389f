package main

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/certwatch/certwatch/internal/testpki"
)

// runBinary runs certwatch with args in dir and returns its output and
// exit status.
func runBinary(t *testing.T, bin, dir string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		status = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), status
}

// TestCheckCommand runs `certwatch check` as a pipeline would: exit
// statuses, the table, --expiring-within, places on the command line and
// from a configuration, and JSON that matches the inventory API's schema.
func TestCheckCommand(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	chain := testpki.NewChain(t, testpki.Options{})
	now := time.Now()
	soon := testpki.New(t, chain.Intermediate, testpki.Options{CommonName: "soon.example", NotAfter: now.Add(10 * 24 * time.Hour)})
	old := testpki.New(t, chain.Intermediate, testpki.Options{CommonName: "old.example", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	testpki.WriteFile(t, dir, "ca.pem", testpki.PEM(chain.Root))
	testpki.WriteFile(t, dir, "good.pem", testpki.PEM(chain.Leaf, chain.Intermediate))
	testpki.WriteFile(t, dir, "soon.pem", testpki.PEM(soon, chain.Intermediate))
	testpki.WriteFile(t, dir, "old.pem", testpki.PEM(old, chain.Intermediate))
	testpki.WriteFile(t, dir, "<script>.pem", testpki.PEM(testpki.New(t, chain.Intermediate,
		testpki.Options{CommonName: "evil\tname\nwith\x1bescapes"}), chain.Intermediate))
	endpoint := tlsServer(t, testpki.TLSCertificate(chain.Leaf, chain.Intermediate))
	cfg := filepath.Join(dir, "check.yml")
	writeFile(t, cfg, fmt.Appendf(nil, `modules:
  private: {tls: {ca_file: ca.pem, server_name: %s}}
endpoints:
  - targets: [%q]
    module: private
files:
  - paths: [good.pem, soon.pem]
    ca_file: ca.pem
`, chain.Leaf.Cert.DNSNames[0], endpoint))

	for _, tc := range []struct {
		name   string
		args   []string
		status int
		want   []string // lines of stdout that must appear, as substrings
	}{
		{"configuration, all valid", []string{"check", "--config.file=check.yml"}, 0,
			[]string{"OK      endpoint", "OK      file", "good.pem", "soon.pem"}},
		{"expiring within 30 days", []string{"check", "--config.file=check.yml", "--expiring-within=30d"}, 1,
			[]string{"EXPIRING", "soon.pem", "expiring"}},
		{"expiring within 5 days", []string{"check", "--config.file=check.yml", "--expiring-within=5d"}, 0, nil},
		{"places on the command line", []string{"check", "old.pem", endpoint}, 1,
			[]string{"FAIL", "expired", "unknown_authority", endpoint}},
		{"a missing file", []string{"check", "missing.pem"}, 1, []string{"error: not_found"}},
		{"hostile names stay on their line", []string{"check", "<script>.pem"}, 1, []string{"evil name with"}},
		{"missing configuration", []string{"check", "--config.file=nope.yml"}, 2, nil},
		{"bad duration", []string{"check", "--expiring-within=soon", "good.pem"}, 2, nil},
		{"bad flag", []string{"check", "--no-such-flag"}, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, status := runBinary(t, bin, dir, tc.args...)
			if status != tc.status {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", status, tc.status, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if tc.status != 2 {
				header, rows, _ := strings.Cut(out, "\n")
				if !strings.HasPrefix(header, "STATUS") {
					t.Errorf("no table header: %q", header)
				}
				for _, line := range strings.Split(strings.TrimSpace(rows), "\n") {
					if !strings.HasPrefix(line, "OK") && !strings.HasPrefix(line, "FAIL") && !strings.HasPrefix(line, "EXPIRING") {
						t.Errorf("a row does not start with a status (a name broke the line?): %q", line)
					}
				}
			}
		})
	}

	// JSON: the inventory API's schema.
	out, errOut, status := runBinary(t, bin, dir, "check", "--format=json", "--config.file=check.yml", "old.pem")
	if status != 1 {
		t.Fatalf("json: exit %d\n%s", status, errOut)
	}
	schema := compileListSchema(t)
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(inst); err != nil {
		t.Errorf("check --format=json does not match the schema: %v\n%.2000s", err, out)
	}
	if !strings.Contains(out, `"reason": "expired"`) {
		t.Errorf("json lacks the expired place:\n%s", out)
	}
}

func compileListSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("inventory", "schema", "certificates-v1.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("certificates-v1.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	return c.MustCompile("certificates-v1.schema.json")
}

// TestCheckWaitsForRevocation: with a group opted in to CRL checks, check
// waits for the background fetch and reports the revoked leaf, within its
// timeout, in one run.
func TestCheckWaitsForRevocation(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	var crlDER atomic.Pointer[[]byte]
	dp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if b := crlDER.Load(); b != nil {
			_, _ = w.Write(*b)
		}
	}))
	t.Cleanup(dp.Close)
	chain := testpki.NewChain(t, testpki.Options{CRLURLs: []string{dp.URL + "/int.crl"}})
	good := testpki.New(t, chain.Intermediate, testpki.Options{CommonName: "good.example", CRLURLs: []string{dp.URL + "/int.crl"}})
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
		ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: chain.Leaf.Cert.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)}},
	}, chain.Intermediate.Cert, chain.Intermediate.Key)
	if err != nil {
		t.Fatal(err)
	}
	crlDER.Store(&der)
	testpki.WriteFile(t, dir, "ca.pem", testpki.PEM(chain.Root))
	testpki.WriteFile(t, dir, "revoked.pem", testpki.PEM(chain.Leaf, chain.Intermediate))
	testpki.WriteFile(t, dir, "good.pem", testpki.PEM(good, chain.Intermediate))
	writeFile(t, filepath.Join(dir, "check.yml"), []byte(`global:
  revocation: {allow: ["127.0.0.1/32:*"]}
files:
  - paths: [revoked.pem, good.pem]
    ca_file: ca.pem
    revocation: {crl: true}
`))
	out, errOut, status := runBinary(t, bin, dir, "check", "--config.file=check.yml")
	if status != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", status, out, errOut)
	}
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.Contains(line, "revoked.pem") && !(strings.HasPrefix(line, "FAIL") && strings.Contains(line, "revoked")):
			t.Errorf("the revoked leaf's line: %q", line)
		case strings.Contains(line, "good.pem") && !strings.HasPrefix(line, "OK"):
			t.Errorf("the good leaf's line: %q", line)
		}
	}
}
