package conformance

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// opensslReasons maps `openssl verify` error codes (X509_V_ERR_* of
// OpenSSL 3) to certwatch's reasons; codes not listed are "invalid".
// docs/conformance.md shows the same table.
var opensslReasons = map[int]string{
	0:  OK,
	2:  UnknownAuthority, // unable to get issuer certificate
	9:  NotYetValid,      // certificate is not yet valid
	10: Expired,          // certificate has expired
	18: UnknownAuthority, // self-signed certificate (depth 0)
	19: UnknownAuthority, // self-signed certificate in certificate chain
	20: UnknownAuthority, // unable to get local issuer certificate
	21: UnknownAuthority, // unable to verify the first certificate
	22: UnknownAuthority, // certificate chain too long
	25: InvalidUsage,     // path length constraint exceeded
	26: InvalidUsage,     // unsuitable certificate purpose
	32: InvalidUsage,     // key usage does not include certificate signing
	34: Invalid,          // unhandled critical extension
	37: InvalidUsage,     // invalid non-CA certificate (basic constraints)
	47: InvalidUsage,     // permitted subtree violation
	48: InvalidUsage,     // excluded subtree violation
	55: UnknownAuthority, // path loop
	62: HostnameMismatch, // hostname mismatch
	64: HostnameMismatch, // IP address mismatch
	66: WeakKey,          // EE certificate key too weak
	67: WeakKey,          // CA certificate key too weak
	68: WeakSignature,    // CA signature digest algorithm too weak
	79: InvalidUsage,     // invalid CA certificate
}

func opensslReason(code int) string {
	if r, ok := opensslReasons[code]; ok {
		return r
	}
	return Invalid
}

var opensslError = regexp.MustCompile(`(?m)^error (\d+) at \d+ depth lookup`)

// opensslVerify runs `openssl verify` on leaf and returns the error code
// it reports first (0 when it verifies) and its output.
func opensslVerify(t testing.TB, dir string, leaf *testpki.Cert, anchors, untrusted []*testpki.Cert, extra ...string) (int, string) {
	t.Helper()
	args := []string{"verify", "-auth_level", "1"}
	switch {
	case anchors == nil:
		// the default store stands for the system roots
	case len(anchors) == 0:
		args = append(args, "-no-CAfile", "-no-CApath", "-no-CAstore")
	default:
		args = append(args, "-CAfile", testpki.WriteFile(t, dir, "anchors.pem", testpki.PEM(anchors...)))
	}
	if len(untrusted) > 0 {
		args = append(args, "-untrusted", testpki.WriteFile(t, dir, "untrusted.pem", testpki.PEM(untrusted...)))
	}
	args = append(args, extra...)
	args = append(args, testpki.WriteFile(t, dir, "leaf.pem", testpki.PEM(leaf)))
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if m := opensslError.FindSubmatch(out); m != nil {
		code, _ := strconv.Atoi(string(m[1]))
		return code, string(out)
	}
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if !bytes.Contains(out, []byte(": OK")) {
		t.Fatalf("openssl %s: no verdict in\n%s", strings.Join(args, " "), out)
	}
	return 0, string(out)
}

// opensslJudge is what openssl says about a case in a mode, mapped to a
// reason: the worst over the file's leaves (each certificate, trusting
// itself, for a bundle), the first certificate for an endpoint.
func opensslJudge(t testing.TB, c Case, mode string) (string, string) {
	t.Helper()
	var anchors, caIntermediates []*testpki.Cert
	if c.CA != nil {
		anchors = []*testpki.Cert{}
		for _, a := range c.CA {
			if source.IsSelfSigned(a.Cert) {
				anchors = append(anchors, a)
			} else {
				caIntermediates = append(caIntermediates, a)
			}
		}
	}
	others := func(skip int) []*testpki.Cert {
		var out []*testpki.Cert
		for i, p := range c.Place {
			if i != skip {
				out = append(out, p)
			}
		}
		return append(out, caIntermediates...)
	}
	worst, why := OK, ""
	consider := func(code int, out, what string) {
		if r := opensslReason(code); Worse(r, worst) {
			worst, why = r, fmt.Sprintf("%s: error %d: %s", what, code, firstLine(out))
		}
	}
	dir, err := os.MkdirTemp(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case mode == modeEndpoint:
		check := []string{"-purpose", "sslserver", "-verify_hostname", c.Server()}
		if isIP(c.Server()) {
			check = []string{"-purpose", "sslserver", "-verify_ip", c.Server()}
		}
		code, out := opensslVerify(t, dir, c.Place[0], anchors, others(0), check...)
		consider(code, out, "leaf")
	case c.Bundle:
		for i, p := range c.Place {
			code, out := opensslVerify(t, dir, p, []*testpki.Cert{p}, nil, "-partial_chain")
			consider(code, out, fmt.Sprintf("certificate %d", i))
		}
	default:
		for _, l := range c.LeafIndices() {
			code, out := opensslVerify(t, dir, c.Place[l], anchors, others(l))
			consider(code, out, fmt.Sprintf("leaf %d", l))
		}
	}
	return worst, why
}

