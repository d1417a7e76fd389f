// Package config owns certwatch's configuration file: its schema, strict
// loading with errors that name the key and line, validation, defaults, and
// hot reload on SIGHUP and, with --web.enable-lifecycle, POST /-/reload.
package config

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/certwatch/certwatch/config/probeallow"
	"github.com/certwatch/certwatch/shard"
	"github.com/certwatch/certwatch/source"
)

// DefaultModuleName is the module used by endpoints that name none. It exists
// even when the file does not define it.
const DefaultModuleName = "default"

// Defaults applied where the file is silent.
const (
	DefaultTimeout          = 10 * time.Second
	DefaultProbeConcurrency = 128
	DefaultMaxFileSize      = 4 << 20
	// DefaultMaxCertificatesPerPlace bounds the certificates one place (a
	// file, a keystore alias, a Kubernetes key) may hold: a 4 MiB PEM bundle
	// can hold 12,500 certificates, which would be 37,500 series.
	DefaultMaxCertificatesPerPlace = 1000
	DefaultMinTLSVersion           = "TLS10"
)

// The values of global.certificate_series: which certificates of a place get
// per-certificate series (not-after, not-before, info).
const (
	// CertificateSeriesAll gives every certificate its series (the default).
	CertificateSeriesAll = "all"
	// CertificateSeriesLeaves gives them to leaves and trust anchors only:
	// intermediates and roots are still judged and count in the chain series.
	CertificateSeriesLeaves = "leaves"
)

// StartTLS protocols the endpoint source speaks.
var StartTLSProtocols = []string{"smtp", "imap", "pop3", "ftp", "ldap", "postgres", "mysql"}

// ReservedLabels are label names certwatch sets itself; extra labels may not
// use them.
var ReservedLabels = []string{"source", "target", "key", "index", "subject_cn", "issuer_cn", "reason",
	"class", "version", "cipher", "collector", "serial", "fingerprint_sha256", "dns_names", "ip_addresses",
	"uris", "email_addresses", "key_algorithm", "key_bits", "signature_algorithm", "is_ca", "self_signed",
	"subject", "issuer", "module", "job", "instance", "kube_namespace", "certmanager_certificate",
	"role", "method", "status", "url", "delta", "signer_name", "mesh", "mesh_role"}

// Config is the whole configuration file.
type Config struct {
	Global    Global            `yaml:"global"`
	Modules   map[string]Module `yaml:"modules"`
	Endpoints []EndpointGroup   `yaml:"endpoints"`
	Files     []FileGroup       `yaml:"files"`
	// Kubernetes enables the Kubernetes source when present: the section
	// as one block, or the first of a list of blocks, one per cluster.
	Kubernetes *Kubernetes `yaml:"kubernetes"`
	// KubernetesClusters are every block of the section (Kubernetes first).
	KubernetesClusters KubernetesClusters `yaml:"-"`
	// SPIFFE enables the SPIFFE source when present.
	SPIFFE *SPIFFE `yaml:"spiffe"`
	// URLs are certificates, bundles and CRLs published over HTTP(S).
	URLs []URLGroup `yaml:"urls"`

	// Path is the file the configuration came from; relative paths inside it
	// were resolved against its directory.
	Path string `yaml:"-"`
	// Shard is this replica's share of the targets (--shard.index/total),
	// set by the caller, not the file.
	Shard shard.Shard `yaml:"-"`
}

