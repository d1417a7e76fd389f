package client

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/kubetest"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/internal/testtools"
	"github.com/certwatch/certwatch/shard"
	"github.com/certwatch/certwatch/source"
)

// kubeContext is one context of a kubeconfig written by writeKubeconfig.
type kubeContext struct {
	name, server, token string
	caData              []byte
}

// writeKubeconfig writes one kubeconfig file holding every context, the
// first one current.
func writeKubeconfig(t *testing.T, contexts ...kubeContext) string {
	t.Helper()
	var clusters, users, ctxs strings.Builder
	for _, c := range contexts {
		fmt.Fprintf(&clusters, "- name: %s\n  cluster:\n    server: %q\n", c.name, c.server)
		if c.caData != nil {
			fmt.Fprintf(&clusters, "    certificate-authority-data: %s\n", base64.StdEncoding.EncodeToString(c.caData))
		}
		fmt.Fprintf(&users, "- name: %s\n  user:\n    token: %q\n", c.name, c.token)
		fmt.Fprintf(&ctxs, "- name: %s\n  context:\n    cluster: %s\n    user: %s\n", c.name, c.name, c.name)
	}
	text := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n%susers:\n%scontexts:\n%scurrent-context: %s\n",
		clusters.String(), users.String(), ctxs.String(), contexts[0].name)
	path := filepath.Join(t.TempDir(), "kubeconfig.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// closedURL is an https URL on a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "https://" + addr
}

func testFlags(kubeconfig string) *Flags {
	qps, burst := 20.0, 40
	return &Flags{Kubeconfig: &kubeconfig, QPS: &qps, Burst: &burst}
}

func TestRestConfigForBlock(t *testing.T) {
	path := writeKubeconfig(t,
		kubeContext{name: "first", server: "https://127.0.0.1:1001", token: "a"},
		kubeContext{name: "second", server: "https://127.0.0.1:1002", token: "b"})
	other := writeKubeconfig(t, kubeContext{name: "other", server: "https://127.0.0.1:1003", token: "c"})
	missing := filepath.Join(t.TempDir(), "absent.yaml")
	cases := []struct {
		name     string
		flag     string
		block    config.KubernetesCluster
		wantHost string
		wantErr  []string
	}{
		{"the flag's current context", path, config.KubernetesCluster{}, "https://127.0.0.1:1001", nil},
		{"a context of the flag's file", path, config.KubernetesCluster{Context: "second"}, "https://127.0.0.1:1002", nil},
		{"the block's own file wins", path, config.KubernetesCluster{Kubeconfig: other}, "https://127.0.0.1:1003", nil},
		{"the block's file and context", "", config.KubernetesCluster{Kubeconfig: path, Context: "second"}, "https://127.0.0.1:1002", nil},
		{"a missing context", path, config.KubernetesCluster{Context: "third"}, "", []string{path, `"third"`}},
		{"a missing file", "", config.KubernetesCluster{Kubeconfig: missing}, "", []string{missing}},
		{"a context without a kubeconfig", "", config.KubernetesCluster{Context: "second"}, "", []string{`context "second" needs a kubeconfig`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := testFlags(tc.flag).restConfigFor(config.Kubernetes{KubernetesCluster: tc.block})
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("no error; host %s", cfg.Host)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Host != tc.wantHost || cfg.QPS != 20 || cfg.Burst != 40 || cfg.UserAgent != "certwatch" {
				t.Errorf("host %s qps %v burst %d agent %q", cfg.Host, cfg.QPS, cfg.Burst, cfg.UserAgent)
			}
		})
	}
}

func tlsSecret(t *testing.T, ns, name string) map[string]any {
	chain := testpki.NewChain(t, testpki.Options{})
	return map[string]any{
		"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"data": map[string]string{
			"tls.crt": base64.StdEncoding.EncodeToString(testpki.PEM(chain.Leaf, chain.Intermediate)),
			"tls.key": base64.StdEncoding.EncodeToString(testpki.KeyPEM(t, chain.Leaf.Key)),
		},
	}
}