func isIP(s string) bool { return regexp.MustCompile(`^[0-9.]+$|:`).MatchString(s) }

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "error ") {
			return strings.TrimSpace(l)
		}
	}
	return strings.TrimSpace(s)
}

// opensslHeading is the section of docs/conformance.md listing where
// openssl disagrees with the corpus, and why.
const opensslHeading = "Where openssl disagrees"

// TestOpenSSL cross-checks the corpus against `openssl verify`: anchors are
// the CA file's self-signed certificates (no -partial_chain), untrusted
// certificates the place's others and the CA file's intermediates,
// endpoints add -purpose sslserver and the host name or address. Every
// disagreement must be listed, with its reason, in docs/conformance.md,
// and the agreement figure there must be the one measured.
func TestOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		// openssl is a test dependency like the daemons: missing only where
		// those are skipped on purpose.
		if os.Getenv("CERTWATCH_SKIP_DAEMON_TESTS") == "1" {
			t.Skip("openssl is not installed and CERTWATCH_SKIP_DAEMON_TESTS=1")
		}
		t.Fatal("openssl is not installed: run .ci/install-test-deps.sh as root, or set CERTWATCH_SKIP_DAEMON_TESTS=1")
	}
	version, _ := exec.Command("openssl", "version").Output()
	cases := Corpus(t)
	var mu sync.Mutex
	var found []disagreement
	total := 0
	eachCase(t, cases, func(t *testing.T, c Case) {
		for _, mode := range []string{modeFile, modeEndpoint} {
			want := expected(c, mode)
			if want == "" {
				continue
			}
			got, why := opensslJudge(t, c, mode)
			mu.Lock()
			total++
			if got != want {
				found = append(found, disagreement{Case: c.Name, Mode: mode, Want: want, Got: got})
				t.Logf("%s (%s): certwatch %s, openssl %s (%s)", c.Name, mode, want, got, why)
			}
			mu.Unlock()
		}
	})
	agree := total - len(found)
	t.Logf("%s: openssl agrees with certwatch on %d of %d verdicts", strings.TrimSpace(string(version)), agree, total)
	doc, err := os.ReadFile(docPath())
	if err != nil {
		t.Fatal(err)
	}
	// The figures were measured with one OpenSSL release (the document
	// names it); another one may answer some cases differently, which says
	// nothing about certwatch: it is logged above, not enforced.
	if m := regexp.MustCompile(`With OpenSSL (\S+),`).FindSubmatch(doc); m == nil {
		t.Errorf("%s must name the OpenSSL release its figures were measured with (\"With OpenSSL X.Y.Z,\")", docPath())
	} else if fields := strings.Fields(string(version)); len(fields) < 2 || fields[1] != string(m[1]) {
		t.Logf("installed %q is not the documented OpenSSL %s: the disagreements and the figure are not checked", strings.TrimSpace(string(version)), m[1])
		return
	}
	checkDocumented(t, opensslHeading, found)
	figure := fmt.Sprintf("openssl agrees with certwatch on %d of %d verdicts", agree, total)
	if !bytes.Contains(doc, []byte(figure)) {
		t.Errorf("%s must state the measured figure: %q", docPath(), figure)
	}
}
