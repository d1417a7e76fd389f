package kubernetes

import (
	"bytes"
	"context"
	"crypto/x509"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// meshPKI is a root and the intermediate CA a mesh signs workloads with.
type meshPKI struct {
	root, ca *testpki.Cert
}

func newMeshPKI(t *testing.T, name string) meshPKI {
	root := testpki.New(t, nil, testpki.Options{CommonName: name + " root", IsCA: true, NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour)})
	ca := testpki.New(t, root, testpki.Options{CommonName: name + " intermediate", IsCA: true, NotAfter: time.Now().Add(365 * 24 * time.Hour)})
	return meshPKI{root: root, ca: ca}
}

// istioPlugInSecret is cacerts as Istio's plug-in CA instructions make it.
func istioPlugInSecret(t *testing.T, ns string, p meshPKI, key []byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: IstioCACertsSecret, ResourceVersion: "1"}, Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			"ca-cert.pem":    testpki.PEM(p.ca),
			"ca-key.pem":     key,
			"cert-chain.pem": testpki.PEM(p.ca, p.root),
			"root-cert.pem":  testpki.PEM(p.root),
		}}
}

// istioSelfSignedSecret is istio-ca-secret as istiod writes it: a
// self-signed CA, and the other keys present but empty.
func istioSelfSignedSecret(t *testing.T, ns string, ca *testpki.Cert) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: IstioSelfSignedSecret, ResourceVersion: "1"}, Type: "istio.io/ca-root",
		Data: map[string][]byte{
			"ca-cert.pem":    testpki.PEM(ca),
			"ca-key.pem":     testpki.KeyPEM(t, ca.Key),
			"cert-chain.pem": {},
			"key.pem":        {},
			"root-cert.pem":  {},
		}}
}

func configMap(ns, name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: "1"}, Data: data}
}

func meshConfig(istio, linkerd bool) *config.Mesh {
	m := &config.Mesh{}
	if istio {
		m.Istio = &config.MeshPreset{Enabled: true, Namespace: config.DefaultIstioNamespace}
	}
	if linkerd {
		m.Linkerd = &config.MeshPreset{Enabled: true, Namespace: config.DefaultLinkerdNamespace}
	}
	return m
}

func newDyn() *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
}

func judge(f source.Finding) inspect.Verdict {
	return inspect.NewInspector(nil).Judge(f.Certs, f.KeyPublics, f.Verify)
}

func TestMeshIstioPlacesAreJudgedAsCAMaterial(t *testing.T) {
	plug := newMeshPKI(t, "istio")
	self := testpki.New(t, nil, testpki.Options{CommonName: "cluster.local", IsCA: true})
	stale := testpki.New(t, nil, testpki.Options{CommonName: "old cluster.local", IsCA: true})
	client := fake.NewClientset(
		istioPlugInSecret(t, "istio-system", plug, testpki.KeyPEM(t, plug.ca.Key)),
		istioSelfSignedSecret(t, "istio-system", self),
		// Same names elsewhere are not the mesh's.
		istioPlugInSecret(t, "web", plug, nil),
		configMap("istio-system", IstioRootCertConfigMap, map[string]string{"root-cert.pem": string(testpki.PEM(plug.root))}),
		configMap("web", IstioRootCertConfigMap, map[string]string{"root-cert.pem": string(testpki.PEM(plug.root))}),
		configMap("payments", IstioRootCertConfigMap, map[string]string{"root-cert.pem": string(testpki.PEM(stale))}),
		configMap("web", "other", map[string]string{"root-cert.pem": string(testpki.PEM(plug.root))}),
	)
	s := syncedSource(t, config.Kubernetes{Mesh: meshConfig(true, false), Labels: map[string]string{"cluster": "test"}}, client, newDyn(), slog.New(slog.DiscardHandler))
	got := byPlace(s.Collect(context.Background()))

	want := []string{
		"configmap istio-system/istio-ca-root-cert root-cert.pem",
		"configmap payments/istio-ca-root-cert root-cert.pem",
		"configmap web/istio-ca-root-cert root-cert.pem",
		"secret istio-system/cacerts ca-cert.pem",
		"secret istio-system/cacerts root-cert.pem",
		"secret istio-system/istio-ca-secret ca-cert.pem",
	}
	if k := keys(got); !slices.Equal(sorted(k), want) {
		t.Fatalf("places %v\nwant %v", sorted(k), want)
	}
	cases := []struct {
		place, role string
		reason      inspect.Reason
		roles       []inspect.Role
	}{
		// The intermediate CA with its root beside it verifies as a chain
		// to root-cert.pem, and ca-key.pem is its key.
		{"secret istio-system/cacerts ca-cert.pem", MeshRoleIssuer, inspect.ReasonOK, []inspect.Role{inspect.RoleLeaf, inspect.RoleRoot}},
		{"secret istio-system/cacerts root-cert.pem", MeshRoleRoot, inspect.ReasonOK, []inspect.Role{inspect.RoleAnchor}},
		// istiod's own CA is self-signed: an anchor, its key checked.
		{"secret istio-system/istio-ca-secret ca-cert.pem", MeshRoleIssuer, inspect.ReasonOK, []inspect.Role{inspect.RoleAnchor}},
		{"configmap payments/istio-ca-root-cert root-cert.pem", MeshRoleTrustRoots, inspect.ReasonOK, []inspect.Role{inspect.RoleAnchor}},
	}
	for _, c := range cases {
		f := got[c.place]
		if f.Err != nil {
			t.Errorf("%s: %v", c.place, f.Err)
			continue
		}
		if f.Labels[LabelMesh] != MeshIstio || f.Labels[LabelMeshRole] != c.role || f.Labels["cluster"] != "test" || f.Labels[LabelNamespace] == "" {
			t.Errorf("%s labels %v", c.place, f.Labels)
		}
		v := judge(f)
		if v.Reason != c.reason || !slices.Equal(v.Roles, c.roles) {
			t.Errorf("%s: verdict %s (%s), roles %v; want %s, %v", c.place, v.Reason, v.Detail, v.Roles, c.reason, c.roles)
		}
	}
	if f := got["secret istio-system/cacerts ca-cert.pem"]; len(f.KeyPublics) != 1 {
		t.Errorf("ca-key.pem not compared: %d public keys", len(f.KeyPublics))
	}
	if n := len(got["secret istio-system/istio-ca-secret ca-cert.pem"].Certs); n != 1 {
		t.Errorf("istio-ca-secret: %d certificates, want 1 (its empty keys are not places)", n)
	}
	for _, st := range s.Statuses() {
		if st.Resource == "configmaps/istio-ca-root-cert" && st.Namespace != "" {
			t.Errorf("the root-cert ConfigMaps are watched in %q, want every namespace", st.Namespace)
		}
	}
}

