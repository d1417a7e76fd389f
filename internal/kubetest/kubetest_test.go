package kubetest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

const (
	testNS     = "certs"
	secretPath = "/api/v1/namespaces/" + testNS + "/secrets"
	saName     = "certwatch"
	saUser     = "system:serviceaccount:" + testNS + ":" + saName
)

// TestCluster proves the harness against the real binaries: objects go in and
// come back, ServiceAccount tokens are subject to RBAC, the API server comes
// back after a restart with its data, and nothing keeps running afterwards.
func TestCluster(t *testing.T) {
	var api, etcd *proc
	var apiURL, etcdURL string

	t.Run("lifecycle", func(t *testing.T) {
		start := time.Now()
		c := Start(t)
		t.Logf("cluster ready at %s in %v", c.URL, time.Since(start).Round(time.Millisecond))
		if u, err := url.Parse(c.URL); err != nil || u.Scheme != "https" || u.Hostname() != "127.0.0.1" {
			t.Fatalf("URL %q is not https on 127.0.0.1", c.URL)
		}

		// A namespace and a TLS Secret, written and read back as the admin.
		c.EnsureNamespace(t, testNS)
		c.EnsureNamespace(t, testNS) // idempotent
		certPEM, keyPEM := selfSigned(t)
		code, body := c.Do(t, http.MethodPost, secretPath, map[string]any{
			"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
			"metadata": map[string]any{"name": "web", "labels": map[string]string{"app": "web"}},
			"data":     map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM}, // []byte marshals as base64
		})
		if code != http.StatusCreated {
			t.Fatalf("create Secret: %d %s", code, body)
		}
		checkSecret(t, c, certPEM)

		// A YAML body works too (a ConfigMap with a CA bundle).
		cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bundle\ndata:\n  ca.crt: |\n    " +
			strings.ReplaceAll(strings.TrimSpace(string(certPEM)), "\n", "\n    ") + "\n"
		if code, body := c.Do(t, http.MethodPost, "/api/v1/namespaces/"+testNS+"/configmaps", cm); code != http.StatusCreated {
			t.Fatalf("create ConfigMap from YAML: %d %s", code, body)
		}
		// And a merge patch.
		if code, body := c.Do(t, http.MethodPatch, secretPath+"/web",
			map[string]any{"metadata": map[string]any{"annotations": map[string]string{"certwatch/test": "yes"}}}); code != http.StatusOK {
			t.Fatalf("patch Secret: %d %s", code, body)
		}

		// An unknown token is not authenticated at all.
		if code, body := c.DoAs(t, "not-a-token", http.MethodGet, secretPath, nil); code != http.StatusUnauthorized {
			t.Fatalf("bogus token: want 401, got %d %s", code, body)
		}

		// A ServiceAccount token is authenticated as the account ...
		token := c.ServiceAccountToken(t, testNS, saName)
		if again := c.ServiceAccountToken(t, testNS, saName); again == "" {
			t.Fatal("second ServiceAccountToken returned nothing")
		}
		if who := whoAmI(t, c, token); who != saUser {
			t.Fatalf("token authenticates as %q, want %q", who, saUser)
		}
		// ... and may not list Secrets until RBAC says so.
		code, body = c.DoAs(t, token, http.MethodGet, secretPath, nil)
		if code != http.StatusForbidden || !bytes.Contains(body, []byte(saUser)) {
			t.Fatalf("listing secrets without a Role: want 403 naming %s, got %d %s", saUser, code, body)
		}
		grantSecretReader(t, c)
		waitStatus(t, c, token, secretPath, http.StatusOK)
		// Other namespaces stay forbidden.
		if code, _ := c.DoAs(t, token, http.MethodGet, "/api/v1/namespaces/default/secrets", nil); code != http.StatusForbidden {
			t.Fatalf("secrets in another namespace: want 403, got %d", code)
		}

		// Kubeconfig files carry the URL, CA and token.
		for tok, path := range map[string]string{c.AdminToken: c.AdminKubeconfig(t), token: c.Kubeconfig(t, token)} {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{c.URL, base64.StdEncoding.EncodeToString(c.CAData), tok, "current-context: kubetest"} {
				if !strings.Contains(string(data), want) {
					t.Fatalf("kubeconfig %s lacks %.40q:\n%s", path, want, data)
				}
			}
		}

		// Restart: same URL, same CA, same data, same tokens.
		oldPID, oldCA := c.apiserver.Cmd.Process.Pid, string(c.CAData)
		start = time.Now()
		c.RestartAPIServer(t)
		t.Logf("kube-apiserver restarted in %v", time.Since(start).Round(time.Millisecond))
		if c.apiserver.Cmd.Process.Pid == oldPID {
			t.Fatal("RestartAPIServer did not start a new process")
		}
		if string(c.CAData) != oldCA {
			t.Fatal("the serving CA changed across the restart")
		}
		checkSecret(t, c, certPEM)
		waitStatus(t, c, token, secretPath, http.StatusOK)

		// Stop and start separately: requests fail while it is down.
		c.StopAPIServer(t)
		if _, _, err := c.request(c.AdminToken, http.MethodGet, secretPath, nil); err == nil {
			t.Fatal("a request succeeded while kube-apiserver was stopped")
		}
		c.StartAPIServer(t)
		checkSecret(t, c, certPEM)

		api, etcd = c.apiserver, c.etcd
		apiURL, etcdURL = c.URL, c.EtcdURL
	})

	if api == nil {
		return // skipped or failed early
	}
	// The subtest's cleanup has stopped both processes and freed the ports.
	for _, p := range []*proc{api, etcd} {
		if !p.Exited() {
			t.Errorf("%s (pid %d) still running after the test", p.Name, p.Cmd.Process.Pid)
		}
	}
	for _, u := range []string{apiURL, etcdURL} {
		pu, _ := url.Parse(u)
		if conn, err := net.DialTimeout("tcp", pu.Host, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after the test", u)
		}
	}
}

