package probeallow_test

import (
	"strings"
	"testing"

	"github.com/certwatch/certwatch/config"
)

// TestConfigValidation: an invalid rule is a configuration error naming the
// key path and the line; valid rules load.
func TestConfigValidation(t *testing.T) {
	_, err := config.Parse([]byte(`modules:
  internal:
    probe_allow:
      - "*.internal.example:443"
      - "10.1.*:*"
      - "[fd00::/8]:*"
      - "{db,cache}.example.org:5432"
`), t.TempDir())
	if err == nil {
		t.Fatal("invalid rules loaded")
	}
	for _, want := range []string{
		"line 5: modules.internal.probe_allow[1]: invalid rule:", "10.1.0.0/16",
		"line 7: modules.internal.probe_allow[3]: invalid rule:",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "probe_allow[0]") || strings.Contains(err.Error(), "probe_allow[2]") {
		t.Errorf("valid rules reported: %v", err)
	}
	if _, err := config.Parse([]byte("modules:\n  m:\n    probe_allow: [\"db-*:5432\", \"10.1.0.0/16:8000-8999\", \"**.apps.example:443\", \"[::1]:*\"]\n"), t.TempDir()); err != nil {
		t.Errorf("valid rules: %v", err)
	}
}
