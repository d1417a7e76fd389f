package main

// The service-mesh presets proven against a real kube-apiserver and etcd:
// Istio's CA Secrets (plug-in cacerts and istiod's self-signed
// istio-ca-secret) and root-cert ConfigMaps, and Linkerd's issuer Secret and
// trust roots, shaped as those meshes write them, read by the built binary
// with the configuration and the RBAC the Helm chart renders for
// mesh.istio.enabled and mesh.linkerd.enabled, and nothing else. That RBAC,
// and deploy/rbac/mesh.yaml's, are then shown to allow exactly those
// objects, and a real Prometheus evaluates the mesh alerts.

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/certwatch/certwatch/internal/kubetest"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/internal/testtools"
)

// meshHelmVersion is the helm the chart tests pin (deploy/chart_test.go).
const meshHelmVersion = "v3.22.0"

// renderChart runs helm template on the chart with args and returns its
// output, one document per template in show.
func renderMeshChart(t *testing.T, show []string, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("helm")
	if err != nil {
		bin = filepath.Join(testtools.CachedToolDir("", "helm-"+meshHelmVersion), "helm")
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("helm not found on $PATH nor at %s: run ./scripts/test.sh", bin)
		}
	}
	cmdArgs := []string{"template", "cw", "charts/certwatch", "--namespace", "monitoring",
		"--kube-version", strings.TrimPrefix(kubetest.KubeVersion, "v")}
	for _, s := range show {
		cmdArgs = append(cmdArgs, "--show-only", s)
	}
	cmd := exec.Command(bin, append(cmdArgs, args...)...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %v: %v\n%s", cmdArgs, err, stderr.String())
	}
	return out
}

func secretJSON(ns, name, typ string, data map[string][]byte) map[string]any {
	enc := map[string]string{}
	for k, v := range data {
		enc[k] = base64.StdEncoding.EncodeToString(v)
	}
	return map[string]any{"apiVersion": "v1", "kind": "Secret", "type": typ,
		"metadata": map[string]any{"name": name, "namespace": ns}, "data": enc}
}

func configMapJSON(ns, name string, labels, data map[string]string) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": ns, "labels": labels}, "data": data}
}

