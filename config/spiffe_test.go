package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certwatch/certwatch/internal/testpki"
)

func TestSPIFFEConfig(t *testing.T) {
	dir := t.TempDir()
	bundle := filepath.Join(dir, "partner.pem")
	if err := os.WriteFile(bundle, testpki.PEM(testpki.New(t, nil, testpki.Options{CommonName: "partner CA", IsCA: true})), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SPIFFE_ENDPOINT_SOCKET", "unix:///run/spire/agent.sock")
	cfg, err := Parse([]byte(`spiffe:
  workload_api:
    - {}
    - address: unix:///run/other/agent.sock
      stale_after: 10m
      rotation_fraction: 0.6
      labels: {node: n1}
  bundle_endpoints:
    - trust_domain: partner.example
      url: https://spire.partner.example:8443
      endpoint_spiffe_id: spiffe://partner.example/spire/server
      bundle_file: partner.pem
    - trust_domain: web.example
      url: https://web.example/bundle
      profile: https_web
`), dir)
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.SPIFFE.WorkloadAPI
	if w[0].Address != "unix:///run/spire/agent.sock" || time.Duration(w[0].StaleAfter) != DefaultSPIFFEStaleAfter || w[0].RotationFraction != 0.5 {
		t.Errorf("defaults: %+v", w[0])
	}
	if time.Duration(w[1].StaleAfter) != 10*time.Minute || w[1].RotationFraction != 0.6 || w[1].Labels["node"] != "n1" {
		t.Errorf("set values: %+v", w[1])
	}
	b := cfg.SPIFFE.BundleEndpoints
	if b[0].Profile != ProfileHTTPSSPIFFE || b[0].BundleFile != bundle || time.Duration(b[0].RefreshInterval) != DefaultBundleRefreshInterval {
		t.Errorf("https_spiffe endpoint: %+v", b[0])
	}
	if b[1].Profile != ProfileHTTPSWeb {
		t.Errorf("https_web endpoint: %+v", b[1])
	}
}

func TestSPIFFEConfigErrors(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SPIFFE_ENDPOINT_SOCKET", "")
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"nothing enabled", "spiffe: {}\n", []string{"spiffe: enables nothing"}},
		{"no address and no environment", "spiffe:\n  workload_api:\n    - {}\n", []string{"spiffe.workload_api[0].address", "SPIFFE_ENDPOINT_SOCKET is not set"}},
		{"bad scheme", "spiffe:\n  workload_api:\n    - address: /run/agent.sock\n", []string{"line 3: spiffe.workload_api[0].address", "unix://"}},
		{"same address twice", "spiffe:\n  workload_api:\n    - address: unix:///a.sock\n    - address: unix:///a.sock\n", []string{"spiffe.workload_api[1].address", "already watched by workload_api[0]"}},
		{"rotation fraction", "spiffe:\n  workload_api:\n    - address: unix:///a.sock\n      rotation_fraction: 1.5\n", []string{"rotation_fraction", "between 0 and 1"}},
		{"bad trust domain", "spiffe:\n  bundle_endpoints:\n    - trust_domain: 'Bad Domain'\n      url: https://x.example\n      profile: https_web\n", []string{"spiffe.bundle_endpoints[0].trust_domain"}},
		{"plain http", "spiffe:\n  bundle_endpoints:\n    - trust_domain: x.example\n      url: http://x.example\n      profile: https_web\n", []string{"bundle_endpoints[0].url", "https://"}},
		{"https_spiffe without ID nor bundle", "spiffe:\n  bundle_endpoints:\n    - trust_domain: x.example\n      url: https://x.example\n",
			[]string{"bundle_endpoints[0].endpoint_spiffe_id", "bundle_endpoints[0].bundle_file: https_spiffe needs a bootstrap bundle"}},
		{"unknown profile", "spiffe:\n  bundle_endpoints:\n    - trust_domain: x.example\n      url: https://x.example\n      profile: https\n", []string{"profile: want https_web or https_spiffe"}},
		{"refresh too often", "spiffe:\n  bundle_endpoints:\n    - trust_domain: x.example\n      url: https://x.example\n      profile: https_web\n      refresh_interval: 1s\n", []string{"refresh_interval: want between 30s and 1h0m0s"}},
		{"unknown key", "spiffe:\n  workload_api:\n    - adress: unix:///a.sock\n", []string{"spiffe.workload_api[0].adress: unknown key (did you mean address?)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), dir)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
