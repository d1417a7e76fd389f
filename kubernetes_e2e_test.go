package main

// The Kubernetes source proven against a real kube-apiserver and etcd:
// certwatch (the built binary) runs under its own ServiceAccount with the
// shipped RBAC, sees Secrets, ConfigMaps and webhook caBundles appear,
// renew, break and go, survives an API server restart, and reports a Role
// without list as a permission error. Keystores open with a password kept in
// another Secret, which may come late, change and go.

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/certwatch/certwatch/internal/kubetest"
	"github.com/certwatch/certwatch/internal/testpki"
)

// applyManifests creates every object of a multi-document YAML file.
func applyManifests(t *testing.T, c *kubetest.Cluster, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var meta struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Namespace string `yaml:"namespace"`
			} `yaml:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil || meta.Kind == "" {
			continue
		}
		ns := meta.Metadata.Namespace
		if ns != "" {
			c.EnsureNamespace(t, ns)
		}
		var p string
		switch meta.Kind {
		case "ServiceAccount":
			p = "/api/v1/namespaces/" + ns + "/serviceaccounts"
		case "ClusterRole", "ClusterRoleBinding":
			p = "/apis/rbac.authorization.k8s.io/v1/" + strings.ToLower(meta.Kind) + "s"
		case "Role", "RoleBinding":
			p = "/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns + "/" + strings.ToLower(meta.Kind) + "s"
		default:
			t.Fatalf("%s: unexpected kind %s", path, meta.Kind)
		}
		if code, body := c.Do(t, http.MethodPost, p, doc); code != http.StatusCreated && code != http.StatusConflict {
			t.Fatalf("creating %s from %s: %d %s", meta.Kind, path, code, body)
		}
	}
}

func tlsSecretJSON(ns, name string, chain *testpki.Chain, t *testing.T) map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
		"metadata": map[string]any{"name": name, "namespace": ns,
			"annotations": map[string]string{"cert-manager.io/certificate-name": name}},
		"data": map[string]string{
			"tls.crt": base64.StdEncoding.EncodeToString(testpki.PEM(chain.Leaf, chain.Intermediate)),
			"tls.key": base64.StdEncoding.EncodeToString(testpki.KeyPEM(t, chain.Leaf.Key)),
			"ca.crt":  base64.StdEncoding.EncodeToString(testpki.PEM(chain.Root)),
		},
	}
}

// scrapesMakeNoRequest checks that 10 scrapes leave the API server's request
// counters for resources unchanged.
func scrapesMakeNoRequest(t *testing.T, cluster *kubetest.Cluster, p *exporterProcess, resources ...string) {
	t.Helper()
	requests := func() float64 {
		code, body := cluster.Do(t, http.MethodGet, "/metrics", nil)
		if code != http.StatusOK {
			t.Fatalf("apiserver /metrics: %d", code)
		}
		total := 0.0
		for _, s := range find(parseMetrics(t, body), "apiserver_request_total", nil) {
			if slices.Contains(resources, label(s, "resource")) {
				total += s.GetCounter().GetValue() // every verb: the test's own creates make it non-zero
			}
		}
		return total
	}
	before := requests()
	if before == 0 {
		t.Fatal("apiserver_request_total counts nothing for these resources: the check would prove nothing")
	}
	for range 10 {
		p.scrape(t, "/metrics")
	}
	if after := requests(); after != before {
		t.Errorf("10 scrapes made %v requests to the API server, want 0", after-before)
	}
}

// waitForMetrics scrapes until cond holds, for 20 s at most.
func waitForMetrics(t *testing.T, p *exporterProcess, what string, cond func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
	t.Helper()
	return waitForMetricsWithin(t, p, 20*time.Second, what, cond)
}

// waitForMetricsWithin scrapes until cond holds, failing the test after
// timeout.
func waitForMetricsWithin(t *testing.T, p *exporterProcess, timeout time.Duration, what string, cond func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		mfs := p.scrape(t, "/metrics")
		if cond(mfs) {
			return mfs
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestKubernetesAgainstAPIServer(t *testing.T) {
	cluster := kubetest.Start(t)
	bin := buildBinary(t)
	dir := t.TempDir()

	applyManifests(t, cluster, "deploy/rbac/cluster.yaml")
	token := cluster.ServiceAccountToken(t, "monitoring", "certwatch")
	for _, ns := range []string{"web", "payments"} {
		cluster.EnsureNamespace(t, ns)
	}

	good := testpki.NewChain(t, testpki.Options{})
	if code, body := cluster.Do(t, http.MethodPost, "/api/v1/namespaces/web/secrets", tlsSecretJSON("web", "frontend", good, t)); code != http.StatusCreated {
		t.Fatalf("creating secret: %d %s", code, body)
	}
	cluster.Do(t, http.MethodPost, "/api/v1/namespaces/payments/secrets", tlsSecretJSON("payments", "api", testpki.NewChain(t, testpki.Options{}), t))
	cluster.Do(t, http.MethodPost, "/api/v1/namespaces/web/configmaps", map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "trust"},
		"data": map[string]string{"ca.crt": string(testpki.PEM(good.Root))},
	})
	cluster.Do(t, http.MethodPost, "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
		"metadata": map[string]any{"name": "policy"},
		"webhooks": []map[string]any{{
			"name": "check.example.com", "admissionReviewVersions": []string{"v1"}, "sideEffects": "None",
			"clientConfig": map[string]any{"url": "https://policy.example.com/check", "caBundle": base64.StdEncoding.EncodeToString(testpki.PEM(good.Root))},
			"rules":        []map[string]any{{"apiGroups": []string{"example.com"}, "apiVersions": []string{"v1"}, "operations": []string{"CREATE"}, "resources": []string{"widgets"}}},
		}},
	})

	writeFile(t, filepath.Join(dir, "config.yml"), []byte(`
