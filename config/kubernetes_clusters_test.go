package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestKubernetesSectionForms(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		yaml string
		want []KubernetesCluster // cluster, kubeconfig, context of each block
	}{
		{"absent", "files: [{paths: [/x]}]\n", nil},
		{"null", "kubernetes:\n", nil},
		{"empty list", "kubernetes: []\n", nil},
		{"one mapping", "kubernetes:\n  secrets: {}\n", []KubernetesCluster{{}}},
		{"one mapping with a cluster", "kubernetes:\n  cluster: prod\n  kubeconfig: kube/prod.yaml\n  context: admin@prod\n  secrets: {}\n",
			[]KubernetesCluster{{Cluster: "prod", Kubeconfig: filepath.Join(dir, "kube/prod.yaml"), Context: "admin@prod"}}},
		{"a list of one without a cluster", "kubernetes:\n  - secrets: {}\n", []KubernetesCluster{{}}},
		{"a list of two", "kubernetes:\n  - cluster: eu\n    secrets: {}\n  - cluster: us\n    kubeconfig: /k/us\n    webhooks: true\n",
			[]KubernetesCluster{{Cluster: "eu"}, {Cluster: "us", Kubeconfig: "/k/us"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml), dir)
			if err != nil {
				t.Fatal(err)
			}
			var got []KubernetesCluster
			for _, k := range cfg.KubernetesClusters {
				got = append(got, k.KubernetesCluster)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("blocks %+v, want %+v", got, tc.want)
			}
			if (cfg.Kubernetes == nil) != (len(tc.want) == 0) {
				t.Fatalf("Kubernetes = %v with %d blocks", cfg.Kubernetes, len(tc.want))
			}
			if cfg.Kubernetes != nil && cfg.Kubernetes != &cfg.KubernetesClusters[0] {
				t.Error("Kubernetes is not the first block")
			}
		})
	}
}

// Every block gets the defaults and checks a single block gets.
func TestKubernetesListBlocksAreEachComplete(t *testing.T) {
	cfg, err := Parse([]byte("kubernetes:\n  - cluster: a\n    secrets: {}\n  - cluster: b\n    configmaps: {}\n    revocation: {crl: true}\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.KubernetesClusters[0], cfg.KubernetesClusters[1]
	if !reflect.DeepEqual(a.Secrets.Types, DefaultSecretTypes) || !reflect.DeepEqual(b.ConfigMaps.KeyPatterns, DefaultConfigMapKeyPatterns) {
		t.Errorf("defaults not applied to every block: %+v / %+v", a.Secrets, b.ConfigMaps)
	}
	if !cfg.KubernetesClusters.AnyRevocation() {
		t.Error("the second block's revocation opt-in is not seen")
	}
	if (KubernetesClusters{a}).AnyRevocation() {
		t.Error("a block without revocation opts in")
	}
}

func TestKubernetesClusterErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"a second block without a name", "kubernetes:\n  - cluster: a\n    secrets: {}\n  - secrets: {}\n",
			[]string{"line 4: kubernetes[1]: cluster is required"}},
		{"two unnamed blocks", "kubernetes:\n  - secrets: {}\n  - webhooks: true\n",
			[]string{"kubernetes[0]: cluster is required", "kubernetes[1]: cluster is required"}},
		{"a repeated name", "kubernetes:\n  - cluster: a\n    secrets: {}\n  - cluster: a\n    webhooks: true\n",
			[]string{"line 4: kubernetes[1].cluster: repeats kubernetes[0].cluster \"a\""}},
		{"a name with a slash", "kubernetes:\n  cluster: eu/prod\n  secrets: {}\n", []string{"line 2: kubernetes.cluster: invalid cluster name \"eu/prod\""}},
		{"cluster and labels.cluster in one block", "kubernetes:\n  cluster: prod\n  secrets: {}\n  labels: {cluster: prod}\n",
			[]string{"line 4: kubernetes.labels.cluster: the block names its cluster"}},
		{"labels.cluster in a listed block", "kubernetes:\n  - cluster: a\n    secrets: {}\n  - cluster: b\n    webhooks: true\n    labels:\n      cluster: b\n",
			[]string{"line 7: kubernetes[1].labels.cluster"}},
		{"an unknown key in a listed block", "kubernetes:\n  - cluster: a\n    secrets: {}\n  - cluster: b\n    secretz: {}\n",
			[]string{"line 5: kubernetes[1].secretz: unknown key (did you mean secrets?)"}},
		{"an unknown key in the mapping", "kubernetes:\n  clustre: a\n  secrets: {}\n", []string{"line 2: kubernetes.clustre: unknown key (did you mean cluster?)"}},
		{"a bad value in a listed block", "kubernetes:\n  - cluster: a\n    webhooks: maybe\n", []string{"line 3: kubernetes[0].webhooks: invalid value \"maybe\""}},
		{"a list item that is not a mapping", "kubernetes:\n  - cluster: a\n    secrets: {}\n  - b\n", []string{"line 4: kubernetes[1]: want a mapping of keys"}},
		{"a scalar section", "kubernetes: yes\n", []string{"line 1: kubernetes: want a mapping (one cluster) or a list of mappings (one per cluster)"}},
		{"a listed block that enables nothing", "kubernetes:\n  - cluster: a\n    secrets: {}\n  - cluster: b\n", []string{"line 4: kubernetes[1]: enables nothing"}},
		{"a bad selector in a listed block", "kubernetes:\n  - cluster: a\n    secrets: {label_selector: \"a b\"}\n", []string{"kubernetes[0].secrets.label_selector"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), t.TempDir())
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tc.want) {
				t.Errorf("%d errors, want %d: %v", n, len(tc.want), err)
			}
		})
	}
}

// Many configurations set labels: {cluster: ...} on every group: that
// stays valid wherever the block does not name its cluster itself.
func TestClusterLabelStaysUsableWithoutClusterKey(t *testing.T) {
	cfg, err := Parse([]byte("kubernetes:\n  secrets: {}\n  labels: {cluster: prod}\nfiles:\n  - paths: [/x]\n    labels: {cluster: prod}\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kubernetes.Labels[LabelCluster] != "prod" || cfg.Kubernetes.Cluster != "" {
		t.Errorf("kubernetes block: %+v", cfg.Kubernetes)
	}
}
