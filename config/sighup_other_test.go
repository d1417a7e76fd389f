//go:build !unix

package config

import "testing"

// sighup: this platform cannot send SIGHUP, so the reload by signal is not
// tested here.
func sighup(t *testing.T) {
	t.Skip("no SIGHUP on this platform")
}
