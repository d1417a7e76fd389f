package main

// cert-manager's lifecycle (kubernetes.cert_manager) proven against a real
// kube-apiserver serving cert-manager's own CRDs (read from the
// cert-manager module, fetched into the module cache by the test): Issuers,
// ClusterIssuers, Certificates and CertificateRequests are created as
// cert-manager writes them, statuses through the status subresource, beside
// Secrets holding chains made now. certwatch (the built binary) runs under a
// ServiceAccount bound to exactly the rules the Helm chart renders, and a
// real Prometheus evaluates the shipped cert-manager alerts against it.
// Without the chart's cert-manager rule, certwatch reports the denial and
// serves everything else.

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/certwatch/certwatch/dashboards"
	"github.com/certwatch/certwatch/internal/kubetest"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/internal/testtools"
)

// certManagerModule is the cert-manager release whose CRDs the test installs.
const certManagerModule = "github.com/cert-manager/cert-manager@v1.19.2"

// certManagerCRDs returns the four cert-manager.io CRDs of the release,
// downloading the module into the module cache when it is not there.
func certManagerCRDs(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", certManagerModule)
	cmd.Dir = t.TempDir() // outside the product's module: its go.mod is left alone
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v\n%s", certManagerModule, err, out)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download %s: %v %s\n%s", certManagerModule, err, mod.Error, out)
	}
	var crds []string
	for _, kind := range []string{"certificates", "certificaterequests", "issuers", "clusterissuers"} {
		data, err := os.ReadFile(filepath.Join(mod.Dir, "deploy", "crds", "cert-manager.io_"+kind+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		crds = append(crds, strings.TrimPrefix(string(data), "---\n"))
	}
	return crds
}

// installCertManagerCRDs creates the CRDs and waits until cert-manager.io/v1
// serves all four.
func installCertManagerCRDs(t *testing.T, cluster *kubetest.Cluster) {
	t.Helper()
	for _, crd := range certManagerCRDs(t) {
		if code, body := cluster.Do(t, http.MethodPost, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd); code != http.StatusCreated {
			t.Fatalf("creating a cert-manager CRD: %d %s", code, body)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := cluster.Do(t, http.MethodGet, "/apis/cert-manager.io/v1", nil)
		var list struct {
			Resources []struct{ Name string } `json:"resources"`
		}
		_ = json.Unmarshal(body, &list)
		n := 0
		for _, r := range list.Resources {
			if slices.Contains([]string{"certificates", "certificaterequests", "issuers", "clusterissuers"}, r.Name) {
				n++
			}
		}
		if code == http.StatusOK && n == 4 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cert-manager.io/v1 not served: %d %s", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// chartRBAC renders the chart's ServiceAccount and RBAC for values and
// writes them, one object per document, for applyManifests.
func chartRBAC(t *testing.T, release, values string) string {
	t.Helper()
	dir := t.TempDir()
	valuesFile := filepath.Join(dir, "values.yaml")
	writeFile(t, valuesFile, []byte(values))
	cmd := exec.Command(testtools.Find(t, "helm"), "template", release, "charts/certwatch", "--namespace", "monitoring",
		"--kube-version", kubetest.KubeVersion, "-f", valuesFile,
		"--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml")
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(dir, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(dir, "config"), "HELM_DATA_HOME="+filepath.Join(dir, "data"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	var docs []string
	for _, doc := range strings.Split(string(out), "\n---\n") {
		if doc = strings.TrimSpace(strings.TrimPrefix(doc, "---\n")); strings.Contains(doc, "kind:") {
			docs = append(docs, doc)
		}
	}
	path := filepath.Join(dir, "rbac.yaml")
	writeFile(t, path, []byte(strings.Join(docs, "\n---\n")+"\n"))
	return path
}

// cmCondition is a status condition as cert-manager writes it.
func cmCondition(typ, status, reason string, since time.Time) map[string]any {
	return map[string]any{"type": typ, "status": status, "reason": reason, "message": reason + " (set by the test)",
		"lastTransitionTime": since.UTC().Format(time.RFC3339)}
}

// cmCreate creates a cert-manager object, then sets its status through the
// status subresource (as cert-manager's controllers do), and returns its uid.
func cmCreate(t *testing.T, cluster *kubetest.Cluster, plural, ns string, obj, status map[string]any) string {
	t.Helper()
	path := "/apis/cert-manager.io/v1/" + plural
	if ns != "" {
		path = "/apis/cert-manager.io/v1/namespaces/" + ns + "/" + plural
	}
	code, body := cluster.Do(t, http.MethodPost, path, obj)
	if code != http.StatusCreated {
		t.Fatalf("creating %s: %d %s", plural, code, body)
	}
	var created struct {
		Metadata struct{ Name, UID string } `json:"metadata"`
	}
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}
	if status != nil {
		if code, body := cluster.Do(t, http.MethodPatch, path+"/"+created.Metadata.Name+"/status", map[string]any{"status": status}); code != http.StatusOK {
			t.Fatalf("setting the status of %s %s: %d %s", plural, created.Metadata.Name, code, body)
		}
	}
	return created.Metadata.UID
}

// certManagerSecret is a kubernetes.io/tls Secret as cert-manager writes it.
func certManagerSecret(t *testing.T, ns, name, certificate string, leaf *testpki.Cert, chain *testpki.Chain) map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
		"metadata": map[string]any{"name": name, "namespace": ns, "annotations": map[string]string{
			"cert-manager.io/certificate-name": certificate, "cert-manager.io/issuer-name": "ca", "cert-manager.io/issuer-kind": "ClusterIssuer"}},
		"data": map[string]string{
			"tls.crt": base64.StdEncoding.EncodeToString(testpki.PEM(leaf, chain.Intermediate)),
			"tls.key": base64.StdEncoding.EncodeToString(testpki.KeyPEM(t, leaf.Key)),
			"ca.crt":  base64.StdEncoding.EncodeToString(testpki.PEM(chain.Root)),
		},
	}
}

func TestCertManagerAgainstAPIServer(t *testing.T) {
	cluster := kubetest.Start(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	day := 24 * time.Hour
	for _, ns := range []string{"web", "shop", "kube-system", "monitoring"} {
		cluster.EnsureNamespace(t, ns)
	}

	const cmConfig = `kubernetes:
  secrets:
    exclude_namespaces: [kube-system]
  cert_manager:
    enabled: true
    renewal_grace: 1h
  labels: {team: platform}
`
	writeFile(t, filepath.Join(dir, "config.yml"), []byte(cmConfig))

	t.Run("enabled without the CRDs is an error metric, not a crash", func(t *testing.T) {
		p := startExporter(t, bin, filepath.Join(dir, "config.yml"), "--kubeconfig="+cluster.AdminKubeconfig(t))
		mfs := waitForMetrics(t, p, "the not_found errors", func(m map[string]*dto.MetricFamily) bool {
			s := find(m, "certwatch_kubernetes_watch_errors_total", map[string]string{"resource": "certificates.cert-manager.io", "class": "not_found"})
			return len(s) == 1 && s[0].GetCounter().GetValue() > 0
		})
		if v := one(t, mfs, "certwatch_kubernetes_informer_synced", map[string]string{"resource": "clusterissuers.cert-manager.io"}).GetGauge().GetValue(); v != 0 {
			t.Errorf("synced = %v without the API", v)
		}
		if code, _ := p.get(t, "/-/ready", nil); code != http.StatusOK {
			t.Errorf("/-/ready answered %d: the missing cert-manager API must not hold readiness back", code)
		}
		if !strings.Contains(p.stderr.String(), "does not serve cert-manager.io/v1") {
			t.Errorf("the log does not say cert-manager's API is missing")
		}
	})

	installCertManagerCRDs(t, cluster)

	// The chart's RBAC with cert-manager on, and a ServiceAccount bound to it.
	// The chart's defaults watch webhooks, APIServices and CRDs too: turned
	// off here, as in certwatch's configuration, so the rules are exactly
	// what it needs.
	applyManifests(t, cluster, chartRBAC(t, "cm", `config:
  kubernetes:
    secrets:
      exclude_namespaces: [kube-system]
    webhooks: false
    apiservices: false
    crds: false
    cert_manager:
      enabled: true
      renewal_grace: 1h
    labels: {team: platform}
`))
	token := cluster.ServiceAccountToken(t, "monitoring", "cm-certwatch")
	// The API server may answer 429 for a moment after new CRDs and RBAC.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, body := cluster.DoAs(t, token, http.MethodGet, "/apis/cert-manager.io/v1/certificates", nil)
		if code == http.StatusOK {
			break
		}
		if code != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("the chart's rules do not allow listing Certificates: %d %s", code, body)
		}
	}
	if code, _ := cluster.DoAs(t, token, http.MethodGet, "/apis/cert-manager.io/v1/namespaces/web/certificates/healthy", nil); code != http.StatusForbidden {
		t.Errorf("the chart's rules allow get on Certificates (%d): list and watch are enough", code)
	}

	// Issuers: a ready ClusterIssuer that signs everything, and an ACME
	// Issuer that cannot register its account.
	chain := testpki.NewChain(t, testpki.Options{})
	cmCreate(t, cluster, "clusterissuers", "", map[string]any{"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
		"metadata": map[string]any{"name": "ca"}, "spec": map[string]any{"ca": map[string]any{"secretName": "ca-key-pair"}}},
		map[string]any{"conditions": []any{cmCondition("Ready", "True", "KeyPairVerified", now.Add(-30*day))}})
	cmCreate(t, cluster, "issuers", "web", map[string]any{"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
		"metadata": map[string]any{"name": "acme", "namespace": "web"}, "spec": map[string]any{"acme": map[string]any{
			"server": "https://acme.example/directory", "privateKeySecretRef": map[string]any{"name": "acme-account"},
			"solvers": []any{map[string]any{"http01": map[string]any{"ingress": map[string]any{}}}}}}},
		map[string]any{"conditions": []any{cmCondition("Ready", "False", "ErrRegisterACMEAccount", now.Add(-2*time.Hour))}})

	type fixture struct {
		ns, name, secret string
		dnsNames         []string
		secretLeaf       *testpki.Cert // nil: no Secret
		status           map[string]any
		requests         []map[string]any // status of each CertificateRequest, oldest first
	}
	leaf := func(notBefore, notAfter time.Time, names ...string) *testpki.Cert {
		return testpki.New(t, chain.Intermediate, testpki.Options{CommonName: names[0], DNSNames: names, NotBefore: notBefore, NotAfter: notAfter})
	}
	ready := func(since time.Time) []any { return []any{cmCondition("Ready", "True", "Ready", since)} }
	ts := func(t time.Time) string { return t.Format(time.RFC3339) }
	issued := map[string]any{"conditions": []any{cmCondition("Approved", "True", "cert-manager.io", now.Add(-day)), cmCondition("Ready", "True", "Issued", now.Add(-day))}}
	failed := map[string]any{"conditions": []any{cmCondition("Approved", "True", "cert-manager.io", now.Add(-time.Hour)), cmCondition("Ready", "False", "Failed", now.Add(-time.Hour))},
		"failureTime": ts(now.Add(-time.Hour))}
	healthyLeaf := leaf(now.Add(-day), now.Add(89*day), "healthy.example.com")
	oldLeaf := leaf(now.Add(-80*day), now.Add(10*day), "overdue.example.com")
	fixtures := []fixture{
		{ns: "web", name: "healthy", secret: "healthy-tls", dnsNames: []string{"healthy.example.com"}, secretLeaf: healthyLeaf,
			status: map[string]any{"conditions": ready(now.Add(-day)), "notBefore": ts(healthyLeaf.Cert.NotBefore), "notAfter": ts(healthyLeaf.Cert.NotAfter),
				"renewalTime": ts(now.Add(59 * day)), "revision": int64(2)},
			requests: []map[string]any{issued, issued}},
		// Renewal due 20 days ago and failing since: the Secret still holds
		// the certificate its status describes, which expires in 10 days.
		{ns: "web", name: "overdue", secret: "overdue-tls", dnsNames: []string{"overdue.example.com"}, secretLeaf: oldLeaf,
			status: map[string]any{"conditions": ready(now.Add(-80 * day)), "notAfter": ts(oldLeaf.Cert.NotAfter), "renewalTime": ts(now.Add(-20 * day)),
				"failedIssuanceAttempts": int64(3), "lastFailureTime": ts(now.Add(-time.Hour)), "revision": int64(1)},
			requests: []map[string]any{issued, failed}},
		// cert-manager issued a certificate until now+80d, and something
		// wrote an older one over it.
		{ns: "web", name: "rolledback", secret: "rolledback-tls", dnsNames: []string{"rolledback.example.com"},
			secretLeaf: leaf(now.Add(-80*day), now.Add(10*day), "rolledback.example.com"),
			status:     map[string]any{"conditions": ready(now.Add(-10 * day)), "notAfter": ts(now.Add(80 * day)), "renewalTime": ts(now.Add(50 * day))}},
		{ns: "web", name: "names", secret: "names-tls", dnsNames: []string{"names.example.com", "extra.example.com"},
			secretLeaf: leaf(now.Add(-day), now.Add(89*day), "names.example.com"),
			status:     map[string]any{"conditions": ready(now.Add(-day)), "notAfter": ts(now.Add(89 * day)), "renewalTime": ts(now.Add(59 * day))}},
		{ns: "web", name: "missing", secret: "missing-tls", dnsNames: []string{"missing.example.com"},
			status: map[string]any{"conditions": []any{cmCondition("Ready", "False", "DoesNotExist", now.Add(-3*time.Hour))}}},
		{ns: "shop", name: "notready", secret: "notready-tls", dnsNames: []string{"notready.example.com"},
			secretLeaf: leaf(now.Add(-day), now.Add(89*day), "notready.example.com"),
			status: map[string]any{"conditions": []any{cmCondition("Ready", "False", "IncorrectIssuer", now.Add(-2*time.Hour))},
				"notAfter": ts(now.Add(89 * day)), "renewalTime": ts(now.Add(59 * day))}},
		// kube-system is outside kubernetes.secrets: nothing to compare.
		{ns: "kube-system", name: "system", secret: "system-tls", dnsNames: []string{"system.example.com"},
			secretLeaf: leaf(now.Add(-day), now.Add(89*day), "system.example.com"),
			status:     map[string]any{"conditions": ready(now.Add(-day)), "notAfter": ts(now.Add(89 * day))}},
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "request"}}, chain.Leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fixtures {
		if f.secretLeaf != nil {
			if code, body := cluster.Do(t, http.MethodPost, "/api/v1/namespaces/"+f.ns+"/secrets", certManagerSecret(t, f.ns, f.secret, f.name, f.secretLeaf, chain)); code != http.StatusCreated {
				t.Fatalf("creating Secret %s/%s: %d %s", f.ns, f.secret, code, body)
			}
		}
		uid := cmCreate(t, cluster, "certificates", f.ns, map[string]any{"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
			"metadata": map[string]any{"name": f.name, "namespace": f.ns},
			"spec": map[string]any{"secretName": f.secret, "dnsNames": f.dnsNames,
				"issuerRef": map[string]any{"name": "ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}}}, f.status)
		for i, st := range f.requests {
			revision := fmt.Sprint(i + 1)
			cmCreate(t, cluster, "certificaterequests", f.ns, map[string]any{"apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest",
				"metadata": map[string]any{"name": f.name + "-" + revision, "namespace": f.ns,
					"annotations": map[string]string{"cert-manager.io/certificate-name": f.name, "cert-manager.io/certificate-revision": revision,
						"cert-manager.io/private-key-secret-name": f.name + "-key"},
					"ownerReferences": []any{map[string]any{"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "name": f.name, "uid": uid,
						"controller": true, "blockOwnerDeletion": true}}},
				"spec": map[string]any{"request": base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})),
					"issuerRef": map[string]any{"name": "ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}}}, st)
		}
	}

	p := startExporter(t, bin, filepath.Join(dir, "config.yml"), "--kubeconfig="+cluster.Kubeconfig(t, token))
	certSeries := func(m map[string]*dto.MetricFamily) []*dto.Metric {
		return find(m, "certwatch_certmanager_certificate_ready", nil)
	}
	mfs := waitForMetrics(t, p, "every Certificate and the Secrets", func(m map[string]*dto.MetricFamily) bool {
		return len(certSeries(m)) == len(fixtures) && len(find(m, "certwatch_certmanager_issuer_ready", nil)) == 2 &&
			len(find(m, "certwatch_certmanager_certificate_request_info", nil)) == 2 &&
			len(find(m, "certwatch_cert_not_after_timestamp_seconds", map[string]string{"source": "secret", "key": "tls.crt", "index": "0"})) == 5
	})
	for _, res := range []string{"certificates.cert-manager.io", "certificaterequests.cert-manager.io", "issuers.cert-manager.io", "clusterissuers.cert-manager.io"} {
		if v := one(t, mfs, "certwatch_kubernetes_informer_synced", map[string]string{"resource": res}).GetGauge().GetValue(); v != 1 {
			t.Errorf("%s informer synced = %v", res, v)
		}
		if v := one(t, mfs, "certwatch_kubernetes_watch_errors_total", map[string]string{"resource": res, "class": "permission"}).GetCounter().GetValue(); v != 0 {
			t.Errorf("%s permission errors = %v under the chart's RBAC", res, v)
		}
	}

	cert := func(ns, name string, extra map[string]string) map[string]string {
		m := map[string]string{"kube_namespace": ns, "certmanager_certificate": name, "team": "platform"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	gauge := func(name string, labels map[string]string) float64 {
		t.Helper()
		return one(t, mfs, name, labels).GetGauge().GetValue()
	}
	absent := func(name string, labels map[string]string) {
		t.Helper()
		if s := find(mfs, name, labels); len(s) != 0 {
			t.Errorf("%s%v present: %v", name, labels, s)
		}
	}
	for _, tc := range []struct {
		metric string
		labels map[string]string
		want   float64
	}{
		{"certwatch_certmanager_certificate_ready", cert("web", "healthy", nil), 1},
		{"certwatch_certmanager_certificate_ready", cert("web", "missing", nil), 0},
		{"certwatch_certmanager_certificate_ready", cert("shop", "notready", nil), 0},
		{"certwatch_certmanager_certificate_info", cert("web", "healthy", map[string]string{"secret": "healthy-tls", "issuer_name": "ca",
			"issuer_kind": "ClusterIssuer", "issuer_group": "cert-manager.io", "ready_status": "True", "ready_reason": "Ready"}), 1},
		{"certwatch_certmanager_certificate_info", cert("shop", "notready", map[string]string{"ready_status": "False", "ready_reason": "IncorrectIssuer"}), 1},
		{"certwatch_certmanager_certificate_ready_transition_timestamp_seconds", cert("shop", "notready", nil), float64(now.Add(-2 * time.Hour).Unix())},
		{"certwatch_certmanager_certificate_renewal_timestamp_seconds", cert("web", "overdue", nil), float64(now.Add(-20 * day).Unix())},
		{"certwatch_certmanager_certificate_renewal_overdue", cert("web", "overdue", nil), 1},
		{"certwatch_certmanager_certificate_renewal_overdue", cert("web", "healthy", nil), 0},
		{"certwatch_certmanager_certificate_not_after_timestamp_seconds", cert("web", "healthy", nil), float64(healthyLeaf.Cert.NotAfter.Unix())},
		{"certwatch_certmanager_certificate_failed_issuance_attempts", cert("web", "overdue", nil), 3},
		{"certwatch_certmanager_certificate_failed_issuance_attempts", cert("web", "healthy", nil), 0},
		{"certwatch_certmanager_certificate_last_failure_timestamp_seconds", cert("web", "overdue", nil), float64(now.Add(-time.Hour).Unix())},
		{"certwatch_certmanager_certificate_secret_mismatch", cert("web", "rolledback", map[string]string{"problem": "older_certificate"}), 1},
		{"certwatch_certmanager_certificate_secret_mismatch", cert("web", "names", map[string]string{"problem": "names_not_covered"}), 1},
		{"certwatch_certmanager_certificate_secret_mismatch", cert("web", "missing", map[string]string{"problem": "secret_missing"}), 1},
		{"certwatch_certmanager_certificate_secret_mismatch", cert("kube-system", "system", map[string]string{"problem": "secret_not_watched"}), 1},
		{"certwatch_certmanager_certificate_request_info", cert("web", "overdue", map[string]string{"request": "overdue-2", "state": "failed", "reason": "Failed"}), 1},
		{"certwatch_certmanager_certificate_request_info", cert("web", "healthy", map[string]string{"request": "healthy-2", "state": "issued", "reason": "Issued"}), 1},
		{"certwatch_certmanager_issuer_ready", map[string]string{"kube_namespace": "", "issuer_name": "ca", "issuer_kind": "ClusterIssuer", "team": "platform"}, 1},
		{"certwatch_certmanager_issuer_ready", map[string]string{"kube_namespace": "web", "issuer_name": "acme", "issuer_kind": "Issuer"}, 0},
		{"certwatch_certmanager_issuer_ready_transition_timestamp_seconds", map[string]string{"issuer_name": "acme"}, float64(now.Add(-2 * time.Hour).Unix())},
		{"certwatch_certmanager_issuer_info", map[string]string{"issuer_name": "acme", "issuer_type": "acme", "ready_reason": "ErrRegisterACMEAccount"}, 1},
		{"certwatch_certmanager_issuer_info", map[string]string{"issuer_name": "ca", "issuer_type": "ca", "ready_reason": "KeyPairVerified"}, 1},
	} {
		if got := gauge(tc.metric, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.metric, tc.labels, got, tc.want)
		}
	}
	for _, name := range []string{"healthy", "overdue"} {
		absent("certwatch_certmanager_certificate_secret_mismatch", cert("web", name, nil))
	}
	absent("certwatch_certmanager_certificate_secret_mismatch", cert("shop", "notready", nil))
	absent("certwatch_certmanager_certificate_renewal_overdue", cert("web", "missing", nil))
	absent("certwatch_certmanager_certificate_last_failure_timestamp_seconds", cert("web", "healthy", nil))
	absent("certwatch_certmanager_certificate_request_info", map[string]string{"request": "overdue-1"})

	t.Run("a scrape makes no API request", func(t *testing.T) {
		scrapesMakeNoRequest(t, cluster, p, "certificates", "certificaterequests", "issuers", "clusterissuers")
	})

	t.Run("the shipped alerts fire for their fixtures in a real Prometheus", func(t *testing.T) {
		certManagerAlertsInPrometheus(t, p.addr, dir)
	})

	t.Run("renewal and repair show within seconds", func(t *testing.T) {
		renewed := leaf(now, now.Add(90*day), "overdue.example.com")
		if code, body := cluster.Do(t, http.MethodPut, "/api/v1/namespaces/web/secrets/overdue-tls", certManagerSecret(t, "web", "overdue-tls", "overdue", renewed, chain)); code != http.StatusOK {
			t.Fatalf("renewing the Secret: %d %s", code, body)
		}
		if code, body := cluster.Do(t, http.MethodPatch, "/apis/cert-manager.io/v1/namespaces/web/certificates/overdue/status", map[string]any{"status": map[string]any{
			"notAfter": ts(renewed.Cert.NotAfter), "renewalTime": ts(now.Add(60 * day)), "failedIssuanceAttempts": nil, "lastFailureTime": nil}}); code != http.StatusOK {
			t.Fatalf("renewing the status: %d %s", code, body)
		}
		if code, body := cluster.Do(t, http.MethodPost, "/api/v1/namespaces/web/secrets", certManagerSecret(t, "web", "missing-tls", "missing", leaf(now, now.Add(90*day), "missing.example.com"), chain)); code != http.StatusCreated {
			t.Fatalf("creating the missing Secret: %d %s", code, body)
		}
		waitForMetrics(t, p, "the overdue renewal and the missing Secret to clear", func(m map[string]*dto.MetricFamily) bool {
			overdue := find(m, "certwatch_certmanager_certificate_renewal_overdue", cert("web", "overdue", nil))
			return len(overdue) == 1 && overdue[0].GetGauge().GetValue() == 0 &&
				len(find(m, "certwatch_certmanager_certificate_last_failure_timestamp_seconds", cert("web", "overdue", nil))) == 0 &&
				len(find(m, "certwatch_certmanager_certificate_secret_mismatch", cert("web", "missing", nil))) == 0
		})
	})

	t.Run("deleting a Certificate removes its series", func(t *testing.T) {
		if code, body := cluster.Do(t, http.MethodDelete, "/apis/cert-manager.io/v1/namespaces/web/certificates/names", nil); code != http.StatusOK {
			t.Fatalf("delete: %d %s", code, body)
		}
		waitForMetrics(t, p, "the deleted Certificate's series to go", func(m map[string]*dto.MetricFamily) bool {
			return len(find(m, "certwatch_certmanager_certificate_info", cert("web", "names", nil))) == 0 &&
				len(find(m, "certwatch_certmanager_certificate_secret_mismatch", cert("web", "names", nil))) == 0
		})
	})

	// The chart with cert-manager off renders no cert-manager rule; certwatch
	// asked to watch cert-manager under it is denied, says so, and serves the
	// Secrets as before.
	t.Run("without the chart's cert-manager rule: permission errors, the rest served", func(t *testing.T) {
		applyManifests(t, cluster, chartRBAC(t, "nocm", "config:\n  kubernetes:\n    secrets: {exclude_namespaces: [kube-system]}\n    webhooks: false\n    apiservices: false\n    crds: false\n    cert_manager: {enabled: false}\n"))
		limited := cluster.ServiceAccountToken(t, "monitoring", "nocm-certwatch")
		if code, _ := cluster.DoAs(t, limited, http.MethodGet, "/apis/cert-manager.io/v1/certificates", nil); code != http.StatusForbidden {
			t.Fatalf("listing Certificates without the rule answered %d", code)
		}
		q := startExporter(t, bin, filepath.Join(dir, "config.yml"), "--kubeconfig="+cluster.Kubeconfig(t, limited))
		mfs := waitForMetrics(t, q, "the permission errors and the Secrets", func(m map[string]*dto.MetricFamily) bool {
			for _, res := range []string{"certificates.cert-manager.io", "certificaterequests.cert-manager.io", "issuers.cert-manager.io", "clusterissuers.cert-manager.io"} {
				s := find(m, "certwatch_kubernetes_watch_errors_total", map[string]string{"resource": res, "class": "permission"})
				if len(s) != 1 || s[0].GetCounter().GetValue() == 0 {
					return false
				}
			}
			return len(find(m, "certwatch_cert_not_after_timestamp_seconds", map[string]string{"source": "secret", "target": "web/healthy-tls", "key": "tls.crt"})) == 2
		})
		if v := one(t, mfs, "certwatch_kubernetes_informer_synced", map[string]string{"resource": "certificates.cert-manager.io"}).GetGauge().GetValue(); v != 0 {
			t.Errorf("synced = %v without permission", v)
		}
		if n := len(find(mfs, "certwatch_certmanager_certificate_ready", nil)); n != 0 {
			t.Errorf("%d Certificates reported without permission to list them", n)
		}
		if code, _ := q.get(t, "/-/ready", nil); code != http.StatusOK {
			t.Errorf("/-/ready answered %d: a denied cert-manager API must not hold readiness back", code)
		}
		if !strings.Contains(q.stderr.String(), "forbidden") {
			t.Error("the log does not say the list was forbidden")
		}
	})
}

// certManagerAlertsInPrometheus runs a real Prometheus against certwatch
// with the shipped rules and checks that each cert-manager alert expression
// returns exactly its fixtures.
func certManagerAlertsInPrometheus(t *testing.T, certwatchAddr, dir string) {
	prometheus := testtools.Find(t, "prometheus")
	pc := startPrometheus(t, prometheus, filepath.Join(dir, "prometheus"), certwatchAddr, "1s")
	waitForQuery(t, pc, `count_over_time(certwatch_certmanager_certificate_ready[1m]) >= 2`)
	want := map[string][]string{
		"CertwatchCertManagerRenewalOverdue":      {"web/overdue"},
		"CertwatchCertManagerCertificateNotReady": {"shop/notready", "web/missing"},
		"CertwatchCertManagerIssuerNotReady":      {"Issuer web/acme"},
		"CertwatchCertManagerSecretMismatch":      {"web/missing secret_missing", "web/names names_not_covered", "web/rolledback older_certificate"},
	}
	checkAlertFixtures(t, pc, "CertwatchCertManager", want, false, func(m map[string]string) string {
		if m["issuer_name"] != "" {
			return strings.TrimSpace(m["issuer_kind"] + " " + strings.TrimPrefix(m["kube_namespace"]+"/", "/") + m["issuer_name"])
		}
		return strings.TrimSpace(m["kube_namespace"] + "/" + m["certmanager_certificate"] + " " + m["problem"])
	})
	// The overview's cert-manager row: every query returns data here.
	qs, err := dashboards.Queries()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, q := range qs {
		if !strings.Contains(q.Expr, "certwatch_certmanager_") {
			continue
		}
		n++
		res, err := pc.query(t, dashboards.ExpandVariables(q.Expr))
		switch {
		case err != nil:
			t.Errorf("%s / %s: %v\n%s", q.Dashboard, q.Panel, err, q.Expr)
		case len(res) == 0:
			t.Errorf("%s / %s returns no data:\n%s", q.Dashboard, q.Panel, q.Expr)
		}
	}
	if n == 0 {
		t.Error("no dashboard query reads the cert-manager series")
	}
}
