package config

import (
	"strings"
	"testing"
	"time"
)

func TestRevocationDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`
modules:
  public:
    revocation: {ocsp: true}
files:
  - paths: [/etc/pki/*.pem]
    revocation: {crl: true}
urls:
  - urls: [http://vault.example:8200/v1/pki/ca_chain, https://vault.example:8200/v1/pki/crl/pem]
`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Global.Revocation
	if f.Concurrency != DefaultFetchConcurrency || f.HostInterval != DefaultFetchHostInterval || f.Timeout != DefaultFetchTimeout ||
		f.MaxCRLSize != DefaultMaxCRLSize || f.MinRefresh != DefaultMinRefresh || f.MaxRefresh != DefaultMaxRefresh || f.HTTPS {
		t.Errorf("global.revocation defaults: %+v", f)
	}
	if !cfg.Modules["public"].Revocation.OCSP || cfg.Modules["public"].Revocation.CRL || !cfg.Files[0].Revocation.CRL {
		t.Errorf("opt-ins: module %+v, files %+v", cfg.Modules["public"].Revocation, cfg.Files[0].Revocation)
	}
	g := cfg.URLs[0]
	if g.Interval != DefaultURLInterval || time.Duration(g.Timeout) != time.Duration(f.Timeout) || g.TLS.MinVersion != DefaultMinTLSVersion {
		t.Errorf("urls defaults: %+v", g)
	}
}

func TestRevocationValidation(t *testing.T) {
	_, err := Parse([]byte(`global:
  revocation:
    concurrency: 0
    min_refresh: 2d
    max_refresh: 1h
    allow: ["10.1.*:*"]
    deny: ["not-a-range"]
urls:
  - urls: ["ftp://ca.example/crl", "http://user:pw@ca.example/crl", "http://ca.example/a.crl"]
    interval: 0s
  - urls: ["http://ca.example/a.crl"]
  - urls: []
`), t.TempDir())
	if err == nil {
		t.Fatal("invalid settings loaded")
	}
	for _, want := range []string{
		"global.revocation.concurrency: must be at least 1",
		"global.revocation.min_refresh: is longer than max_refresh",
		"global.revocation.allow[0]: invalid rule",
		"global.revocation.deny[0]: want an address range",
		"urls[0].urls[0]: want an http:// or https:// URL",
		"urls[0].urls[1]: credentials in the URL",
		"urls[0].interval: must be positive",
		"urls[1].urls[0]: repeats urls[0].urls[2]",
		"urls[2].urls: lists no URL",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "pw") {
		t.Errorf("the error repeats a URL's password: %v", err)
	}
}

// TestLabelsCertwatchSets: extra labels may not take the names of the
// labels certwatch's own series carry (role on certificate series; method,
// status, url and delta on the revocation and CRL series), which would make
// those series fail to build.
func TestLabelsCertwatchSets(t *testing.T) {
	for _, name := range []string{"role", "method", "status", "url", "delta"} {
		_, err := Parse([]byte("files:\n  - paths: [/etc/pki/*.pem]\n    labels: {"+name+": x}\n"), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "files[0].labels."+name+": label \""+name+"\" is set by certwatch itself") {
			t.Errorf("label %s: %v", name, err)
		}
	}
}
