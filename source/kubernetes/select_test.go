package kubernetes

import (
	"context"
	"log/slog"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
)

func csr(name, signer string, cert []byte, conditions ...certificatesv1.RequestConditionType) *certificatesv1.CertificateSigningRequest {
	c := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "1", Labels: map[string]string{"team": "nodes"}},
		Spec: certificatesv1.CertificateSigningRequestSpec{SignerName: signer, Request: []byte("-----BEGIN CERTIFICATE REQUEST-----\n...\n"),
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}},
		Status: certificatesv1.CertificateSigningRequestStatus{Certificate: cert},
	}
	for _, ct := range conditions {
		c.Status.Conditions = append(c.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{Type: ct, Status: corev1.ConditionTrue})
	}
	return c
}

func TestCSRPlaces(t *testing.T) {
	chain := testpki.NewChain(t, testpki.Options{})
	kubelet := testpki.New(t, chain.Intermediate, testpki.Options{CommonName: "system:node:worker-1"})
	caFile := testpki.WriteFile(t, t.TempDir(), "ca.crt", testpki.PEM(chain.Root, chain.Intermediate))
	client := fake.NewClientset(
		csr("node-csr-1", "kubernetes.io/kube-apiserver-client-kubelet", testpki.PEM(kubelet), certificatesv1.CertificateApproved),
		csr("serving-1", "kubernetes.io/kubelet-serving", testpki.PEM(chain.Leaf), certificatesv1.CertificateApproved),
		csr("custom-1", "example.com/custom", testpki.PEM(chain.Leaf, chain.Intermediate), certificatesv1.CertificateApproved),
		csr("pending", "kubernetes.io/kubelet-serving", nil),
		csr("denied", "example.com/custom", nil, certificatesv1.CertificateDenied),
	)
	for _, c := range []struct {
		name   string
		caFile string
		rootID string // the roots the places are judged against
	}{
		{"without ca_file", "", "system"},
		{"with ca_file", caFile, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.Kubernetes{CAFile: c.caFile, KubernetesSelect: config.KubernetesSelect{CSRs: true, ExposeLabels: []string{"team"}}}
			s := syncedSource(t, cfg, client, nil, slog.New(slog.DiscardHandler))
			got := byPlace(s.Collect(context.Background()))
			want := map[string]string{
				"csr node-csr-1 ": "kubernetes.io/kube-apiserver-client-kubelet",
				"csr serving-1 ":  "kubernetes.io/kubelet-serving",
				"csr custom-1 ":   "example.com/custom",
			}
			if len(got) != len(want) {
				t.Fatalf("places %v, want %d: a CSR without a certificate is no place", keys(got), len(want))
			}
			for place, signer := range want {
				f, ok := got[place]
				if !ok {
					t.Fatalf("no place %q in %v", place, keys(got))
				}
				if f.Labels[LabelSignerName] != signer || f.Labels["label_team"] != "nodes" || f.Err != nil || len(f.Certs) == 0 {
					t.Errorf("%s: labels %v, %d certificates, err %v", place, f.Labels, len(f.Certs), f.Err)
				}
				if _, ok := f.Labels[LabelNamespace]; ok {
					t.Errorf("%s: a cluster-scoped place has kube_namespace", place)
				}
				if f.Verify.RootsID != s.verify.RootsID || (c.rootID != "" && f.Verify.RootsID != c.rootID) {
					t.Errorf("%s judged against %q, want the block's roots %q", place, f.Verify.RootsID, s.verify.RootsID)
				}
			}
			if c.caFile != "" && got["csr node-csr-1 "].Verify.Roots == nil {
				t.Error("kubelet certificate not judged against ca_file")
			}
			for _, obj := range s.watches[0].informer.GetStore().List() {
				c := obj.(*certificatesv1.CertificateSigningRequest)
				if len(c.Spec.Request) > 0 || len(c.Status.Certificate) > 0 || len(c.Labels) > 0 || c.Spec.SignerName == "" {
					t.Errorf("cached CSR %s not stripped: %+v", c.Name, c)
				}
			}
		})
	}
}

