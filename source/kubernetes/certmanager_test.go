package kubernetes

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/internal/testtools"
	"github.com/certwatch/certwatch/shard"
	"github.com/certwatch/certwatch/source"
)

const rfc3339 = time.RFC3339

func cmObject(kind, ns, name string, spec, status map[string]any) *unstructured.Unstructured {
	meta := map[string]any{"name": name, "resourceVersion": "1", "uid": kind + "-" + ns + "-" + name}
	if ns != "" {
		meta["namespace"] = ns
	}
	obj := map[string]any{"apiVersion": "cert-manager.io/v1", "kind": kind, "metadata": meta, "spec": spec}
	if status != nil {
		obj["status"] = status
	}
	return &unstructured.Unstructured{Object: obj}
}

func condition(typ, status, reason string, since time.Time) map[string]any {
	return map[string]any{"type": typ, "status": status, "reason": reason, "message": "the message of " + reason,
		"lastTransitionTime": since.UTC().Format(rfc3339)}
}

func cmRequestObject(ns, name, certificate, revision string, created time.Time, conditions ...any) *unstructured.Unstructured {
	u := cmObject("CertificateRequest", ns, name, map[string]any{"request": "LS0tLS1CRUdJTi...", "issuerRef": map[string]any{"name": "ca"}},
		map[string]any{"conditions": conditions, "certificate": "LS0tLS1CRUdJTi..."})
	annotations := map[string]string{}
	if certificate != "" {
		annotations[certManagerCertificateAnnotation] = certificate
	}
	if revision != "" {
		annotations[certManagerRevisionAnnotation] = revision
	}
	u.SetAnnotations(annotations)
	u.SetCreationTimestamp(metav1.NewTime(created))
	return u
}