func sample(res source.Result, name string, labels map[string]string) (source.Sample, bool) {
	for _, s := range res.Status {
		if s.Name != name {
			continue
		}
		match := true
		for k, v := range labels {
			i := slices.Index(s.LabelNames, k)
			match = match && i >= 0 && s.Values[i] == v
		}
		if match {
			return s, true
		}
	}
	return source.Sample{}, false
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func block(cluster string, set func(*config.Kubernetes)) config.Kubernetes {
	k := config.Kubernetes{Secrets: &config.SecretWatch{Types: config.DefaultSecretTypes, KeyPatterns: config.DefaultSecretKeyPatterns}}
	k.Cluster = cluster
	if set != nil {
		set(&k)
	}
	return k
}

// TestRunnerClusters runs four named clusters from one Runner against one
// real API server: one reachable, one on a closed port, one whose
// kubeconfig does not exist and one whose context does not. The reachable
// cluster's places are served with the cluster label and a qualified
// target; the others report themselves down and hold no readiness back;
// a reload restarts only the blocks that changed.
func TestRunnerClusters(t *testing.T) {
	api := kubetest.Start(t)
	api.EnsureNamespace(t, "web")
	if code, body := api.Do(t, http.MethodPost, "/api/v1/namespaces/web/secrets", tlsSecret(t, "web", "front")); code != http.StatusCreated {
		t.Fatalf("creating the secret: %d %s", code, body)
	}
	kubeconfig := writeKubeconfig(t,
		kubeContext{name: "live", server: api.URL, token: api.AdminToken, caData: api.CAData},
		kubeContext{name: "dead", server: closedURL(t), token: "x"})
	var logs testtools.SyncBuffer
	r := NewRunner(testFlags(kubeconfig), slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(r.Stop)

	blocks := config.KubernetesClusters{
		block("live", func(k *config.Kubernetes) { k.Labels = map[string]string{"team": "web"} }),
		block("dead", func(k *config.Kubernetes) { k.Context = "dead" }),
		block("broken", func(k *config.Kubernetes) { k.Kubeconfig = filepath.Join(t.TempDir(), "absent.yaml") }),
		block("lost", func(k *config.Kubernetes) { k.Context = "nowhere" }),
	}
	collectors, err := r.Apply(blocks, shard.Shard{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range collectors {
		names = append(names, c.Name())
	}
	if want := []string{"kubernetes/live", "kubernetes/dead", "kubernetes/broken", "kubernetes/lost"}; !slices.Equal(names, want) {
		t.Fatalf("collectors %v, want %v", names, want)
	}
	live, dead, broken, lost := collectors[0], collectors[1], collectors[2], collectors[3]

	var res source.Result
	eventually(t, "the live cluster's secret", func() bool {
		res = live.Scrape(context.Background())
		return len(res.Findings) > 0
	})
	f := res.Findings[0]
	if f.Target != "live/web/front" || f.Key != "tls.crt" || f.Labels["cluster"] != "live" || f.Labels["team"] != "web" || f.Labels["kube_namespace"] != "web" {
		t.Errorf("place %+v", f.Place)
	}
	if s, ok := sample(res, "certwatch_kubernetes_informer_synced", map[string]string{"resource": "secrets", "cluster": "live"}); !ok || s.Value != 1 {
		t.Errorf("informer health with the cluster label: %+v %v", s, ok)
	}
	eventually(t, "the live cluster up", func() bool {
		s, ok := sample(live.Scrape(context.Background()), nameClusterUp, map[string]string{"cluster": "live"})
		return ok && s.Value == 1
	})
	for _, c := range []source.Collector{dead, broken, lost} {
		res := c.Scrape(context.Background())
		name := strings.TrimPrefix(c.Name(), "kubernetes/")
		if s, ok := sample(res, nameClusterUp, map[string]string{"cluster": name}); !ok || s.Value != 0 {
			t.Errorf("%s: cluster_up %+v %v, want 0", name, s, ok)
		}
		if len(res.Findings) != 0 {
			t.Errorf("%s: findings %v", name, res.Findings)
		}
	}
	eventually(t, "every cluster ready", func() bool {
		for _, c := range collectors {
			if !c.(source.Readier).Ready() {
				return false
			}
		}
		return true
	})
	for _, want := range [][2]string{{"dead", "Kubernetes API server unreachable"}, {"broken", "absent.yaml: no such file"}, {"lost", `context \"nowhere\" does not exist`}} {
		if !slices.ContainsFunc(strings.Split(logs.String(), "\n"), func(line string) bool {
			return strings.Contains(line, "cluster="+want[0]) && strings.Contains(line, want[1])
		}) {
			t.Errorf("no log line names cluster %s and says %s:\n%s", want[0], want[1], logs.String())
		}
	}

	t.Run("a reload restarts only the blocks that changed", func(t *testing.T) {
		changed := slices.Clone(blocks)
		changed[1] = block("dead", func(k *config.Kubernetes) { k.Context = "dead"; k.Webhooks = true })
		again, err := r.Apply(changed, shard.Shard{})
		if err != nil {
			t.Fatal(err)
		}
		if again[0] != live {
			t.Error("the unchanged live cluster was restarted")
		}
		if again[1] == dead {
			t.Error("the changed block kept its old source")
		}
		if again[2] == broken || again[3] == lost {
			t.Error("a cluster that could not be configured is not tried again on reload")
		}
		if res := again[0].Scrape(context.Background()); len(res.Findings) == 0 {
			t.Error("the live cluster lost its places across the reload")
		}
	})

	t.Run("a reload reconnects the clusters of a kubeconfig file that changed", func(t *testing.T) {
		before, err := r.Apply(blocks, shard.Shard{})
		if err != nil {
			t.Fatal(err)
		}
		same, _ := r.Apply(blocks, shard.Shard{})
		if same[0] != before[0] {
			t.Fatal("an unchanged file reconnected")
		}
		f, err := os.OpenFile(kubeconfig, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("# credentials rotated\n"); err != nil {
			t.Fatal(err)
		}
		f.Close()
		after, err := r.Apply(blocks, shard.Shard{})
		if err != nil {
			t.Fatal(err)
		}
		if after[0] == before[0] {
			t.Error("the live cluster kept the connection of the old file")
		}
		eventually(t, "the reconnected cluster's places", func() bool {
			return len(after[0].Scrape(context.Background()).Findings) > 0
		})
	})

	t.Run("an unusable unnamed block is an error and keeps the running clusters", func(t *testing.T) {
		before, _ := r.Apply(blocks, shard.Shard{})
		_, err := r.Apply(config.KubernetesClusters{block("", func(k *config.Kubernetes) { k.Context = "nowhere" })}, shard.Shard{})
		if err == nil || !strings.Contains(err.Error(), "nowhere") {
			t.Fatalf("error %v", err)
		}
		if res := before[0].Scrape(context.Background()); len(res.Findings) == 0 {
			t.Error("the failed reload stopped the live cluster")
		}
	})

	t.Run("a single unnamed block keeps its series as they were", func(t *testing.T) {
		one, err := r.Apply(config.KubernetesClusters{block("", nil)}, shard.Shard{})
		if err != nil {
			t.Fatal(err)
		}
		if len(one) != 1 || one[0].Name() != "kubernetes" {
			t.Fatalf("collectors %v", one)
		}
		var res source.Result
		eventually(t, "the secret", func() bool {
			res = one[0].Scrape(context.Background())
			return len(res.Findings) > 0
		})
		if f := res.Findings[0]; f.Target != "web/front" || len(f.Labels) != 1 {
			t.Errorf("place %+v", f.Place)
		}
		for _, s := range res.Status {
			if s.Name == nameClusterUp || slices.Contains(s.LabelNames, "cluster") {
				t.Errorf("a series about the cluster: %+v", s)
			}
		}
	})
}
