package kubernetes

import (
	"encoding/pem"
	"log/slog"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/shard"
)

func crlPEM(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}) }

// TestObjectsWithCRLs: Secret and ConfigMap values holding CRLs, alone or
// beside certificates, become findings with CRLs and no error; a ca.crt
// holding only a CRL does not replace the roots tls.crt is verified with.
func TestObjectsWithCRLs(t *testing.T) {
	chain := testpki.NewChain(t, testpki.Options{})
	rootCRL := testpki.CRL(t, chain.Root, 21, 5, 6)
	interCRL := testpki.CRL(t, chain.Intermediate, 22)
	cfg := config.Kubernetes{
		Secrets:    &config.SecretWatch{Types: []string{"kubernetes.io/tls", "Opaque"}, KeyPatterns: append([]string{"*.crl"}, config.DefaultSecretKeyPatterns...)},
		ConfigMaps: &config.ConfigMapWatch{KeyPatterns: []string{"*.pem"}},
	}
	s, err := New(cfg, shard.Shard{}, fake.NewClientset(), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}

	tlsWithCRLs := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{
			"tls.crt": append(testpki.PEM(chain.Leaf, chain.Intermediate), crlPEM(interCRL)...),
			"ca.crt":  crlPEM(rootCRL),
			"tls.key": testpki.KeyPEM(t, chain.Leaf.Key),
		}}
	opaque := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "crls"}, Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{"root.crl": rootCRL, "bundle.pem": append(testpki.PEM(chain.Root), crlPEM(interCRL)...)}}
	secretFindings, _ := s.secretFindings(tlsWithCRLs)
	more, _ := s.secretFindings(opaque)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "crl"},
		Data: map[string]string{"crl.pem": string(crlPEM(interCRL))}}
	findings := append(append(secretFindings, more...), s.configMapFindings(cm)...)

	got := byPlace(findings)
	for _, w := range []struct {
		place  string
		certs  int
		number int64 // of the one CRL; 0 when none
	}{
		{KindSecret + " web/tls ca.crt", 0, 21},
		{KindSecret + " web/tls tls.crt", 2, 22},
		{KindSecret + " web/crls root.crl", 0, 21},
		{KindSecret + " web/crls bundle.pem", 1, 22},
		{KindConfigMap + " web/crl crl.pem", 0, 22},
	} {
		f, ok := got[w.place]
		if !ok {
			t.Errorf("no finding for %s; have %v", w.place, keys(got))
			continue
		}
		if f.Err != nil || len(f.Certs) != w.certs || len(f.CRLs) != 1 || f.CRLs[0].Number.Int64() != w.number {
			t.Errorf("%s: err %v, %d certificates, CRLs %+v; want no error, %d certificates and CRL number %d",
				w.place, f.Err, len(f.Certs), f.CRLs, w.certs, w.number)
		}
		if w.place == KindSecret+" web/tls tls.crt" && f.Verify.RootsID != "system" {
			t.Errorf("tls.crt is verified with %q, want the configured roots: its ca.crt holds no certificate", f.Verify.RootsID)
		}
	}
	if len(findings) != 5 {
		t.Errorf("%d findings, want 5: %v", len(findings), keys(got))
	}
	if f := got[KindSecret+" web/crls root.crl"]; len(f.CRLs) == 1 && f.CRLs[0].Entries != 2 {
		t.Errorf("root.crl counts %d entries, want 2", f.CRLs[0].Entries)
	}
}
