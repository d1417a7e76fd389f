package kubernetes

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certwatch/certwatch/config"
)

// exposedKey is one allow-listed object label or annotation key and the
// metric label it becomes.
type exposedKey struct {
	key, name string
}

// exposedKeys are kubernetes.expose_labels and expose_annotations, named.
type exposedKeys struct {
	labels, annotations []exposedKey
}

func newExposedKeys(k config.KubernetesSelect) exposedKeys {
	var e exposedKeys
	for _, key := range k.ExposeLabels {
		e.labels = append(e.labels, exposedKey{key: key, name: config.ExposedLabelName(key)})
	}
	for _, key := range k.ExposeAnnotations {
		e.annotations = append(e.annotations, exposedKey{key: key, name: config.ExposedAnnotationName(key)})
	}
	return e
}

func (e exposedKeys) count() int { return len(e.labels) + len(e.annotations) }

// addTo sets every exposed label on labels, with the object's value or ""
// when it has none, so that every series of a family has one label set.
// The values are read when the object is parsed, before the informer's
// transform strips its metadata: the cache keeps no labels or annotations,
// and a changed value is a new resourceVersion, parsed again.
func (e exposedKeys) addTo(labels map[string]string, meta metav1.Object) {
	if len(e.labels) > 0 {
		objLabels := meta.GetLabels()
		for _, x := range e.labels {
			labels[x.name] = objLabels[x.key]
		}
	}
	if len(e.annotations) > 0 {
		objAnnotations := meta.GetAnnotations()
		for _, x := range e.annotations {
			labels[x.name] = objAnnotations[x.key]
		}
	}
}
