package kubernetes

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/internal/testtools"
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
	s := syncedSource(t, cfg, client, dyn, slog.New(slog.DiscardHandler))
	ctx := context.Background()
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

// syncedSource starts a Source on client and waits for its informers.
func syncedSource(t *testing.T, cfg config.Kubernetes, client *fake.Clientset, dyn dynamic.Interface, logger *slog.Logger) *Source {
	t.Helper()
	s, err := New(cfg, shard.Shard{}, client, dyn, logger)
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
	return s
}

func opaqueSecret(ns, name, rv string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "-" + name + "-uid"), ResourceVersion: rv,
		Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":\"secret\"}"}},
		Type: corev1.SecretTypeOpaque, Data: data}
}

// targetedLists counts the lists of one Secret by name: the reads of a
// keystore Secret after its password changed.
func targetedLists(client *fake.Clientset, ns, name string) int {
	n := 0
	for _, a := range client.Actions() {
		if l, ok := a.(k8stesting.ListAction); ok && a.GetResource().Resource == "secrets" && a.GetNamespace() == ns &&
			l.GetListRestrictions().Fields.String() == "metadata.name="+name {
			n++
		}
	}
	return n
}

func TestPasswordSecret(t *testing.T) {
	chain := testpki.NewChain(t, testpki.Options{})
	leaf := testpki.New(t, chain.Intermediate, testpki.Options{CommonName: "keystore"})
	const right, wrong, own = "s3cret-right", "s3cret-wrong", "s3cret-own"
	client := fake.NewClientset(
		opaqueSecret("web", "keystore", "1", map[string][]byte{"keystore.p12": testpki.PKCS12(t, leaf, []*testpki.Cert{chain.Intermediate}, right)}),
		opaqueSecret("web", "truststore", "1", map[string][]byte{"truststore.jks": testpki.JKS(t, right, testpki.JKSEntry{Alias: "app", Key: leaf.Key, Chain: []*testpki.Cert{leaf}})}),
		// password_key in the same Secret wins over password_secret.
		opaqueSecret("web", "own", "1", map[string][]byte{"keystore.p12": testpki.PKCS12(t, leaf, nil, own), "password": []byte(own)}),
		opaqueSecret("web", "pem", "1", map[string][]byte{"ca.pem": testpki.PEM(chain.Root)}),
	)
	logs := &testtools.SyncBuffer{}
	cfg := config.Kubernetes{Secrets: &config.SecretWatch{Types: []string{"Opaque"}, KeyPatterns: config.DefaultSecretKeyPatterns, PasswordKey: "password",
		PasswordSecret: &config.PasswordSecret{Name: "keystore-password", Key: "password"}}}
	s := syncedSource(t, cfg, client, nil, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx := context.Background()

	keystore := func() source.Finding { return byPlace(s.Collect(ctx))["secret web/keystore keystore.p12"] }
	jks := func() source.Finding { return byPlace(s.Collect(ctx))["secret web/truststore truststore.jks/app"] }
	failsWith := func(f source.Finding, class source.Class, text string) bool {
		return f.Err != nil && source.ClassOf(f.Err) == class && strings.Contains(f.Err.Error(), text)
	}
	setPassword := func(rv string, data map[string][]byte) {
		t.Helper()
		if _, err := client.CoreV1().Secrets("web").Update(ctx, opaqueSecret("web", "keystore-password", rv, data), metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// No password Secret yet: the keystores fail and say which Secret they wait for.
	if f := keystore(); !failsWith(f, source.ClassWrongPassword, "password_secret web/keystore-password does not exist") || len(f.Certs) != 0 {
		t.Errorf("keystore without its password Secret: %+v", f)
	}
	if f := jks(); !failsWith(f, source.ClassWrongPassword, "does not exist") || len(f.Certs) != 1 {
		t.Errorf("JKS without its password Secret: certificates readable, still a failure: %+v", f)
	}
	if f := byPlace(s.Collect(ctx))["secret web/own keystore.p12"]; f.Err != nil || len(f.Certs) != 1 {
		t.Errorf("password_key in the same Secret: %+v", f)
	}
	if f := byPlace(s.Collect(ctx))["secret web/pem ca.pem"]; f.Err != nil || len(f.Certs) != 1 {
		t.Errorf("a PEM needs no password: %+v", f)
	}
	if !strings.Contains(logs.String(), "target=web/keystore") || !strings.Contains(logs.String(), "web/keystore-password does not exist") {
		t.Errorf("the log does not name the keystore and its password Secret:\n%s", logs)
	}
	var passwordStatus *Status
	for _, st := range s.Statuses() {
		if st.Resource == ResourcePasswordSecrets {
			passwordStatus = &st
		}
	}
	if passwordStatus == nil || passwordStatus.Namespace != "" || !passwordStatus.Synced {
		t.Errorf("password informer status %+v in %+v", passwordStatus, s.Statuses())
	}

	// The password arrives after the keystores: they are read again.
	if _, err := client.CoreV1().Secrets("web").Create(ctx, opaqueSecret("web", "keystore-password", "1", map[string][]byte{"password": []byte(right + "\n")}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the keystore opened with the late password", func() bool { f := keystore(); return f.Err == nil && len(f.Certs) == 2 })
	waitFor(t, "the JKS checked with the late password", func() bool { f := jks(); return f.Err == nil && len(f.KeyPublics) == 1 })
	if n := targetedLists(client, "web", "keystore"); n != 1 {
		t.Errorf("the keystore Secret was read %d times after its password arrived, want 1", n)
	}
	if n := targetedLists(client, "web", "pem") + targetedLists(client, "web", "own"); n != 0 {
		t.Errorf("Secrets that do not use password_secret were read %d times", n)
	}

	// Scrapes read the cache only.
	before := len(client.Actions())
	for range 5 {
		s.Collect(ctx)
	}
	if after := len(client.Actions()); after != before {
		t.Errorf("5 collections made %d API requests", after-before)
	}

	// A wrong password is wrong_password, and says where it came from.
	setPassword("2", map[string][]byte{"password": []byte(wrong)})
	waitFor(t, "wrong_password", func() bool {
		return failsWith(keystore(), source.ClassWrongPassword, `password from password_secret web/keystore-password key "password"`)
	})
	waitFor(t, "the JKS to fail its integrity check", func() bool { return failsWith(jks(), source.ClassWrongPassword, "integrity") })

	// Fixed: the certificates come back.
	setPassword("3", map[string][]byte{"password": []byte(right)})
	waitFor(t, "the fixed password", func() bool { f := keystore(); return f.Err == nil && len(f.Certs) == 2 })

	// The key goes from the password Secret.
	setPassword("4", map[string][]byte{"other": []byte(right)})
	waitFor(t, "the missing key", func() bool {
		return failsWith(keystore(), source.ClassWrongPassword, `password_secret web/keystore-password has no key "password"`)
	})
	setPassword("5", map[string][]byte{"password": []byte(right)})
	waitFor(t, "the key back", func() bool { return keystore().Err == nil })

	// The password Secret is deleted.
	if err := client.CoreV1().Secrets("web").Delete(ctx, "keystore-password", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted password Secret", func() bool {
		return failsWith(keystore(), source.ClassWrongPassword, "does not exist")
	})

	// A keystore Secret that goes is no longer read on password changes.
	if err := client.CoreV1().Secrets("web").Delete(ctx, "truststore", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted truststore to go", func() bool { _, ok := byPlace(s.Collect(ctx))["secret web/truststore truststore.jks/app"]; return !ok })
	s.mu.RLock()
	deps := len(s.dependents["web"])
	s.mu.RUnlock()
	if deps != 1 {
		t.Errorf("%d Secrets depend on the password, want 1 (web/keystore)", deps)
	}

	// The password informer's cache holds metadata only, and no password
	// appears in a log line.
	for _, w := range s.watches {
		for _, obj := range w.informer.GetStore().List() {
			if sec := obj.(*corev1.Secret); sec.Data != nil || sec.Annotations != nil {
				t.Errorf("%s cache: %s/%s still holds data or annotations", w.resource, sec.Namespace, sec.Name)
			}
		}
	}
	for _, pw := range []string{right, wrong, own} {
		if strings.Contains(logs.String(), pw) {
			t.Errorf("a password appears in the log:\n%s", logs)
		}
	}
}

// With the password already there at start, and in a namespace of its own,
// the keystores open at once: no Secret is read again.
func TestPasswordSecretInOtherNamespace(t *testing.T) {
	leaf := testpki.New(t, nil, testpki.Options{CommonName: "keystore"})
	client := fake.NewClientset(
		opaqueSecret("vault", "keystore-password", "1", map[string][]byte{"password": []byte("pw\n")}),
		opaqueSecret("web", "keystore-password", "1", map[string][]byte{"password": []byte("not this one")}),
		opaqueSecret("web", "keystore", "1", map[string][]byte{"keystore.p12": testpki.PKCS12(t, leaf, nil, "pw")}),
		opaqueSecret("payments", "keystore", "1", map[string][]byte{"keystore.pfx": testpki.PKCS12(t, leaf, nil, "pw")}),
	)
	cfg := config.Kubernetes{Secrets: &config.SecretWatch{Types: []string{"Opaque"}, KeyPatterns: config.DefaultSecretKeyPatterns,
		PasswordSecret: &config.PasswordSecret{Name: "keystore-password", Key: "password", Namespace: "vault"}}}
	s := syncedSource(t, cfg, client, nil, slog.New(slog.DiscardHandler))
	got := byPlace(s.Collect(context.Background()))
	for _, place := range []string{"secret web/keystore keystore.p12", "secret payments/keystore keystore.pfx"} {
		if f := got[place]; f.Err != nil || len(f.Certs) != 1 {
			t.Errorf("%s: %+v", place, f)
		}
	}
	if n := targetedLists(client, "web", "keystore") + targetedLists(client, "payments", "keystore"); n != 0 {
		t.Errorf("keystore Secrets read %d times though the password was there first", n)
	}
	var resources []string
	for _, st := range s.Statuses() {
		resources = append(resources, st.Resource+"@"+st.Namespace)
	}
	if want := []string{"secrets@", "secrets/password@vault"}; !slices.Equal(resources, want) {
		t.Errorf("informers %v, want %v", resources, want)
	}
}

// A keystore Secret that may not be read again reports permission.
func TestPasswordSecretReadForbidden(t *testing.T) {
	leaf := testpki.New(t, nil, testpki.Options{CommonName: "keystore"})
	client := fake.NewClientset(
		opaqueSecret("web", "keystore", "1", map[string][]byte{"keystore.p12": testpki.PKCS12(t, leaf, nil, "pw")}),
	)
	client.PrependReactor("list", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.ListAction).GetListRestrictions().Fields.String() == "metadata.name=keystore" {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "", errors.New("RBAC: list denied"))
		}
		return false, nil, nil
	})
	cfg := config.Kubernetes{Secrets: &config.SecretWatch{Types: []string{"Opaque"}, KeyPatterns: config.DefaultSecretKeyPatterns,
		PasswordSecret: &config.PasswordSecret{Name: "keystore-password", Key: "password"}}}
	s := syncedSource(t, cfg, client, nil, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	if _, err := client.CoreV1().Secrets("web").Create(ctx, opaqueSecret("web", "keystore-password", "1", map[string][]byte{"password": []byte("pw")}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the permission error", func() bool {
		f := byPlace(s.Collect(ctx))["secret web/keystore keystore.p12"]
		return source.ClassOf(f.Err) == source.ClassPermission
	})
}

// TestSecretsOfOneIssuerShareTheirRoots checks that Secrets with the same
// ca.crt share one parsed root and one verification pool, and that Secrets
// with another ca.crt get their own.
func TestSecretsOfOneIssuerShareTheirRoots(t *testing.T) {
	chain := testpki.NewChain(t, testpki.Options{})
	other := testpki.NewChain(t, testpki.Options{})
	client := fake.NewClientset(
		tlsSecret("web", "a", chain, nil),
		tlsSecret("web", "b", chain, nil),
		tlsSecret("web", "c", other, nil),
	)
	s := syncedSource(t, config.Kubernetes{Secrets: &config.SecretWatch{Types: config.DefaultSecretTypes}}, client, nil, slog.New(slog.DiscardHandler))
	var found map[string]source.Finding
	waitFor(t, "three Secrets", func() bool {
		found = byPlace(s.Collect(context.Background()))
		return len(found) == 6
	})
	a, b, c := found["secret web/a tls.crt"], found["secret web/b tls.crt"], found["secret web/c tls.crt"]
	if a.Verify.Roots == nil || a.Verify.Roots != b.Verify.Roots {
		t.Error("two Secrets with the same ca.crt have two verification pools")
	}
	if a.Verify.Roots == c.Verify.Roots || a.Verify.RootsID == c.Verify.RootsID {
		t.Error("Secrets with different ca.crt share a verification pool")
	}
	if a.Certs[1] != b.Certs[1] || found["secret web/a ca.crt"].Certs[0] != found["secret web/b ca.crt"].Certs[0] {
		t.Error("the same intermediate or root in two Secrets is parsed twice")
	}
}