func TestMeshCAKeyMismatchAndBrokenChain(t *testing.T) {
	plug := newMeshPKI(t, "istio")
	other := newMeshPKI(t, "other")
	wrongKey := istioPlugInSecret(t, "istio-system", plug, testpki.KeyPEM(t, other.ca.Key))
	// A CA whose root-cert.pem is another root: its chain does not verify.
	wrongRoot := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd", Name: LinkerdIssuerSecret, ResourceVersion: "1"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": testpki.PEM(plug.ca), "tls.key": testpki.KeyPEM(t, plug.ca.Key), "ca.crt": testpki.PEM(other.root)}}
	client := fake.NewClientset(wrongKey, wrongRoot,
		configMap("linkerd", LinkerdTrustRootsConfig, map[string]string{"other.crt": "x"}),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: IstioSelfSignedSecret, ResourceVersion: "1"}, Type: "istio.io/ca-root",
			Data: map[string][]byte{"ca-key.pem": testpki.KeyPEM(t, plug.ca.Key)}})
	s := syncedSource(t, config.Kubernetes{Mesh: meshConfig(true, true)}, client, newDyn(), slog.New(slog.DiscardHandler))
	got := byPlace(s.Collect(context.Background()))
	if v := judge(got["secret istio-system/cacerts ca-cert.pem"]); v.Reason != inspect.ReasonKeyMismatch {
		t.Errorf("a ca-key.pem of another CA: %s (%s)", v.Reason, v.Detail)
	}
	// An issuer whose ca.crt did not sign it would read as a bundle of
	// anchors: it is an error instead, its dates still reported.
	if f := got["secret linkerd/linkerd-identity-issuer tls.crt"]; source.ClassOf(f.Err) != source.ClassBadSignature || len(f.Certs) != 1 {
		t.Errorf("an issuer whose ca.crt did not sign it: err %v, %d certificates", f.Err, len(f.Certs))
	}
	for _, place := range []string{"secret istio-system/istio-ca-secret ca-cert.pem", "configmap linkerd/linkerd-identity-trust-roots ca-bundle.crt"} {
		if f := got[place]; source.ClassOf(f.Err) != source.ClassParse {
			t.Errorf("%s: err %v, want a parse error for the missing key", place, f.Err)
		}
	}
}