func TestExposedLabelsOnEveryKind(t *testing.T) {
	chain := testpki.NewChain(t, testpki.Options{})
	labelled := tlsSecret("web", "labelled", chain, nil)
	labelled.ResourceVersion = "1"
	labelled.Labels = map[string]string{"team": "payments", "app.kubernetes.io/name": "checkout", "other": "x"}
	labelled.Annotations["example.com/owner"] = "alice"
	bare := tlsSecret("web", "bare", chain, nil)
	client := fake.NewClientset(labelled, bare,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "trust", Labels: map[string]string{"team": "platform"}},
			Data: map[string]string{"ca.crt": string(testpki.PEM(chain.Root))}},
		&admissionv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "policy", Annotations: map[string]string{"example.com/owner": "bob"}},
			Webhooks: []admissionv1.ValidatingWebhook{{Name: "check.example.com", ClientConfig: admissionv1.WebhookClientConfig{CABundle: testpki.PEM(chain.Root)}}}},
	)
	cfg := config.Kubernetes{
		Secrets:    &config.SecretWatch{Types: config.DefaultSecretTypes, KeyPatterns: config.DefaultSecretKeyPatterns},
		ConfigMaps: &config.ConfigMapWatch{KeyPatterns: []string{"ca.crt"}},
		Webhooks:   true,
		KubernetesSelect: config.KubernetesSelect{ExposeLabels: []string{"team", "app.kubernetes.io/name"},
			ExposeAnnotations: []string{"example.com/owner"}},
	}
	s := syncedSource(t, cfg, client, nil, slog.New(slog.DiscardHandler))
	got := byPlace(s.Collect(context.Background()))
	cases := []struct {
		place string
		want  map[string]string
	}{
		{"secret web/labelled tls.crt", map[string]string{"label_team": "payments", "label_app_kubernetes_io_name": "checkout", "annotation_example_com_owner": "alice"}},
		{"secret web/labelled ca.crt", map[string]string{"label_team": "payments", "label_app_kubernetes_io_name": "checkout", "annotation_example_com_owner": "alice"}},
		{"secret web/bare tls.crt", map[string]string{"label_team": "", "label_app_kubernetes_io_name": "", "annotation_example_com_owner": ""}},
		{"configmap web/trust ca.crt", map[string]string{"label_team": "platform", "label_app_kubernetes_io_name": "", "annotation_example_com_owner": ""}},
		{"validatingwebhook policy check.example.com", map[string]string{"label_team": "", "label_app_kubernetes_io_name": "", "annotation_example_com_owner": "bob"}},
	}
	for _, c := range cases {
		f, ok := got[c.place]
		if !ok {
			t.Errorf("no place %q in %v", c.place, keys(got))
			continue
		}
		for name, value := range c.want {
			if v, ok := f.Labels[name]; !ok || v != value {
				t.Errorf("%s: %s = %q (set: %v), want %q", c.place, name, v, ok, value)
			}
		}
		if _, ok := f.Labels["label_other"]; ok {
			t.Errorf("%s: a label not on the allow-list became a metric label", c.place)
		}
	}
	for _, w := range s.watches {
		for _, obj := range w.informer.GetStore().List() {
			m, ok := obj.(metav1.Object)
			if ok && (len(m.GetLabels()) > 0 || len(m.GetAnnotations()) > 0) {
				t.Errorf("%s %s: the cache keeps labels %v, annotations %v", w.resource, m.GetName(), m.GetLabels(), m.GetAnnotations())
			}
		}
	}

	// A new label value is a new version: parsed again, with a new label map.
	before := got["secret web/labelled tls.crt"].Labels
	labelled = labelled.DeepCopy()
	labelled.ResourceVersion, labelled.Labels["team"] = "2", "billing"
	if _, err := client.CoreV1().Secrets("web").Update(context.Background(), labelled, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new label value", func() bool {
		return byPlace(s.Collect(context.Background()))["secret web/labelled tls.crt"].Labels["label_team"] == "billing"
	})
	if before["label_team"] != "payments" {
		t.Error("the labels of the earlier version were changed in place: the render cache compares them by address")
	}
}