func TestMeshPresetsAgainstAPIServer(t *testing.T) {
	cluster := kubetest.Start(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	values := []string{"--set", "mesh.istio.enabled=true", "--set", "mesh.linkerd.enabled=true", "--set", "config.kubernetes=null"}

	// The chart's ServiceAccount and mesh RBAC, and nothing else.
	rbac := filepath.Join(dir, "rbac.yaml")
	writeFile(t, rbac, renderMeshChart(t, []string{"templates/serviceaccount.yaml", "templates/rbac-mesh.yaml"}, values...))
	applyManifests(t, cluster, rbac)
	token := cluster.ServiceAccountToken(t, "monitoring", "cw-certwatch")
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(renderMeshChart(t, []string{"templates/configmap.yaml"}, values...), &cm); err != nil || cm.Data["config.yml"] == "" {
		t.Fatalf("the chart's ConfigMap: %v %v", err, cm)
	}
	writeFile(t, filepath.Join(dir, "config.yml"), []byte(cm.Data["config.yml"]))

	// Istio: a plug-in CA (an intermediate of an offline root, as
	// tools/certs makes it: cert-chain.pem is the CA then the root), and
	// the self-signed CA istiod wrote before it, whose other keys are empty.
	istioRoot := testpki.New(t, nil, testpki.Options{CommonName: "Root CA", IsCA: true, NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour)})
	istioCA := testpki.New(t, istioRoot, testpki.Options{CommonName: "Intermediate CA", IsCA: true, NotAfter: time.Now().Add(2 * 365 * 24 * time.Hour)})
	selfSigned := testpki.New(t, nil, testpki.Options{CommonName: "cluster.local", IsCA: true, NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour)})
	// The root a stale copy still holds, 20 days from expiry.
	oldRoot := testpki.New(t, nil, testpki.Options{CommonName: "old root", IsCA: true, NotAfter: time.Now().Add(20 * 24 * time.Hour)})
	// Linkerd: a trust anchor and the 48-hour issuer cert-manager renews
	// from it, overdue: 8 hours left.
	anchor := testpki.New(t, nil, testpki.Options{CommonName: "root.linkerd.cluster.local", IsCA: true})
	issuer := testpki.New(t, anchor, testpki.Options{CommonName: "identity.linkerd.cluster.local", IsCA: true,
		NotBefore: time.Now().Add(-40 * time.Hour), NotAfter: time.Now().Add(8 * time.Hour)})

	create := func(path string, obj map[string]any) {
		t.Helper()
		if code, body := cluster.Do(t, http.MethodPost, path, obj); code != http.StatusCreated {
			t.Fatalf("creating %s: %d %s", path, code, body)
		}
	}
	for _, ns := range []string{"istio-system", "linkerd", "web", "payments"} {
		cluster.EnsureNamespace(t, ns)
	}
	create("/api/v1/namespaces/istio-system/secrets", secretJSON("istio-system", "cacerts", "Opaque", map[string][]byte{
		"ca-cert.pem": testpki.PEM(istioCA), "ca-key.pem": testpki.KeyPEM(t, istioCA.Key),
		"cert-chain.pem": testpki.PEM(istioCA, istioRoot), "root-cert.pem": testpki.PEM(istioRoot)}))
	create("/api/v1/namespaces/istio-system/secrets", secretJSON("istio-system", "istio-ca-secret", "istio.io/ca-root", map[string][]byte{
		"ca-cert.pem": testpki.PEM(selfSigned), "ca-key.pem": testpki.KeyPEM(t, selfSigned.Key),
		"cert-chain.pem": {}, "key.pem": {}, "root-cert.pem": {}}))
	// A Secret the presets do not watch, beside them.
	create("/api/v1/namespaces/istio-system/secrets", secretJSON("istio-system", "istiod-tls", "kubernetes.io/tls", map[string][]byte{
		"tls.crt": testpki.PEM(istioCA), "tls.key": testpki.KeyPEM(t, istioCA.Key)}))
	istioLabels := map[string]string{"istio.io/config": "true"}
	for ns, root := range map[string]*testpki.Cert{"istio-system": istioRoot, "web": istioRoot, "payments": oldRoot} {
		create("/api/v1/namespaces/"+ns+"/configmaps", configMapJSON(ns, "istio-ca-root-cert", istioLabels, map[string]string{"root-cert.pem": string(testpki.PEM(root))}))
	}
	create("/api/v1/namespaces/linkerd/secrets", secretJSON("linkerd", "linkerd-identity-issuer", "kubernetes.io/tls", map[string][]byte{
		"tls.crt": testpki.PEM(issuer), "tls.key": testpki.KeyPEM(t, issuer.Key), "ca.crt": testpki.PEM(anchor)}))
	create("/api/v1/namespaces/linkerd/configmaps", configMapJSON("linkerd", "linkerd-identity-trust-roots", nil, map[string]string{"ca-bundle.crt": string(testpki.PEM(anchor))}))

	p := startExporter(t, bin, filepath.Join(dir, "config.yml"), "--kubeconfig="+cluster.Kubeconfig(t, token))
	deadline := time.Now().Add(30 * time.Second)
	for code, _ := p.get(t, "/-/ready", nil); code != http.StatusOK; code, _ = p.get(t, "/-/ready", nil) {
		if time.Now().After(deadline) {
			t.Fatalf("/-/ready still %d under the chart's mesh RBAC", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	places := []struct {
		source, target, key, meshName, meshRole string
		roles                                   []string // by index
		notAfter                                []time.Time
	}{
		{"secret", "istio-system/cacerts", "ca-cert.pem", "istio", "issuer", []string{"leaf", "root"}, []time.Time{istioCA.Cert.NotAfter, istioRoot.Cert.NotAfter}},
		{"secret", "istio-system/cacerts", "root-cert.pem", "istio", "root", []string{"anchor"}, []time.Time{istioRoot.Cert.NotAfter}},
		{"secret", "istio-system/istio-ca-secret", "ca-cert.pem", "istio", "issuer", []string{"anchor"}, []time.Time{selfSigned.Cert.NotAfter}},
		{"configmap", "istio-system/istio-ca-root-cert", "root-cert.pem", "istio", "trust_roots", []string{"anchor"}, []time.Time{istioRoot.Cert.NotAfter}},
		{"configmap", "web/istio-ca-root-cert", "root-cert.pem", "istio", "trust_roots", []string{"anchor"}, []time.Time{istioRoot.Cert.NotAfter}},
		{"configmap", "payments/istio-ca-root-cert", "root-cert.pem", "istio", "trust_roots", []string{"anchor"}, []time.Time{oldRoot.Cert.NotAfter}},
		{"secret", "linkerd/linkerd-identity-issuer", "tls.crt", "linkerd", "issuer", []string{"leaf", "root"}, []time.Time{issuer.Cert.NotAfter, anchor.Cert.NotAfter}},
		{"secret", "linkerd/linkerd-identity-issuer", "ca.crt", "linkerd", "root", []string{"anchor"}, []time.Time{anchor.Cert.NotAfter}},
		{"configmap", "linkerd/linkerd-identity-trust-roots", "ca-bundle.crt", "linkerd", "trust_roots", []string{"anchor"}, []time.Time{anchor.Cert.NotAfter}},
	}
	mfs := waitForMetrics(t, p, "every mesh place", func(m map[string]*dto.MetricFamily) bool {
		for _, pl := range places {
			if len(find(m, "certwatch_chain_valid", map[string]string{"source": pl.source, "target": pl.target, "key": pl.key})) != 1 {
				return false
			}
		}
		return true
	})
	for _, pl := range places {
		where := pl.target + " " + pl.key
		v := one(t, mfs, "certwatch_chain_valid", map[string]string{"source": pl.source, "target": pl.target, "key": pl.key})
		if label(v, "reason") != "ok" || label(v, "mesh") != pl.meshName || label(v, "mesh_role") != pl.meshRole {
			t.Errorf("%s: chain_valid %v", where, v)
		}
		certs := find(mfs, "certwatch_cert_not_after_timestamp_seconds", map[string]string{"source": pl.source, "target": pl.target, "key": pl.key})
		if len(certs) != len(pl.roles) {
			t.Errorf("%s: %d certificates, want %d", where, len(certs), len(pl.roles))
			continue
		}
		for i, role := range pl.roles {
			c := one(t, mfs, "certwatch_cert_not_after_timestamp_seconds", map[string]string{"source": pl.source, "target": pl.target, "key": pl.key, "index": strconv.Itoa(i)})
			if label(c, "role") != role || label(c, "mesh") != pl.meshName || label(c, "mesh_role") != pl.meshRole ||
				c.GetGauge().GetValue() != float64(pl.notAfter[i].Unix()) {
				t.Errorf("%s index %d: %v, want role %s, not after %v", where, i, c, role, pl.notAfter[i])
			}
		}
		if s := one(t, mfs, "certwatch_target_success", map[string]string{"source": pl.source, "target": pl.target}); label(s, "mesh") != pl.meshName {
			t.Errorf("%s: target series without the mesh labels: %v", where, s)
		}
	}
	// The stale copy is told apart by its fingerprint.
	fingerprint := func(target, key string) string {
		return label(one(t, mfs, "certwatch_cert_info", map[string]string{"target": target, "key": key, "index": "0"}), "fingerprint_sha256")
	}
	caRoot := fingerprint("istio-system/cacerts", "root-cert.pem")
	if fingerprint("payments/istio-ca-root-cert", "root-cert.pem") == caRoot || fingerprint("web/istio-ca-root-cert", "root-cert.pem") != caRoot {
		t.Error("the root-cert copies' fingerprints do not tell the stale one")
	}
	if len(find(mfs, "certwatch_target_success", map[string]string{"target": "istio-system/istiod-tls"})) != 0 {
		t.Error("a Secret no preset names was reported")
	}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "PRIVATE KEY") {
					t.Errorf("%s label %s holds a private key", name, l.GetName())
				}
			}
		}
	}
	for _, res := range []string{"secrets/cacerts", "secrets/istio-ca-secret", "configmaps/istio-ca-root-cert", "secrets/linkerd-identity-issuer", "configmaps/linkerd-identity-trust-roots"} {
		if v := one(t, mfs, "certwatch_kubernetes_informer_synced", map[string]string{"resource": res}).GetGauge().GetValue(); v != 1 {
			t.Errorf("%s informer synced = %v", res, v)
		}
		if v := one(t, mfs, "certwatch_kubernetes_watch_errors_total", map[string]string{"resource": res, "class": "permission"}).GetCounter().GetValue(); v != 0 {
			t.Errorf("%s: %v permission errors under the chart's RBAC", res, v)
		}
	}

	t.Run("the chart's RBAC allows exactly the presets' objects", func(t *testing.T) {
		checkMeshRBAC(t, cluster, token)
	})
	t.Run("deploy/rbac/mesh.yaml allows exactly the presets' objects", func(t *testing.T) {
		applyManifests(t, cluster, "deploy/rbac/mesh.yaml")
		checkMeshRBAC(t, cluster, cluster.ServiceAccountToken(t, "monitoring", "certwatch"))
	})

	t.Run("the mesh alerts match their fixtures in a real Prometheus", func(t *testing.T) {
		meshAlertsInPrometheus(t, p.addr, dir)
	})

	t.Run("a renewed issuer and a copy that goes", func(t *testing.T) {
		renewed := testpki.New(t, istioRoot, testpki.Options{CommonName: "Intermediate CA", IsCA: true, NotAfter: time.Now().Add(3 * 365 * 24 * time.Hour)})
		if code, body := cluster.Do(t, http.MethodPut, "/api/v1/namespaces/istio-system/secrets/cacerts", secretJSON("istio-system", "cacerts", "Opaque", map[string][]byte{
			"ca-cert.pem": testpki.PEM(renewed), "ca-key.pem": testpki.KeyPEM(t, renewed.Key),
			"cert-chain.pem": testpki.PEM(renewed, istioRoot), "root-cert.pem": testpki.PEM(istioRoot)})); code != http.StatusOK {
			t.Fatalf("update: %d %s", code, body)
		}
		cluster.Do(t, http.MethodDelete, "/api/v1/namespaces/payments/configmaps/istio-ca-root-cert", nil)
		want := float64(renewed.Cert.NotAfter.Unix())
		waitForMetrics(t, p, "the renewed CA and the deleted copy", func(m map[string]*dto.MetricFamily) bool {
			c := find(m, "certwatch_cert_not_after_timestamp_seconds", map[string]string{"target": "istio-system/cacerts", "key": "ca-cert.pem", "index": "0"})
			return len(c) == 1 && c[0].GetGauge().GetValue() == want &&
				len(find(m, "certwatch_target_success", map[string]string{"target": "payments/istio-ca-root-cert"})) == 0
		})
	})
}