func TestMeshLinkerd(t *testing.T) {
	pki := newMeshPKI(t, "linkerd")
	legacy := newMeshPKI(t, "legacy")
	for _, c := range []struct {
		name   string
		issuer *corev1.Secret
		key    string
		roles  []inspect.Role
	}{
		{"kubernetes.io/tls with ca.crt, as cert-manager writes it",
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd", Name: LinkerdIssuerSecret, ResourceVersion: "1",
				Annotations: map[string]string{certManagerCertificateAnnotation: "linkerd-identity-issuer"}}, Type: corev1.SecretTypeTLS,
				Data: map[string][]byte{"tls.crt": testpki.PEM(pki.ca), "tls.key": testpki.KeyPEM(t, pki.ca.Key), "ca.crt": testpki.PEM(pki.root)}},
			"tls.crt", []inspect.Role{inspect.RoleLeaf, inspect.RoleRoot}},
		// No root beside it: dates and key only, as a bundle of anchors.
		{"legacy crt.pem and key.pem",
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd", Name: LinkerdIssuerSecret, ResourceVersion: "1"}, Type: "linkerd.io/tls",
				Data: map[string][]byte{"crt.pem": testpki.PEM(legacy.ca), "key.pem": testpki.KeyPEM(t, legacy.ca.Key)}},
			"crt.pem", []inspect.Role{inspect.RoleAnchor}},
	} {
		t.Run(c.name, func(t *testing.T) {
			client := fake.NewClientset(c.issuer,
				configMap("linkerd", LinkerdTrustRootsConfig, map[string]string{"ca-bundle.crt": string(testpki.PEM(pki.root, legacy.root))}),
				configMap("web", LinkerdTrustRootsConfig, map[string]string{"ca-bundle.crt": string(testpki.PEM(pki.root))}))
			s := syncedSource(t, config.Kubernetes{Mesh: meshConfig(false, true)}, client, newDyn(), slog.New(slog.DiscardHandler))
			got := byPlace(s.Collect(context.Background()))
			issuer := got["secret linkerd/linkerd-identity-issuer "+c.key]
			if v := judge(issuer); v.Reason != inspect.ReasonOK || !slices.Equal(v.Roles, c.roles) {
				t.Errorf("issuer: %s (%s), roles %v, want ok %v", v.Reason, v.Detail, v.Roles, c.roles)
			}
			if issuer.Labels[LabelMesh] != MeshLinkerd || issuer.Labels[LabelMeshRole] != MeshRoleIssuer {
				t.Errorf("issuer labels %v", issuer.Labels)
			}
			roots := got["configmap linkerd/linkerd-identity-trust-roots ca-bundle.crt"]
			if len(roots.Certs) != 2 || roots.Labels[LabelMeshRole] != MeshRoleTrustRoots {
				t.Errorf("trust roots: %d certificates, labels %v", len(roots.Certs), roots.Labels)
			}
			if _, ok := got["configmap web/linkerd-identity-trust-roots ca-bundle.crt"]; ok {
				t.Error("a trust-roots ConfigMap outside linkerd's namespace was reported")
			}
		})
	}
}

// The presets never widen the selections, a place both find is reported
// once (as the preset reads it), and the selections' other places of that
// object stay.
func TestMeshBesideSelections(t *testing.T) {
	plug := newMeshPKI(t, "istio")
	client := fake.NewClientset(
		istioPlugInSecret(t, "istio-system", plug, testpki.KeyPEM(t, plug.ca.Key)),
		configMap("istio-system", IstioRootCertConfigMap, map[string]string{"root-cert.pem": string(testpki.PEM(plug.root))}),
		configMap("web", IstioRootCertConfigMap, map[string]string{"root-cert.pem": string(testpki.PEM(plug.root))}),
		opaqueSecret("web", "app", "1", map[string][]byte{"app.pem": testpki.PEM(plug.root)}),
	)
	selections := config.Kubernetes{
		Secrets:    &config.SecretWatch{Types: []string{"Opaque"}, KeyPatterns: []string{"*.pem"}},
		ConfigMaps: &config.ConfigMapWatch{KeyPatterns: []string{"*.pem"}, Selection: config.Selection{Namespaces: []string{"web"}}},
	}
	without := syncedSource(t, selections, client, newDyn(), slog.New(slog.DiscardHandler))
	before := byPlace(without.Collect(context.Background()))

	withMesh := selections
	withMesh.Mesh = meshConfig(true, false)
	client.ClearActions()
	s := syncedSource(t, withMesh, client, newDyn(), slog.New(slog.DiscardHandler))
	all := s.Collect(context.Background())
	got := byPlace(all)
	if len(got) != len(all) {
		t.Fatalf("%d findings for %d places: a place was reported twice", len(all), len(got))
	}
	for place, f := range before {
		g, ok := got[place]
		switch {
		case !ok:
			t.Errorf("%s: selected without the preset, gone with it", place)
		case f.Labels[LabelMesh] == "" && g.Labels[LabelMesh] == "" && !sameCerts(f.Certs, g.Certs):
			t.Errorf("%s: changed by the preset", place)
		}
	}
	// Selected and preset: the preset's reading, with its labels.
	for _, place := range []string{"secret istio-system/cacerts ca-cert.pem", "secret istio-system/cacerts root-cert.pem", "configmap web/istio-ca-root-cert root-cert.pem"} {
		if got[place].Labels[LabelMesh] != MeshIstio {
			t.Errorf("%s: labels %v, want the preset's", place, got[place].Labels)
		}
	}
	if n := len(got["secret istio-system/cacerts ca-cert.pem"].Certs); n != 2 {
		t.Errorf("cacerts ca-cert.pem: %d certificates, want the CA and its root", n)
	}
	// Selected only: unchanged.
	if f, ok := got["secret istio-system/cacerts cert-chain.pem"]; !ok || f.Labels[LabelMesh] != "" {
		t.Errorf("cert-chain.pem, found by the selection only: %v %v", ok, f.Labels)
	}
	// The preset's istio-system ConfigMap is reported although the
	// selection is web only; the selection's own informers are unchanged.
	if _, ok := got["configmap istio-system/istio-ca-root-cert root-cert.pem"]; !ok {
		t.Error("the preset's ConfigMap in istio-system is missing")
	}
	for _, a := range client.Actions() {
		l, ok := a.(k8stesting.ListAction)
		if !ok || a.GetResource().Resource != "configmaps" {
			continue
		}
		if sel := l.GetListRestrictions().Fields.String(); sel == "" && a.GetNamespace() != "web" {
			t.Errorf("the ConfigMaps selection listed namespace %q: the preset widened it", a.GetNamespace())
		}
	}
	// The presets' places come first: the target's own series carry the
	// mesh labels.
	for _, f := range all {
		if f.Target == "istio-system/cacerts" {
			if f.Labels[LabelMesh] == "" {
				t.Errorf("the first place of istio-system/cacerts is %s, not the preset's", f.Key)
			}
			break
		}
	}
}