// Global holds settings that apply to every source.
type Global struct {
	// ProbeConcurrency bounds endpoint probes in flight at once.
	ProbeConcurrency int `yaml:"probe_concurrency"`
	// MaxFileSize is the largest certificate file read; larger ones report too_large.
	MaxFileSize ByteSize `yaml:"max_file_size"`
	// MaxCertificatesPerPlace is the most certificates one file, keystore
	// alias or Kubernetes key may hold; a place with more reports too_large
	// and no certificates.
	MaxCertificatesPerPlace int `yaml:"max_certificates_per_place"`
	// CertificateSeries is CertificateSeriesAll or CertificateSeriesLeaves.
	CertificateSeries string `yaml:"certificate_series"`
	// FilesWatch is FilesWatchAuto, FilesWatchInotify or FilesWatchPoll:
	// how the files source learns of changes (config/files_watch.go).
	FilesWatch string `yaml:"files_watch"`
	// FilesRecheckInterval is how often a watched tree is walked and
	// stat'ed in full anyway.
	FilesRecheckInterval Duration `yaml:"files_recheck_interval"`
	// Revocation bounds the fetches of revocation checks and of the urls
	// source.
	Revocation Fetch `yaml:"revocation"`
}

// Revocation is the active revocation checks a module, file group, URL
// group or the Kubernetes block opts in to.
type Revocation = source.Revocation

// Module says how to talk to an endpoint.
type Module struct {
	Timeout  Duration `yaml:"timeout"`
	StartTLS string   `yaml:"starttls"`
	TLS      TLS      `yaml:"tls"`
	// ProxyURL is an http:// or https:// HTTP CONNECT proxy, credentials allowed in the URL.
	ProxyURL            string `yaml:"proxy_url"`
	PreferredIPProtocol string `yaml:"preferred_ip_protocol"` // "ip4", "ip6" or "" for the resolver's order
	IPProtocolFallback  *bool  `yaml:"ip_protocol_fallback"`
	// ProbeAllow lists the rules (address ranges, name patterns, ports; see
	// package probeallow) of what /probe may reach with this module, beyond
	// the endpoints configured with it.
	ProbeAllow []string `yaml:"probe_allow"`
	// MinProbeInterval protects fragile targets: a probe result younger than
	// this is reused instead of connecting again. 0 probes on every scrape
	// (concurrent scrapes still share one probe).
	MinProbeInterval Duration `yaml:"min_probe_interval"`
	// Revocation turns on active OCSP and CRL checks of the chains served.
	Revocation Revocation `yaml:"revocation"`
}

// TLS holds a module's TLS settings.
type TLS struct {
	ServerName string `yaml:"server_name"`
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	MinVersion string `yaml:"min_version"` // TLS10, TLS11, TLS12, TLS13
}

// EndpointGroup is a list of host:port targets sharing a module and labels.
type EndpointGroup struct {
	Targets []string          `yaml:"targets"`
	Module  string            `yaml:"module"`
	Labels  map[string]string `yaml:"labels"`
}

// FileGroup is a set of certificate files sharing settings and labels.
type FileGroup struct {
	// Paths are files, directories (walked recursively) or globs, "**" included.
	Paths []string `yaml:"paths"`
	// Exclude are globs matched against the full path of each file found.
	Exclude []string `yaml:"exclude"`
	// PasswordFile holds the PKCS#12 / Java keystore password (first line).
	PasswordFile string `yaml:"password_file"`
	// CAFile holds the roots chains are verified against; system roots when empty.
	CAFile string            `yaml:"ca_file"`
	Labels map[string]string `yaml:"labels"`
	// Revocation turns on active OCSP and CRL checks of the group's chains.
	Revocation Revocation `yaml:"revocation"`
}

