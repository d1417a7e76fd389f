package main

// Several clusters from one process, proven against two real
// kube-apiservers: one kubeconfig file with a context per cluster, one
// kubernetes block per context, and a third context whose API server never
// existed. The places of both live clusters are served with their cluster
// label; when one API server stops, the other's places stay served and keep
// following changes, the stopped one reports itself down, and the process
// stays healthy and ready; when it comes back it is picked up again.

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/certwatch/certwatch/internal/kubetest"
	"github.com/certwatch/certwatch/internal/testpki"
)

// multiContextKubeconfig writes one kubeconfig with a context per name,
// each reaching its server with its token.
func multiContextKubeconfig(t *testing.T, path string, contexts map[string]*kubetest.Cluster, unreachable ...string) {
	t.Helper()
	var clusters, users, ctxs strings.Builder
	add := func(name, server, token string, ca []byte) {
		fmt.Fprintf(&clusters, "- name: %s\n  cluster:\n    server: %q\n    certificate-authority-data: %s\n", name, server, base64.StdEncoding.EncodeToString(ca))
		fmt.Fprintf(&users, "- name: %s\n  user:\n    token: %q\n", name, token)
		fmt.Fprintf(&ctxs, "- name: %s\n  context:\n    cluster: %s\n    user: %s\n", name, name, name)
	}
	var current string
	var ca []byte
	for name, c := range contexts {
		ca = c.CAData // any valid one: nothing answers there
		add(name, c.URL, c.AdminToken, c.CAData)
		current = name
	}
	for _, name := range unreachable {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close() // nothing listens there
		add(name, "https://"+addr, "unused", ca)
	}
	writeFile(t, path, fmt.Appendf(nil, "apiVersion: v1\nkind: Config\nclusters:\n%susers:\n%scontexts:\n%scurrent-context: %s\n",
		clusters.String(), users.String(), ctxs.String(), current))
}

// waitLong scrapes until cond holds, for what waits on certwatch's
// reachability check (every 10 s) or on an API server's start.
func waitLong(t *testing.T, p *exporterProcess, what string, cond func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
	t.Helper()
	return waitForMetricsWithin(t, p, 90*time.Second, what, cond)
}

func clusterUp(mfs map[string]*dto.MetricFamily, cluster string) (float64, bool) {
	s := find(mfs, "certwatch_kubernetes_cluster_up", map[string]string{"cluster": cluster})
	if len(s) != 1 {
		return 0, false
	}
	return s[0].GetGauge().GetValue(), true
}