kubernetes:
  secrets: {}
  configmaps:
    key_patterns: ["ca.crt"]
  webhooks: true
  labels: {cluster: test}
`))
	p := startExporter(t, bin, filepath.Join(dir, "config.yml"), "--kubeconfig="+cluster.Kubeconfig(t, token))

	// Ready only once the caches have synced.
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, _ := p.get(t, "/-/ready", nil)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/-/ready still %d", code)
		}
		time.Sleep(100 * time.Millisecond)
	}

	secretSeries := func(mfs map[string]*dto.MetricFamily, target string) []*dto.Metric {
		return find(mfs, "certwatch_cert_not_after_timestamp_seconds", map[string]string{"source": "secret", "target": target, "key": "tls.crt"})
	}
	mfs := waitForMetrics(t, p, "the secrets", func(m map[string]*dto.MetricFamily) bool {
		return len(secretSeries(m, "web/frontend")) == 2 && len(secretSeries(m, "payments/api")) == 2
	})
	leaf := one(t, mfs, "certwatch_cert_not_after_timestamp_seconds", map[string]string{"target": "web/frontend", "key": "tls.crt", "index": "0"})
	if label(leaf, "kube_namespace") != "web" || label(leaf, "certmanager_certificate") != "frontend" || label(leaf, "cluster") != "test" {
		t.Errorf("secret labels: %v", leaf)
	}
	if m := one(t, mfs, "certwatch_chain_valid", map[string]string{"source": "secret", "target": "web/frontend", "key": "tls.crt"}); label(m, "reason") != "ok" {
		t.Errorf("tls.crt verified against its ca.crt: %v", m)
	}
	one(t, mfs, "certwatch_cert_not_after_timestamp_seconds", map[string]string{"source": "configmap", "target": "web/trust", "key": "ca.crt"})
	one(t, mfs, "certwatch_cert_not_after_timestamp_seconds", map[string]string{"source": "validatingwebhook", "target": "policy", "key": "check.example.com"})
	for _, res := range []string{"secrets", "configmaps", "validatingwebhookconfigurations", "mutatingwebhookconfigurations"} {
		if v := one(t, mfs, "certwatch_kubernetes_informer_synced", map[string]string{"resource": res}).GetGauge().GetValue(); v != 1 {
			t.Errorf("%s informer synced = %v", res, v)
		}
	}

	t.Run("a scrape makes no API request", func(t *testing.T) {
		scrapesMakeNoRequest(t, cluster, p, "secrets", "configmaps", "validatingwebhookconfigurations", "mutatingwebhookconfigurations")
	})

	t.Run("renewal shows within seconds", func(t *testing.T) {
		renewed := testpki.NewChain(t, testpki.Options{NotAfter: time.Now().Add(300 * 24 * time.Hour)})
		start := time.Now()
		if code, body := cluster.Do(t, http.MethodPut, "/api/v1/namespaces/web/secrets/frontend", tlsSecretJSON("web", "frontend", renewed, t)); code != http.StatusOK {
			t.Fatalf("update: %d %s", code, body)
		}
		want := float64(renewed.Leaf.Cert.NotAfter.Unix())
		waitForMetrics(t, p, "the renewed date", func(m map[string]*dto.MetricFamily) bool {
			s := find(m, "certwatch_cert_not_after_timestamp_seconds", map[string]string{"target": "web/frontend", "key": "tls.crt", "index": "0"})
			return len(s) == 1 && s[0].GetGauge().GetValue() == want
		})
		t.Logf("renewal visible after %v", time.Since(start).Round(time.Millisecond))
	})

	t.Run("corruption is an error class, the rest keeps working", func(t *testing.T) {
		cluster.Do(t, http.MethodPatch, "/api/v1/namespaces/payments/secrets/api", map[string]any{
			"data": map[string]string{"tls.crt": base64.StdEncoding.EncodeToString([]byte("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"))},
		})
		mfs := waitForMetrics(t, p, "the parse error", func(m map[string]*dto.MetricFamily) bool {
			return len(find(m, "certwatch_target_error_info", map[string]string{"source": "secret", "target": "payments/api", "class": "parse"})) == 1
		})
		if len(secretSeries(mfs, "web/frontend")) != 2 {
			t.Error("a corrupt secret cost the others their series")
		}
	})

	t.Run("deletion removes the series", func(t *testing.T) {
		cluster.Do(t, http.MethodDelete, "/api/v1/namespaces/payments/secrets/api", nil)
		waitForMetrics(t, p, "the deleted secret to go", func(m map[string]*dto.MetricFamily) bool {
			return len(find(m, "certwatch_target_success", map[string]string{"source": "secret", "target": "payments/api"})) == 0
		})
	})

	t.Run("recovers from an API server restart", func(t *testing.T) {
		cluster.RestartAPIServer(t)
		fresh := testpki.NewChain(t, testpki.Options{})
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, _ := cluster.Do(t, http.MethodPost, "/api/v1/namespaces/web/secrets", tlsSecretJSON("web", "after-restart", fresh, t))
			if code == http.StatusCreated || code == http.StatusConflict {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("creating after restart: %d", code)
			}
			time.Sleep(200 * time.Millisecond)
		}
		waitForMetrics(t, p, "a secret created after the restart", func(m map[string]*dto.MetricFamily) bool {
			return len(secretSeries(m, "web/after-restart")) == 2
		})
	})

	t.Run("a revoked Secret under revocation crl: true", func(t *testing.T) {
		var crl atomic.Pointer[[]byte]
		var fetches atomic.Int64
		dp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fetches.Add(1)
			if b := crl.Load(); b != nil {
				_, _ = w.Write(*b)
			}
		}))
		t.Cleanup(dp.Close)
		revoked := testpki.NewChain(t, testpki.Options{CRLURLs: []string{dp.URL + "/intermediate.crl"}})
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(3),
			ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(24 * time.Hour),
			RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: revoked.Leaf.Cert.SerialNumber,
				RevocationTime: time.Now().Add(-time.Minute), ReasonCode: 1}}}, revoked.Intermediate.Cert, revoked.Intermediate.Key)
		if err != nil {
			t.Fatal(err)
		}
		crl.Store(&der)
		if code, body := cluster.Do(t, http.MethodPost, "/api/v1/namespaces/web/secrets", tlsSecretJSON("web", "revoked", revoked, t)); code != http.StatusCreated {
			t.Fatalf("creating secret: %d %s", code, body)
		}
		cfg := filepath.Join(dir, "revocation.yml")
		writeFile(t, cfg, []byte("global:\n  revocation:\n    allow: [\"127.0.0.1/32:*\"]\nkubernetes:\n  secrets: {}\n  revocation: {crl: true}\n"))
		q := startExporter(t, bin, cfg, "--kubeconfig="+cluster.Kubeconfig(t, token))
		mfs := waitForMetrics(t, q, "the revoked verdict", func(m map[string]*dto.MetricFamily) bool {
			return len(find(m, "certwatch_chain_valid", map[string]string{"source": "secret", "target": "web/revoked", "key": "tls.crt", "reason": "revoked"})) == 1
		})
		info := one(t, mfs, "certwatch_cert_revocation_info", map[string]string{"source": "secret", "target": "web/revoked", "key": "tls.crt", "index": "0", "method": "crl"})
		if label(info, "status") != "revoked" || label(info, "reason") != "keyCompromise" {
			t.Errorf("revocation info: %v", info)
		}
		if m := one(t, mfs, "certwatch_chain_valid", map[string]string{"source": "secret", "target": "web/frontend", "key": "tls.crt"}); label(m, "reason") != "ok" {
			t.Errorf("a Secret not revoked: %v", m)
		}
		one(t, mfs, "certwatch_crl_revoked_certificates", map[string]string{"source": "crl_distribution_point", "target": dp.URL + "/intermediate.crl"})
		if n := fetches.Load(); n != 1 {
			t.Errorf("the distribution point was asked %d times, want once: its CRL is kept until its next update", n)
		}
	})

	// client-go streams the initial list over a watch (WatchList) where the
	// server supports it: a Role with watch but without list still works.
	t.Run("a Role without list but with watch still works", func(t *testing.T) {
		watchOnly := cluster.ServiceAccountToken(t, "monitoring", "watchonly")
		cluster.Do(t, http.MethodPost, "/apis/rbac.authorization.k8s.io/v1/clusterroles", map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": map[string]any{"name": "certwatch-watchonly"},
			"rules": []map[string]any{{"apiGroups": []string{""}, "resources": []string{"secrets"}, "verbs": []string{"watch"}}},
		})
		cluster.Do(t, http.MethodPost, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": map[string]any{"name": "certwatch-watchonly"},
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "certwatch-watchonly"},
			"subjects": []map[string]any{{"kind": "ServiceAccount", "name": "watchonly", "namespace": "monitoring"}},
		})
		if code, _ := cluster.DoAs(t, watchOnly, http.MethodGet, "/api/v1/secrets", nil); code != http.StatusForbidden {
			t.Fatalf("a plain list answered %d for a watch-only account", code)
		}
		cfg := filepath.Join(dir, "secrets-watchonly.yml")
		writeFile(t, cfg, []byte("kubernetes:\n  secrets: {}\n"))
		q := startExporter(t, bin, cfg, "--kubeconfig="+cluster.Kubeconfig(t, watchOnly))
		waitForMetrics(t, q, "secrets through a watch-only Role", func(m map[string]*dto.MetricFamily) bool {
			return len(secretSeries(m, "web/frontend")) == 2
		})
	})

	t.Run("a Role without list and watch is a permission error", func(t *testing.T) {
		limited := cluster.ServiceAccountToken(t, "monitoring", "limited")
		cluster.Do(t, http.MethodPost, "/apis/rbac.authorization.k8s.io/v1/clusterroles", map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": map[string]any{"name": "certwatch-nolist"},
			"rules": []map[string]any{{"apiGroups": []string{""}, "resources": []string{"secrets"}, "verbs": []string{"get"}}},
		})
		cluster.Do(t, http.MethodPost, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": map[string]any{"name": "certwatch-nolist"},
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "certwatch-nolist"},
			"subjects": []map[string]any{{"kind": "ServiceAccount", "name": "limited", "namespace": "monitoring"}},
		})
		cfg := filepath.Join(dir, "secrets-only.yml")
		writeFile(t, cfg, []byte("kubernetes:\n  secrets: {}\n"))
		q := startExporter(t, bin, cfg, "--kubeconfig="+cluster.Kubeconfig(t, limited))
		mfs := waitForMetrics(t, q, "the permission error", func(m map[string]*dto.MetricFamily) bool {
			s := find(m, "certwatch_kubernetes_watch_errors_total", map[string]string{"resource": "secrets", "class": "permission"})
			return len(s) == 1 && s[0].GetCounter().GetValue() > 0
		})
		if v := one(t, mfs, "certwatch_kubernetes_informer_synced", map[string]string{"resource": "secrets"}).GetGauge().GetValue(); v != 0 {
			t.Errorf("synced = %v without list and watch permission", v)
		}
		if code, _ := q.get(t, "/-/ready", nil); code != http.StatusServiceUnavailable {
			t.Errorf("/-/ready answered %d without list and watch permission", code)
		}
		if !strings.Contains(q.stderr.String(), "forbidden") {
			t.Error("the log does not say the list was forbidden")
		}
	})
}

// A cert-manager style keystore: a kubernetes.io/tls Secret with
// keystore.p12, whose password lives in another Secret
// (keystores.pkcs12.passwordSecretRef), under the shipped RBAC.
func TestKubernetesPasswordSecretAgainstAPIServer(t *testing.T) {
	cluster := kubetest.Start(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	applyManifests(t, cluster, "deploy/rbac/cluster.yaml")
	token := cluster.ServiceAccountToken(t, "monitoring", "certwatch")
	cluster.EnsureNamespace(t, "shop")

	const right, wrong = "keystore-pass-Right-7d1f", "keystore-pass-Wrong-93ac"
	chain := testpki.NewChain(t, testpki.Options{})
	keystore := tlsSecretJSON("shop", "checkout-tls", chain, t)
	keystore["data"].(map[string]string)["keystore.p12"] = base64.StdEncoding.EncodeToString(
		testpki.PKCS12(t, chain.Leaf, []*testpki.Cert{chain.Intermediate}, right)) // go-pkcs12 Modern, made now
	if code, body := cluster.Do(t, http.MethodPost, "/api/v1/namespaces/shop/secrets", keystore); code != http.StatusCreated {
		t.Fatalf("creating the keystore Secret: %d %s", code, body)
	}
	passwordSecret := func(value string) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
			"metadata": map[string]any{"name": "checkout-keystore-password", "namespace": "shop"},
			"data":     map[string]string{"password": base64.StdEncoding.EncodeToString([]byte(value))}}
	}

	writeFile(t, filepath.Join(dir, "config.yml"), []byte(`
