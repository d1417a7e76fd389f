package config

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// KubernetesSelect holds the Kubernetes settings that add kinds and metric
// labels beyond the Secrets, ConfigMaps and caBundles: inlined in
// Kubernetes, so its keys sit directly under kubernetes:.
type KubernetesSelect struct {
	// CSRs watches CertificateSigningRequests (certificates.k8s.io/v1): each
	// one with a status.certificate is a place.
	CSRs bool `yaml:"csrs"`
	// ExposeLabels are object label keys copied to every series of the
	// object's places as label_<key>, sanitised ("app.kubernetes.io/name"
	// becomes label_app_kubernetes_io_name); empty when the object lacks
	// the label.
	ExposeLabels []string `yaml:"expose_labels"`
	// ExposeAnnotations are object annotation keys copied the same way, as
	// annotation_<key>.
	ExposeAnnotations []string `yaml:"expose_annotations"`
}

// ObjectSelect narrows a Selection by what the API server cannot filter on:
// namespace labels and object annotations. Inlined in Selection.
type ObjectSelect struct {
	// NamespaceSelector keeps objects whose namespace's labels match it
	// (label selector syntax). certwatch watches Namespaces to follow it:
	// objects of a namespace that starts or stops matching come and go
	// without a restart.
	NamespaceSelector string `yaml:"namespace_selector"`
	// AnnotationSelector keeps objects whose annotations match it (label
	// selector syntax). It is evaluated by certwatch on what the API server
	// sends: it reduces the places, not what is listed and watched.
	AnnotationSelector string `yaml:"annotation_selector"`
}

// Prefixes of the metric labels made from object labels and annotations,
// as kube-state-metrics names them.
const (
	ExposedLabelPrefix      = "label_"
	ExposedAnnotationPrefix = "annotation_"
)

// ExposedLabelName is the metric label name of an object label key.
func ExposedLabelName(key string) string { return ExposedLabelPrefix + sanitizeLabelName(key) }

// ExposedAnnotationName is the metric label name of an object annotation key.
func ExposedAnnotationName(key string) string {
	return ExposedAnnotationPrefix + sanitizeLabelName(key)
}

// sanitizeLabelName replaces every character that may not appear in a
// Prometheus label name with "_".
func sanitizeLabelName(key string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, key)
}

// validateSelect checks the keys of KubernetesSelect and the ObjectSelect of
// each Selection: selectors parse, allow-listed keys are valid Kubernetes
// keys, and no two of them, nor an extra label, give one metric label name.
func (k *Kubernetes) validateSelect(at []any, fail func([]any, string, ...any)) {
	if k.Secrets != nil {
		validateObjectSelect(k.Secrets.ObjectSelect, append(at, "secrets"), fail)
	}
	if k.ConfigMaps != nil {
		validateObjectSelect(k.ConfigMaps.ObjectSelect, append(at, "configmaps"), fail)
	}
	named := map[string][]any{} // metric label name -> where it was first named
	for name := range k.Labels {
		named[name] = append(append([]any{}, at...), "labels", name)
	}
	exposed := func(list string, keys []string, nameOf func(string) string) {
		for i, key := range keys {
			here := append(append([]any{}, at...), list, i)
			if errs := validation.IsQualifiedName(key); len(errs) > 0 {
				fail(here, "invalid key %q: %s", key, strings.Join(errs, "; "))
				continue
			}
			name := nameOf(key)
			switch first, ok := named[name]; {
			case slices.Contains(ReservedLabels, name):
				fail(here, "%q gives label %s, which certwatch sets itself", key, name)
			case ok:
				fail(here, "%q gives label %s, as %s does", key, name, pathString(first))
			default:
				named[name] = here
			}
		}
	}
	exposed("expose_labels", k.ExposeLabels, ExposedLabelName)
	exposed("expose_annotations", k.ExposeAnnotations, ExposedAnnotationName)
}

func validateObjectSelect(s ObjectSelect, at []any, fail func([]any, string, ...any)) {
	for _, sel := range []struct{ key, value string }{
		{"namespace_selector", s.NamespaceSelector}, {"annotation_selector", s.AnnotationSelector}} {
		if sel.value == "" {
			continue
		}
		if _, err := labels.Parse(sel.value); err != nil {
			fail(append(append([]any{}, at...), sel.key), "%v", err)
		}
	}
}

// NamespaceSelectors says whether a Selection of the block has a
// namespace_selector, which needs list and watch on Namespaces.
func (k *Kubernetes) NamespaceSelectors() bool {
	return k.Secrets != nil && k.Secrets.NamespaceSelector != "" || k.ConfigMaps != nil && k.ConfigMaps.NamespaceSelector != ""
}
