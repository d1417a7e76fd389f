//go:build unix

package config

import (
	"os"
	"syscall"
	"testing"
)

// sighup sends the process SIGHUP, as an operator's kill -HUP does.
func sighup(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}
