package config

import (
	"strings"
	"testing"
)

func TestExposedLabelNames(t *testing.T) {
	cases := []struct {
		key, label, annotation string
	}{
		{"team", "label_team", "annotation_team"},
		{"app.kubernetes.io/name", "label_app_kubernetes_io_name", "annotation_app_kubernetes_io_name"},
		{"cert-manager.io/issuer-name", "label_cert_manager_io_issuer_name", "annotation_cert_manager_io_issuer_name"},
		{"Team_2", "label_Team_2", "annotation_Team_2"},
		{"9lives", "label_9lives", "annotation_9lives"},
	}
	for _, c := range cases {
		if got := ExposedLabelName(c.key); got != c.label {
			t.Errorf("ExposedLabelName(%q) = %q, want %q", c.key, got, c.label)
		}
		if got := ExposedAnnotationName(c.key); got != c.annotation {
			t.Errorf("ExposedAnnotationName(%q) = %q, want %q", c.key, got, c.annotation)
		}
	}
}

func TestKubernetesSelectParses(t *testing.T) {
	cfg, err := Parse([]byte(`kubernetes:
  csrs: true
  expose_labels: [team, app.kubernetes.io/name]
  expose_annotations: [example.com/owner]
  secrets:
    namespace_selector: "team=payments,env in (prod)"
    annotation_selector: "example.com/monitored=true"
  configmaps:
    namespace_selector: team
`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Kubernetes
	if !k.CSRs || len(k.ExposeLabels) != 2 || len(k.ExposeAnnotations) != 1 {
		t.Errorf("kubernetes: %+v", k.KubernetesSelect)
	}
	if k.Secrets.NamespaceSelector != "team=payments,env in (prod)" || k.Secrets.AnnotationSelector != "example.com/monitored=true" ||
		k.ConfigMaps.NamespaceSelector != "team" {
		t.Errorf("selections: %+v %+v", k.Secrets.ObjectSelect, k.ConfigMaps.ObjectSelect)
	}
	if !k.NamespaceSelectors() {
		t.Error("NamespaceSelectors() = false with a namespace_selector")
	}
}

func TestCSRsAloneEnableTheSource(t *testing.T) {
	cfg, err := Parse([]byte("kubernetes:\n  csrs: true\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kubernetes.NamespaceSelectors() {
		t.Error("NamespaceSelectors() = true without a namespace_selector")
	}
}

func TestKubernetesSelectErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"bad namespace selector", "kubernetes:\n  secrets:\n    namespace_selector: \"team in payments\"\n",
			[]string{"line 3", "kubernetes.secrets.namespace_selector"}},
		{"bad annotation selector", "kubernetes:\n  configmaps:\n    annotation_selector: \"a b\"\n",
			[]string{"line 3", "kubernetes.configmaps.annotation_selector"}},
		{"invalid label key", "kubernetes:\n  csrs: true\n  expose_labels: [\"bad key\"]\n",
			[]string{"line 3", "kubernetes.expose_labels[0]", "invalid key \"bad key\""}},
		{"two label keys give one name", "kubernetes:\n  csrs: true\n  expose_labels:\n    - app.kubernetes.io/name\n    - app-kubernetes-io/name\n",
			[]string{"line 5", "kubernetes.expose_labels[1]", "label_app_kubernetes_io_name, as kubernetes.expose_labels[0] does"}},
		{"two annotation keys give one name", "kubernetes:\n  csrs: true\n  expose_annotations: [a.b, a_b]\n",
			[]string{"kubernetes.expose_annotations[1]", "annotation_a_b, as kubernetes.expose_annotations[0] does"}},
		{"an extra label takes the name", "kubernetes:\n  csrs: true\n  labels: {label_team: x}\n  expose_labels: [team]\n",
			[]string{"line 4", "kubernetes.expose_labels[0]", "label_team, as kubernetes.labels.label_team does"}},
		{"an extra label may not be signer_name", "kubernetes:\n  csrs: true\n  labels: {signer_name: x}\n",
			[]string{"line 3", "kubernetes.labels.signer_name", "set by certwatch itself"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), t.TempDir())
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// A label and an annotation of the same key are different metric labels.
func TestExposedLabelAndAnnotationOfOneKey(t *testing.T) {
	if _, err := Parse([]byte("kubernetes:\n  csrs: true\n  expose_labels: [team]\n  expose_annotations: [team]\n"), t.TempDir()); err != nil {
		t.Fatal(err)
	}
}
