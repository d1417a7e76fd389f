package kubernetes

import (
	"context"
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// TestSecretFormats reads a keytool-made JCEKS keystore from Secrets under
// the default key patterns, with its password beside it as for JKS, and a
// kubeconfig whose user names a file: a path means nothing in a Secret, so
// that entry fails as config while its embedded cluster is read.
func TestSecretFormats(t *testing.T) {
	chain := testpki.NewChain(t, testpki.Options{CommonName: "app"})
	const pw = "store-secret"
	store := testpki.JCEKS(t, pw, []testpki.JKSEntry{
		{Alias: "app", Key: chain.Leaf.Key, Chain: []*testpki.Cert{chain.Leaf, chain.Intermediate}},
	}, "aes")
	kubeconfig := "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    certificate-authority-data: " +
		base64.StdEncoding.EncodeToString(testpki.PEM(chain.Root)) +
		"\nusers:\n- name: admin\n  user:\n    client-certificate: /etc/kubernetes/pki/admin.crt\n"
	client := fake.NewClientset(
		opaqueSecret("web", "store", "1", map[string][]byte{"truststore.jceks": store, "password": []byte(pw)}),
		opaqueSecret("web", "wrong", "1", map[string][]byte{"truststore.jceks": store, "password": []byte("not-it")}),
		opaqueSecret("web", "kube", "1", map[string][]byte{"admin.kubeconfig": []byte(kubeconfig)}),
	)
	cfg := config.Kubernetes{Secrets: &config.SecretWatch{Types: []string{"Opaque"},
		KeyPatterns: append([]string{"*.kubeconfig"}, config.DefaultSecretKeyPatterns...), PasswordKey: "password"}}
	s := syncedSource(t, cfg, client, nil, slog.New(slog.DiscardHandler))
	got := byPlace(s.Collect(context.Background()))

	cases := []struct {
		place  string
		certs  int
		keys   int
		class  source.Class
		errHas string
	}{
		{"secret web/store truststore.jceks/app", 2, 1, "", ""},
		{"secret web/wrong truststore.jceks/app", 2, 0, source.ClassWrongPassword, "integrity"},
		{"secret web/kube admin.kubeconfig/cluster/prod", 1, 0, "", ""},
		{"secret web/kube admin.kubeconfig/user/admin", 0, 0, source.ClassConfig, "client-certificate-data"},
	}
	for _, tc := range cases {
		f, ok := got[tc.place]
		if !ok {
			t.Errorf("%s: no finding (have %d places)", tc.place, len(got))
			continue
		}
		if len(f.Certs) != tc.certs || len(f.KeyPublics) != tc.keys || source.ClassOf(f.Err) != tc.class ||
			tc.errHas != "" && (f.Err == nil || !strings.Contains(f.Err.Error(), tc.errHas)) {
			t.Errorf("%s: %d certificates, %d keys, error %v (class %q); want %d, %d, class %q containing %q",
				tc.place, len(f.Certs), len(f.KeyPublics), f.Err, source.ClassOf(f.Err), tc.certs, tc.keys, tc.class, tc.errHas)
		}
	}
	if _, ok := got["secret web/store truststore.jceks/aes"]; ok {
		t.Error("the secret key entry was reported as a place")
	}
}
