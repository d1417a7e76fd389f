package config

import (
	"fmt"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// CertManager is kubernetes.cert_manager: the lifecycle of cert-manager's
// Certificates (Ready, renewal, issuance failures, the Secret they write),
// their newest CertificateRequest, and its Issuers and ClusterIssuers.
type CertManager struct {
	// Enabled is auto (watch when the cert-manager.io/v1 API is served),
	// true (watch, and report its absence as an error) or false.
	Enabled CertManagerMode `yaml:"enabled"`
	// RenewalGrace is how long past status.renewalTime a Certificate may go
	// unrenewed before certwatch reports its renewal overdue.
	RenewalGrace *Duration `yaml:"renewal_grace"`
}

// CertManagerMode is auto, true or false; YAML booleans and the strings
// "true" and "false" are both accepted.
type CertManagerMode string

// cert_manager.enabled values.
const (
	CertManagerAuto     CertManagerMode = "auto"
	CertManagerEnabled  CertManagerMode = "true"
	CertManagerDisabled CertManagerMode = "false"
)

// DefaultCertManagerRenewalGrace covers one failed issuance and cert-manager's
// first retry, which comes an hour after a failure, plus the time the retry
// takes; the renewal window (a third of the lifetime by default: 30 days of a
// 90-day certificate) dwarfs it.
const DefaultCertManagerRenewalGrace = 2 * time.Hour

// certManagerLabels are the label names the cert-manager series set besides
// kube_namespace and certmanager_certificate (ReservedLabels): extra labels
// of the kubernetes section may not use them while those series exist.
var certManagerLabels = []string{"secret", "issuer_name", "issuer_kind", "issuer_group", "issuer_type",
	"ready_status", "ready_reason", "problem", "request", "state"}

// UnmarshalYAML accepts true, false and auto.
func (m *CertManagerMode) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want auto, true or false")
	}
	switch n.Value {
	case "auto", "true", "false":
		*m = CertManagerMode(n.Value)
		return nil
	}
	return fmt.Errorf("invalid value %q: want auto, true or false", n.Value)
}

// MarshalYAML writes true and false as booleans, auto as a string.
func (m CertManagerMode) MarshalYAML() (any, error) {
	switch m {
	case CertManagerEnabled:
		return true, nil
	case CertManagerDisabled:
		return false, nil
	}
	return string(m), nil
}

// Grace is RenewalGrace, or its default when unset.
func (c CertManager) Grace() time.Duration {
	if c.RenewalGrace == nil {
		return DefaultCertManagerRenewalGrace
	}
	return time.Duration(*c.RenewalGrace)
}

// Mode is Enabled, auto when unset.
func (c CertManager) Mode() CertManagerMode {
	if c.Enabled == "" {
		return CertManagerAuto
	}
	return c.Enabled
}

func (c *CertManager) applyDefaults() {
	if c.Enabled == "" {
		c.Enabled = CertManagerAuto
	}
	if c.RenewalGrace == nil {
		d := Duration(DefaultCertManagerRenewalGrace)
		c.RenewalGrace = &d
	}
}

// validate checks the cert_manager key of the kubernetes block at; labels
// are the block's extra labels.
func (c CertManager) validate(block []any, labels map[string]string, fail func([]any, string, ...any)) {
	at := append(slices.Clip(block), "cert_manager")
	if c.RenewalGrace != nil && *c.RenewalGrace < 0 {
		fail(append(at, "renewal_grace"), "must not be negative, got %s", time.Duration(*c.RenewalGrace))
	}
	if c.Mode() == CertManagerDisabled {
		return
	}
	for _, name := range sortedKeys(labels) {
		if slices.Contains(certManagerLabels, name) {
			fail(append(slices.Clip(block), "labels", name), "label %q is set by certwatch on the cert-manager series (set kubernetes.cert_manager.enabled: false to use it)", name)
		}
	}
}
