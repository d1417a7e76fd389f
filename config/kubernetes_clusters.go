package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"

	"go.yaml.in/yaml/v3"
)

// LabelCluster is the label every series of a named Kubernetes block
// carries: its places and its informers' health.
const LabelCluster = "cluster"

// KubernetesCluster says which cluster a kubernetes block watches. It is
// inlined in Kubernetes, so its keys sit beside secrets, configmaps, ...
type KubernetesCluster struct {
	// Cluster names the cluster: the value of the cluster label on every
	// series of the block. Required, and distinct, when kubernetes is a
	// list of more than one block; empty keeps the series of a single
	// block without the label.
	Cluster string `yaml:"cluster"`
	// Kubeconfig is the file that reaches the cluster; the --kubeconfig
	// flag, or the in-cluster configuration, when empty.
	Kubeconfig string `yaml:"kubeconfig"`
	// Context is the kubeconfig context to use; its current-context when
	// empty.
	Context string `yaml:"context"`

	// others holds, while the file is decoded, the blocks after the first
	// of a list; Parse moves them to Config.KubernetesClusters.
	others []Kubernetes
	// empty is set when the section is an empty list.
	empty bool
}

// clusterNameRE is what a cluster name may be: it is a label value and
// the first part of the targets of its places (cluster/namespace/name),
// so it has no slash.
var clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)

// UnmarshalYAML accepts the kubernetes section as one block (a mapping) or
// as a list of blocks, one per cluster. The first block is decoded into k.
// Keys and values are not checked here but by checkKubernetesSchema, which
// names the path and line of each problem; decoding keeps what it can.
func (k *Kubernetes) UnmarshalYAML(n *yaml.Node) error {
	type plain Kubernetes // without this method
	// A bad value is left out: checkKubernetesSchema has refused the file
	// before it is decoded for use.
	decode := func(n *yaml.Node, into *Kubernetes) { _ = n.Decode((*plain)(into)) }
	switch n.Kind {
	case yaml.MappingNode:
		decode(n, k)
	case yaml.SequenceNode:
		var blocks []Kubernetes
		for _, item := range n.Content {
			if item.Kind != yaml.MappingNode {
				continue
			}
			var b Kubernetes
			decode(item, &b)
			blocks = append(blocks, b)
		}
		if len(blocks) == 0 {
			*k = Kubernetes{KubernetesCluster: KubernetesCluster{empty: true}}
			return nil
		}
		*k = blocks[0]
		k.others = blocks[1:]
	default:
		return fmt.Errorf("want a mapping (one cluster) or a list of mappings (one per cluster), got %s", shapeOf(n))
	}
	return nil
}

// KubernetesClusters are the blocks of the kubernetes section, in the
// order of the file: one when it is a mapping.
type KubernetesClusters []Kubernetes

// splitKubernetes fills KubernetesClusters from the decoded section and
// points Kubernetes at its first block (nil when there is none).
func (c *Config) splitKubernetes() {
	c.KubernetesClusters = nil
	if c.Kubernetes == nil || c.Kubernetes.empty {
		c.Kubernetes = nil
		return
	}
	first := *c.Kubernetes
	others := first.others
	first.others = nil
	c.KubernetesClusters = append(KubernetesClusters{first}, others...)
	c.Kubernetes = &c.KubernetesClusters[0]
}

// checkKubernetesSchema checks the keys and values of every block the way
// checkSchema checks the rest of the file (which leaves the section to
// Kubernetes.UnmarshalYAML, since it may be a list).
func checkKubernetesSchema(root *yaml.Node) error {
	n := findNode(root, []any{"kubernetes"})
	if n == nil {
		return nil
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	var errs []error
	report := func(at *yaml.Node, path []any, msg string) {
		errs = append(errs, fmt.Errorf("line %d: %s: %s", at.Line, pathString(path), msg))
	}
	type plain Kubernetes // walked field by field, not through UnmarshalYAML
	block := reflect.TypeFor[plain]()
	switch n.Kind {
	case yaml.MappingNode:
		walkSchema(n, block, []any{"kubernetes"}, report)
	case yaml.SequenceNode:
		for i, item := range n.Content {
			walkSchema(item, block, []any{"kubernetes", i}, report)
		}
	}
	return errors.Join(errs...)
}

// kubernetesPath is the key path of block i in errors: kubernetes when
// the section is a mapping, kubernetes[i] when it is a list.
func kubernetesPath(root *yaml.Node, i int) []any {
	if n := findNode(root, []any{"kubernetes"}); n != nil && n.Kind == yaml.SequenceNode {
		return []any{"kubernetes", i}
	}
	return []any{"kubernetes"}
}

func (kc KubernetesClusters) resolvePaths(abs func(string) string) {
	for i := range kc {
		kc[i].CAFile = abs(kc[i].CAFile)
		kc[i].Kubeconfig = abs(kc[i].Kubeconfig)
	}
}

// validate checks what concerns the blocks together: with more than one,
// each names its cluster, and no two the same; a block that names its
// cluster may not also set the cluster label among its labels.
func (kc KubernetesClusters) validate(root *yaml.Node, fail func([]any, string, ...any)) {
	firstAt := map[string]int{}
	for i, k := range kc {
		at := kubernetesPath(root, i)
		switch {
		case k.Cluster == "" && len(kc) > 1:
			fail(at, "cluster is required when kubernetes lists more than one block (it names each block's series)")
		case k.Cluster == "":
		case !clusterNameRE.MatchString(k.Cluster):
			fail(append(at, "cluster"), "invalid cluster name %q: want letters, digits, '.', '_' or '-', starting and ending with a letter or digit, at most 63", k.Cluster)
		default:
			if first, ok := firstAt[k.Cluster]; ok {
				fail(append(at, "cluster"), "repeats %s.cluster %q", pathString(kubernetesPath(root, first)), k.Cluster)
			} else {
				firstAt[k.Cluster] = i
			}
		}
		if _, ok := k.Labels[LabelCluster]; ok && k.Cluster != "" {
			fail(append(at, "labels", LabelCluster), "the block names its cluster (cluster: %s), which sets the %s label: drop labels.%s", k.Cluster, LabelCluster, LabelCluster)
		}
	}
}

// AnyRevocation reports whether any block opts in to an active
// revocation check.
func (kc KubernetesClusters) AnyRevocation() bool {
	for _, k := range kc {
		if k.Revocation.Any() {
			return true
		}
	}
	return false
}
