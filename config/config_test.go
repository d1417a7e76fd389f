package config

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	if cfg.Global.ProbeConcurrency != DefaultProbeConcurrency || cfg.Global.MaxFileSize != DefaultMaxFileSize ||
		cfg.Global.MaxCertificatesPerPlace != DefaultMaxCertificatesPerPlace || cfg.Global.CertificateSeries != CertificateSeriesAll {
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
		{"unknown nested key", "modules:\n  m:\n    timeout: 5s\n    tls:\n      ca: x\n", []string{"line 5", "modules.m.tls.ca: unknown key"}},
		{"bad duration", "modules:\n  m:\n    timeout: 5 parsecs\n", []string{"line 3", "invalid duration", "5 parsecs"}},
		{"bad size", "global:\n  max_file_size: lots\n", []string{"line 2", "invalid size"}},
		{"unknown module", "endpoints:\n  - targets: [\"a.example:443\"]\n    module: nope\n", []string{"line 3", "endpoints[0].module", "unknown module \"nope\""}},
		{"target without port", "endpoints:\n  - targets:\n      - a.example\n", []string{"line 3", "endpoints[0].targets[0]", "host:port"}},
		{"port out of range", "endpoints:\n  - targets: [\"a.example:70000\"]\n", []string{"endpoints[0].targets[0]", "1 to 65535"}},
		{"duplicate target in one group", "endpoints:\n  - targets: [\"a.example:443\", \"a.example:443\"]\n",
			[]string{"line 2: endpoints[0].targets[0] and endpoints[0].targets[1] both name \"a.example:443\""}},
		{"duplicate target in two groups", "endpoints:\n  - targets: [\"b.example:443\", \"a.example:443\"]\n  - targets: [\"c.example:443\"]\n  - targets:\n      - a.example:443\n",
			[]string{"line 5: endpoints[0].targets[1] and endpoints[2].targets[0] both name \"a.example:443\""}},
		{"duplicate target under two modules", "modules:\n  m: {}\nendpoints:\n  - targets: [\"a.example:443\"]\n  - targets: [\"A.Example:443\"]\n    module: m\n",
			[]string{"line 5: endpoints[0].targets[0] and endpoints[1].targets[0] both name \"A.Example:443\""}},
		{"file path in two groups", "files:\n  - paths: [/etc/ssl/a.pem]\n  - paths: [/etc/x, \"/etc/ssl//b/../a.pem\"]\n",
			[]string{"line 3: files[0].paths[0] and files[1].paths[1] both name \"/etc/ssl/a.pem\""}},
		{"relative file path in two groups", "files:\n  - paths: [certs/a.pem]\n  - paths: [" + filepath.Join(dir, "certs", "a.pem") + "]\n",
			[]string{"files[0].paths[0] and files[1].paths[0] both name \"" + filepath.Join(dir, "certs", "a.pem") + "\""}},
		{"unknown key with a suggestion", "global:\n  probe_concurency: 5\n",
			[]string{"line 2: global.probe_concurency: unknown key (did you mean probe_concurrency?)"}},
		{"unknown key far from any", "global:\n  workers: 5\n",
			[]string{"line 2: global.workers: unknown key (valid here: certificate_series, files_recheck_interval, files_watch, max_certificates_per_place, max_file_size, probe_concurrency, revocation)"}},
		{"unknown key in a module", "modules:\n  default:\n    tls:\n      min_versoin: TLS12\n",
			[]string{"line 4: modules.default.tls.min_versoin: unknown key (did you mean min_version?)"}},
		{"unknown key in a list item", "endpoints:\n  - targets: [\"a.example:443\"]\n    modul: default\n",
			[]string{"line 3: endpoints[0].modul: unknown key (did you mean module?)"}},
		{"unknown key beside an inline struct", "kubernetes:\n  secrets:\n    namespace: [a]\n",
			[]string{"line 3: kubernetes.secrets.namespace: unknown key (did you mean namespaces?)"}},
		{"every validation error at once", "global:\n  probe_concurrency: -1\nendpoints:\n  - targets: [\"a.example:443\"]\n    module: nope\n",
			[]string{"line 2: global.probe_concurrency: must be at least 1", "line 5: endpoints[0].module: unknown module \"nope\""}},
		{"key set twice", "global:\n  probe_concurrency: 1\n  probe_concurrency: 2\nmodules:\n  a: {}\n  a: {}\n",
			[]string{"line 3: global.probe_concurrency: set twice (first at line 2)", "line 6: modules.a: set twice (first at line 5)"}},
		{"every unknown key at once", "global:\n  probe_concurency: 5\nmodules:\n  default:\n    timout: 5s\n",
			[]string{"line 2: global.probe_concurency", "line 5: modules.default.timout: unknown key (did you mean timeout?)"}},
		{"duration names its key", "modules:\n  default:\n    timeout: 10 seconds\n",
			[]string{"line 3: modules.default.timeout: invalid duration \"10 seconds\""}},
		{"size names its key", "global:\n  max_file_size: lots\n", []string{"line 2: global.max_file_size: invalid size \"lots\""}},
		{"number names its key", "global:\n  probe_concurrency: many\n",
			[]string{"line 2: global.probe_concurrency: invalid value \"many\": want a whole number"}},
		{"list where a mapping belongs", "files:\n  - paths: [/x]\n    labels: [a]\n",
			[]string{"line 3: files[0].labels: want a mapping of keys, got a list"}},
		{"negative probe_concurrency", "global:\n  probe_concurrency: -4\n",
			[]string{"line 2: global.probe_concurrency: must be at least 1, got -4"}},
		{"zero probe_concurrency", "global:\n  probe_concurrency: 0\n", []string{"global.probe_concurrency: must be at least 1"}},
		{"zero max_certificates_per_place", "global:\n  max_certificates_per_place: 0\n",
			[]string{"line 2: global.max_certificates_per_place: must be at least 1, got 0"}},
		{"unknown certificate_series", "global:\n  probe_concurrency: 4\n  certificate_series: leaf\n",
			[]string{"line 3: global.certificate_series: want all or leaves, got \"leaf\""}},
		{"certificate_series not a string", "global:\n  certificate_series: [leaves]\n",
			[]string{"line 2: global.certificate_series"}},
		{"negative max_file_size", "global:\n  max_file_size: -1MiB\n", []string{"global.max_file_size: invalid size"}},
		{"negative timeout", "modules:\n  m:\n    timeout: -5s\n", []string{"line 3: modules.m.timeout: must be positive, got -5s"}},
		{"zero timeout", "modules:\n  m:\n    timeout: 0s\n", []string{"modules.m.timeout: must be positive"}},
		{"negative min_probe_interval", "modules:\n  m:\n    min_probe_interval: -1m\n",
			[]string{"line 3: modules.m.min_probe_interval: must not be negative, got -1m0s"}},
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

func TestDuplicatesTheReadmeAllows(t *testing.T) {
	cfg, err := Parse([]byte(`
endpoints:
  - targets: ["a.example:443", "a.example:8443", "b.example:443"]
files:
  - paths: [/etc/ssl/a.pem, /etc/ssl/a.pem, "/etc/ssl/*.pem"]
  - paths: ["/etc/ssl/*.pem", /etc/ssl]
`), t.TempDir())
	if err != nil {
		t.Fatalf("another port, a path repeated in one group, and globs or directories matching the same files are allowed: %v", err)
	}
	if len(cfg.Files) != 2 {
		t.Errorf("files = %+v", cfg.Files)
	}
}

func TestKnownKeysFollowTheStructTags(t *testing.T) {
	// Every key the schema check accepts is one the decoder accepts, and the
	// other way round: the example configuration passes both.
	keys := yamlFields(reflect.TypeFor[SecretWatch]())
	for _, k := range []string{"namespaces", "exclude_namespaces", "label_selector", "types", "key_patterns", "password_key", "password_secret"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("secrets key %q missing from %v", k, keys)
		}
	}
	if _, ok := yamlFields(reflect.TypeFor[Config]())["path"]; ok {
		t.Error(`a yaml:"-" field is not a key`)
	}
	if d := editDistance("probe_concurency", "probe_concurrency"); d != 1 {
		t.Errorf("editDistance = %d", d)
	}
}

func TestMissingConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yml")
	if _, err := Load(path); !errors.Is(err, ErrNoFile) || !strings.Contains(err.Error(), path) {
		t.Errorf("Load of a missing file: %v, want ErrNoFile naming %s", err, path)
	}

	// At start-up there is no previous configuration: nothing may say one is kept.
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	_, err := NewReloader(path, logger, prometheus.NewRegistry(), func(*Config) error { return nil })
	if !errors.Is(err, ErrNoFile) {
		t.Fatalf("NewReloader: %v, want ErrNoFile", err)
	}
	if strings.Contains(logs.String(), "previous") {
		t.Errorf("start-up logged %q", logs.String())
	}

	// At reload the running configuration stays, and the log says so.
	if err := os.WriteFile(path, []byte("endpoints:\n  - targets: [\"a.example:443\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := NewReloader(path, logger, prometheus.NewRegistry(), func(*Config) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); !errors.Is(err, ErrNoFile) {
		t.Errorf("Reload: %v, want ErrNoFile", err)
	}
	if !strings.Contains(logs.String(), "keeping the previous one") {
		t.Errorf("reload of a missing file logged %q", logs.String())
	}
}

func TestCertificateSeries(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"global: {}\n", CertificateSeriesAll},
		{"global:\n  certificate_series: all\n", CertificateSeriesAll},
		{"global:\n  certificate_series: leaves\n", CertificateSeriesLeaves},
	} {
		cfg, err := Parse([]byte(tc.yaml), t.TempDir())
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if cfg.Global.CertificateSeries != tc.want {
			t.Errorf("%q: certificate_series %q, want %q", tc.yaml, cfg.Global.CertificateSeries, tc.want)
		}
	}
}
