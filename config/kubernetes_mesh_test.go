package config

import (
	"strings"
	"testing"
)

func TestMeshConfig(t *testing.T) {
	for _, tc := range []struct {
		name, yaml         string
		istio, linkerd     bool
		istioNS, linkerdNS string
	}{
		{"absent", "kubernetes:\n  secrets: {}\n", false, false, "", ""},
		{"a preset alone enables the source, default namespaces",
			"kubernetes:\n  mesh:\n    istio: {enabled: true}\n    linkerd: {enabled: true}\n", true, true, DefaultIstioNamespace, DefaultLinkerdNamespace},
		{"namespaces", "kubernetes:\n  mesh:\n    istio: {enabled: true, namespace: mesh-ca}\n    linkerd: {enabled: false, namespace: l5d}\n", true, false, "mesh-ca", "l5d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			m := cfg.Kubernetes.Mesh
			if m.IstioEnabled() != tc.istio || m.LinkerdEnabled() != tc.linkerd || m.Any() != (tc.istio || tc.linkerd) {
				t.Errorf("istio %v, linkerd %v", m.IstioEnabled(), m.LinkerdEnabled())
			}
			if m != nil && (m.Istio != nil && m.Istio.Namespace != tc.istioNS || m.Linkerd != nil && m.Linkerd.Namespace != tc.linkerdNS) {
				t.Errorf("namespaces %+v %+v", m.Istio, m.Linkerd)
			}
		})
	}
}

func TestMeshConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"a preset that is off enables nothing", "kubernetes:\n  mesh:\n    istio: {enabled: false}\n", []string{"kubernetes: enables nothing"}},
		{"bad namespace", "kubernetes:\n  mesh:\n    linkerd:\n      enabled: true\n      namespace: Linkerd_NS\n",
			[]string{"line 5: kubernetes.mesh.linkerd.namespace: invalid namespace \"Linkerd_NS\""}},
		{"unknown mesh", "kubernetes:\n  mesh:\n    consul: {enabled: true}\n", []string{"kubernetes.mesh.consul: unknown key"}},
		{"mesh labels are certwatch's", "kubernetes:\n  secrets: {}\n  labels: {mesh_role: x}\n", []string{"kubernetes.labels.mesh_role", "set by certwatch itself"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), t.TempDir())
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
