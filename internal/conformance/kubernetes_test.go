package conformance

import (
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/kubetest"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/shard"
	"github.com/certwatch/certwatch/source"
	kubesource "github.com/certwatch/certwatch/source/kubernetes"
)

// TestKubernetesSource stores every case as a kubernetes.io/tls Secret
// (tls.crt: the place's certificates in order; tls.key: its keys, empty
// when it has none; ca.crt: the CA file, absent when it has none) on a real
// kube-apiserver, watches them with the Kubernetes source and judges the
// tls.crt places. It is skipped when the binaries are not there.
func TestKubernetesSource(t *testing.T) {
	bin := kubetest.BinDir()
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if st, err := os.Stat(filepath.Join(bin, name)); err != nil || st.Mode()&0o111 == 0 {
			t.Skipf("%s not found in %s: the Kubernetes Secret run of the corpus is skipped (run scripts/kube-tools.sh or set %s)",
				name, bin, kubetest.BinEnv)
		}
	}
	cases := Corpus(t)
	cluster := kubetest.Start(t)
	const ns = "conformance"
	cluster.EnsureNamespace(t, ns)
	b64 := base64.StdEncoding.EncodeToString
	for _, c := range cases {
		var keyPEM []byte
		for _, k := range c.Keys {
			keyPEM = append(keyPEM, testpki.KeyPEM(t, k)...)
		}
		data := map[string]string{"tls.crt": b64(testpki.PEM(c.Place...)), "tls.key": b64(keyPEM)}
		if c.CA != nil {
			data["ca.crt"] = b64(testpki.PEM(c.CA...))
		}
		secret := map[string]any{"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
			"metadata": map[string]any{"name": c.Name, "namespace": ns}, "data": data}
		if code, body := cluster.Do(t, http.MethodPost, "/api/v1/namespaces/"+ns+"/secrets", secret); code != http.StatusCreated {
			t.Fatalf("%s: creating the Secret: %d %s", c.Name, code, body)
		}
	}

	restCfg, err := clientcmd.BuildConfigFromFlags("", cluster.AdminKubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Kubernetes{Secrets: &config.SecretWatch{Types: []string{"kubernetes.io/tls"}, Selection: config.Selection{Namespaces: []string{ns}}}}
	src, err := kubesource.New(cfg, shard.Shard{}, client, dyn, quiet)
	if err != nil {
		t.Fatal(err)
	}
	src.Start()
	t.Cleanup(src.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if !src.WaitForSync(ctx) {
		t.Fatalf("the Kubernetes source did not sync: %+v", src.Statuses())
	}
	byCase := map[string]source.Finding{}
	for deadline := time.Now().Add(30 * time.Second); ; {
		clear(byCase)
		for _, f := range src.Collect(ctx) {
			if f.Source == kubesource.KindSecret && f.Key == "tls.crt" {
				byCase[f.Target[len(ns)+1:]] = f
			}
		}
		if len(byCase) >= len(cases) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	compareWithDirect(t, "Kubernetes", modeFile, byCase, cases)
}
