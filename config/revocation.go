package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"time"

	"github.com/certwatch/certwatch/config/probeallow"
)

// Fetch is global.revocation: how certwatch fetches what certificates point
// at (OCSP responders, CRL distribution points) for the groups that opted
// in to active revocation checks, and, with URLs, what the urls source
// fetches. The URLs inside certificates are untrusted input: these rules
// bound where they can send certwatch and what it reads back.
type Fetch struct {
	// HTTPS also follows https:// URLs; plain http is what CAs publish and
	// the default.
	HTTPS bool `yaml:"https"`
	// Allow are probe_allow rules admitting addresses that are otherwise
	// denied (loopback, link-local, cloud metadata, the Deny ranges).
	Allow []string `yaml:"allow"`
	// Deny are address ranges (CIDR) refused beside the built-in ones.
	Deny []string `yaml:"deny"`
	// Concurrency bounds the fetches in flight at once.
	Concurrency int `yaml:"concurrency"`
	// HostInterval is the least time between two requests to one host.
	HostInterval Duration `yaml:"host_interval"`
	// Timeout bounds one request, body included.
	Timeout Duration `yaml:"timeout"`
	// MaxCRLSize is the largest CRL read; a larger one reports too_large.
	MaxCRLSize ByteSize `yaml:"max_crl_size"`
	// MinRefresh and MaxRefresh bound how long an answer is kept: until its
	// next update, but at least MinRefresh and at most MaxRefresh.
	MinRefresh Duration `yaml:"min_refresh"`
	MaxRefresh Duration `yaml:"max_refresh"`
}

// Defaults of global.revocation.
const (
	DefaultFetchConcurrency  = 8
	DefaultFetchHostInterval = Duration(time.Second)
	DefaultFetchTimeout      = Duration(15 * time.Second)
	DefaultMaxCRLSize        = ByteSize(64 << 20)
	DefaultMinRefresh        = Duration(5 * time.Minute)
	DefaultMaxRefresh        = Duration(24 * time.Hour)
)

// URLGroup is a set of URLs publishing certificates, bundles or CRLs (a
// CA's chain, a Vault PKI mount's issuers and CRL), fetched on an interval.
type URLGroup struct {
	URLs []string `yaml:"urls"`
	// Interval between two fetches of each URL; a fetch revalidates with
	// ETag and Last-Modified.
	Interval Duration `yaml:"interval"`
	// Timeout bounds one fetch; global.revocation.timeout when unset.
	Timeout Duration `yaml:"timeout"`
	// TLS is how to talk to an https:// server, as a module's.
	TLS TLS `yaml:"tls"`
	// CAFile holds the roots the published chains are verified against;
	// system roots when empty.
	CAFile     string            `yaml:"ca_file"`
	Labels     map[string]string `yaml:"labels"`
	Revocation Revocation        `yaml:"revocation"`
}

// DefaultURLInterval is how often a URL is fetched unless its group says.
const DefaultURLInterval = Duration(5 * time.Minute)

func (f *Fetch) applyDefaults() {
	if f.Concurrency == 0 {
		f.Concurrency = DefaultFetchConcurrency
	}
	if f.HostInterval == 0 {
		f.HostInterval = DefaultFetchHostInterval
	}
	if f.Timeout == 0 {
		f.Timeout = DefaultFetchTimeout
	}
	if f.MaxCRLSize == 0 {
		f.MaxCRLSize = DefaultMaxCRLSize
	}
	if f.MinRefresh == 0 {
		f.MinRefresh = DefaultMinRefresh
	}
	if f.MaxRefresh == 0 {
		f.MaxRefresh = DefaultMaxRefresh
	}
}

func (f Fetch) validate(fail func([]any, string, ...any)) {
	// Counts and durations are checked by validateNumbers.
	at := []any{"global", "revocation"}
	if f.MinRefresh > 0 && f.MinRefresh > f.MaxRefresh {
		fail(append(at, "min_refresh"), "is longer than max_refresh (%s > %s)", time.Duration(f.MinRefresh), time.Duration(f.MaxRefresh))
	}
	for i, rule := range f.Allow {
		if _, err := probeallow.Parse(rule); err != nil {
			fail(append(at, "allow", i), "invalid rule: %v", err)
		}
	}
	for i, d := range f.Deny {
		if _, err := netip.ParsePrefix(d); err != nil {
			fail(append(at, "deny", i), "want an address range such as 10.0.0.0/8: %v", err)
		}
	}
}

func (g *URLGroup) applyDefaults(f Fetch) {
	if g.Interval == 0 {
		g.Interval = DefaultURLInterval
	}
	if g.Timeout == 0 {
		g.Timeout = f.Timeout
	}
	if g.TLS.MinVersion == "" {
		g.TLS.MinVersion = DefaultMinTLSVersion
	}
}

func (g URLGroup) validate(i int, fail func([]any, string, ...any)) {
	at := []any{"urls", i}
	if len(g.URLs) == 0 {
		fail(append(at, "urls"), "lists no URL")
	}
	for j, raw := range g.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fail(append(at, "urls", j), "want an http:// or https:// URL")
			continue
		}
		if u.User != nil {
			fail(append(at, "urls", j), "credentials in the URL would end up in labels and logs")
		}
	}
	if _, ok := TLSVersions[g.TLS.MinVersion]; !ok {
		fail(append(at, "tls", "min_version"), "unknown TLS version %q (want TLS10, TLS11, TLS12 or TLS13)", g.TLS.MinVersion)
	}
	for _, ca := range []struct {
		path string
		at   []any
	}{{g.TLS.CAFile, append(at, "tls", "ca_file")}, {g.CAFile, append(at, "ca_file")}} {
		if ca.path != "" {
			if _, err := LoadCAFile(ca.path); err != nil {
				fail(ca.at, "%v", err)
			}
		}
	}
	if (g.TLS.CertFile == "") != (g.TLS.KeyFile == "") {
		fail(append(at, "tls"), "cert_file and key_file go together")
	}
	validateLabels(g.Labels, append(at, "labels"), fail)
}

// urlKey identifies a URL for duplicate detection.
func urlKey(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return fmt.Sprintf("%s://%s%s?%s", u.Scheme, u.Host, u.EscapedPath(), u.RawQuery)
}