func TestParseCertificate(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	for _, tc := range []struct {
		name string
		obj  *unstructured.Unstructured
		want cmCertificate
	}{
		{"issued and ready", cmObject("Certificate", "web", "frontend",
			map[string]any{"secretName": "frontend-tls", "dnsNames": []any{"a.example.com"}, "ipAddresses": []any{"10.0.0.1"},
				"uris": []any{"spiffe://example.com/web"}, "issuerRef": map[string]any{"name": "le", "kind": "ClusterIssuer", "group": "cert-manager.io"}},
			map[string]any{"conditions": []any{condition("Ready", "True", "Ready", now.Add(-time.Hour))},
				"notAfter": now.Add(60 * 24 * time.Hour).Format(rfc3339), "renewalTime": now.Add(30 * 24 * time.Hour).Format(rfc3339)}),
			cmCertificate{namespace: "web", name: "frontend", secretName: "frontend-tls", issuerName: "le", issuerKind: "ClusterIssuer", issuerGroup: "cert-manager.io",
				dnsNames: []string{"a.example.com"}, ipAddresses: []string{"10.0.0.1"}, uris: []string{"spiffe://example.com/web"},
				ready:    cmCondition{status: "True", reason: "Ready", since: now.Add(-time.Hour)},
				notAfter: now.Add(60 * 24 * time.Hour), renewalTime: now.Add(30 * 24 * time.Hour)}},
		{"failing, with cert-manager's issuerRef defaults", cmObject("Certificate", "web", "api",
			map[string]any{"secretName": "api-tls", "issuerRef": map[string]any{"name": "ca"}},
			map[string]any{"conditions": []any{condition("Issuing", "False", "Failed", now), condition("Ready", "False", "DoesNotExist", now)},
				"failedIssuanceAttempts": int64(3), "lastFailureTime": now.Format(rfc3339)}),
			cmCertificate{namespace: "web", name: "api", secretName: "api-tls", issuerName: "ca", issuerKind: "Issuer", issuerGroup: "cert-manager.io",
				ready: cmCondition{status: "False", reason: "DoesNotExist", since: now}, failedIssuanceAttempts: 3, lastFailureTime: now}},
		{"new: no status yet", cmObject("Certificate", "web", "new", map[string]any{"secretName": "new-tls",
			"issuerRef": map[string]any{"name": "pca", "kind": "AWSPCAIssuer", "group": "awspca.cert-manager.io"}}, nil),
			cmCertificate{namespace: "web", name: "new", secretName: "new-tls", issuerName: "pca", issuerKind: "AWSPCAIssuer", issuerGroup: "awspca.cert-manager.io"}},
		{"a malformed time reads as absent", cmObject("Certificate", "web", "odd", map[string]any{"secretName": "odd"},
			map[string]any{"renewalTime": "yesterday", "notAfter": int64(5)}),
			cmCertificate{namespace: "web", name: "odd", secretName: "odd", issuerKind: "Issuer", issuerGroup: "cert-manager.io"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseCertificate(tc.obj)
			if !equalCertificate(*got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func equalCertificate(a, b cmCertificate) bool {
	return a.namespace == b.namespace && a.name == b.name && a.secretName == b.secretName &&
		a.issuerName == b.issuerName && a.issuerKind == b.issuerKind && a.issuerGroup == b.issuerGroup &&
		slices.Equal(a.dnsNames, b.dnsNames) && slices.Equal(a.ipAddresses, b.ipAddresses) && slices.Equal(a.uris, b.uris) &&
		a.ready.status == b.ready.status && a.ready.reason == b.ready.reason && a.ready.since.Equal(b.ready.since) &&
		a.notAfter.Equal(b.notAfter) && a.renewalTime.Equal(b.renewalTime) && a.lastFailureTime.Equal(b.lastFailureTime) &&
		a.failedIssuanceAttempts == b.failedIssuanceAttempts
}

func TestParseRequest(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name                       string
		obj                        *unstructured.Unstructured
		certificate, state, reason string
		revision                   int
	}{
		{"issued", cmRequestObject("web", "frontend-1", "frontend", "1", now, condition("Approved", "True", "cert-manager.io", now), condition("Ready", "True", "Issued", now)),
			"frontend", requestStateIssued, "Issued", 1},
		{"failed", cmRequestObject("web", "frontend-2", "frontend", "2", now, condition("Approved", "True", "cert-manager.io", now), condition("Ready", "False", "Failed", now)),
			"frontend", requestStateFailed, "Failed", 2},
		{"denied by a policy approver", cmRequestObject("web", "frontend-3", "frontend", "3", now, condition("Denied", "True", "policy.cert-manager.io", now), condition("Ready", "False", "Denied", now)),
			"frontend", requestStateDenied, "policy.cert-manager.io", 3},
		{"invalid", cmRequestObject("web", "frontend-4", "frontend", "4", now, condition("InvalidRequest", "True", "BadConfig", now)),
			"frontend", requestStateInvalid, "BadConfig", 4},
		{"pending approval", cmRequestObject("web", "frontend-5", "frontend", "5", now, condition("Ready", "False", "Pending", now)),
			"frontend", requestStatePending, "Pending", 5},
		{"no status", cmRequestObject("web", "frontend-6", "frontend", "", now), "frontend", requestStatePending, "", 0},
		{"made by hand", cmRequestObject("web", "manual", "", "", now), "", requestStatePending, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := parseRequest(tc.obj)
			if r.certificate != tc.certificate || r.state != tc.state || r.reason != tc.reason || r.revision != tc.revision {
				t.Errorf("got %+v", *r)
			}
		})
	}
	// Without the annotation, the owner reference names the Certificate.
	u := cmRequestObject("web", "owned", "", "", now)
	u.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "cert-manager.io/v1", Kind: "Certificate", Name: "frontend", UID: "x"}})
	if r := parseRequest(u); r.certificate != "frontend" {
		t.Errorf("owner reference: certificate %q", r.certificate)
	}
}

