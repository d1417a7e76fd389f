package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseDefaults(t *testing.T) {
	cfg, err := Parse([]byte("endpoints:\n  - targets: [\"example.com:443\"]\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, ok := cfg.Modules[DefaultModuleName]
	if !ok {
		t.Fatal("default module missing")
	}
	if time.Duration(m.Timeout) != DefaultTimeout || m.TLS.MinVersion != "TLS10" || !*m.IPProtocolFallback {
		t.Errorf("defaults not applied: %+v", m)
	}
	if cfg.Endpoints[0].Module != DefaultModuleName {
		t.Errorf("endpoint module = %q", cfg.Endpoints[0].Module)
	}
	if cfg.Global.ProbeConcurrency != DefaultProbeConcurrency || cfg.Global.MaxFileSize != DefaultMaxFileSize {
		t.Errorf("global defaults not applied: %+v", cfg.Global)
	}
}

func TestParseErrorsNameKeyAndLine(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		yaml string
		want []string // substrings the error must contain
	}{
		{"unknown top-level key", "endpoint:\n  - targets: [a:1]\n", []string{"line 1", "endpoint"}},
		{"unknown nested key", "modules:\n  m:\n    timeout: 5s\n    tls:\n      ca: x\n", []string{"line 5", "ca"}},
		{"bad duration", "modules:\n  m:\n    timeout: 5 parsecs\n", []string{"line 3", "invalid duration", "5 parsecs"}},
		{"bad size", "global:\n  max_file_size: lots\n", []string{"line 2", "invalid size"}},
		{"unknown module", "endpoints:\n  - targets: [\"a.example:443\"]\n    module: nope\n", []string{"line 3", "endpoints[0].module", "unknown module \"nope\""}},
		{"target without port", "endpoints:\n  - targets:\n      - a.example\n", []string{"line 3", "endpoints[0].targets[0]", "host:port"}},
		{"port out of range", "endpoints:\n  - targets: [\"a.example:70000\"]\n", []string{"endpoints[0].targets[0]", "1 to 65535"}},
		{"duplicate target", "endpoints:\n  - targets: [\"a.example:443\", \"a.example:443\"]\n", []string{"listed twice"}},
		{"unknown starttls", "modules:\n  m:\n    starttls: gopher\n", []string{"line 3", "modules.m.starttls", "gopher"}},
		{"bad tls version", "modules:\n  m:\n    tls:\n      min_version: SSL3\n", []string{"line 4", "min_version", "SSL3"}},
		{"bad proxy", "modules:\n  m:\n    proxy_url: socks5://p:1080\n", []string{"proxy_url"}},
		{"bad ip protocol", "modules:\n  m:\n    preferred_ip_protocol: ipx\n", []string{"preferred_ip_protocol"}},
		{"missing ca file", "modules:\n  m:\n    tls:\n      ca_file: nowhere.pem\n", []string{"line 4", "modules.m.tls.ca_file", "nowhere.pem"}},
		{"cert without key", "modules:\n  m:\n    tls:\n      cert_file: c.pem\n", []string{"cert_file and key_file go together"}},
		{"reserved label", "files:\n  - paths: [/x]\n    labels:\n      target: t\n", []string{"line 4", "files[0].labels.target", "set by certwatch"}},
		{"invalid label name", "files:\n  - paths: [/x]\n    labels:\n      bad-name: t\n", []string{"invalid label name"}},
		{"empty paths", "files:\n  - labels: {a: b}\n", []string{"files[0]", "paths must not be empty"}},
		{"missing password file", "files:\n  - paths: [/x]\n    password_file: nope.txt\n", []string{"line 3", "password_file"}},
		{"bad glob", "files:\n  - paths: [\"/x/[\"]\n", []string{"invalid glob"}},
		{"password secret without name", "kubernetes:\n  secrets:\n    password_secret:\n      key: password\n",
			[]string{"line 3", "kubernetes.secrets.password_secret", "name is required"}},
		{"password secret without key", "kubernetes:\n  secrets:\n    password_secret: {name: pw}\n",
			[]string{"line 3", "kubernetes.secrets.password_secret", "key is required"}},
		{"password secret with a bad name", "kubernetes:\n  secrets:\n    password_secret:\n      name: Key_Store\n      key: password\n",
			[]string{"line 4", "kubernetes.secrets.password_secret.name", "invalid Secret name \"Key_Store\""}},
		{"password secret with a bad key", "kubernetes:\n  secrets:\n    password_secret:\n      name: pw\n      key: pass/word\n",
			[]string{"line 5", "kubernetes.secrets.password_secret.key", "invalid Secret key"}},
		{"password secret with a bad namespace", "kubernetes:\n  secrets:\n    password_secret:\n      name: pw\n      key: password\n      namespace: web.prod\n",
			[]string{"line 6", "kubernetes.secrets.password_secret.namespace", "invalid namespace"}},
		{"password secret with an unknown key", "kubernetes:\n  secrets:\n    password_secret:\n      name: pw\n      key: password\n      secret: x\n",
			[]string{"line 6", "secret"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), dir)
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestKubernetesPasswordSecret(t *testing.T) {
	cfg, err := Parse([]byte(`
kubernetes:
  secrets:
    types: [kubernetes.io/tls, Opaque]
    password_key: password
    password_secret:
      name: keystore-password
      key: password
`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := PasswordSecret{Name: "keystore-password", Key: "password"}
	if got := cfg.Kubernetes.Secrets.PasswordSecret; got == nil || *got != want {
		t.Errorf("password_secret = %+v, want %+v", got, want)
	}
	if cfg.Kubernetes.Secrets.PasswordKey != "password" {
		t.Errorf("password_key = %q", cfg.Kubernetes.Secrets.PasswordKey)
	}
	cfg, err = Parse([]byte("kubernetes:\n  secrets:\n    password_secret: {name: pw.v1, key: keystore.pass, namespace: vault}\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if ps := cfg.Kubernetes.Secrets.PasswordSecret; ps.Namespace != "vault" || ps.Name != "pw.v1" || ps.Key != "keystore.pass" {
		t.Errorf("password_secret = %+v", ps)
	}
}

func TestRelativePathsResolveAgainstConfigDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw.txt"), []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte("files:\n  - paths: [certs/*.pem]\n    password_file: pw.txt\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Files[0].Paths[0], filepath.Join(dir, "certs/*.pem"); got != want {
		t.Errorf("path = %q, want %q", got, want)
	}
	if got, want := cfg.Files[0].PasswordFile, filepath.Join(dir, "pw.txt"); got != want {
		t.Errorf("password_file = %q, want %q", got, want)
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := Load("../config.example.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Files) == 0 || len(cfg.Endpoints) == 0 {
		t.Errorf("the example should show files and endpoints: %+v", cfg)
	}
}

func TestDurationForms(t *testing.T) {
	for in, want := range map[string]time.Duration{"30s": 30 * time.Second, "1m30s": 90 * time.Second, "1.5s": 1500 * time.Millisecond, "2d": 48 * time.Hour} {
		cfg, err := Parse([]byte("modules:\n  m:\n    timeout: "+in+"\n"), t.TempDir())
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got := time.Duration(cfg.Modules["m"].Timeout); got != want {
			t.Errorf("%s parsed as %v, want %v", in, got, want)
		}
	}
}

func TestIPv6Target(t *testing.T) {
	if err := ValidateTarget("[::1]:443"); err != nil {
		t.Error(err)
	}
	if err := ValidateTarget("::1:443"); err == nil {
		t.Error("an unbracketed IPv6 literal must be refused")
	}
}