// Kubernetes says which Kubernetes objects hold certificates to watch.
type Kubernetes struct {
	Secrets    *SecretWatch    `yaml:"secrets"`
	ConfigMaps *ConfigMapWatch `yaml:"configmaps"`
	// Webhooks watches the caBundle of every Validating and Mutating
	// WebhookConfiguration webhook.
	Webhooks bool `yaml:"webhooks"`
	// APIServices watches the caBundle of aggregated APIServices.
	APIServices bool `yaml:"apiservices"`
	// CRDs watches the caBundle of CustomResourceDefinition conversion webhooks.
	CRDs bool `yaml:"crds"`
	// CAFile holds the roots that certificates without a ca.crt beside them
	// are verified against; system roots when empty.
	CAFile string            `yaml:"ca_file"`
	Labels map[string]string `yaml:"labels"`
	// Revocation turns on active OCSP and CRL checks of the chains found.
	Revocation Revocation `yaml:"revocation"`
	// KubernetesSelect adds csrs, expose_labels and expose_annotations.
	KubernetesSelect `yaml:",inline"`
	// KubernetesCluster adds cluster, kubeconfig and context.
	KubernetesCluster `yaml:",inline"`
	// CertManager reports the lifecycle of cert-manager Certificates.
	CertManager CertManager `yaml:"cert_manager"`
	// Mesh watches where service meshes keep their CAs and trust roots.
	Mesh *Mesh `yaml:"mesh"`
}

// Selection narrows which namespaced objects are watched.
type Selection struct {
	// Namespaces to watch; all when empty.
	Namespaces        []string `yaml:"namespaces"`
	ExcludeNamespaces []string `yaml:"exclude_namespaces"`
	// LabelSelector in the kubectl syntax ("app=web,tier!=db").
	LabelSelector string `yaml:"label_selector"`
	// ObjectSelect adds namespace_selector and annotation_selector.
	ObjectSelect `yaml:",inline"`
}

// SecretWatch selects Secrets and the keys that hold certificates.
type SecretWatch struct {
	Selection `yaml:",inline"`
	// Types of Secret to watch; default kubernetes.io/tls.
	Types []string `yaml:"types"`
	// KeyPatterns are globs over data keys read in Secrets of other types
	// than kubernetes.io/tls (whose tls.crt and ca.crt are always read).
	KeyPatterns []string `yaml:"key_patterns"`
	// PasswordKey names the data key that holds the password of PKCS#12 and
	// JKS values in the same Secret.
	PasswordKey string `yaml:"password_key"`
	// PasswordSecret names another Secret holding that password, as
	// cert-manager's keystores.pkcs12.passwordSecretRef does. PasswordKey
	// wins in a Secret that has that key.
	PasswordSecret *PasswordSecret `yaml:"password_secret"`
}

// PasswordSecret is a key of a Secret that holds keystore passwords.
type PasswordSecret struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
	// Namespace of the Secret; empty means the keystore Secret's own.
	Namespace string `yaml:"namespace"`
}

// ConfigMapWatch selects ConfigMaps and the keys that hold certificates.
type ConfigMapWatch struct {
	Selection   `yaml:",inline"`
	KeyPatterns []string `yaml:"key_patterns"`
}

// Default key patterns.
var (
	DefaultSecretTypes          = []string{"kubernetes.io/tls"}
	DefaultSecretKeyPatterns    = []string{"*.crt", "*.pem", "*.crl", "*.p12", "*.pfx", "*.jks", "*.jceks"}
	DefaultConfigMapKeyPatterns = []string{"*.crt", "*.pem", "*.crl"}
)

// Duration is a time.Duration written as Prometheus writes them ("30s", "1m", "1d").
type Duration time.Duration

// UnmarshalYAML parses a duration. The error does not name the line or the
// key: Parse checks every value before decoding and adds both.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	dur, err := model.ParseDuration(n.Value)
	if err != nil {
		std, stdErr := time.ParseDuration(n.Value)
		if stdErr != nil {
			return fmt.Errorf("invalid duration %q: want a number and a unit (ms, s, m, h, d, w, y), e.g. 30s or 1m30s", n.Value)
		}
		dur = model.Duration(std)
	}
	*d = Duration(dur)
	return nil
}

// MarshalYAML writes the duration back in the same form.
func (d Duration) MarshalYAML() (any, error) { return model.Duration(d).String(), nil }

// ByteSize is a size in bytes written as "4MiB", "512KiB" or a plain number.
type ByteSize int64