// The informer may run the transform again on what it returned: the
// reported fields must survive.
func TestCertManagerTransformTwice(t *testing.T) {
	cm := &certManager{requests: map[string]map[string]*cmRequest{}, certificates: map[string]*cmCertificate{}}
	for _, tc := range []struct {
		name  string
		obj   *unstructured.Unstructured
		store func(*unstructured.Unstructured)
		check func() bool
	}{
		{"request", cmRequestObject("web", "a-1", "a", "1", time.Now(), condition("Ready", "False", "Failed", time.Now())), cm.storeRequest,
			func() bool {
				r := cm.requests["web"]["a-1"]
				return r != nil && r.certificate == "a" && r.state == requestStateFailed
			}},
		{"certificate", cmObject("Certificate", "web", "a", map[string]any{"secretName": "a-tls"}, nil), cm.storeCertificate,
			func() bool { c := cm.certificates["web/a"]; return c != nil && c.secretName == "a-tls" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			transform := certManagerTransform(tc.store)
			once, err := transform(tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			twice, err := transform(once)
			if err != nil {
				t.Fatal(err)
			}
			u := twice.(*unstructured.Unstructured)
			if _, has := u.Object["spec"]; has || u.GetName() != tc.obj.GetName() || u.GetResourceVersion() != "1" {
				t.Errorf("kept %v", u.Object)
			}
			if !tc.check() {
				t.Error("the second pass lost the reported fields")
			}
		})
	}
}

func TestNewestRequests(t *testing.T) {
	now := time.Now()
	r := func(name, cert string, revision int, created time.Time) *cmRequest {
		return &cmRequest{name: name, certificate: cert, revision: revision, created: created}
	}
	requests := map[string]map[string]*cmRequest{
		"web": {
			"a-1": r("a-1", "a", 1, now.Add(-2*time.Hour)), "a-3": r("a-3", "a", 3, now.Add(-3*time.Hour)), "a-2": r("a-2", "a", 2, now),
			"b-x": r("b-x", "b", 0, now.Add(-time.Hour)), "b-y": r("b-y", "b", 0, now),
			"c-1": r("c-1", "c", 1, now), "c-2": r("c-2", "c", 1, now),
		},
		"shop": {"a-9": r("a-9", "a", 9, now)},
	}
	got := newestRequests(requests)
	for cert, want := range map[string]string{"web/a": "a-3", "web/b": "b-y", "web/c": "c-2", "shop/a": "a-9"} {
		if got[cert] == nil || got[cert].name != want {
			t.Errorf("%s: newest %v, want %s", cert, got[cert], want)
		}
	}
	if len(got) != 4 {
		t.Errorf("%d Certificates, want 4", len(got))
	}
}

func TestSecretProblems(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	leaf := &x509.Certificate{NotAfter: now.Add(90 * 24 * time.Hour), DNSNames: []string{"a.example.com", "*.b.example.com"},
		IPAddresses: []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("2001:db8::1")}, URIs: []*url.URL{{Scheme: "spiffe", Host: "example.com", Path: "/web"}}}
	cert := func(notAfter time.Time, dns, ips, uris []string) *cmCertificate {
		return &cmCertificate{notAfter: notAfter, dnsNames: dns, ipAddresses: ips, uris: uris}
	}
	for _, tc := range []struct {
		name string
		cert *cmCertificate
		view secretView
		want []string
	}{
		{"agrees", cert(now.Add(90*24*time.Hour), []string{"a.example.com", "A.Example.com."}, []string{"10.0.0.1", "2001:db8:0::1"}, []string{"spiffe://example.com/web"}),
			secretView{leaf: leaf, synced: true}, nil},
		{"a wildcard covers one label", cert(time.Time{}, []string{"x.b.example.com"}, nil, nil), secretView{leaf: leaf, synced: true}, nil},
		{"a wildcard covers no deeper label", cert(time.Time{}, []string{"y.x.b.example.com"}, nil, nil), secretView{leaf: leaf, synced: true},
			[]string{ProblemNamesNotCovered}},
		{"nor the bare domain", cert(time.Time{}, []string{"b.example.com"}, nil, nil), secretView{leaf: leaf, synced: true}, []string{ProblemNamesNotCovered}},
		{"a newer certificate is no problem", cert(now.Add(30*24*time.Hour), nil, nil, nil), secretView{leaf: leaf, synced: true}, nil},
		{"older, and a name missing", cert(now.Add(91*24*time.Hour), []string{"c.example.com"}, nil, nil), secretView{leaf: leaf, synced: true},
			[]string{ProblemOlderCertificate, ProblemNamesNotCovered}},
		{"an IP address missing", cert(time.Time{}, nil, []string{"10.0.0.2"}, nil), secretView{leaf: leaf, synced: true}, []string{ProblemNamesNotCovered}},
		{"a URI missing", cert(time.Time{}, nil, nil, []string{"spiffe://example.com/api"}), secretView{leaf: leaf, synced: true}, []string{ProblemNamesNotCovered}},
		{"missing", cert(time.Time{}, []string{"a.example.com"}, nil, nil), secretView{problem: ProblemSecretMissing, synced: true}, []string{ProblemSecretMissing}},
		{"not watched", cert(time.Time{}, nil, nil, nil), secretView{problem: ProblemSecretNotWatched, synced: true}, []string{ProblemSecretNotWatched}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := secretProblems(tc.cert, tc.view); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

var certManagerListKinds = map[schema.GroupVersionResource]string{
	{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}:        "CertificateList",
	{Group: "cert-manager.io", Version: "v1", Resource: "certificaterequests"}: "CertificateRequestList",
	{Group: "cert-manager.io", Version: "v1", Resource: "issuers"}:             "IssuerList",
	{Group: "cert-manager.io", Version: "v1", Resource: "clusterissuers"}:      "ClusterIssuerList",
}

func serveCertManager(client *fake.Clientset) {
	client.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{GroupVersion: "cert-manager.io/v1",
		APIResources: []metav1.APIResource{{Name: "certificates", Namespaced: true, Kind: "Certificate"},
			{Name: "certificaterequests", Namespaced: true, Kind: "CertificateRequest"},
			{Name: "issuers", Namespaced: true, Kind: "Issuer"}, {Name: "clusterissuers", Kind: "ClusterIssuer"}}}}
}

// samplesOf indexes samples by name and their label values, with the
// label names alongside.
func samplesOf(samples []source.Sample, name string) map[string]source.Sample {
	out := map[string]source.Sample{}
	for _, s := range samples {
		if s.Name == name {
			out[strings.Join(s.Values, " ")] = s
		}
	}
	return out
}

func TestCertManagerSource(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	day := 24 * time.Hour
	chain := testpki.NewChain(t, testpki.Options{})
	renewed := testpki.New(t, chain.Intermediate, testpki.Options{CommonName: "a.example.com", DNSNames: []string{"a.example.com"},
		NotBefore: now.Add(-day), NotAfter: now.Add(89 * day)})
	stale := testpki.New(t, chain.Intermediate, testpki.Options{CommonName: "b.example.com", DNSNames: []string{"b.example.com"},
		NotBefore: now.Add(-80 * day), NotAfter: now.Add(10 * day)})
	secret := func(ns, name string, leaf *testpki.Cert) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: "1"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{"tls.crt": testpki.PEM(leaf, chain.Intermediate), "ca.crt": testpki.PEM(chain.Root)}}
	}
	client := fake.NewClientset(
		secret("web", "healthy-tls", renewed),
		secret("web", "stale-tls", stale),
		secret("kube-system", "system-tls", renewed),
	)
	serveCertManager(client)
	ready := func(since time.Time) []any { return []any{condition("Ready", "True", "Ready", since)} }
	certificate := func(ns, name, secretName string, dns []any, status map[string]any) *unstructured.Unstructured {
		return cmObject("Certificate", ns, name, map[string]any{"secretName": secretName, "dnsNames": dns,
			"issuerRef": map[string]any{"name": "ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}}, status)
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), certManagerListKinds,
		certificate("web", "healthy", "healthy-tls", []any{"a.example.com"}, map[string]any{"conditions": ready(now.Add(-day)),
			"notAfter": renewed.Cert.NotAfter.Format(rfc3339), "renewalTime": now.Add(59 * day).Format(rfc3339)}),
		// Renewal failing for weeks: status says renewed, the Secret holds the old certificate.
		certificate("web", "stale", "stale-tls", []any{"b.example.com", "c.example.com"}, map[string]any{"conditions": ready(now.Add(-80 * day)),
			"notAfter": now.Add(80 * day).Format(rfc3339), "renewalTime": now.Add(-20 * day).Format(rfc3339),
			"failedIssuanceAttempts": int64(4), "lastFailureTime": now.Add(-time.Hour).Format(rfc3339)}),
		certificate("web", "gone", "gone-tls", nil, map[string]any{"conditions": []any{condition("Ready", "False", "DoesNotExist", now.Add(-time.Hour))}}),
		certificate("kube-system", "system", "system-tls", nil, map[string]any{}),
		cmRequestObject("web", "stale-7", "stale", "7", now.Add(-time.Hour), condition("Ready", "False", "Failed", now.Add(-time.Hour))),
		cmRequestObject("web", "stale-6", "stale", "6", now.Add(-2*time.Hour), condition("Ready", "True", "Issued", now.Add(-2*time.Hour))),
		cmObject("ClusterIssuer", "", "ca", map[string]any{"ca": map[string]any{"secretName": "ca"}},
			map[string]any{"conditions": []any{condition("Ready", "True", "KeyPairVerified", now.Add(-day))}}),
		cmObject("Issuer", "web", "acme", map[string]any{"acme": map[string]any{"server": "https://acme.example"}},
			map[string]any{"conditions": []any{condition("Ready", "False", "ErrRegisterACMEAccount", now.Add(-time.Hour))}}),
	)
	cfg := config.Kubernetes{
		Secrets: &config.SecretWatch{Types: config.DefaultSecretTypes, KeyPatterns: config.DefaultSecretKeyPatterns,
			Selection: config.Selection{ExcludeNamespaces: []string{"kube-system"}}},
		Labels: map[string]string{"cluster": "test"},
	}
	s := syncedSource(t, cfg, client, dyn, slog.New(slog.DiscardHandler))
	var samples []source.Sample
	waitFor(t, "the cert-manager informers", func() bool {
		samples = s.Scrape(t.Context()).Status
		synced := samplesOf(samples, nameSynced)
		for _, r := range certManagerResources {
			if synced[r.resource+" "].Value != 1 {
				return false
			}
		}
		return true
	})

	value := func(name string, values ...string) (float64, bool) {
		sm, ok := samplesOf(samples, name)[strings.Join(append(values, "test"), " ")]
		return sm.Value, ok
	}
	for _, tc := range []struct {
		metric string
		values []string
		want   float64 // -1: absent
	}{
		{"certwatch_certmanager_certificate_ready", []string{"web", "healthy"}, 1},
		{"certwatch_certmanager_certificate_ready", []string{"web", "gone"}, 0},
		{"certwatch_certmanager_certificate_ready", []string{"kube-system", "system"}, 0},
		{"certwatch_certmanager_certificate_info", []string{"web", "healthy", "healthy-tls", "ca", "ClusterIssuer", "cert-manager.io", "True", "Ready"}, 1},
		{"certwatch_certmanager_certificate_info", []string{"web", "gone", "gone-tls", "ca", "ClusterIssuer", "cert-manager.io", "False", "DoesNotExist"}, 1},
		{"certwatch_certmanager_certificate_info", []string{"kube-system", "system", "system-tls", "ca", "ClusterIssuer", "cert-manager.io", "Unknown", ""}, 1},
		{"certwatch_certmanager_certificate_ready_transition_timestamp_seconds", []string{"web", "healthy"}, float64(now.Add(-day).Unix())},
		{"certwatch_certmanager_certificate_ready_transition_timestamp_seconds", []string{"kube-system", "system"}, -1},
		{"certwatch_certmanager_certificate_renewal_timestamp_seconds", []string{"web", "stale"}, float64(now.Add(-20 * day).Unix())},
		{"certwatch_certmanager_certificate_renewal_overdue", []string{"web", "stale"}, 1},
		{"certwatch_certmanager_certificate_renewal_overdue", []string{"web", "healthy"}, 0},
		{"certwatch_certmanager_certificate_renewal_overdue", []string{"web", "gone"}, -1},
		{"certwatch_certmanager_certificate_not_after_timestamp_seconds", []string{"web", "healthy"}, float64(renewed.Cert.NotAfter.Unix())},
		{"certwatch_certmanager_certificate_failed_issuance_attempts", []string{"web", "stale"}, 4},
		{"certwatch_certmanager_certificate_failed_issuance_attempts", []string{"web", "healthy"}, 0},
		{"certwatch_certmanager_certificate_last_failure_timestamp_seconds", []string{"web", "stale"}, float64(now.Add(-time.Hour).Unix())},
		{"certwatch_certmanager_certificate_last_failure_timestamp_seconds", []string{"web", "healthy"}, -1},
		{"certwatch_certmanager_certificate_secret_mismatch", []string{"web", "stale", ProblemOlderCertificate}, 1},
		{"certwatch_certmanager_certificate_secret_mismatch", []string{"web", "stale", ProblemNamesNotCovered}, 1},
		{"certwatch_certmanager_certificate_secret_mismatch", []string{"web", "gone", ProblemSecretMissing}, 1},
		{"certwatch_certmanager_certificate_secret_mismatch", []string{"kube-system", "system", ProblemSecretNotWatched}, 1},
		{"certwatch_certmanager_certificate_request_info", []string{"web", "stale", "stale-7", requestStateFailed, "Failed"}, 1},
		{"certwatch_certmanager_certificate_request_info", []string{"web", "stale", "stale-6", requestStateIssued, "Issued"}, -1},
		{"certwatch_certmanager_issuer_ready", []string{"", "ca", "ClusterIssuer"}, 1},
		{"certwatch_certmanager_issuer_ready", []string{"web", "acme", "Issuer"}, 0},
		{"certwatch_certmanager_issuer_info", []string{"web", "acme", "Issuer", "acme", "ErrRegisterACMEAccount"}, 1},
		{"certwatch_certmanager_issuer_ready_transition_timestamp_seconds", []string{"web", "acme", "Issuer"}, float64(now.Add(-time.Hour).Unix())},
	} {
		got, ok := value(tc.metric, tc.values...)
		switch {
		case tc.want == -1 && ok:
			t.Errorf("%s%v present (%v), want absent", tc.metric, tc.values, got)
		case tc.want != -1 && !ok:
			t.Errorf("%s%v absent, want %v", tc.metric, tc.values, tc.want)
		case ok && got != tc.want:
			t.Errorf("%s%v = %v, want %v", tc.metric, tc.values, got, tc.want)
		}
	}
	if n := len(samplesOf(samples, "certwatch_certmanager_certificate_secret_mismatch")); n != 4 {
		t.Errorf("%d mismatch series, want 4: the healthy Certificate has none", n)
	}
	info := samplesOf(samples, "certwatch_certmanager_certificate_info")
	for _, sm := range info {
		if want := []string{"kube_namespace", "certmanager_certificate", "secret", "issuer_name", "issuer_kind", "issuer_group", "ready_status", "ready_reason", "cluster"}; !slices.Equal(sm.LabelNames, want) {
			t.Errorf("info labels %v, want %v", sm.LabelNames, want)
		}
	}

	t.Run("the informer cache holds metadata only", func(t *testing.T) {
		s.cm.mu.RLock()
		watches := s.cm.watches
		s.cm.mu.RUnlock()
		for _, w := range watches {
			for _, obj := range w.informer.GetStore().List() {
				u := obj.(*unstructured.Unstructured)
				if _, has := u.Object["spec"]; has {
					t.Errorf("%s %s keeps its spec", w.resource, u.GetName())
				}
				if _, has := u.Object["status"]; has {
					t.Errorf("%s %s keeps its status", w.resource, u.GetName())
				}
			}
		}
	})

	t.Run("a renewal clears the problems", func(t *testing.T) {
		fresh := testpki.New(t, chain.Intermediate, testpki.Options{DNSNames: []string{"b.example.com", "c.example.com"}, NotAfter: now.Add(80 * day)})
		sec := secret("web", "stale-tls", fresh)
		sec.ResourceVersion = "2"
		if _, err := client.CoreV1().Secrets("web").Update(t.Context(), sec, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the renewed Secret", func() bool {
			samples = s.Scrape(t.Context()).Status
			_, older := value("certwatch_certmanager_certificate_secret_mismatch", "web", "stale", ProblemOlderCertificate)
			_, names := value("certwatch_certmanager_certificate_secret_mismatch", "web", "stale", ProblemNamesNotCovered)
			return !older && !names
		})
	})

	t.Run("deletion removes the series", func(t *testing.T) {
		gvr := schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}
		if err := dyn.Resource(gvr).Namespace("web").Delete(t.Context(), "gone", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the deleted Certificate to go", func() bool {
			samples = s.Scrape(t.Context()).Status
			_, ok := value("certwatch_certmanager_certificate_ready", "web", "gone")
			return !ok
		})
	})

	t.Run("a shard reports its own Certificates", func(t *testing.T) {
		owned := map[string]int{}
		for index := range 2 {
			s.shard = shard.Shard{Index: index, Total: 2}
			for _, sm := range samplesOf(s.Scrape(t.Context()).Status, "certwatch_certmanager_certificate_ready") {
				owned[strings.Join(sm.Values, " ")]++
			}
		}
		s.shard = shard.Shard{}
		if len(owned) != 3 {
			t.Errorf("two shards reported %d Certificates, want 3", len(owned))
		}
		for k, n := range owned {
			if n != 1 {
				t.Errorf("%s reported by %d shards", k, n)
			}
		}
	})
}

