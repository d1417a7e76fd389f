// Package testtools holds what tests share besides certificates: finding
// the external tools they run (promtool, prometheus, amtool, helm;
// scripts/test.sh builds pinned versions once and puts them on $PATH), and
// a buffer other goroutines can write to while a test reads it.
package testtools

import (
	"bytes"
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
