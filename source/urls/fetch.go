package urls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/outbound"
	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/decode"
)

// retryAfterFailure is the longest wait before fetching a URL again after a
// failed fetch: a CA that was down for a minute should not leave its CRL
// reported as failing for a whole interval.
const retryAfterFailure = time.Minute

// fetchSpec is how one URL is fetched.
type fetchSpec struct {
	url      string
	interval time.Duration
	timeout  time.Duration
	tls      config.TLS
	// maxBytes caps every body, certificates and CRLs alike, at
	// global.revocation.max_crl_size: a CRL is what a URL can legitimately
	// make large.
	maxBytes int64
	rules    config.Fetch
	// maxCerts is global.max_certificates_per_place, which decides what a
	// body decodes to: a change reads every body again.
	maxCerts int
}

// newSpec is how the group g fetches u under the global settings
// (global.revocation's rules and size cap); settings left at zero (a configuration not built by
// the config package) take their defaults.
func newSpec(u string, g config.URLGroup, global config.Global) fetchSpec {
	rules := global.Revocation
	s := fetchSpec{url: u, interval: time.Duration(g.Interval), timeout: time.Duration(g.Timeout), tls: g.TLS,
		maxBytes: int64(rules.MaxCRLSize), rules: rules, maxCerts: global.MaxCertificatesPerPlace}
	if s.interval <= 0 {
		s.interval = time.Duration(config.DefaultURLInterval)
	}
	if s.timeout <= 0 {
		s.timeout = time.Duration(rules.Timeout)
		if s.timeout <= 0 {
			s.timeout = time.Duration(config.DefaultFetchTimeout)
		}
	}
	if s.maxBytes <= 0 {
		s.maxBytes = int64(config.DefaultMaxCRLSize)
	}
	return s
}

// key identifies the spec across reloads: a change of how the URL is
// fetched starts a new fetcher. The outbound rules are not part of it: a
// configured URL is trusted as written, so they do not change its fetch.
func (s fetchSpec) key() string {
	return joinKey(s.url, s.interval.String(), s.timeout.String(), s.tls.ServerName, s.tls.CAFile,
		s.tls.CertFile, s.tls.KeyFile, s.tls.MinVersion, strconv.FormatInt(s.maxBytes, 10), strconv.Itoa(s.maxCerts))
}

// fetcher fetches one URL in the background and keeps the last outcome.
type fetcher struct {
	spec     fetchSpec
	hostport string // the URL's host:port, the default port filled in
	pacer    *pacer
	logger   *slog.Logger

	mu    sync.Mutex
	state fetchState

	// decodes counts the bodies decoded, so tests can tell that a 304 was
	// not parsed again.
	decodes atomic.Int64

	cancel context.CancelFunc
	done   chan struct{}
}

// fetchState is what the fetcher knows about its URL.
type fetchState struct {
	attempted bool
	// entries are what the last good body decoded to; nil before one.
	entries []decode.Entry
	// etag and lastModified are the validators of the body entries came
	// from, sent to revalidate it.
	etag, lastModified string
	lastSuccess        time.Time
	lastErr            error // the last fetch's failure; nil when it succeeded
	errors             map[source.Class]float64
}

func newFetcher(spec fetchSpec, p *pacer, logger *slog.Logger) *fetcher {
	return &fetcher{spec: spec, hostport: outbound.HostPort(spec.url), pacer: p, done: make(chan struct{}),
		logger: logger.With("kind", source.KindURL, "target", spec.url)}
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

// snapshot returns a copy of the state that later fetches do not change.
func (f *fetcher) snapshot() fetchState {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.state
	st.errors = make(map[source.Class]float64, len(f.state.errors))
	for c, n := range f.state.errors {
		st.errors[c] = n
	}
	return st
}

func (f *fetcher) attempted() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.attempted
}

func (f *fetcher) run(ctx context.Context) {
	defer close(f.done)
	policy, policyErr := f.policy()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		err := policyErr
		if err == nil {
			err = f.fetch(ctx, policy)
		}
		if ctx.Err() != nil {
			return // stopped mid-fetch: nothing to report
		}
		if err != nil {
			f.fail(err)
		}
		wait := f.spec.interval
		if err != nil {
			wait = min(wait, retryAfterFailure)
		}
		timer.Reset(jitter(wait))
	}
}

// jitter spreads d by ±10 %, so that replicas and URLs of one group do not
// fetch in step.
func jitter(d time.Duration) time.Duration {
	spread := d / 10
	return d - spread + rand.N(2*spread+1)
}

// policy returns the outbound rules with the URL's own host:port trusted:
// the configuration names it, so it is fetched as written.
func (f *fetcher) policy() (*outbound.Policy, error) {
	p, err := outbound.NewPolicy(f.spec.rules)
	if err != nil {
		return nil, source.WithClass(source.ClassConfig, err)
	}
	if f.hostport == "" {
		return nil, source.Errorf(source.ClassConfig, "the URL does not parse")
	}
	p.Trust(f.hostport)
	return p, nil
}