// UnmarshalYAML parses a size (see Duration.UnmarshalYAML for the error).
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("invalid size %q: %w", n.Value, err)
	}
	*b = ByteSize(v)
	return nil
}

func parseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if err != nil || v <= 0 {
				return 0, errors.New("want a positive number with an optional unit (B, KiB, MiB, GiB, KB, MB, GB)")
			}
			return v * u.mult, nil
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, errors.New("want a positive number with an optional unit (B, KiB, MiB, GiB, KB, MB, GB)")
	}
	return v, nil
}

// ErrNoFile is Load's error when the configuration file does not exist.
var ErrNoFile = errors.New("configuration file does not exist")

// Load reads, parses, resolves and validates the configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoFile, path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading configuration file: %w", err)
	}
	cfg, err := Parse(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfg.Path = path
	return cfg, nil
}

// Parse parses a configuration strictly, resolves relative paths against
// baseDir, applies defaults and validates.
func Parse(data []byte, baseDir string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	// Every key and value is checked against the schema first, so that each
	// error names its key path and line, and all of them are reported at once
	// (the decoder stops at the first bad value and names no key).
	if err := errors.Join(checkSchema(&root), checkKubernetesSchema(&root)); err != nil {
		return nil, err
	}
	cfg := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	cfg.splitKubernetes()
	cfg.resolvePaths(baseDir)
	// Values the file sets to something that makes no sense (a negative
	// count, a zero timeout) are errors, not silently replaced by defaults:
	// they are checked before defaults fill what the file left out.
	numbersErr := cfg.validateNumbers(&root)
	cfg.applyDefaults()
	if err := errors.Join(numbersErr, cfg.validate(&root)); err != nil {
		return nil, err
	}
	return cfg, nil
}