func TestMeshUpdatesAndDeletion(t *testing.T) {
	first, renewed := newMeshPKI(t, "first"), newMeshPKI(t, "renewed")
	client := fake.NewClientset(istioPlugInSecret(t, "istio-system", first, testpki.KeyPEM(t, first.ca.Key)))
	s := syncedSource(t, config.Kubernetes{Mesh: meshConfig(true, false)}, client, newDyn(), slog.New(slog.DiscardHandler))
	ctx := context.Background()
	next := istioPlugInSecret(t, "istio-system", renewed, testpki.KeyPEM(t, renewed.ca.Key))
	next.ResourceVersion = "2"
	if _, err := client.CoreV1().Secrets("istio-system").Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the renewed CA", func() bool {
		f := byPlace(s.Collect(ctx))["secret istio-system/cacerts ca-cert.pem"]
		return len(f.Certs) > 0 && f.Certs[0].Equal(renewed.ca.Cert)
	})
	if err := client.CoreV1().Secrets("istio-system").Delete(ctx, IstioCACertsSecret, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted CA to go", func() bool { return len(s.Collect(ctx)) == 0 })
}

// No label and no log line carries a private key, whatever the Secret holds.
func TestMeshKeysStayOut(t *testing.T) {
	plug := newMeshPKI(t, "istio")
	key := testpki.KeyPEM(t, plug.ca.Key)
	broken := istioPlugInSecret(t, "istio-system", plug, key)
	broken.Data["ca-cert.pem"] = append(append([]byte{}, key...), []byte("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")...)
	var logs lockedBuffer
	client := fake.NewClientset(broken)
	s := syncedSource(t, config.Kubernetes{Mesh: meshConfig(true, false)}, client, newDyn(), slog.New(slog.NewTextHandler(&logs, nil)))
	for _, f := range s.Collect(context.Background()) {
		for k, v := range f.Labels {
			if strings.Contains(v, "PRIVATE KEY") {
				t.Errorf("label %s holds a key", k)
			}
		}
		if f.Err != nil && strings.Contains(f.Err.Error(), "PRIVATE KEY") {
			t.Errorf("error of %s holds a key", f.Key)
		}
	}
	if logs.Len() == 0 {
		t.Fatal("nothing was logged: the check would prove nothing")
	}
	keyBody := strings.Split(string(key), "\n")[1]
	if strings.Contains(logs.String(), keyBody) || strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Errorf("the log holds the key:\n%s", logs.String())
	}
}

// lockedBuffer is a log destination several goroutines may write.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) Len() int { return len(b.String()) }

func sorted(s []string) []string { slices.Sort(s); return s }

func sameCerts(a, b []*x509.Certificate) bool {
	return slices.EqualFunc(a, b, func(x, y *x509.Certificate) bool { return x.Equal(y) })
}
