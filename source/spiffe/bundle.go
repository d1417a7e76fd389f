package spiffe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/source"
)

const (
	// maxBundleBytes caps a bundle endpoint's answer: a JWKS of a few
	// dozen authorities is tens of kilobytes.
	maxBundleBytes = 4 << 20
	fetchTimeout   = 30 * time.Second
	// retryAfterFailure is the longest wait before fetching again after a
	// failed fetch.
	retryAfterFailure = time.Minute
)

// fetcher polls one bundle endpoint in the background, at the bundle's
// refresh hint (bounded) or the configured interval.
type fetcher struct {
	cfg    config.BundleEndpoint
	logger *slog.Logger
	td     spiffeid.TrustDomain

	mu    sync.Mutex
	state fetchState

	cancel context.CancelFunc
	done   chan struct{}
}

// fetchState is what the fetcher knows: the last bundle fetched and when,
// and the last attempt's error (nil when it succeeded).
type fetchState struct {
	bundle    *spiffebundle.Bundle
	fetchedAt time.Time
	lastErr   error
	attempted bool
}

func newFetcher(cfg config.BundleEndpoint, logger *slog.Logger) *fetcher {
	td, _ := spiffeid.TrustDomainFromString(cfg.TrustDomain) // validated by config
	return &fetcher{cfg: cfg, td: td, done: make(chan struct{}),
		logger: logger.With("kind", source.KindSPIFFEBundle, "target", cfg.TrustDomain, "key", cfg.URL)}
}

func (f *fetcher) start() {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go f.run(ctx)
}

func (f *fetcher) stop() {
	f.cancel()
	<-f.done
}

func (f *fetcher) snapshot() fetchState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

func (f *fetcher) run(ctx context.Context) {
	defer close(f.done)
	var trusted []*x509.Certificate // https_spiffe: the bootstrap bundle, then the last fetched
	if f.cfg.Profile == config.ProfileHTTPSSPIFFE {
		ca, err := config.LoadCAFile(f.cfg.BundleFile)
		if err != nil {
			f.record(nil, source.WithClass(source.ClassConfig, fmt.Errorf("bootstrap bundle: %w", err)))
			return
		}
		trusted = append(append(trusted, ca.Anchors...), ca.Intermediates...)
	}
	for {
		fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
		b, err := f.fetch(fctx, trusted)
		cancel()
		if ctx.Err() != nil {
			return
		}
		f.record(b, err)
		wait := time.Duration(f.cfg.RefreshInterval)
		if err != nil {
			wait = min(wait, retryAfterFailure)
		} else {
			if hint, ok := b.RefreshHint(); ok && hint > 0 {
				wait = min(max(hint, config.MinBundleRefreshInterval), config.MaxBundleRefreshInterval)
			}
			if f.cfg.Profile == config.ProfileHTTPSSPIFFE && len(b.X509Authorities()) > 0 {
				trusted = b.X509Authorities()
			}
		}
		wait = wait*9/10 + rand.N(wait/10+1) // spread replicas' fetches
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (f *fetcher) record(b *spiffebundle.Bundle, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state.attempted = true
	f.state.lastErr = err
	if err == nil {
		f.state.bundle, f.state.fetchedAt = b, time.Now()
		f.logger.Debug("Bundle fetched", "authorities", len(b.X509Authorities()))
		return
	}
	f.logger.Warn("Fetching the bundle failed", "class", source.ClassOf(err), "err", err)
}

// fetch gets the bundle once. The endpoint is authenticated as the profile
// says; redirects are not followed and the answer is size-capped.
func (f *fetcher) fetch(ctx context.Context, trusted []*x509.Certificate) (*spiffebundle.Bundle, error) {
	var tlsConfig *tls.Config
	switch f.cfg.Profile {
	case config.ProfileHTTPSSPIFFE:
		id, err := spiffeid.FromString(f.cfg.EndpointSPIFFEID)
		if err != nil {
			return nil, source.WithClass(source.ClassConfig, err)
		}
		// The endpoint's SVID may be of another trust domain than the
		// bundle's; the bootstrap bundle authenticates it either way.
		set := x509bundle.NewSet(x509bundle.FromX509Authorities(id.TrustDomain(), trusted))
		tlsConfig = tlsconfig.TLSClientConfig(set, tlsconfig.AuthorizeID(id))
	default:
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if f.cfg.CAFile != "" {
			ca, err := config.LoadCAFile(f.cfg.CAFile)
			if err != nil {
				return nil, source.WithClass(source.ClassConfig, err)
			}
			tlsConfig.RootCAs = ca.VerifyParams().Roots
		}
	}
	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: tlsConfig, Proxy: http.ProxyFromEnvironment, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("the bundle endpoint redirects; redirects are not followed")
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.cfg.URL, http.NoBody)
	if err != nil {
		return nil, source.WithClass(source.ClassConfig, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, classifyFetch(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, source.Errorf(source.ClassUnknown, "bundle endpoint answered %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBundleBytes+1))
	if err != nil {
		return nil, classifyFetch(err)
	}
	if len(body) > maxBundleBytes {
		return nil, source.Errorf(source.ClassTooLarge, "bundle over %d bytes", maxBundleBytes)
	}
	b, err := spiffebundle.Parse(f.td, body)
	if err != nil {
		return nil, source.WithClass(source.ClassParse, err)
	}
	return b, nil
}

// classifyFetch names a failed fetch's class: a TLS failure is a handshake
// problem, the rest as the network said.
func classifyFetch(err error) error {
	var certErr *tls.CertificateVerificationError
	var alert tls.AlertError
	var recordErr tls.RecordHeaderError
	if errors.As(err, &certErr) || errors.As(err, &alert) || errors.As(err, &recordErr) {
		return source.WithClass(source.ClassHandshake, err)
	}
	return source.WithClass(source.Infer(err, source.ClassUnknown), err)
}