// validateNumbers refuses counts, sizes and durations the file sets to a
// value that makes no sense. An absent key is left for applyDefaults.
func (c *Config) validateNumbers(root *yaml.Node) error {
	var errs []error
	fail := func(path []any, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", linePrefix(root, path), pathString(path), fmt.Sprintf(format, args...)))
	}
	atLeastOne := func(path []any, v int) {
		if findNode(root, path) != nil && v < 1 {
			fail(path, "must be at least 1, got %d", v)
		}
	}
	atLeastOne([]any{"global", "probe_concurrency"}, c.Global.ProbeConcurrency)
	atLeastOne([]any{"global", "max_certificates_per_place"}, c.Global.MaxCertificatesPerPlace)
	c.Global.validateFilesWatch(root, fail)
	atLeastOne([]any{"global", "revocation", "concurrency"}, c.Global.Revocation.Concurrency)
	positive := func(path []any, d Duration) {
		if findNode(root, path) != nil && d <= 0 {
			fail(path, "must be positive, got %s", time.Duration(d))
		}
	}
	for _, key := range []string{"host_interval", "timeout", "min_refresh", "max_refresh"} {
		d := map[string]Duration{"host_interval": c.Global.Revocation.HostInterval, "timeout": c.Global.Revocation.Timeout,
			"min_refresh": c.Global.Revocation.MinRefresh, "max_refresh": c.Global.Revocation.MaxRefresh}[key]
		positive([]any{"global", "revocation", key}, d)
	}
	if at := []any{"global", "revocation", "max_crl_size"}; findNode(root, at) != nil && c.Global.Revocation.MaxCRLSize <= 0 {
		fail(at, "must be positive")
	}
	for i, g := range c.URLs {
		positive([]any{"urls", i, "interval"}, g.Interval)
		positive([]any{"urls", i, "timeout"}, g.Timeout)
	}
	for _, name := range sortedKeys(c.Modules) {
		m := c.Modules[name]
		if at := []any{"modules", name, "timeout"}; findNode(root, at) != nil && m.Timeout <= 0 {
			fail(at, "must be positive, got %s", time.Duration(m.Timeout))
		}
		if m.MinProbeInterval < 0 {
			fail([]any{"modules", name, "min_probe_interval"}, "must not be negative, got %s", time.Duration(m.MinProbeInterval))
		}
	}
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c *Config) applyDefaults() {
	if c.Global.ProbeConcurrency == 0 {
		c.Global.ProbeConcurrency = DefaultProbeConcurrency
	}
	if c.Global.MaxFileSize == 0 {
		c.Global.MaxFileSize = DefaultMaxFileSize
	}
	if c.Global.MaxCertificatesPerPlace == 0 {
		c.Global.MaxCertificatesPerPlace = DefaultMaxCertificatesPerPlace
	}
	if c.Global.CertificateSeries == "" {
		c.Global.CertificateSeries = CertificateSeriesAll
	}
	if c.Modules == nil {
		c.Modules = map[string]Module{}
	}
	if _, ok := c.Modules[DefaultModuleName]; !ok {
		c.Modules[DefaultModuleName] = Module{}
	}
	for name, m := range c.Modules {
		if m.Timeout == 0 {
			m.Timeout = Duration(DefaultTimeout)
		}
		if m.TLS.MinVersion == "" {
			m.TLS.MinVersion = DefaultMinTLSVersion
		}
		if m.IPProtocolFallback == nil {
			t := true
			m.IPProtocolFallback = &t
		}
		c.Modules[name] = m
	}
	for i := range c.KubernetesClusters {
		k := &c.KubernetesClusters[i]
		if k.Secrets != nil {
			if len(k.Secrets.Types) == 0 {
				k.Secrets.Types = DefaultSecretTypes
			}
			if len(k.Secrets.KeyPatterns) == 0 {
				k.Secrets.KeyPatterns = DefaultSecretKeyPatterns
			}
		}
		if k.ConfigMaps != nil && len(k.ConfigMaps.KeyPatterns) == 0 {
			k.ConfigMaps.KeyPatterns = DefaultConfigMapKeyPatterns
		}
		k.CertManager.applyDefaults()
		k.Mesh.applyDefaults()
	}
	if c.SPIFFE != nil {
		c.SPIFFE.applyDefaults()
	}
	c.Global.applyFilesWatchDefaults()
	c.Global.Revocation.applyDefaults()
	for i := range c.URLs {
		c.URLs[i].applyDefaults(c.Global.Revocation)
	}
	for i := range c.Endpoints {
		if c.Endpoints[i].Module == "" {
			c.Endpoints[i].Module = DefaultModuleName
		}
	}
}

