package main

// CertificateSigningRequests, object labels and annotations as metric
// labels, and selection by namespace labels and by annotations, proven
// against a real kube-apiserver and etcd: the built certwatch runs with the
// configuration the Helm chart renders, under a ServiceAccount bound to
// exactly the RBAC rules the chart renders for it.

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/certwatch/certwatch/internal/kubetest"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/internal/testtools"
)

const selectHelmVersion = "v3.22.0"

// helmBinary is helm on $PATH or where scripts/test.sh installs it.
func helmBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	dir := testtools.CachedToolDir("CERTWATCH_HELM_BIN", "helm-"+selectHelmVersion)
	p := filepath.Join(dir, "helm")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("helm not found on $PATH nor in %s: run ./scripts/test.sh, or\n  GOBIN=%s go install helm.sh/helm/v3/cmd/helm@%s", dir, dir, selectHelmVersion)
	}
	return p
}

// renderChart runs helm template on the chart with values and returns the
// rendered documents, each as YAML text with its kind.
func renderChart(t *testing.T, values string) map[string][]string {
	t.Helper()
	dir := t.TempDir()
	valuesFile := filepath.Join(dir, "values.yaml")
	writeFile(t, valuesFile, []byte(values))
	cmd := exec.Command(helmBinary(t), "template", "sel", "charts/certwatch", "--namespace", "monitoring",
		"--kube-version", strings.TrimPrefix(kubetest.KubeVersion, "v"), "-f", valuesFile,
		"-s", "templates/rbac.yaml", "-s", "templates/serviceaccount.yaml", "-s", "templates/configmap.yaml")
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+dir, "HELM_CONFIG_HOME="+dir, "HELM_DATA_HOME="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr.String())
	}
	out := map[string][]string{}
	for _, doc := range strings.Split(stdout.String(), "\n---\n") {
		var meta struct {
			Kind string `yaml:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("helm template output: %v\n%s", err, doc)
		}
		if meta.Kind != "" {
			out[meta.Kind] = append(out[meta.Kind], doc)
		}
	}
	return out
}

// renderedConfig is the certwatch configuration of the chart's ConfigMap.
func renderedConfig(t *testing.T, docs map[string][]string) map[string]any {
	t.Helper()
	if len(docs["ConfigMap"]) != 1 {
		t.Fatalf("want one ConfigMap, got %d", len(docs["ConfigMap"]))
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal([]byte(docs["ConfigMap"][0]), &cm); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["config.yml"]), &cfg); err != nil {
		t.Fatalf("rendered config.yml: %v\n%s", err, cm.Data["config.yml"])
	}
	return cfg
}

// hasLabel says whether a series carries a label, even an empty one.
func hasLabel(m *dto.Metric, name string) bool {
	for _, lp := range m.Label {
		if lp.GetName() == name {
			return true
		}
	}
	return false
}

// csrRequest is a PKCS#10 request for key, PEM-encoded.
func csrRequest(t *testing.T, cn string, org []string, key *testpki.Cert) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: org}}, key.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// issueCSR creates a CertificateSigningRequest for cert's key and, unless
// cert is nil, approves it and sets status.certificate through the status
// subresource, as a signer does.
func issueCSR(t *testing.T, cluster *kubetest.Cluster, name, signer string, usages []string, cert *testpki.Cert, chain ...*testpki.Cert) {
	t.Helper()
	const base = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
	key := cert
	if key == nil {
		key = testpki.New(t, nil, testpki.Options{CommonName: name})
	}
	code, body := cluster.Do(t, http.MethodPost, base, map[string]any{
		"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{"signerName": signer, "usages": usages,
			"request": base64.StdEncoding.EncodeToString(csrRequest(t, key.Cert.Subject.CommonName, key.Cert.Subject.Organization, key))},
	})
	if code != http.StatusCreated {
		t.Fatalf("creating CSR %s: %d %s", name, code, body)
	}
	if cert == nil {
		return // pending
	}
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil {
		t.Fatal(err)
	}
	obj["status"] = map[string]any{"conditions": []map[string]any{{"type": "Approved", "status": "True", "reason": "E2E", "message": "approved by the test"}}}
	if code, body = cluster.Do(t, http.MethodPut, base+"/"+name+"/approval", obj); code != http.StatusOK {
		t.Fatalf("approving CSR %s: %d %s", name, code, body)
	}
	if err := json.Unmarshal(body, &obj); err != nil {
		t.Fatal(err)
	}
	obj["status"].(map[string]any)["certificate"] = base64.StdEncoding.EncodeToString(testpki.PEM(append([]*testpki.Cert{cert}, chain...)...))
	if code, body = cluster.Do(t, http.MethodPut, base+"/"+name+"/status", obj); code != http.StatusOK {
		t.Fatalf("setting the certificate of CSR %s: %d %s", name, code, body)
	}
}

func labelledSecretJSON(ns, name string, chain *testpki.Chain, labels, annotations map[string]string, t *testing.T) map[string]any {
	s := tlsSecretJSON(ns, name, chain, t)
	meta := s["metadata"].(map[string]any)
	meta["labels"] = labels
	for k, v := range annotations {
		meta["annotations"].(map[string]string)[k] = v
	}
	return s
}

func TestKubernetesSelectAgainstAPIServer(t *testing.T) {
	cluster := kubetest.Start(t)
	bin := buildBinary(t)
	dir := t.TempDir()

	// The configuration and RBAC as the chart renders them.
	docs := renderChart(t, `
config:
  kubernetes:
    secrets:
      namespace_selector: "team=payments"
    configmaps:
      key_patterns: ["ca.crt"]
      annotation_selector: "certwatch.example.com/watch=true"
    webhooks: false
    apiservices: false
    crds: false
    cert_manager: {enabled: false}
    csrs: true
    expose_labels: [team, app.kubernetes.io/name]
    expose_annotations: [example.com/owner]
`)
	for _, kind := range []string{"ClusterRole", "ClusterRoleBinding", "ServiceAccount"} {
		if len(docs[kind]) != 1 {
			t.Fatalf("the chart rendered %d %s, want 1", len(docs[kind]), kind)
		}
	}
	rbac := strings.Join(append(append(docs["ServiceAccount"], docs["ClusterRole"]...), docs["ClusterRoleBinding"]...), "\n---\n")
	for _, want := range []string{`resources: ["certificatesigningrequests"]`, `resources: ["namespaces"]`, `resources: ["secrets","configmaps"]`} {
		if !strings.Contains(rbac, want) {
			t.Fatalf("the chart's ClusterRole lacks %s:\n%s", want, rbac)
		}
	}
	rbacFile := filepath.Join(dir, "rbac.yaml")
	writeFile(t, rbacFile, []byte(rbac))
	applyManifests(t, cluster, rbacFile)
	token := cluster.ServiceAccountToken(t, "monitoring", "sel-certwatch")

	// The kubelet CA, which only ca_file knows.
	kubeCA := testpki.NewChain(t, testpki.Options{})
	caFile := filepath.Join(dir, "kube-ca.crt")
	writeFile(t, caFile, testpki.PEM(kubeCA.Root))
	cfg := renderedConfig(t, docs)
	cfg["kubernetes"].(map[string]any)["ca_file"] = caFile
	cfgData, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "config.yml")
	writeFile(t, cfgFile, cfgData)

	setNamespace := func(name string, labels map[string]string) {
		t.Helper()
		cluster.EnsureNamespace(t, name)
		if code, body := cluster.Do(t, http.MethodPatch, "/api/v1/namespaces/"+name, map[string]any{"metadata": map[string]any{"labels": labels}}); code != http.StatusOK {
			t.Fatalf("labelling namespace %s: %d %s", name, code, body)
		}
	}
	setNamespace("payments", map[string]string{"team": "payments"})
	setNamespace("web", map[string]string{"team": "web"})
	chain := testpki.NewChain(t, testpki.Options{})
	for _, s := range []map[string]any{
		labelledSecretJSON("payments", "api", chain, map[string]string{"team": "payments", "app.kubernetes.io/name": "checkout", "unlisted": "x"},
			map[string]string{"example.com/owner": "alice"}, t),
		labelledSecretJSON("payments", "bare", chain, nil, nil, t),
		labelledSecretJSON("web", "frontend", chain, map[string]string{"team": "web"}, nil, t),
	} {
		ns := s["metadata"].(map[string]any)["namespace"].(string)
		if code, body := cluster.Do(t, http.MethodPost, "/api/v1/namespaces/"+ns+"/secrets", s); code != http.StatusCreated {
			t.Fatalf("creating a Secret: %d %s", code, body)
		}
	}
	for name, annotations := range map[string]map[string]string{
		"watched":   {"certwatch.example.com/watch": "true"},
		"unwatched": {"certwatch.example.com/watch": "false"},
	} {
		if code, body := cluster.Do(t, http.MethodPost, "/api/v1/namespaces/web/configmaps", map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": name, "annotations": annotations},
			"data": map[string]string{"ca.crt": string(testpki.PEM(chain.Root))},
		}); code != http.StatusCreated {
			t.Fatalf("creating a ConfigMap: %d %s", code, body)
		}
	}

	// CSRs: a kubelet client certificate issued by the kubelet CA, a
	// serving certificate of a custom signer whose CA certwatch does not
	// know, and one still pending.
	kubeletKey := testpki.New(t, kubeCA.Intermediate, testpki.Options{CommonName: "system:node:worker-1",
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	issueCSR(t, cluster, "node-csr-worker-1", "kubernetes.io/kube-apiserver-client-kubelet",
		[]string{"digital signature", "client auth"}, kubeletKey, kubeCA.Intermediate)
	issueCSR(t, cluster, "custom-serving", "example.com/serving", []string{"digital signature", "server auth"}, chain.Leaf, chain.Intermediate)
	issueCSR(t, cluster, "pending", "example.com/serving", []string{"digital signature", "server auth"}, nil)

	p := startExporter(t, bin, cfgFile, "--kubeconfig="+cluster.Kubeconfig(t, token))
	notAfter := "certwatch_cert_not_after_timestamp_seconds"
	has := func(m map[string]*dto.MetricFamily, src, target string) bool {
		return len(find(m, notAfter, map[string]string{"source": src, "target": target})) > 0
	}
	mfs := waitForMetrics(t, p, "the CSRs, Secrets and ConfigMaps", func(m map[string]*dto.MetricFamily) bool {
		return has(m, "csr", "node-csr-worker-1") && has(m, "csr", "custom-serving") && has(m, "secret", "payments/api") &&
			has(m, "secret", "payments/bare") && has(m, "configmap", "web/watched")
	})

	t.Run("CSRs with a certificate are places, labelled with their signer", func(t *testing.T) {
		kubelet := one(t, mfs, notAfter, map[string]string{"source": "csr", "target": "node-csr-worker-1", "index": "0"})
		if label(kubelet, "signer_name") != "kubernetes.io/kube-apiserver-client-kubelet" || label(kubelet, "key") != "" {
			t.Errorf("kubelet CSR series: %v", kubelet)
		}
		if got, want := kubelet.GetGauge().GetValue(), float64(kubeletKey.Cert.NotAfter.Unix()); got != want {
			t.Errorf("kubelet certificate not after %v, want %v", got, want)
		}
		if m := one(t, mfs, "certwatch_chain_valid", map[string]string{"source": "csr", "target": "node-csr-worker-1"}); label(m, "reason") != "ok" {
			t.Errorf("the kubelet certificate is judged against ca_file: %v", m)
		}
		custom := one(t, mfs, "certwatch_chain_valid", map[string]string{"source": "csr", "target": "custom-serving"})
		if label(custom, "signer_name") != "example.com/serving" || label(custom, "reason") != "unknown_authority" {
			t.Errorf("custom signer's certificate, whose CA is neither in ca_file nor a system root: %v", custom)
		}
		if len(find(mfs, "certwatch_target_success", map[string]string{"source": "csr", "target": "pending"})) != 0 {
			t.Error("a pending CSR is a place")
		}
		for _, res := range []string{"certificatesigningrequests", "namespaces", "secrets", "configmaps"} {
			if v := one(t, mfs, "certwatch_kubernetes_informer_synced", map[string]string{"resource": res}).GetGauge().GetValue(); v != 1 {
				t.Errorf("%s informer synced = %v", res, v)
			}
		}
	})

	t.Run("allow-listed labels and annotations become label_* and annotation_*", func(t *testing.T) {
		api := one(t, mfs, notAfter, map[string]string{"source": "secret", "target": "payments/api", "key": "tls.crt", "index": "0"})
		for name, want := range map[string]string{"label_team": "payments", "label_app_kubernetes_io_name": "checkout", "annotation_example_com_owner": "alice"} {
			if got := label(api, name); got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
		if hasLabel(api, "label_unlisted") {
			t.Error("a label not on the allow-list became a metric label")
		}
		// Every series of the kind carries the labels, empty when the
		// object lacks them: one label set per family.
		for _, m := range append(find(mfs, notAfter, map[string]string{"target": "payments/bare"}),
			find(mfs, "certwatch_chain_valid", map[string]string{"source": "csr"})...) {
			for _, name := range []string{"label_team", "label_app_kubernetes_io_name", "annotation_example_com_owner"} {
				if !hasLabel(m, name) || label(m, name) != "" {
					t.Errorf("series %v: want %s present and empty", m, name)
				}
			}
		}
	})

	t.Run("a changed label value changes the series", func(t *testing.T) {
		cluster.Do(t, http.MethodPatch, "/api/v1/namespaces/payments/secrets/api", map[string]any{"metadata": map[string]any{"labels": map[string]string{"team": "billing"}}})
		mfs := waitForMetrics(t, p, "the new label value", func(m map[string]*dto.MetricFamily) bool {
			return len(find(m, notAfter, map[string]string{"target": "payments/api", "key": "tls.crt", "label_team": "billing"})) == 2
		})
		if n := len(find(mfs, notAfter, map[string]string{"target": "payments/api", "label_team": "payments"})); n != 0 {
			t.Errorf("%d series still carry the old value", n)
		}
	})

	t.Run("annotation_selector keeps only the annotated objects", func(t *testing.T) {
		if has(mfs, "configmap", "web/unwatched") {
			t.Error("a ConfigMap not matching annotation_selector is a place")
		}
		cluster.Do(t, http.MethodPatch, "/api/v1/namespaces/web/configmaps/unwatched",
			map[string]any{"metadata": map[string]any{"annotations": map[string]string{"certwatch.example.com/watch": "true"}}})
		waitForMetrics(t, p, "the newly annotated ConfigMap", func(m map[string]*dto.MetricFamily) bool { return has(m, "configmap", "web/unwatched") })
	})

	t.Run("namespaces enter and leave namespace_selector at runtime", func(t *testing.T) {
		if has(mfs, "secret", "web/frontend") {
			t.Fatal("a Secret of a namespace not matching namespace_selector is a place")
		}
		setNamespace("web", map[string]string{"team": "payments"})
		waitForMetrics(t, p, "web's Secret after web starts matching", func(m map[string]*dto.MetricFamily) bool {
			return has(m, "secret", "web/frontend") && has(m, "secret", "payments/api")
		})
		setNamespace("payments", map[string]string{"team": "billing"})
		waitForMetrics(t, p, "payments' Secrets to go", func(m map[string]*dto.MetricFamily) bool {
			return !has(m, "secret", "payments/api") && !has(m, "secret", "payments/bare") && has(m, "secret", "web/frontend")
		})
		// A Secret written while its namespace does not match shows when it does.
		late := testpki.NewChain(t, testpki.Options{})
		if code, body := cluster.Do(t, http.MethodPost, "/api/v1/namespaces/payments/secrets", tlsSecretJSON("payments", "late", late, t)); code != http.StatusCreated {
			t.Fatalf("creating a Secret: %d %s", code, body)
		}
		setNamespace("payments", map[string]string{"team": "payments"})
		waitForMetrics(t, p, "payments' Secrets back, the late one included", func(m map[string]*dto.MetricFamily) bool {
			return has(m, "secret", "payments/api") && has(m, "secret", "payments/late")
		})
	})

	t.Run("a scrape makes no API request", func(t *testing.T) {
		scrapesMakeNoRequest(t, cluster, p, "secrets", "configmaps", "namespaces", "certificatesigningrequests")
	})

	t.Run("the chart's rules are least privilege", func(t *testing.T) {
		for _, c := range []struct {
			method, path string
			want         int
		}{
			{http.MethodGet, "/apis/certificates.k8s.io/v1/certificatesigningrequests", http.StatusOK},
			{http.MethodGet, "/api/v1/namespaces", http.StatusOK},
			{http.MethodGet, "/apis/certificates.k8s.io/v1/certificatesigningrequests/pending", http.StatusForbidden}, // no get
			{http.MethodGet, "/api/v1/namespaces/web", http.StatusForbidden},                                          // no get
			{http.MethodPut, "/apis/certificates.k8s.io/v1/certificatesigningrequests/pending/approval", http.StatusForbidden},
			{http.MethodGet, "/api/v1/pods", http.StatusForbidden},
		} {
			if code, body := cluster.DoAs(t, token, c.method, c.path, nil); code != c.want {
				t.Errorf("%s %s as the chart's ServiceAccount: %d, want %d: %s", c.method, c.path, code, c.want, body)
			}
		}
		// Without csrs and namespace_selector the chart grants neither.
		plain := renderChart(t, "config:\n  kubernetes:\n    secrets: {}\n    webhooks: false\n    apiservices: false\n    crds: false\n    cert_manager: {enabled: false}\n")
		role := strings.Join(plain["ClusterRole"], "\n")
		if strings.Contains(role, "certificatesigningrequests") || strings.Contains(role, `"namespaces"`) {
			t.Errorf("the chart grants CSRs or Namespaces without csrs or namespace_selector:\n%s", role)
		}
	})
}
