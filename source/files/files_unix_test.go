//go:build unix

package files

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// Tests that need what only Unix has: FIFOs, Unix sockets, dropping to
// another user.

// ---- permissions ----

const permChildEnv = "CERTWATCH_FILES_PERMISSION_DIR"

// permissionLayout writes files that only an unprivileged user is denied.
func permissionLayout(t *testing.T, dir string) *testpki.Cert {
	t.Helper()
	c := leafCert(t, "readable")
	write(t, dir, "ok.pem", testpki.PEM(c))
	write(t, dir, "secret.pem", testpki.PEM(leafCert(t, "secret")))
	write(t, dir, "big.pem", bytes.Repeat([]byte("x"), 5000)) // over the cap and unreadable: too_large, not permission
	write(t, dir, "locked/inside.pem", testpki.PEM(leafCert(t, "inside")))
	for _, p := range []string{"secret.pem", "big.pem", "locked"} {
		if err := os.Chmod(filepath.Join(dir, p), 0); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dir, "locked"), 0o755) })
	return c
}

func checkPermissionFindings(t *testing.T, dir string, ok *testpki.Cert) {
	t.Helper()
	cfg := parseConfig(t, dir, 4000, groupSpec{Paths: []string{"ok.pem", "secret.pem", "big.pem", "locked"}})
	got := collect(t, New(cfg, NewCache(), discard()))
	want := []want{
		{target: "locked", class: source.ClassPermission}, // discovery problems come first
		{target: "big.pem", class: source.ClassTooLarge},
		{target: "ok.pem", certs: certs(ok)},
		{target: "secret.pem", class: source.ClassPermission},
	}
	checkFindings(t, dir, got, want)
}

// TestPermissionDenied makes "not allowed to read" real. As root, where mode
// 000 stops nothing, it runs the check in a child process of the test binary
// that has dropped to nobody (65534).
func TestPermissionDenied(t *testing.T) {
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		ok := permissionLayout(t, dir)
		if _, err := os.ReadFile(filepath.Join(dir, "secret.pem")); err == nil {
			t.Skip("this user can read a mode 000 file (capabilities?)")
		}
		checkPermissionFindings(t, dir, ok)
		return
	}
	// The child must reach dir and run the test binary: make the temp
	// directories traversable and copy the binary out of the 0700 build dir.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "files.test")
	copyFile(t, self, bin, 0o755)
	ok := permissionLayout(t, dir)
	write(t, dir, "want-serial", []byte(ok.Cert.SerialNumber.String()))

	cmd := exec.Command(bin, "-test.run=^TestPermissionChild$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOCOVERDIR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, permChildEnv+"="+dir, "HOME="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestPermissionChild")) || !bytes.Contains(out, []byte("child running as uid 65534")) {
		t.Fatalf("permission check as uid 65534 failed: %v\n%s", err, out)
	}
}

// TestPermissionChild is TestPermissionDenied's unprivileged half; run alone
// it skips.
func TestPermissionChild(t *testing.T) {
	dir := os.Getenv(permChildEnv)
	if dir == "" {
		t.Skip("helper process of TestPermissionDenied")
	}
	if os.Geteuid() == 0 {
		t.Fatal("the child still runs as root")
	}
	t.Logf("child running as uid %d", os.Geteuid())
	serial, err := os.ReadFile(filepath.Join(dir, "want-serial"))
	if err != nil {
		t.Fatal(err)
	}
	// The child cannot see the parent's *testpki.Cert: read the readable
	// certificate back and compare its serial with the parent's.
	data, err := os.ReadFile(filepath.Join(dir, "ok.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if c.SerialNumber.String() != string(serial) {
		t.Fatalf("ok.pem serial %s, want %s", c.SerialNumber, serial)
	}
	checkPermissionFindings(t, dir, &testpki.Cert{Cert: c})
}

// TestSpecialFilesNeverOpened checks that FIFOs and sockets are skipped by a
// walk, refused when named, and never opened even when one replaces a
// regular file after discovery (opening a FIFO would block the scrape).
func TestSpecialFilesNeverOpened(t *testing.T) {
	dir := t.TempDir()
	c := leafCert(t, "regular")
	write(t, dir, "d/cert.pem", testpki.PEM(c))
	fifo := filepath.Join(dir, "d", "fifo.pem")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "d", "sock.pem")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	s, _ := newSource(t, dir, groupSpec{Paths: []string{"d", "d/fifo.pem", "d/sock.pem"}})
	checkFindings(t, dir, collect(t, s), []want{
		{target: "d/fifo.pem", class: source.ClassParse},
		{target: "d/sock.pem", class: source.ClassParse},
		{target: "d/cert.pem", certs: certs(c)},
	})

	done := make(chan []source.Finding, 1)
	go func() { done <- readOne(s, fifo, true) }()
	select {
	case got := <-done:
		checkFindings(t, dir, got, []want{{target: "d/fifo.pem", class: source.ClassParse}})
	case <-time.After(5 * time.Second):
		t.Fatal("read opened the FIFO and blocked")
	}
	// The path became a FIFO after read's stat: load must not block either.
	errc := make(chan error, 1)
	go func() { _, _, err := s.load(fifo, 0, nil); errc <- err }()
	select {
	case err := <-errc:
		if c := source.ClassOf(err); c != source.ClassParse {
			t.Errorf("load of a FIFO: class %q (%v), want parse", c, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("load opened the FIFO and blocked")
	}
}
