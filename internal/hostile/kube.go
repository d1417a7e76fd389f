package hostile

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"testing"

	"github.com/certwatch/certwatch/internal/kubetest"
	"github.com/certwatch/certwatch/internal/testpki"
)

// KubeNamespace holds the hostile Kubernetes objects.
const KubeNamespace = "soak"

// AddKube creates the hostile Kubernetes objects in the cluster, adds them
// to the places and a kubernetes section to the configuration, and returns
// the certwatch flag that reaches the cluster (--kubeconfig=...):
//   - a Secret of about 1 MiB (the API server's limit): a tls.crt that is one
//     certificate padded to ~950 KiB of PEM;
//   - a Secret with 4,000 keys besides its good tls.crt;
//   - a Secret whose tls.crt is malformed PEM.
func (s *Setup) AddKube(tb testing.TB, c *kubetest.Cluster) string {
	tb.Helper()
	c.EnsureNamespace(tb, KubeNamespace)
	key := testpki.KeyPEM(tb, s.pki.Leaf.Key)
	secret := func(name string, data map[string][]byte) {
		enc := make(map[string]string, len(data))
		for k, v := range data {
			enc[k] = base64.StdEncoding.EncodeToString(v)
		}
		code, body := c.Do(tb, http.MethodPost, "/api/v1/namespaces/"+KubeNamespace+"/secrets", map[string]any{
			"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
			"metadata": map[string]any{"name": name, "namespace": KubeNamespace},
			"data":     enc,
		})
		if code != http.StatusCreated {
			tb.Fatalf("hostile: creating Secret %s: %d %.300s", name, code, body)
		}
	}
	target := func(name string) string { return KubeNamespace + "/" + name }

	big := testpki.New(tb, s.pki.Intermediate, testpki.Options{CommonName: "localhost", DNSNames: []string{"localhost"}, Key: s.pki.Leaf.Key, PadBytes: 700 << 10})
	secret("one-mebibyte", map[string][]byte{"tls.crt": testpki.PEM(big, s.pki.Intermediate), "tls.key": key})
	s.add(Place{Name: "Secret of about 1 MiB", Source: "secret", Target: target("one-mebibyte"), Key: "tls.crt"})

	many := map[string][]byte{"tls.crt": testpki.PEM(s.pki.Leaf, s.pki.Intermediate), "tls.key": key}
	for i := range 4000 {
		many[fmt.Sprintf("note-%04d.txt", i)] = []byte("not a certificate")
	}
	secret("four-thousand-keys", many)
	s.add(Place{Name: "Secret with 4,000 keys", Source: "secret", Target: target("four-thousand-keys"), Key: "tls.crt"})

	secret("malformed", map[string][]byte{"tls.crt": []byte("-----BEGIN CERTIFICATE-----\nMIIB!!not base64\n-----END CERTIFICATE-----\n"), "tls.key": key})
	s.add(Place{Name: "Secret with a malformed tls.crt", Source: "secret", Target: target("malformed"), Key: "tls.crt", Classes: []string{"parse"}})

	s.kube = append(s.kube, "  secrets:\n    namespaces: ["+quote(KubeNamespace)+"]")
	s.Config = s.config(s.opts)
	return "--kubeconfig=" + c.AdminKubeconfig(tb)
}
