package kubernetes

import (
	"context"
	"encoding/base64"
	"log/slog"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/shard"
	"github.com/certwatch/certwatch/source"
)

func tlsSecret(ns, name string, chain *testpki.Chain, key []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Annotations: map[string]string{certManagerCertificateAnnotation: name + "-cert",
				"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":\"secret\"}"}},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{
			"tls.crt": testpki.PEM(chain.Leaf, chain.Intermediate),
			"ca.crt":  testpki.PEM(chain.Root),
			"tls.key": key,
		},
	}
}

func unstructuredAPIService(name string, bundle []byte) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": name, "resourceVersion": "1"},
		"spec":     map[string]any{"caBundle": base64.StdEncoding.EncodeToString(bundle)},
	}}
	return u
}

func byPlace(findings []source.Finding) map[string]source.Finding {
	out := map[string]source.Finding{}
	for _, f := range findings {
		out[f.Source+" "+f.Target+" "+f.Key] = f
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSourceWithFakeClient(t *testing.T) {
	chain := testpki.NewChain(t, testpki.Options{})
	other := testpki.NewChain(t, testpki.Options{})
	p12Leaf := testpki.New(t, chain.Intermediate, testpki.Options{CommonName: "keystore"})

	client := fake.NewClientset(
		tlsSecret("web", "good", chain, testpki.KeyPEM(t, chain.Leaf.Key)),
		tlsSecret("web", "wrongkey", chain, testpki.KeyPEM(t, other.Leaf.Key)),
		tlsSecret("kube-system", "excluded", chain, nil),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "corrupt"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{"tls.crt": []byte("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "keystore"}, Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{"keystore.p12": testpki.PKCS12(t, p12Leaf, nil, "s3cret"), "password": []byte("s3cret\n"), "notes.txt": []byte("hi")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "token"}, Type: corev1.SecretTypeServiceAccountToken,
			Data: map[string][]byte{"ca.crt": testpki.PEM(chain.Root)}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "kube-root-ca.crt"},
			Data: map[string]string{"ca.crt": string(testpki.PEM(chain.Root)), "other": "x"}},
		&admissionv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "policy"},
			Webhooks: []admissionv1.ValidatingWebhook{{Name: "check.example.com", ClientConfig: admissionv1.WebhookClientConfig{CABundle: testpki.PEM(chain.Root)}}}},
	)
	scheme := runtime.NewScheme()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{apiServiceGVR: "APIServiceList", crdGVR: "CustomResourceDefinitionList"},
		unstructuredAPIService("v1beta1.metrics.k8s.io", testpki.PEM(chain.Root)))

	cfg := config.Kubernetes{
		Secrets:     &config.SecretWatch{Types: []string{"kubernetes.io/tls", "Opaque"}, KeyPatterns: config.DefaultSecretKeyPatterns, PasswordKey: "password", Selection: config.Selection{ExcludeNamespaces: []string{"kube-system"}}},
		ConfigMaps:  &config.ConfigMapWatch{KeyPatterns: []string{"ca.crt"}},
		Webhooks:    true,
		APIServices: true,
		CRDs:        true,
		Labels:      map[string]string{"cluster": "test"},
	}
	s, err := New(cfg, shard.Shard{}, client, dyn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !s.WaitForSync(ctx) {
		t.Fatalf("informers did not sync: %+v", s.Statuses())
	}
	inspector := inspect.NewInspector(nil)
	got := byPlace(s.Collect(ctx))

	good := got["secret web/good tls.crt"]
	if len(good.Certs) != 2 || good.Err != nil {
		t.Fatalf("web/good: %+v", good)
	}
	if v := inspector.Judge(good.Certs, good.KeyPublics, good.Verify); v.Reason != inspect.ReasonOK {
		t.Errorf("web/good verdict %s (%s): tls.crt must verify against the secret's own ca.crt", v.Reason, v.Detail)
	}
	if good.Labels[LabelNamespace] != "web" || good.Labels[LabelCertificate] != "good-cert" || good.Labels["cluster"] != "test" {
		t.Errorf("labels %v", good.Labels)
	}
	if _, ok := got["secret web/good ca.crt"]; !ok {
		t.Error("ca.crt is not a place of its own")
	}
	wrong := got["secret web/wrongkey tls.crt"]
	if v := inspector.Judge(wrong.Certs, wrong.KeyPublics, wrong.Verify); v.Reason != inspect.ReasonKeyMismatch {
		t.Errorf("web/wrongkey verdict %s", v.Reason)
	}
	if c := source.ClassOf(got["secret web/corrupt tls.crt"].Err); c != source.ClassParse {
		t.Errorf("web/corrupt class %q", c)
	}
	if ks := got["secret web/keystore keystore.p12"]; len(ks.Certs) != 1 || ks.Err != nil || len(ks.KeyPublics) != 1 {
		t.Errorf("keystore: %+v", ks)
	}
	for place := range got {
		switch place {
		case "secret kube-system/excluded tls.crt", "secret web/keystore notes.txt", "secret web/keystore password", "secret web/token ca.crt", "configmap web/kube-root-ca.crt other":
			t.Errorf("%s should not be watched", place)
		}
	}
	if cm := got["configmap web/kube-root-ca.crt ca.crt"]; len(cm.Certs) != 1 {
		t.Errorf("configmap: %+v", cm)
	}
	if wh := got["validatingwebhook policy check.example.com"]; len(wh.Certs) != 1 {
		t.Errorf("webhook: %+v", wh)
	}
	if as := got["apiservice v1beta1.metrics.k8s.io "]; len(as.Certs) != 1 {
		t.Errorf("apiservice: %+v (all: %v)", as, keys(got))
	}

	// The informer caches keep metadata only: no payload, no annotations.
	for _, w := range s.watches {
		for _, obj := range w.informer.GetStore().List() {
			switch o := obj.(type) {
			case *corev1.Secret:
				if o.Data != nil || o.Annotations != nil {
					t.Errorf("cached secret %s/%s still holds data or annotations", o.Namespace, o.Name)
				}
			case *corev1.ConfigMap:
				if o.Data != nil {
					t.Errorf("cached configmap %s still holds data", o.Name)
				}
			}
		}
	}

	// Renewal: new dates appear; deletion: the place goes.
	renewed := testpki.NewChain(t, testpki.Options{NotAfter: time.Now().Add(400 * 24 * time.Hour)})
	sec := tlsSecret("web", "good", renewed, testpki.KeyPEM(t, renewed.Leaf.Key))
	sec.ResourceVersion = "2"
	if _, err := client.CoreV1().Secrets("web").Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the renewed certificate", func() bool {
		f := byPlace(s.Collect(ctx))["secret web/good tls.crt"]
		return len(f.Certs) > 0 && f.Certs[0].NotAfter.Equal(renewed.Leaf.Cert.NotAfter)
	})
	if err := client.CoreV1().Secrets("web").Delete(ctx, "good", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted secret to go", func() bool {
		_, ok := byPlace(s.Collect(ctx))["secret web/good tls.crt"]
		return !ok
	})
	for _, st := range s.Statuses() {
		if !st.Synced {
			t.Errorf("%s not synced", st.Resource)
		}
	}
}

func keys(m map[string]source.Finding) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
