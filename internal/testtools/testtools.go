// Package testtools holds what tests share besides certificates: finding
// the external tools they run (promtool, prometheus, amtool, helm on $PATH;
// kube-apiserver, etcd and SPIRE in the tool cache the scripts build once),
// and a buffer other goroutines can write to while a test reads it.
package testtools

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Find returns the path of a tool on $PATH or in $GOPATH/bin, and fails the
// test with how to install it when it is in neither.
func Find(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	t.Fatalf("%s not found: run ./scripts/test.sh, which installs it", name)
	return ""
}

// SyncBuffer collects output written from other goroutines (a child
// process's stderr, a logger used by informers) while the test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// CachedToolDir is where a test harness takes prebuilt binaries from: the
// folder named by the environment variable binEnv, or folder under the
// tool cache the scripts build into
// (${CERTWATCH_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/certwatch/tools}).
func CachedToolDir(binEnv, folder string) string {
	if d := os.Getenv(binEnv); d != "" {
		return d
	}
	base := os.Getenv("CERTWATCH_TOOLS")
	if base == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache")
		}
		base = filepath.Join(cache, "certwatch", "tools")
	}
	return filepath.Join(base, folder)
}

// RequireBinaries returns dir (made absolute) when it holds every named
// executable. Otherwise it skips the test when skipEnv is 1, and fails it
// saying how to build them (script) or where to point binEnv.
func RequireBinaries(t testing.TB, dir, script, binEnv, skipEnv, what string, names ...string) string {
	t.Helper()
	var missing []string
	for _, name := range names {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
		return dir
	}
	msg := fmt.Sprintf("%s not found in %s", strings.Join(missing, " and "), dir)
	if os.Getenv(skipEnv) == "1" {
		t.Skipf("%s (%s=1)", msg, skipEnv)
	}
	t.Fatalf("%s: run %s to build them (or set %s to their folder, or %s=1 to skip the %s tests)",
		msg, script, binEnv, skipEnv, what)
	return ""
}

// FreeLoopbackPorts returns n distinct loopback ports that were free a
// moment ago (a child may still lose one to a race: retry then).
func FreeLoopbackPorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// DepsSkipEnv set to 1 skips, rather than fails, the tests whose Debian
// packages or privileges are missing (.ci/install-test-deps.sh installs
// the packages; the tests run as root).
const DepsSkipEnv = "CERTWATCH_SKIP_DAEMON_TESTS"

// RequireTools fails the test when a command it runs is not on the PATH,
// pointing at the script that installs it, or skips it with DepsSkipEnv=1.
// root also requires running as root (network namespaces, daemons).
func RequireTools(t testing.TB, root bool, names ...string) {
	t.Helper()
	var missing []string
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			missing = append(missing, name)
		}
	}
	var msg string
	switch {
	case len(missing) > 0:
		msg = strings.Join(missing, " and ") + " not installed"
	case root && os.Geteuid() != 0:
		msg = "not running as root"
	default:
		return
	}
	if os.Getenv(DepsSkipEnv) == "1" {
		t.Skipf("%s (%s=1)", msg, DepsSkipEnv)
	}
	t.Fatalf("%s: run .ci/install-test-deps.sh as root and the tests as root, or set %s=1 to skip these tests", msg, DepsSkipEnv)
}