// fetch fetches the URL once, revalidating what was last read, and records
// a success; it returns why the fetch failed otherwise.
func (f *fetcher) fetch(ctx context.Context, policy *outbound.Policy) error {
	tlsConfig, err := f.tlsConfig()
	if err != nil {
		return err
	}
	header := http.Header{}
	f.mu.Lock()
	if f.state.entries != nil {
		if f.state.etag != "" {
			header.Set("If-None-Match", f.state.etag)
		}
		if f.state.lastModified != "" {
			header.Set("If-Modified-Since", f.state.lastModified)
		}
	}
	f.mu.Unlock()
	release, err := f.pacer.wait(ctx, f.hostport)
	if err != nil {
		return err // stopped while waiting
	}
	defer release()
	// A client per fetch reads the TLS files afresh (a rotated client
	// certificate or CA file is used at the next fetch); fetches are
	// minutes apart, so a kept connection would be closed by then anyway.
	client := policy.Client(tlsConfig, f.spec.timeout)
	defer client.CloseIdleConnections()
	resp, err := client.Get(ctx, f.spec.url, header, f.spec.maxBytes)
	if err != nil {
		return classifyTLS(err)
	}
	if resp.Status == http.StatusNotModified {
		f.succeed(nil, "", "")
		return nil
	}
	f.decodes.Add(1)
	entries, err := decodeBody(resp.Body)
	if err != nil {
		return err
	}
	f.succeed(entries, resp.Header.Get("ETag"), resp.Header.Get("Last-Modified"))
	return nil
}

// decodeBody reads the certificates and CRLs of a body. A body holding
// neither is a parse failure; an entry that was only partly read keeps its
// error for its place.
func decodeBody(body []byte) ([]decode.Entry, error) {
	entries, err := decode.Decode(body, nil)
	var usable []decode.Entry
	for _, e := range entries {
		if len(e.Certs) > 0 || len(e.CRLs) > 0 || (e.Key != "" && e.Err != nil) {
			usable = append(usable, e)
		}
	}
	if len(usable) > 0 {
		return usable, nil
	}
	if err == nil {
		for _, e := range entries {
			if e.Err != nil {
				err = e.Err
				break
			}
		}
	}
	if err == nil || errors.Is(err, decode.ErrNoCertificates) {
		return nil, source.Errorf(source.ClassParse, "the body holds no certificate or CRL (raw PEM or DER is read, not JSON)")
	}
	return nil, source.WithClass(source.ClassParse, fmt.Errorf("decoding the body: %w", err))
}

// tlsConfig is the group's TLS settings, as a module's: server name, CA
// file (system roots when none), client certificate, least version.
func (f *fetcher) tlsConfig() (*tls.Config, error) {
	t := f.spec.tls
	version, ok := config.TLSVersions[t.MinVersion]
	if !ok {
		version = tls.VersionTLS12 // a group that sets none
	}
	cfg := &tls.Config{ServerName: t.ServerName, MinVersion: version}
	if t.CAFile != "" {
		ca, err := source.LoadCAFile(t.CAFile)
		if err != nil {
			return nil, source.WithClass(source.ClassConfig, fmt.Errorf("reading tls.ca_file %s: %w", t.CAFile, err))
		}
		pool := x509.NewCertPool()
		for _, c := range append(ca.Anchors, ca.Intermediates...) {
			pool.AddCert(c)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			// The error names the files, never their content.
			return nil, source.Errorf(source.ClassConfig, "loading the client certificate %s: %w", t.CertFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// classifyTLS gives a TLS failure the handshake class the outbound client
// leaves unknown; other errors keep their class.
func classifyTLS(err error) error {
	if source.ClassOf(err) != source.ClassUnknown {
		return err
	}
	var certErr *tls.CertificateVerificationError
	var alert tls.AlertError
	var recordErr tls.RecordHeaderError
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &alert) || errors.As(err, &recordErr) ||
		errors.As(err, &unknownAuthority) || errors.As(err, &hostname) {
		return &source.Error{Class: source.ClassHandshake, Err: err}
	}
	return err
}

// succeed records a good fetch: new entries and their validators, or, with
// entries nil, a 304 confirming the last ones.
func (f *fetcher) succeed(entries []decode.Entry, etag, lastModified string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	prev := f.state.lastErr
	f.state.attempted = true
	f.state.lastErr = nil
	f.state.lastSuccess = time.Now()
	if entries != nil {
		f.state.entries, f.state.etag, f.state.lastModified = entries, etag, lastModified
		f.logger.Debug("URL fetched", "entries", len(entries))
	} else {
		f.logger.Debug("URL unchanged")
	}
	if prev != nil {
		f.logger.Info("Fetching the URL works again", "after_class", source.ClassOf(prev))
	}
}

// fail records a failed fetch, keeping what was last read. It warns when
// the URL's state changes (it worked, or failed for another class), not at
// every retry.
func (f *fetcher) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	class := source.ClassOf(err)
	prev := f.state.lastErr
	f.state.attempted = true
	f.state.lastErr = err
	if f.state.errors == nil {
		f.state.errors = map[source.Class]float64{}
	}
	f.state.errors[class]++
	if prev != nil && source.ClassOf(prev) == class {
		f.logger.Debug("Fetching the URL still fails", "class", class, "err", err)
		return
	}
	f.logger.Warn("Fetching the URL failed", "class", class, "err", err, "keeps_last_content", f.state.entries != nil)
}