func (c *Config) resolvePaths(base string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	for name, m := range c.Modules {
		m.TLS.CAFile, m.TLS.CertFile, m.TLS.KeyFile = abs(m.TLS.CAFile), abs(m.TLS.CertFile), abs(m.TLS.KeyFile)
		c.Modules[name] = m
	}
	for i := range c.Files {
		f := &c.Files[i]
		f.PasswordFile, f.CAFile = abs(f.PasswordFile), abs(f.CAFile)
		for j := range f.Paths {
			f.Paths[j] = abs(f.Paths[j])
		}
	}
	c.KubernetesClusters.resolvePaths(abs)
	if c.SPIFFE != nil {
		c.SPIFFE.resolvePaths(abs)
	}
	for i := range c.URLs {
		g := &c.URLs[i]
		g.CAFile, g.TLS.CAFile, g.TLS.CertFile, g.TLS.KeyFile = abs(g.CAFile), abs(g.TLS.CAFile), abs(g.TLS.CertFile), abs(g.TLS.KeyFile)
	}
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// TLSVersions maps the config spelling of TLS versions to crypto/tls values.
var TLSVersions = map[string]uint16{"TLS10": tls.VersionTLS10, "TLS11": tls.VersionTLS11, "TLS12": tls.VersionTLS12, "TLS13": tls.VersionTLS13}

func (c *Config) validate(root *yaml.Node) error {
	var errs []error
	fail := func(path []any, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", linePrefix(root, path), pathString(path), fmt.Sprintf(format, args...)))
	}
	switch c.Global.CertificateSeries {
	case CertificateSeriesAll, CertificateSeriesLeaves:
	default:
		fail([]any{"global", "certificate_series"}, "want %s or %s, got %q", CertificateSeriesAll, CertificateSeriesLeaves, c.Global.CertificateSeries)
	}
	names := make([]string, 0, len(c.Modules))
	for name := range c.Modules {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		m := c.Modules[name]
		at := []any{"modules", name}
		if m.StartTLS != "" && !slices.Contains(StartTLSProtocols, m.StartTLS) {
			fail(append(at, "starttls"), "unknown protocol %q (want one of %s)", m.StartTLS, strings.Join(StartTLSProtocols, ", "))
		}
		if _, ok := TLSVersions[m.TLS.MinVersion]; !ok {
			fail(append(at, "tls", "min_version"), "unknown TLS version %q (want TLS10, TLS11, TLS12 or TLS13)", m.TLS.MinVersion)
		}
		switch m.PreferredIPProtocol {
		case "", "ip4", "ip6":
		default:
			fail(append(at, "preferred_ip_protocol"), "want ip4 or ip6, got %q", m.PreferredIPProtocol)
		}
		if m.ProxyURL != "" {
			u, err := url.Parse(m.ProxyURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				fail(append(at, "proxy_url"), "want an http:// or https:// URL")
			}
		}
		if m.TLS.CAFile != "" {
			if _, err := LoadCAFile(m.TLS.CAFile); err != nil {
				fail(append(at, "tls", "ca_file"), "%v", err)
			}
		}
		if (m.TLS.CertFile == "") != (m.TLS.KeyFile == "") {
			fail(append(at, "tls"), "cert_file and key_file go together")
		} else if m.TLS.CertFile != "" {
			if _, err := tls.LoadX509KeyPair(m.TLS.CertFile, m.TLS.KeyFile); err != nil {
				fail(append(at, "tls", "cert_file"), "loading client certificate: %v", redactKeyError(err))
			}
		}
		for i, p := range m.ProbeAllow {
			if _, err := probeallow.Parse(p); err != nil {
				fail(append(at, "probe_allow", i), "invalid rule: %v", err)
			}
		}
	}
	// Where each target and each literal file path was first named: the
	// README promises one place per target, so a second naming is an error
	// that points at both.
	duplicate := func(first, second []any, name string) {
		errs = append(errs, fmt.Errorf("%s%s and %s both name %q", linePrefix(root, second), pathString(first), pathString(second), name))
	}
	targetAt := map[string][]any{}
	for i, g := range c.Endpoints {
		at := []any{"endpoints", i}
		if _, ok := c.Modules[g.Module]; !ok {
			fail(append(at, "module"), "unknown module %q", g.Module)
		}
		if len(g.Targets) == 0 {
			fail(at, "targets must not be empty")
		}
		for j, t := range g.Targets {
			if err := ValidateTarget(t); err != nil {
				fail(append(at, "targets", j), "%v", err)
			}
			here := []any{"endpoints", i, "targets", j}
			key := targetKey(t)
			if first, ok := targetAt[key]; ok {
				duplicate(first, here, t)
			} else {
				targetAt[key] = here
			}
		}
		validateLabels(g.Labels, append(at, "labels"), fail)
	}
	pathAt := map[string][]any{}
	for i, f := range c.Files {
		at := []any{"files", i}
		if len(f.Paths) == 0 {
			fail(at, "paths must not be empty")
		}
		namedHere := map[string]bool{}
		for j, p := range f.Paths {
			if !doublestar.ValidatePattern(filepath.ToSlash(p)) {
				fail(append(at, "paths", j), "invalid glob %q", p)
			}
			// Only literal paths: what two groups' globs or directories
			// both match is only known when the files are found.
			if hasGlobMeta(p) {
				continue
			}
			clean := filepath.Clean(p)
			here := []any{"files", i, "paths", j}
			if first, ok := pathAt[clean]; ok && !namedHere[clean] {
				duplicate(first, here, clean)
			} else if !ok {
				pathAt[clean] = here
			}
			namedHere[clean] = true
		}
		for j, p := range f.Exclude {
			if !doublestar.ValidatePattern(filepath.ToSlash(p)) {
				fail(append(at, "exclude", j), "invalid glob %q", p)
			}
		}
		if f.PasswordFile != "" {
			if _, err := os.Stat(f.PasswordFile); err != nil {
				fail(append(at, "password_file"), "%v", err)
			}
		}
		if f.CAFile != "" {
			if _, err := LoadCAFile(f.CAFile); err != nil {
				fail(append(at, "ca_file"), "%v", err)
			}
		}
		validateLabels(f.Labels, append(at, "labels"), fail)
	}
	if c.SPIFFE != nil {
		c.SPIFFE.validate(fail)
	}
	c.Global.Revocation.validate(fail)
	seenURL := map[string][]any{}
	for i, g := range c.URLs {
		g.validate(i, fail)
		for j, u := range g.URLs {
			at := []any{"urls", i, "urls", j}
			if first, ok := seenURL[urlKey(u)]; ok {
				fail(at, "repeats %s", pathString(first))
			} else {
				seenURL[urlKey(u)] = at
			}
		}
	}
	c.KubernetesClusters.validate(root, fail)
	for i := range c.KubernetesClusters {
		k, at := &c.KubernetesClusters[i], kubernetesPath(root, i)
		if k.Secrets == nil && k.ConfigMaps == nil && !k.Webhooks && !k.APIServices && !k.CRDs && !k.CSRs &&
			k.CertManager.Mode() != CertManagerEnabled && !k.Mesh.Any() {
			fail(at, "enables nothing: set secrets, configmaps, webhooks, apiservices, crds, csrs, cert_manager.enabled or a mesh preset")
		}
		if k.CAFile != "" {
			if _, err := LoadCAFile(k.CAFile); err != nil {
				fail(append(at, "ca_file"), "%v", err)
			}
		}
		if k.Secrets != nil {
			validateSelection(k.Secrets.Selection, append(at, "secrets"), fail)
			for i, p := range k.Secrets.KeyPatterns {
				if !doublestar.ValidatePattern(p) {
					fail(append(at, "secrets", "key_patterns", i), "invalid glob %q", p)
				}
			}
			if ps := k.Secrets.PasswordSecret; ps != nil {
				validatePasswordSecret(*ps, append(at, "secrets", "password_secret"), fail)
			}
		}
		if k.ConfigMaps != nil {
			validateSelection(k.ConfigMaps.Selection, append(at, "configmaps"), fail)
			for i, p := range k.ConfigMaps.KeyPatterns {
				if !doublestar.ValidatePattern(p) {
					fail(append(at, "configmaps", "key_patterns", i), "invalid glob %q", p)
				}
			}
		}
		validateLabels(k.Labels, append(at, "labels"), fail)
		k.validateSelect(at, fail)
		k.CertManager.validate(at, k.Labels, fail)
		k.Mesh.validate(append(at, "mesh"), fail)
	}
	return errors.Join(errs...)
}

func validateSelection(s Selection, at []any, fail func([]any, string, ...any)) {
	if s.LabelSelector != "" {
		if _, err := labels.Parse(s.LabelSelector); err != nil {
			fail(append(at, "label_selector"), "%v", err)
		}
	}
	if len(s.Namespaces) > 0 && len(s.ExcludeNamespaces) > 0 {
		fail(at, "namespaces and exclude_namespaces exclude each other")
	}
}

func validatePasswordSecret(ps PasswordSecret, at []any, fail func([]any, string, ...any)) {
	switch {
	case ps.Name == "":
		fail(at, "name is required")
	default:
		for _, msg := range validation.IsDNS1123Subdomain(ps.Name) {
			fail(append(at, "name"), "invalid Secret name %q: %s", ps.Name, msg)
		}
	}
	switch {
	case ps.Key == "":
		fail(at, "key is required")
	default:
		for _, msg := range validation.IsConfigMapKey(ps.Key) { // Secret data keys follow the same rule
			fail(append(at, "key"), "invalid Secret key %q: %s", ps.Key, msg)
		}
	}
	if ps.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(ps.Namespace) {
			fail(append(at, "namespace"), "invalid namespace %q: %s", ps.Namespace, msg)
		}
	}
}