func TestCertManagerWithoutTheAPI(t *testing.T) {
	for _, tc := range []struct {
		mode     config.CertManagerMode
		log      string
		informer bool // the four resources are reported unsynced
	}{
		{config.CertManagerAuto, "cert-manager objects are not watched", false},
		{config.CertManagerEnabled, "kubernetes.cert_manager.enabled is true", true},
		{config.CertManagerDisabled, "", false},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			rediscover := certManagerRediscover
			certManagerRediscover = 5 * time.Millisecond // several rounds, one log line
			t.Cleanup(func() { certManagerRediscover = rediscover })
			client := fake.NewClientset()
			dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), certManagerListKinds)
			var logs testtools.SyncBuffer
			cfg := config.Kubernetes{Secrets: &config.SecretWatch{Types: config.DefaultSecretTypes}, CertManager: config.CertManager{Enabled: tc.mode}}
			s := syncedSource(t, cfg, client, dyn, slog.New(slog.NewTextHandler(&logs, nil)))
			if tc.log != "" {
				waitFor(t, "the log line", func() bool { return strings.Contains(logs.String(), tc.log) })
			}
			if tc.mode != config.CertManagerDisabled {
				waitFor(t, "three discoveries", func() bool {
					n := 0
					for _, a := range client.Actions() {
						if a.GetVerb() == "get" && a.GetResource().Resource == "resource" {
							n++
						}
					}
					return n >= 3
				})
			}
			samples := s.Scrape(t.Context()).Status
			synced := samplesOf(samples, nameSynced)
			for _, r := range certManagerResources {
				_, ok := synced[r.resource+" "]
				if ok != tc.informer {
					t.Errorf("%s reported: %v, want %v", r.resource, ok, tc.informer)
				}
			}
			if tc.informer {
				if n := samplesOf(samples, nameWatchErrors)[ResourceCMCertificates+"  not_found"].Value; n < 1 {
					t.Errorf("not_found errors %v, want at least 1", n)
				}
			}
			if !s.Ready() {
				t.Error("the missing cert-manager API holds readiness back")
			}
			if n := bytes.Count([]byte(logs.String()), []byte("level=")); n > 1 {
				t.Errorf("said %d times that cert-manager is absent, want once:\n%s", n, logs.String())
			}
		})
	}
}