kubernetes:
  secrets:
    password_secret:
      name: checkout-keystore-password
      key: password
`))
	p := startExporter(t, bin, filepath.Join(dir, "config.yml"), "--kubeconfig="+cluster.Kubeconfig(t, token))

	keystoreSeries := func(m map[string]*dto.MetricFamily) []*dto.Metric {
		return find(m, "certwatch_cert_not_after_timestamp_seconds", map[string]string{"source": "secret", "target": "shop/checkout-tls", "key": "keystore.p12"})
	}
	errorClass := func(m map[string]*dto.MetricFamily, class string) bool {
		return len(find(m, "certwatch_target_error_info", map[string]string{"source": "secret", "target": "shop/checkout-tls", "class": class})) == 1
	}
	ok := func(m map[string]*dto.MetricFamily) bool {
		return len(keystoreSeries(m)) == 2 && len(find(m, "certwatch_target_error_info", map[string]string{"target": "shop/checkout-tls"})) == 0
	}

	// Before the password Secret exists: wrong_password, tls.crt still read.
	mfs := waitForMetrics(t, p, "wrong_password without the password Secret", func(m map[string]*dto.MetricFamily) bool {
		return errorClass(m, "wrong_password")
	})
	if n := len(find(mfs, "certwatch_cert_not_after_timestamp_seconds", map[string]string{"target": "shop/checkout-tls", "key": "tls.crt"})); n != 2 {
		t.Errorf("tls.crt: %d series, want 2", n)
	}
	// Both Secrets informers report, each under its own resource value.
	for _, res := range []string{"secrets", "secrets/password"} {
		if v := one(t, mfs, "certwatch_kubernetes_informer_synced", map[string]string{"resource": res}).GetGauge().GetValue(); v != 1 {
			t.Errorf("%s informer synced = %v", res, v)
		}
		one(t, mfs, "certwatch_kubernetes_watch_errors_total", map[string]string{"resource": res, "class": "permission"})
	}
	if !strings.Contains(p.stderr.String(), "checkout-keystore-password does not exist") {
		t.Error("the log does not name the missing password Secret")
	}

	t.Run("the password arrives after the keystore", func(t *testing.T) {
		if code, body := cluster.Do(t, http.MethodPost, "/api/v1/namespaces/shop/secrets", passwordSecret(right+"\n")); code != http.StatusCreated {
			t.Fatalf("creating the password Secret: %d %s", code, body)
		}
		mfs := waitForMetrics(t, p, "the keystore's certificates", ok)
		leaf := one(t, mfs, "certwatch_cert_not_after_timestamp_seconds", map[string]string{"key": "keystore.p12", "index": "0"})
		if got, want := leaf.GetGauge().GetValue(), float64(chain.Leaf.Cert.NotAfter.Unix()); got != want {
			t.Errorf("keystore leaf not after %v, want %v", got, want)
		}
	})

	t.Run("a scrape makes no API request", func(t *testing.T) {
		scrapesMakeNoRequest(t, cluster, p, "secrets")
	})

	t.Run("a wrong password is wrong_password", func(t *testing.T) {
		if code, body := cluster.Do(t, http.MethodPut, "/api/v1/namespaces/shop/secrets/checkout-keystore-password", passwordSecret(wrong)); code != http.StatusOK {
			t.Fatalf("update: %d %s", code, body)
		}
		mfs := waitForMetrics(t, p, "wrong_password", func(m map[string]*dto.MetricFamily) bool { return errorClass(m, "wrong_password") })
		if len(keystoreSeries(mfs)) != 0 {
			t.Error("certificates reported from a keystore the password does not open")
		}
	})

	t.Run("the fixed password brings the series back", func(t *testing.T) {
		if code, body := cluster.Do(t, http.MethodPut, "/api/v1/namespaces/shop/secrets/checkout-keystore-password", passwordSecret(right)); code != http.StatusOK {
			t.Fatalf("update: %d %s", code, body)
		}
		waitForMetrics(t, p, "the keystore's certificates again", ok)
	})

	t.Run("a deleted password Secret is wrong_password", func(t *testing.T) {
		if code, body := cluster.Do(t, http.MethodDelete, "/api/v1/namespaces/shop/secrets/checkout-keystore-password", nil); code != http.StatusOK {
			t.Fatalf("delete: %d %s", code, body)
		}
		waitForMetrics(t, p, "wrong_password after the deletion", func(m map[string]*dto.MetricFamily) bool { return errorClass(m, "wrong_password") })
	})

	for _, pw := range []string{right, wrong} {
		if strings.Contains(p.stderr.String(), pw) {
			t.Errorf("a password appears in certwatch's log")
		}
	}
}