func validateLabels(labels map[string]string, at []any, fail func([]any, string, ...any)) {
	for name := range labels {
		switch {
		case !labelNameRE.MatchString(name) || strings.HasPrefix(name, "__"):
			fail(append(at, name), "invalid label name %q", name)
		case slices.Contains(ReservedLabels, name):
			fail(append(at, name), "label %q is set by certwatch itself", name)
		}
	}
}

// targetKey is what makes two spellings of a target the same target: host
// names are case-insensitive.
func targetKey(t string) string {
	host, port, err := net.SplitHostPort(t)
	if err != nil {
		return t
	}
	return net.JoinHostPort(strings.ToLower(host), port)
}

// hasGlobMeta says whether a path is a pattern rather than a literal path.
func hasGlobMeta(p string) bool { return strings.ContainsAny(p, "*?[{\\") }

// ValidateTarget checks that a target is host:port with a numeric port;
// IPv6 literals go in brackets.
func ValidateTarget(t string) error {
	host, port, err := net.SplitHostPort(t)
	if err != nil {
		return fmt.Errorf("target %q: want host:port ([v6::addr]:port for IPv6): %w", t, err)
	}
	if host == "" {
		return fmt.Errorf("target %q: empty host", t)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("target %q: port must be a number from 1 to 65535", t)
	}
	return nil
}

