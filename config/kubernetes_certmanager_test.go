package config

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestCertManagerConfig(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		mode       CertManagerMode
		grace      time.Duration
	}{
		{"absent: auto with the default grace", "kubernetes:\n  secrets: {}\n", CertManagerAuto, DefaultCertManagerRenewalGrace},
		{"auto", "kubernetes:\n  secrets: {}\n  cert_manager: {enabled: auto, renewal_grace: 30m}\n", CertManagerAuto, 30 * time.Minute},
		{"true as a boolean", "kubernetes:\n  cert_manager: {enabled: true}\n", CertManagerEnabled, DefaultCertManagerRenewalGrace},
		{"true as a string", "kubernetes:\n  cert_manager: {enabled: \"true\"}\n", CertManagerEnabled, DefaultCertManagerRenewalGrace},
		{"false", "kubernetes:\n  secrets: {}\n  cert_manager: {enabled: false}\n", CertManagerDisabled, DefaultCertManagerRenewalGrace},
		{"a zero grace is kept", "kubernetes:\n  secrets: {}\n  cert_manager: {renewal_grace: 0s}\n", CertManagerAuto, 0},
		{"days", "kubernetes:\n  secrets: {}\n  cert_manager: {renewal_grace: 1d}\n", CertManagerAuto, 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			cm := cfg.Kubernetes.CertManager
			if cm.Enabled != tc.mode || cm.Mode() != tc.mode || cm.Grace() != tc.grace {
				t.Errorf("got enabled %q, grace %v; want %q, %v", cm.Enabled, cm.Grace(), tc.mode, tc.grace)
			}
		})
	}
}

func TestCertManagerConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown mode", "kubernetes:\n  secrets: {}\n  cert_manager:\n    enabled: yes\n",
			[]string{"line 4: kubernetes.cert_manager.enabled", "want auto, true or false"}},
		{"a list", "kubernetes:\n  secrets: {}\n  cert_manager:\n    enabled: [true]\n", []string{"kubernetes.cert_manager.enabled"}},
		{"bad duration", "kubernetes:\n  secrets: {}\n  cert_manager:\n    renewal_grace: soon\n", []string{"line 4: kubernetes.cert_manager.renewal_grace"}},
		{"negative grace", "kubernetes:\n  secrets: {}\n  cert_manager:\n    renewal_grace: -1h\n",
			[]string{"line 4: kubernetes.cert_manager.renewal_grace: must not be negative"}},
		{"unknown key", "kubernetes:\n  secrets: {}\n  cert_manager:\n    renewal_grase: 1h\n",
			[]string{"kubernetes.cert_manager.renewal_grase: unknown key (did you mean renewal_grace?)"}},
		{"a label the cert-manager series set", "kubernetes:\n  secrets: {}\n  labels: {problem: x}\n",
			[]string{"line 3: kubernetes.labels.problem", "cert-manager series"}},
		{"a block of a list", "kubernetes:\n  - cluster: eu\n    secrets: {}\n  - cluster: us\n    secrets: {}\n    cert_manager: {renewal_grace: -5m}\n",
			[]string{"line 6: kubernetes[1].cert_manager.renewal_grace: must not be negative"}},
		{"auto alone enables nothing", "kubernetes:\n  cert_manager: {enabled: auto}\n", []string{"kubernetes: enables nothing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), t.TempDir())
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
	// Once cert-manager is off, its label names are free again.
	if _, err := Parse([]byte("kubernetes:\n  secrets: {}\n  labels: {problem: x}\n  cert_manager: {enabled: false}\n"), t.TempDir()); err != nil {
		t.Errorf("labels with cert-manager off: %v", err)
	}
}

func TestCertManagerModeRoundTrip(t *testing.T) {
	for _, m := range []CertManagerMode{CertManagerAuto, CertManagerEnabled, CertManagerDisabled} {
		out, err := yaml.Marshal(CertManager{Enabled: m})
		if err != nil {
			t.Fatal(err)
		}
		var back CertManager
		if err := yaml.Unmarshal(out, &back); err != nil || back.Enabled != m {
			t.Errorf("%q: wrote %s, read back %q (%v)", m, out, back.Enabled, err)
		}
	}
}