// checkSecret reads the Secret back as the admin and compares its data.
func checkSecret(t *testing.T, c *Cluster, certPEM []byte) {
	t.Helper()
	code, body := c.Do(t, http.MethodGet, secretPath+"/web", nil)
	if code != http.StatusOK {
		t.Fatalf("get Secret: %d %s", code, body)
	}
	var s struct {
		Type string            `json:"type"`
		Data map[string][]byte `json:"data"`
	}
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("decoding the Secret: %v", err)
	}
	if s.Type != "kubernetes.io/tls" || !bytes.Equal(s.Data["tls.crt"], certPEM) {
		t.Fatalf("Secret came back as type %q with tls.crt %q", s.Type, s.Data["tls.crt"])
	}
	if b, _ := pem.Decode(s.Data["tls.crt"]); b == nil {
		t.Fatal("tls.crt is not PEM")
	} else if _, err := x509.ParseCertificate(b.Bytes); err != nil {
		t.Fatalf("tls.crt: %v", err)
	}
}

// whoAmI asks the API server who a token belongs to (SelfSubjectReview).
func whoAmI(t *testing.T, c *Cluster, token string) string {
	t.Helper()
	code, body := c.DoAs(t, token, http.MethodPost, "/apis/authentication.k8s.io/v1/selfsubjectreviews",
		map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
	if code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("SelfSubjectReview: %d %s", code, body)
	}
	var r struct {
		Status struct {
			UserInfo struct {
				Username string `json:"username"`
			} `json:"userInfo"`
		} `json:"status"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("SelfSubjectReview: %v", err)
	}
	return r.Status.UserInfo.Username
}

// grantSecretReader lets the ServiceAccount read Secrets in its namespace.
func grantSecretReader(t *testing.T, c *Cluster) {
	t.Helper()
	rbac := "/apis/rbac.authorization.k8s.io/v1/namespaces/" + testNS
	if code, body := c.Do(t, http.MethodPost, rbac+"/roles", map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
		"metadata": map[string]any{"name": "secret-reader"},
		"rules": []map[string]any{{
			"apiGroups": []string{""}, "resources": []string{"secrets"}, "verbs": []string{"get", "list", "watch"},
		}},
	}); code != http.StatusCreated {
		t.Fatalf("create Role: %d %s", code, body)
	}
	if code, body := c.Do(t, http.MethodPost, rbac+"/rolebindings", map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
		"metadata": map[string]any{"name": "certwatch-secret-reader"},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "secret-reader"},
		"subjects": []map[string]any{{"kind": "ServiceAccount", "name": saName, "namespace": testNS}},
	}); code != http.StatusCreated {
		t.Fatalf("create RoleBinding: %d %s", code, body)
	}
}

// waitStatus polls until a GET with token answers want: RBAC changes reach
// the authorizer through an informer, a moment after the write.
func waitStatus(t *testing.T, c *Cluster, token, path string, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := c.DoAs(t, token, http.MethodGet, path, nil)
		if code == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: want %d, still %d %s", path, want, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// selfSigned makes a throwaway certificate and key in PEM.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "web.certs.example"},
		DNSNames:     []string{"web.certs.example"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}