// realisticCertificate is a Certificate as the API server sends it:
// managed fields of two writers and kubectl's last-applied annotation.
func realisticCertificate(i int, now time.Time) *unstructured.Unstructured {
	name := fmt.Sprintf("service-%05d", i)
	u := cmObject("Certificate", fmt.Sprintf("team-%03d", i%200), name,
		map[string]any{"secretName": name + "-tls", "dnsNames": []any{name + ".example.com", name + ".internal.example.com"},
			"duration": "2160h0m0s", "renewBefore": "720h0m0s", "privateKey": map[string]any{"algorithm": "ECDSA", "size": int64(256), "rotationPolicy": "Always"},
			"usages":    []any{"server auth", "client auth"},
			"issuerRef": map[string]any{"name": "letsencrypt", "kind": "ClusterIssuer", "group": "cert-manager.io"}},
		map[string]any{"conditions": []any{condition("Ready", "True", "Ready", now.Add(-time.Hour)), condition("Issuing", "False", "Issued", now.Add(-time.Hour))},
			"notBefore": now.Add(-time.Hour).Format(rfc3339), "notAfter": now.Add(2159 * time.Hour).Format(rfc3339),
			"renewalTime": now.Add(1439 * time.Hour).Format(rfc3339), "revision": int64(3)})
	u.SetAnnotations(map[string]string{"kubectl.kubernetes.io/last-applied-configuration": strings.Repeat(`{"apiVersion":"cert-manager.io/v1"}`, 30)})
	fields := make([]string, 40)
	for j := range fields {
		fields[j] = fmt.Sprintf(`"f:field%02d":{}`, j)
	}
	fieldsV1 := []byte(`{"f:status":{` + strings.Join(fields, ",") + `}}`)
	var managed []metav1.ManagedFieldsEntry
	for _, manager := range []string{"kubectl-client-side-apply", "cert-manager-certificates-readiness"} {
		managed = append(managed, metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "cert-manager.io/v1",
			FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: fieldsV1}})
	}
	u.SetManagedFields(managed)
	return u
}

