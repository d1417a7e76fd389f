package revocation

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/internal/testtools"
)

// inNetns marks the copy of the test binary running inside a network
// namespace of its own.
const inNetns = "CERTWATCH_TEST_IN_NETNS"

// TestOpensslResponder asks openssl's own OCSP responder (openssl ocsp
// -index), which signs with an intermediate CA and includes its
// certificate. openssl ocsp listens on every interface, so the test runs
// again inside a network namespace holding only loopback (unshare -n, as
// root): nothing it does can reach beyond it.
func TestOpensslResponder(t *testing.T) {
	if os.Getenv(inNetns) == "" {
		testtools.RequireTools(t, true, "unshare", "ip", "openssl") // a network namespace needs root
		cmd := exec.Command("unshare", "-n", "sh", "-c", `ip link set lo up && exec "$0" "$@"`,
			os.Args[0], "-test.run=^TestOpensslResponder$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), inNetns+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestOpensslResponder") {
			t.Fatalf("inside the namespace: %v\n%s", err, out)
		}
		return
	}

	root := testpki.New(t, nil, testpki.Options{CommonName: "openssl root", IsCA: true})
	inter := testpki.New(t, root, testpki.Options{CommonName: "openssl intermediate", IsCA: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	leaf := func(cn string) *testpki.Cert {
		return testpki.New(t, inter, testpki.Options{CommonName: cn, OCSPServers: []string{url}})
	}
	good, revokedLeaf, unknown := leaf("good"), leaf("revoked"), leaf("unknown")
	at := time.Now().Add(-time.Hour).Truncate(time.Second).UTC()

	dir := t.TempDir()
	testpki.WriteFile(t, dir, "ca.pem", testpki.PEM(inter))
	testpki.WriteFile(t, dir, "ca.key", testpki.KeyPEM(t, inter.Key))
	expiry := time.Now().Add(24 * time.Hour).UTC().Format("060102150405Z")
	hexSerial := func(c *testpki.Cert) string {
		s := fmt.Sprintf("%X", c.Cert.SerialNumber)
		if len(s)%2 == 1 {
			s = "0" + s
		}
		return s
	}
	index := fmt.Sprintf("V\t%s\t\t%s\tunknown\t/CN=good\nR\t%s\t%s,keyCompromise\t%s\tunknown\t/CN=revoked\n",
		expiry, hexSerial(good), expiry, at.Format("060102150405Z"), hexSerial(revokedLeaf))
	testpki.WriteFile(t, dir, "index.txt", []byte(index))
	cmd := exec.Command("openssl", "ocsp", "-index", filepath.Join(dir, "index.txt"), "-port", strconv.Itoa(port),
		"-CA", filepath.Join(dir, "ca.pem"), "-rsigner", filepath.Join(dir, "ca.pem"), "-rkey", filepath.Join(dir, "ca.key"), "-nmin", "60")
	logs := &logBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("openssl ocsp:\n%s", logs.buf.String())
		}
	})
	// Not probed by connecting: the responder serves one connection at a
	// time and would wait on the probe.
	waitFor(t, "openssl ocsp to listen", func() bool { return logs.count("waiting for OCSP client connections") > 0 })

	c, checkerLogs := startChecker(t, config.Fetch{Allow: loopback})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("checker:\n%s", checkerLogs.buf.String())
		}
	})
	for _, tc := range []struct {
		cert   *testpki.Cert
		status Status
	}{{good, StatusGood}, {revokedLeaf, StatusRevoked}, {unknown, StatusUnknown}} {
		as := lookupBoth(t, c, tc.cert.Cert, inter.Cert, true, false)
		a := as[0]
		if a.Status != tc.status || a.NextUpdate.IsZero() {
			t.Errorf("%s: answer %+v, want %s", tc.cert.Cert.Subject.CommonName, a, tc.status)
		}
		if tc.status == StatusRevoked && (!a.RevokedAt.Equal(at) || a.Reason.String() != "keyCompromise") {
			t.Errorf("revoked at %v (%s), want %v (keyCompromise)", a.RevokedAt, a.Reason, at)
		}
	}
}