func TestKubernetesClustersAgainstTwoAPIServers(t *testing.T) {
	east, west := kubetest.Start(t), kubetest.Start(t)
	bin := buildBinary(t)
	dir := t.TempDir()

	create := func(c *kubetest.Cluster, name string) {
		t.Helper()
		if code, body := c.Do(t, http.MethodPost, "/api/v1/namespaces/web/secrets", tlsSecretJSON("web", name, testpki.NewChain(t, testpki.Options{}), t)); code != http.StatusCreated {
			t.Fatalf("creating secret %s: %d %s", name, code, body)
		}
	}
	for _, c := range []*kubetest.Cluster{east, west} {
		c.EnsureNamespace(t, "web")
		create(c, "frontend") // the same Secret in both clusters: two places
	}
	create(west, "only-west")

	kubeconfig := filepath.Join(dir, "kubeconfig.yaml")
	multiContextKubeconfig(t, kubeconfig, map[string]*kubetest.Cluster{"east-admin": east, "west-admin": west}, "gone-admin")
	writeFile(t, filepath.Join(dir, "config.yml"), []byte(`
kubernetes:
  - cluster: east
    kubeconfig: kubeconfig.yaml
    context: east-admin
    secrets: {}
  - cluster: west
    kubeconfig: kubeconfig.yaml
    context: west-admin
    secrets: {}
    labels: {team: payments}
  - cluster: gone
    kubeconfig: kubeconfig.yaml
    context: gone-admin
    secrets: {}
`))
	p := startExporter(t, bin, filepath.Join(dir, "config.yml"))

	leaf := func(mfs map[string]*dto.MetricFamily, target string) []*dto.Metric {
		return find(mfs, "certwatch_cert_not_after_timestamp_seconds", map[string]string{"source": "secret", "target": target, "key": "tls.crt", "index": "0"})
	}
	mfs := waitLong(t, p, "the places of both clusters and the down one", func(m map[string]*dto.MetricFamily) bool {
		up, ok := clusterUp(m, "gone")
		return len(leaf(m, "east/web/frontend")) == 1 && len(leaf(m, "west/web/frontend")) == 1 &&
			len(leaf(m, "west/web/only-west")) == 1 && ok && up == 0
	})
	for target, want := range map[string]map[string]string{
		"east/web/frontend":  {"cluster": "east", "kube_namespace": "web", "team": ""},
		"west/web/frontend":  {"cluster": "west", "kube_namespace": "web", "team": "payments"},
		"west/web/only-west": {"cluster": "west", "kube_namespace": "web", "team": "payments"},
	} {
		m := leaf(mfs, target)[0]
		for name, value := range want {
			if got := label(m, name); got != value {
				t.Errorf("%s: label %s = %q, want %q", target, name, got, value)
			}
		}
	}
	if n := len(leaf(mfs, "east/web/only-west")); n != 0 {
		t.Error("a Secret of west appears under east")
	}
	for _, c := range []string{"east", "west"} {
		if v := one(t, mfs, "certwatch_kubernetes_informer_synced", map[string]string{"cluster": c, "resource": "secrets"}).GetGauge().GetValue(); v != 1 {
			t.Errorf("%s: secrets informer synced = %v", c, v)
		}
		if up, ok := clusterUp(mfs, c); !ok || up != 1 {
			t.Errorf("%s: cluster_up %v %v, want 1", c, up, ok)
		}
		one(t, mfs, "certwatch_collector_success", map[string]string{"collector": "kubernetes/" + c})
	}
	if s := find(mfs, "certwatch_kubernetes_informer_synced", map[string]string{"cluster": "gone", "resource": "secrets"}); len(s) != 1 || s[0].GetGauge().GetValue() != 0 {
		t.Errorf("gone: secrets informer synced %v", s)
	}
	// The unreachable cluster holds no readiness back.
	if code, body := p.get(t, "/-/ready", nil); code != http.StatusOK {
		t.Errorf("/-/ready answered %d %s with one cluster unreachable from the start", code, body)
	}
	if !strings.Contains(p.stderr.String(), "cluster=gone") {
		t.Error("no log line names the unreachable cluster")
	}

	t.Run("one API server stops, the other cluster stays served and fresh", func(t *testing.T) {
		west.StopAPIServer(t)
		waitLong(t, p, "west reported down", func(m map[string]*dto.MetricFamily) bool {
			up, ok := clusterUp(m, "west")
			return ok && up == 0
		})
		create(east, "after-west-stopped")
		mfs := waitLong(t, p, "a Secret created in east after west stopped", func(m map[string]*dto.MetricFamily) bool {
			return len(leaf(m, "east/web/after-west-stopped")) == 1
		})
		if up, _ := clusterUp(mfs, "east"); up != 1 {
			t.Errorf("east cluster_up = %v while west is down", up)
		}
		if len(leaf(mfs, "east/web/frontend")) != 1 {
			t.Error("east lost its places")
		}
		// West's last known places stay (its informer cache outlives the
		// connection); cluster_up says they may be stale.
		if len(leaf(mfs, "west/web/frontend")) != 1 {
			t.Error("west's last known places are gone")
		}
		for _, path := range []string{"/-/healthy", "/-/ready"} {
			if code, body := p.get(t, path, nil); code != http.StatusOK {
				t.Errorf("%s answered %d %s with west down", path, code, body)
			}
		}
		if !strings.Contains(p.stderr.String(), "cluster=west") {
			t.Error("no log line names the stopped cluster")
		}
	})

	t.Run("the stopped API server is picked up again", func(t *testing.T) {
		west.StartAPIServer(t)
		create(west, "after-restart")
		waitLong(t, p, "west up again with its new Secret", func(m map[string]*dto.MetricFamily) bool {
			up, ok := clusterUp(m, "west")
			return ok && up == 1 && len(leaf(m, "west/web/after-restart")) == 1
		})
	})
}
