package config

import (
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// SPIFFE enables the SPIFFE source: X.509 SVIDs and trust bundles from
// SPIRE agents' Workload API, and federated bundles from bundle endpoints.
type SPIFFE struct {
	WorkloadAPI     []WorkloadAPI    `yaml:"workload_api"`
	BundleEndpoints []BundleEndpoint `yaml:"bundle_endpoints"`
}

// WorkloadAPI is one agent's Workload API, watched as a stream.
type WorkloadAPI struct {
	// Address is the socket, "unix:///path" (or "tcp://ip:port"); empty
	// means the SPIFFE_ENDPOINT_SOCKET environment variable.
	Address string `yaml:"address"`
	// StaleAfter is how long after the stream broke the last SVIDs and
	// bundles received are still reported as current; past it they are
	// reported with the stale error class.
	StaleAfter Duration `yaml:"stale_after"`
	// RotationFraction is the fraction of an SVID's lifetime after which
	// the agent should have rotated it (SPIRE rotates at half).
	RotationFraction float64           `yaml:"rotation_fraction"`
	Labels           map[string]string `yaml:"labels"`
}

// BundleEndpoint is a federated trust domain's SPIFFE bundle endpoint.
type BundleEndpoint struct {
	TrustDomain string `yaml:"trust_domain"`
	URL         string `yaml:"url"`
	// Profile is https_web (the endpoint has a Web PKI certificate) or
	// https_spiffe (it serves an SVID of the trust domain itself).
	Profile string `yaml:"profile"`
	// EndpointSPIFFEID is the SPIFFE ID the endpoint's SVID must carry
	// (https_spiffe).
	EndpointSPIFFEID string `yaml:"endpoint_spiffe_id"`
	// BundleFile holds the trust domain's X.509 authorities (PEM) to
	// authenticate the endpoint the first time (https_spiffe); later fetches
	// are authenticated with the bundle last fetched.
	BundleFile string `yaml:"bundle_file"`
	// CAFile holds the roots for https_web; empty means the system roots.
	CAFile string `yaml:"ca_file"`
	// RefreshInterval is used when the bundle carries no refresh hint.
	RefreshInterval Duration          `yaml:"refresh_interval"`
	Labels          map[string]string `yaml:"labels"`
}

// Bundle endpoint profiles.
const (
	ProfileHTTPSWeb    = "https_web"
	ProfileHTTPSSPIFFE = "https_spiffe"
)

// SPIFFE defaults.
const (
	DefaultSPIFFEStaleAfter       = 5 * time.Minute
	DefaultRotationFraction       = 0.5
	DefaultBundleRefreshInterval  = 5 * time.Minute
	MinBundleRefreshInterval      = 30 * time.Second
	MaxBundleRefreshInterval      = time.Hour
	spiffeEndpointSocketEnv       = "SPIFFE_ENDPOINT_SOCKET"
	spiffeEndpointSocketEnvAbsent = "no address, and " + spiffeEndpointSocketEnv + " is not set"
)

func (s *SPIFFE) applyDefaults() {
	for i := range s.WorkloadAPI {
		w := &s.WorkloadAPI[i]
		if w.Address == "" {
			w.Address = os.Getenv(spiffeEndpointSocketEnv)
		}
		if w.StaleAfter == 0 {
			w.StaleAfter = Duration(DefaultSPIFFEStaleAfter)
		}
		if w.RotationFraction == 0 {
			w.RotationFraction = DefaultRotationFraction
		}
	}
	for i := range s.BundleEndpoints {
		b := &s.BundleEndpoints[i]
		if b.Profile == "" {
			b.Profile = ProfileHTTPSSPIFFE
		}
		if b.RefreshInterval == 0 {
			b.RefreshInterval = Duration(DefaultBundleRefreshInterval)
		}
	}
}

func (s *SPIFFE) resolvePaths(abs func(string) string) {
	for i := range s.BundleEndpoints {
		b := &s.BundleEndpoints[i]
		b.BundleFile, b.CAFile = abs(b.BundleFile), abs(b.CAFile)
	}
}

func (s *SPIFFE) validate(fail func([]any, string, ...any)) {
	at := []any{"spiffe"}
	if len(s.WorkloadAPI) == 0 && len(s.BundleEndpoints) == 0 {
		fail(at, "enables nothing: set workload_api or bundle_endpoints")
	}
	seen := map[string]int{}
	for i, w := range s.WorkloadAPI {
		wat := append(at, "workload_api", i)
		switch {
		case w.Address == "":
			fail(append(wat, "address"), spiffeEndpointSocketEnvAbsent)
		default:
			if err := workloadapi.ValidateAddress(w.Address); err != nil {
				fail(append(wat, "address"), "%v (want unix:///path/to/agent.sock or tcp://ip:port)", err)
			}
		}
		if j, dup := seen[w.Address]; dup && w.Address != "" {
			fail(append(wat, "address"), "%q is already watched by workload_api[%d]", w.Address, j)
		}
		seen[w.Address] = i
		if w.StaleAfter < 0 {
			fail(append(wat, "stale_after"), "must not be negative, got %s", time.Duration(w.StaleAfter))
		}
		if w.RotationFraction <= 0 || w.RotationFraction >= 1 {
			fail(append(wat, "rotation_fraction"), "want a fraction between 0 and 1, got %g", w.RotationFraction)
		}
		validateLabels(w.Labels, append(wat, "labels"), fail)
	}
	endpoints := map[string]int{}
	for i, b := range s.BundleEndpoints {
		bat := append(at, "bundle_endpoints", i)
		if _, err := spiffeid.TrustDomainFromString(b.TrustDomain); err != nil {
			fail(append(bat, "trust_domain"), "%v", err)
		}
		if u, err := url.Parse(b.URL); err != nil || u.Scheme != "https" || u.Host == "" {
			fail(append(bat, "url"), "want an https:// URL, got %q", b.URL)
		}
		key := b.TrustDomain + " " + b.URL
		if j, dup := endpoints[key]; dup {
			fail(append(bat, "url"), "%q for %s is already fetched by bundle_endpoints[%d]", b.URL, b.TrustDomain, j)
		}
		endpoints[key] = i
		switch b.Profile {
		case ProfileHTTPSSPIFFE:
			// The endpoint may serve an SVID of another trust domain than
			// the bundle's (SPIFFE allows it): only the form is checked.
			if _, err := spiffeid.FromString(b.EndpointSPIFFEID); err != nil {
				fail(append(bat, "endpoint_spiffe_id"), "https_spiffe needs the endpoint's SPIFFE ID: %v", err)
			}
			if b.BundleFile == "" {
				fail(append(bat, "bundle_file"), "https_spiffe needs a bootstrap bundle of the endpoint's trust domain")
			} else if _, err := LoadCAFile(b.BundleFile); err != nil {
				fail(append(bat, "bundle_file"), "%v", err)
			}
			if b.CAFile != "" {
				fail(append(bat, "ca_file"), "applies to https_web only")
			}
		case ProfileHTTPSWeb:
			if b.CAFile != "" {
				if _, err := LoadCAFile(b.CAFile); err != nil {
					fail(append(bat, "ca_file"), "%v", err)
				}
			}
			if b.EndpointSPIFFEID != "" || b.BundleFile != "" {
				fail(bat, "endpoint_spiffe_id and bundle_file apply to https_spiffe only")
			}
		default:
			fail(append(bat, "profile"), "want https_web or https_spiffe, got %q", b.Profile)
		}
		if r := time.Duration(b.RefreshInterval); r < MinBundleRefreshInterval || r > MaxBundleRefreshInterval {
			fail(append(bat, "refresh_interval"), "want between %s and %s, got %s", MinBundleRefreshInterval, MaxBundleRefreshInterval, r)
		}
		validateLabels(b.Labels, append(bat, "labels"), fail)
	}
}

// String names a bundle endpoint in logs.
func (b BundleEndpoint) String() string { return fmt.Sprintf("%s at %s", b.TrustDomain, b.URL) }
