// Package testtools finds the external tools tests run (promtool,
// prometheus, amtool, helm): scripts/test.sh builds pinned versions once and
// puts them on $PATH.
package testtools

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