// meshAlertsInPrometheus has a real Prometheus scrape certwatch and checks
// that each mesh alert's expression returns exactly its fixtures: the
// overdue Linkerd issuer, the Istio copy whose root expires in 20 days (one
// result for the mesh), and that copy again as stale.
func meshAlertsInPrometheus(t *testing.T, certwatchAddr, dir string) {
	prometheus := testtools.Find(t, "prometheus")
	pc := startPrometheus(t, prometheus, filepath.Join(dir, "prometheus"), certwatchAddr, "1s")
	waitForQuery(t, pc, `count_over_time(certwatch_chain_valid{mesh_role="trust_roots"}[1m]) >= 2`)
	want := map[string][]string{
		"CertwatchMeshCAExpiring":         {"linkerd/linkerd-identity-issuer tls.crt 0"},
		"CertwatchMeshTrustRootsExpiring": {"istio configmap root-cert.pem"},
		"CertwatchMeshTrustRootsStale":    {"payments/istio-ca-root-cert root-cert.pem"},
	}
	checkAlertFixtures(t, pc, "CertwatchMesh", want, false, func(m map[string]string) string {
		if m["target"] == "" { // aggregated over the copies
			return m["mesh"] + " " + m["source"] + " " + m["key"]
		}
		return strings.TrimSpace(m["target"] + " " + m["key"] + " " + m["index"])
	})
}