// LoadCAFile checks that a CA file loads, with the loader every source
// uses (source.LoadCAFile).
func LoadCAFile(path string) (source.CA, error) { return source.LoadCAFile(path) }

// redactKeyError keeps tls.LoadX509KeyPair's message but never anything that
// could echo key bytes (it does not today; this is a guard for tomorrow).
func redactKeyError(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "PRIVATE KEY-----") {
		return "the key file could not be parsed"
	}
	return msg
}

// linePrefix returns "line N: " for the node at path, or "" when not found.
// The line is that of the last key or list item on the path that exists.
func linePrefix(root *yaml.Node, path []any) string {
	_, line := walkPath(root, path)
	if line == 0 {
		return ""
	}
	return fmt.Sprintf("line %d: ", line)
}

// findNode returns the value node at path, nil when the file does not set it.
func findNode(root *yaml.Node, path []any) *yaml.Node {
	n, _ := walkPath(root, path)
	return n
}

// walkPath follows path from the document root: the node it reaches (nil
// when some step is missing) and the line of the last step found.
func walkPath(root *yaml.Node, path []any) (*yaml.Node, int) {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, step := range path {
		var next *yaml.Node
		switch s := step.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == s {
						line = n.Content[i].Line
						next = n.Content[i+1]
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && s < len(n.Content) {
				next = n.Content[s]
				line = next.Line
			}
		}
		if next == nil {
			return nil, line
		}
		n = next
	}
	return n, line
}

func pathString(path []any) string {
	var b strings.Builder
	for i, p := range path {
		switch s := p.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", s)
		default:
			if i > 0 {
				b.WriteByte('.')
			}
			fmt.Fprint(&b, s)
		}
	}
	return b.String()
}
