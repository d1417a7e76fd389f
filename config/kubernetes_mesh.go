package config

import (
	"k8s.io/apimachinery/pkg/util/validation"
)

// Mesh holds the service-mesh presets of the Kubernetes source: each watches
// the objects where its mesh keeps its certificate authority and trust
// roots, by name, beside (never instead of) the secrets and configmaps
// selections.
type Mesh struct {
	Istio   *MeshPreset `yaml:"istio"`
	Linkerd *MeshPreset `yaml:"linkerd"`
}

// MeshPreset turns one mesh's preset on, in the namespace its control
// plane runs in.
type MeshPreset struct {
	Enabled bool `yaml:"enabled"`
	// Namespace of the control plane; default istio-system or linkerd.
	Namespace string `yaml:"namespace"`
}

// Default control-plane namespaces.
const (
	DefaultIstioNamespace   = "istio-system"
	DefaultLinkerdNamespace = "linkerd"
)

// IstioEnabled reports whether the Istio preset is on.
func (m *Mesh) IstioEnabled() bool { return m != nil && m.Istio != nil && m.Istio.Enabled }

// LinkerdEnabled reports whether the Linkerd preset is on.
func (m *Mesh) LinkerdEnabled() bool { return m != nil && m.Linkerd != nil && m.Linkerd.Enabled }

// Any reports whether a preset is on.
func (m *Mesh) Any() bool { return m.IstioEnabled() || m.LinkerdEnabled() }

func (m *Mesh) applyDefaults() {
	if m == nil {
		return
	}
	if m.Istio != nil && m.Istio.Namespace == "" {
		m.Istio.Namespace = DefaultIstioNamespace
	}
	if m.Linkerd != nil && m.Linkerd.Namespace == "" {
		m.Linkerd.Namespace = DefaultLinkerdNamespace
	}
}

func (m *Mesh) validate(at []any, fail func([]any, string, ...any)) {
	if m == nil {
		return
	}
	for _, preset := range []struct {
		name string
		p    *MeshPreset
	}{{"istio", m.Istio}, {"linkerd", m.Linkerd}} {
		name, p := preset.name, preset.p
		if p == nil {
			continue
		}
		for _, msg := range validation.IsDNS1123Label(p.Namespace) {
			fail(append(at, name, "namespace"), "invalid namespace %q: %s", p.Namespace, msg)
		}
	}
}