// checkMeshRBAC shows that token may list and watch exactly the objects the
// mesh presets watch, by name, and nothing else: no list without the name,
// no other name, no get.
func checkMeshRBAC(t *testing.T, cluster *kubetest.Cluster, token string) {
	t.Helper()
	named := func(name string) string { return "?fieldSelector=" + url.QueryEscape("metadata.name="+name) }
	for _, c := range []struct {
		path string
		want int
	}{
		{"/api/v1/namespaces/istio-system/secrets" + named("cacerts"), http.StatusOK},
		{"/api/v1/namespaces/istio-system/secrets" + named("istio-ca-secret"), http.StatusOK},
		{"/api/v1/configmaps" + named("istio-ca-root-cert"), http.StatusOK},
		{"/api/v1/namespaces/linkerd/secrets" + named("linkerd-identity-issuer"), http.StatusOK},
		{"/api/v1/namespaces/linkerd/configmaps" + named("linkerd-identity-trust-roots"), http.StatusOK},
		{"/api/v1/namespaces/istio-system/secrets", http.StatusForbidden},
		{"/api/v1/namespaces/istio-system/secrets" + named("istiod-tls"), http.StatusForbidden},
		{"/api/v1/namespaces/istio-system/secrets/cacerts", http.StatusForbidden}, // no get
		{"/api/v1/secrets" + named("cacerts"), http.StatusForbidden},
		{"/api/v1/configmaps", http.StatusForbidden},
		{"/api/v1/namespaces/web/secrets" + named("linkerd-identity-issuer"), http.StatusForbidden},
		{"/api/v1/namespaces/web/configmaps" + named("linkerd-identity-trust-roots"), http.StatusForbidden},
		{"/api/v1/namespaces/linkerd/configmaps", http.StatusForbidden},
	} {
		if code, body := cluster.DoAs(t, token, http.MethodGet, c.path, nil); code != c.want {
			t.Errorf("GET %s: %d, want %d: %s", c.path, code, c.want, body)
		}
	}
}