func namespace(name, rv string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv, Labels: labels,
		Annotations: map[string]string{"note": "dropped"}}}
}

func TestNamespaceSelector(t *testing.T) {
	chain := testpki.NewChain(t, testpki.Options{})
	secret := func(ns, name string) *corev1.Secret {
		sec := tlsSecret(ns, name, chain, nil)
		sec.ResourceVersion = "1"
		return sec
	}
	client := fake.NewClientset(
		namespace("payments", "1", map[string]string{"team": "payments"}),
		namespace("web", "1", map[string]string{"team": "web"}),
		secret("payments", "api"),
		secret("web", "frontend"),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "trust", ResourceVersion: "1"},
			Data: map[string]string{"ca.crt": string(testpki.PEM(chain.Root))}},
	)
	cfg := config.Kubernetes{
		Secrets: &config.SecretWatch{Types: config.DefaultSecretTypes, KeyPatterns: config.DefaultSecretKeyPatterns,
			Selection: config.Selection{ObjectSelect: config.ObjectSelect{NamespaceSelector: "team=payments"}}},
		ConfigMaps: &config.ConfigMapWatch{KeyPatterns: []string{"ca.crt"}}, // no namespace_selector: every namespace
	}
	s := syncedSource(t, cfg, client, nil, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	placesOf := func() map[string]bool {
		out := map[string]bool{}
		for _, f := range s.Collect(ctx) {
			out[f.Source+" "+f.Target] = true
		}
		return out
	}
	if got := placesOf(); !got["secret payments/api"] || got["secret web/frontend"] || !got["configmap web/trust"] {
		t.Fatalf("places %v: want payments' Secret, not web's, and web's ConfigMap", got)
	}
	for _, obj := range s.watches[len(s.watches)-1].informer.GetStore().List() {
		if ns := obj.(*corev1.Namespace); len(ns.Annotations) > 0 || len(ns.Labels) == 0 {
			t.Errorf("cached namespace %s: %+v", ns.Name, ns.ObjectMeta)
		}
	}

	relabel := func(name, rv string, labels map[string]string) {
		t.Helper()
		if _, err := client.CoreV1().Namespaces().Update(ctx, namespace(name, rv, labels), metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name      string
		change    func()
		want, not []string
	}{
		{"a namespace that starts matching is read again",
			func() { relabel("web", "2", map[string]string{"team": "payments"}) },
			[]string{"secret web/frontend", "secret payments/api", "configmap web/trust"}, nil},
		{"a namespace that stops matching loses its places",
			func() { relabel("payments", "2", map[string]string{"team": "billing"}) },
			[]string{"secret web/frontend", "configmap web/trust"}, []string{"secret payments/api"}},
		{"a Secret created in a namespace not selected is held",
			func() {
				if _, err := client.CoreV1().Secrets("payments").Create(ctx, secret("payments", "late"), metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			[]string{"secret web/frontend"}, []string{"secret payments/api", "secret payments/late"}},
		{"and appears with the others when it matches again",
			func() { relabel("payments", "3", map[string]string{"team": "payments"}) },
			[]string{"secret payments/api", "secret payments/late", "secret web/frontend"}, nil},
		{"a deleted namespace loses its places",
			func() {
				if err := client.CoreV1().Namespaces().Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			[]string{"secret payments/api", "configmap web/trust"}, []string{"secret web/frontend"}},
	}
	for _, step := range steps {
		step.change()
		waitFor(t, step.name, func() bool {
			got := placesOf()
			for _, p := range step.want {
				if !got[p] {
					return false
				}
			}
			for _, p := range step.not {
				if got[p] {
					return false
				}
			}
			return true
		})
	}
}

func TestAnnotationSelector(t *testing.T) {
	chain := testpki.NewChain(t, testpki.Options{})
	cases := []struct {
		name        string
		annotations map[string]string
		selected    bool
	}{
		{"matching", map[string]string{"example.com/monitored": "true"}, true},
		{"other value", map[string]string{"example.com/monitored": "false"}, false},
		{"without", nil, false},
	}
	var objects []*corev1.Secret
	for i, c := range cases {
		sec := tlsSecret("web", c.name, chain, nil)
		sec.Name = "s" + string(rune('0'+i))
		sec.ResourceVersion = "1"
		for k, v := range c.annotations {
			sec.Annotations[k] = v
		}
		objects = append(objects, sec)
	}
	client := fake.NewClientset(objects[0], objects[1], objects[2])
	cfg := config.Kubernetes{Secrets: &config.SecretWatch{Types: config.DefaultSecretTypes, KeyPatterns: config.DefaultSecretKeyPatterns,
		Selection: config.Selection{ObjectSelect: config.ObjectSelect{AnnotationSelector: "example.com/monitored=true"}}}}
	s := syncedSource(t, cfg, client, nil, slog.New(slog.DiscardHandler))
	got := byPlace(s.Collect(context.Background()))
	for i, c := range cases {
		if _, ok := got["secret web/"+objects[i].Name+" tls.crt"]; ok != c.selected {
			t.Errorf("%s: selected %v, want %v", c.name, ok, c.selected)
		}
	}
	// An annotation added later is a new version, parsed again.
	late := objects[2].DeepCopy()
	late.ResourceVersion, late.Annotations["example.com/monitored"] = "2", "true"
	if _, err := client.CoreV1().Secrets("web").Update(context.Background(), late, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the newly annotated Secret", func() bool {
		_, ok := byPlace(s.Collect(context.Background()))["secret web/"+late.Name+" tls.crt"]
		return ok
	})
}

func TestNamespaceSelectorExpressions(t *testing.T) {
	namespaces := map[string]map[string]string{
		"payments": {"team": "payments", "env": "prod"},
		"web":      {"team": "web", "env": "staging"},
		"bare":     {},
	}
	cases := []struct {
		selector string
		selected []string // "unknown" is a namespace not seen yet: never selected
	}{
		{"team=payments", []string{"payments"}},
		{"team!=payments", []string{"web", "bare"}},
		{"env in (prod, staging)", []string{"payments", "web"}},
		{"!team", []string{"bare"}},
		{"team,env notin (prod)", []string{"web"}},
	}
	for _, c := range cases {
		t.Run(c.selector, func(t *testing.T) {
			cfg := config.Kubernetes{Secrets: &config.SecretWatch{Selection: config.Selection{ObjectSelect: config.ObjectSelect{NamespaceSelector: c.selector}}}}
			sel, err := newSelection(cfg)
			if err != nil {
				t.Fatal(err)
			}
			s := &Source{sel: sel, objects: map[string]*parsed{}, dependents: map[string]map[string]struct{}{}}
			for name, labels := range namespaces {
				s.setNamespace(name, labels, true)
			}
			for _, ns := range []string{"payments", "web", "bare", "unknown"} {
				want := false
				for _, w := range c.selected {
					want = want || w == ns
				}
				if got := s.namespaceSelectedLocked(KindSecret, ns); got != want {
					t.Errorf("namespace %s selected = %v, want %v", ns, got, want)
				}
				if !s.namespaceSelectedLocked(KindConfigMap, ns) {
					t.Errorf("namespace %s: a kind without a namespace_selector is not selected", ns)
				}
			}
		})
	}
}
