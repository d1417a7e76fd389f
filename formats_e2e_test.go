package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/certwatch/certwatch/internal/testpki"
)

// TestFormatsEndToEnd runs the real binary over a JCEKS keystore made by
// keytool and a kubeconfig that names its certificates' files, and reads
// both back from /metrics: one place per alias and per cluster or user, a
// missing reference failing its entry alone, and a referenced client
// certificate replaced on disk showing at a later scrape.
func TestFormatsEndToEnd(t *testing.T) {
	bin := buildBinary(t)

	app := testpki.NewChain(t, testpki.Options{CommonName: "app"})
	const storePass = "keystore-pass"
	jceks := testpki.JCEKS(t, storePass, []testpki.JKSEntry{
		{Alias: "app", Key: app.Leaf.Key, Chain: []*testpki.Cert{app.Leaf, app.Intermediate}},
		{Alias: "root", Chain: []*testpki.Cert{app.Root}},
	}, "session-key")

	// Polling stats every file; watching (the default) re-reads what an
	// event names, and the referenced files lie outside the watched
	// directories: both must see the renewal.
	for _, mode := range []string{"poll", "auto"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "ks", "app.jceks"), jceks)
			writeFile(t, filepath.Join(dir, "ks-pass"), []byte(storePass+"\n"))
			writeFile(t, filepath.Join(dir, "ca.pem"), testpki.PEM(app.Root))

			cluster := testpki.NewChain(t, testpki.Options{CommonName: "admin"})
			renewed := testpki.New(t, cluster.Intermediate, testpki.Options{CommonName: "admin", NotAfter: cluster.Leaf.Cert.NotAfter.Add(30 * 24 * time.Hour)})
			writeFile(t, filepath.Join(dir, "pki", "ca.crt"), testpki.PEM(cluster.Root))
			clientPath := filepath.Join(dir, "pki", "client.crt")
			writeFile(t, clientPath, testpki.PEM(cluster.Leaf, cluster.Intermediate))
			kubeconfig := filepath.Join(dir, "kube", "admin.kubeconfig")
			writeFile(t, kubeconfig, fmt.Appendf(nil, kubeconfigWithFiles, clientPath))

			configPath := filepath.Join(dir, "config.yml")
			writeFile(t, configPath, fmt.Appendf(nil, formatsConfig, mode))
			p := startExporter(t, bin, configPath)
			mfs := p.scrape(t, "/metrics")

			store := filepath.Join(dir, "ks", "app.jceks")
			notAfter := func(target, key, index string) float64 {
				t.Helper()
				return one(t, mfs, "certwatch_cert_not_after_timestamp_seconds",
					map[string]string{"source": "file", "target": target, "key": key, "index": index}).GetGauge().GetValue()
			}
			if got, want := notAfter(store, "app", "0"), float64(app.Leaf.Cert.NotAfter.Unix()); got != want {
				t.Errorf("app.jceks app leaf not_after = %v, want %v", got, want)
			}
			if got, want := notAfter(store, "app", "1"), float64(app.Intermediate.Cert.NotAfter.Unix()); got != want {
				t.Errorf("app.jceks app intermediate not_after = %v, want %v", got, want)
			}
			if got, want := notAfter(store, "root", "0"), float64(app.Root.Cert.NotAfter.Unix()); got != want {
				t.Errorf("app.jceks root not_after = %v, want %v", got, want)
			}
			// The chain verifies against the group's CA and the key decrypted
			// with the store password is the leaf's (else: key_mismatch).
			if m := one(t, mfs, "certwatch_chain_valid", map[string]string{"target": store, "key": "app"}); m.GetGauge().GetValue() != 1 || label(m, "reason") != "ok" {
				t.Errorf("app.jceks app chain: %v", m)
			}
			if n := len(find(mfs, "certwatch_cert_not_after_timestamp_seconds", map[string]string{"target": store, "key": "session-key"})); n != 0 {
				t.Errorf("the secret key entry was reported with %d certificates", n)
			}

			if got, want := notAfter(kubeconfig, "cluster/prod", "0"), float64(cluster.Root.Cert.NotAfter.Unix()); got != want {
				t.Errorf("kubeconfig cluster/prod not_after = %v, want %v", got, want)
			}
			if got, want := notAfter(kubeconfig, "user/admin", "0"), float64(cluster.Leaf.Cert.NotAfter.Unix()); got != want {
				t.Errorf("kubeconfig user/admin not_after = %v, want %v", got, want)
			}
			// The missing reference fails its cluster alone: the kubeconfig's other
			// places are above; the target's error names the class.
			one(t, mfs, "certwatch_target_error_info", map[string]string{"target": kubeconfig, "class": "not_found"})

			// The client certificate is renewed on disk, the kubeconfig untouched.
			tmp := filepath.Join(dir, "pki", ".client.crt.new")
			writeFile(t, tmp, testpki.PEM(renewed, cluster.Intermediate))
			if err := os.Rename(tmp, clientPath); err != nil {
				t.Fatal(err)
			}
			want := float64(renewed.Cert.NotAfter.Unix())
			var got float64
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				mfs = p.scrape(t, "/metrics")
				if got = notAfter(kubeconfig, "user/admin", "0"); got == want {
					break
				}
			}
			if got != want {
				t.Errorf("after the client certificate was replaced, user/admin not_after = %v, want %v (the renewed one)", got, want)
			}
		})
	}
}

// kubeconfigWithFiles names its CA relative to its own directory, a CA that
// does not exist, and the client certificate by the absolute path %s.
const kubeconfigWithFiles = `apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://prod.example:6443
    certificate-authority: ../pki/ca.crt
- name: gone
  cluster:
    server: https://gone.example:6443
    certificate-authority: ../pki/gone.crt
users:
- name: admin
  user:
    client-certificate: %s
contexts: []
`

// formatsConfig reads the keystores with their password and the
// kubeconfigs; %s is global.files_watch.
const formatsConfig = `
global:
  files_watch: %s
files:
  - paths: ["ks"]
    password_file: ks-pass
    ca_file: ca.pem
  - paths: ["kube"]
`