// BenchmarkCertManagerMemory measures what 1,000 Certificates hold once
// transformed (the kept fields and the stripped cache object), against the
// objects as received.
func BenchmarkCertManagerMemory(b *testing.B) {
	const n = 1000
	now := time.Now()
	heap := func() int64 {
		var m goruntime.MemStats
		goruntime.GC()
		goruntime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	var kept, received float64
	for range b.N {
		base := heap()
		objects := make([]*unstructured.Unstructured, n)
		for i := range objects {
			objects[i] = realisticCertificate(i, now)
		}
		received += float64(heap() - base)
		cm := &certManager{certificates: map[string]*cmCertificate{}}
		transform := certManagerTransform(cm.storeCertificate)
		store := cache.NewStore(cache.MetaNamespaceKeyFunc)
		for i := range objects {
			out, _ := transform(objects[i])
			_ = store.Add(out)
			objects[i] = nil // the informer keeps only what the transform returns
		}
		kept += float64(heap() - base)
		goruntime.KeepAlive(store)
		goruntime.KeepAlive(cm)
	}
	b.ReportMetric(kept/float64(b.N)/n, "held-bytes/certificate")
	b.ReportMetric(received/float64(b.N)/n, "received-bytes/certificate")
}

// BenchmarkCertManagerScrape is the cert-manager part of a scrape with
// 1,000 Certificates, their requests and their Secrets' verdicts.
func BenchmarkCertManagerScrape(b *testing.B) {
	const n = 1000
	now := time.Now()
	s := &Source{cfg: config.Kubernetes{Labels: map[string]string{"cluster": "prod"}}, objects: map[string]*parsed{},
		cm: &certManager{grace: time.Hour, certificates: map[string]*cmCertificate{}, requests: map[string]map[string]*cmRequest{}, issuers: map[string]*cmIssuer{}}}
	for i := range n {
		u := realisticCertificate(i, now)
		s.cm.storeCertificate(u)
		s.cm.storeRequest(cmRequestObject(u.GetNamespace(), u.GetName()+"-3", u.GetName(), "3", now, condition("Ready", "True", "Issued", now)))
	}
	b.ResetTimer()
	var samples int
	for range b.N {
		samples = len(s.certManagerSamples(now))
	}
	b.ReportMetric(float64(samples), "samples")
}

// Stop does not wait for a discovery request the API server never answers.
func TestCertManagerStopCancelsDiscovery(t *testing.T) {
	timeout := certManagerDiscoveryTimeout
	certManagerDiscoveryTimeout = time.Hour // only Stop can end the request
	t.Cleanup(func() { certManagerDiscoveryTimeout = timeout })
	asked := make(chan struct{}, 1)
	cancelled := make(chan struct{}, 1)
	release := make(chan struct{})
	server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/apis/cert-manager.io/v1" {
			http.NotFound(w, r)
			return
		}
		asked <- struct{}{}
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-release:
		}
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server.Listener = l
	server.Start()
	t.Cleanup(func() { close(release); server.Close() })
	client, err := kubernetes.NewForConfig(&rest.Config{Host: server.URL})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(config.Kubernetes{CertManager: config.CertManager{Enabled: config.CertManagerEnabled}}, shard.Shard{}, client,
		dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), certManagerListKinds), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	<-asked
	s.Stop() // returns only once the discovery goroutine has
	<-cancelled
}
