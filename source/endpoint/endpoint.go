// Package endpoint is the source that connects to TLS endpoints (directly,
// through an HTTP CONNECT proxy, or after a STARTTLS exchange) and records the
// certificate chain they present, the TLS version and cipher, and how long
// the handshake took. It verifies nothing itself: that is the inspector's job.
package endpoint

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/source"
)

// Prober probes the endpoints of one configuration. A new Prober is built
// for every configuration that loads.
type Prober struct {
	logger    *slog.Logger
	modules   map[string]*module
	endpoints []configured
	sem       chan struct{} // bounds probes in flight, /metrics and /probe together

	mu      sync.Mutex
	calls   map[string]*call   // probes running, by module and target
	results *memo[probeResult] // by module and target, kept for min_probe_interval (bounded, see memo)
	// admitted holds the checked addresses of names /probe admitted, by
	// module and target, for the probe that follows (allow.go).
	admitted *memo[[]netip.Addr]
}

type configured struct {
	target string
	module string
	labels map[string]string
}

type module struct {
	name       string
	cfg        config.Module
	minVersion uint16
	verify     source.VerifyParams // the CA file's anchors and intermediates, or the system roots
	proxy      *url.URL
	clientCert *clientCertLoader
	access     access                       // probe_allow rules, resolver, dialer (allow.go)
	configured map[string]map[string]string // targets configured with this module and their labels, for /probe
}

// New compiles a configuration's modules and endpoints. Files the modules
// name were checked when the configuration loaded; if one has become
// unreadable since, the probes that need it report a config error.
func New(cfg *config.Config, logger *slog.Logger) *Prober {
	p := &Prober{
		logger:   logger,
		modules:  map[string]*module{},
		sem:      make(chan struct{}, cfg.Global.ProbeConcurrency),
		results:  newMemo[probeResult](maxRemembered),
		admitted: newMemo[[]netip.Addr](maxRemembered),
		calls:    map[string]*call{},
	}
	for name, mc := range cfg.Modules {
		m := &module{name: name, cfg: mc, minVersion: config.TLSVersions[mc.TLS.MinVersion],
			verify: source.VerifyParams{RootsID: "system"}, configured: map[string]map[string]string{}}
		if mc.TLS.CAFile != "" {
			if ca, err := source.LoadCAFile(mc.TLS.CAFile); err == nil {
				m.verify = ca.VerifyParams()
			} else {
				logger.Error("CA file unreadable; the module's chains will not verify", "module", name, "file", mc.TLS.CAFile, "err", err)
				m.verify = source.VerifyParams{Roots: x509.NewCertPool(), RootsID: "unreadable"}
			}
		}
		m.verify.Revocation = mc.Revocation
		if mc.ProxyURL != "" {
			m.proxy, _ = url.Parse(mc.ProxyURL) // validated at load
		}
		if mc.TLS.CertFile != "" {
			m.clientCert = &clientCertLoader{certFile: mc.TLS.CertFile, keyFile: mc.TLS.KeyFile}
		}
		m.access = newAccess(mc)
		p.modules[name] = m
	}
	for _, g := range cfg.Endpoints {
		for _, t := range g.Targets {
			p.modules[g.Module].configured[t] = g.Labels // /probe may reach it on any replica
			if cfg.Shard.Owns(source.KindEndpoint + "|" + t) {
				p.endpoints = append(p.endpoints, configured{target: t, module: g.Module, labels: g.Labels})
			}
		}
	}
	return p
}

// Targets returns how many endpoints are configured.
func (p *Prober) Targets() int { return len(p.endpoints) }

// CollectAll probes every configured endpoint concurrently, at most
// probe_concurrency at a time, and returns one finding per endpoint, in
// configuration order. It returns by ctx's deadline: probes still running
// then are reported as timeouts.
func (p *Prober) CollectAll(ctx context.Context) []source.Finding {
	findings := make([]source.Finding, len(p.endpoints))
	var wg sync.WaitGroup
	for i, e := range p.endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			findings[i] = p.probe(ctx, e.target, p.modules[e.module], e.labels, route{})
		}()
	}
	wg.Wait()
	return findings
}

// Probe probes one target with the named module, for /probe. Call Allowed
// first: Probe refuses nothing by rule, but it dials a name admitted by a
// probe_allow name rule only at the addresses Allowed checked (or, once
// those are stale, at addresses it checks again).
func (p *Prober) Probe(ctx context.Context, target, moduleName string) source.Finding {
	m := p.modules[moduleName]
	return p.probe(ctx, target, m, m.configured[target], p.routeFor(m, target))
}

func (p *Prober) probe(ctx context.Context, target string, m *module, labels map[string]string, rt route) source.Finding {
	f := source.Finding{Place: source.Place{Source: source.KindEndpoint, Target: target, Labels: labels}}
	host, _, _ := net.SplitHostPort(target)
	serverName := m.cfg.TLS.ServerName
	if serverName == "" {
		serverName = host
	}
	f.Verify = m.verify
	f.Verify.DNSName, f.Verify.ServerAuth = serverName, true

	key := m.name + "\x00" + target
	if r, ok := p.recent(key, m); ok {
		return r.fill(f)
	}
	c := p.join(ctx, key, target, serverName, m, rt)
	select {
	case <-c.done:
		return c.res.fill(f)
	case <-ctx.Done():
		p.leave(key, c)
		if !c.slot.Load() {
			f.Err = source.Errorf(source.ClassTimeout, "waiting for a free probe slot (global.probe_concurrency): %w", ctx.Err())
		} else {
			f.Err = source.Errorf(source.ClassTimeout, "the scrape deadline came before the probe finished: %w", ctx.Err())
		}
		return f
	}
}

// call is one probe shared by every scrape that asks for the same target
// while it runs (an HA pair, /probe beside /metrics). It is detached from
// any one scrape, bounded by the module's timeout, and cancelled when the
// last scrape waiting for it gives up.
type call struct {
	done    chan struct{}
	res     probeResult
	waiters int
	cancel  context.CancelFunc
	slot    atomic.Bool // set once the probe holds a probe slot
	// until is the latest deadline among the scrapes waiting (zero when one
	// has none): a probe that gets its slot after it has passed connects
	// for nobody. Guarded by Prober.mu.
	until time.Time
}

// wait records one more scrape waiting for c; p.mu must be held.
func (c *call) wait(ctx context.Context) {
	d, ok := ctx.Deadline()
	switch {
	case c.waiters == 0 || !ok:
		c.until = d // zero when ctx has no deadline
	case !c.until.IsZero() && d.After(c.until):
		c.until = d
	}
	c.waiters++
}

// wanted reports whether a scrape may still use c's result.
func (p *Prober) wanted(c *call) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return c.until.IsZero() || time.Now().Before(c.until)
}

func (p *Prober) join(ctx context.Context, key, target, serverName string, m *module, rt route) *call {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.calls[key]; ok {
		c.wait(ctx)
		return c
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(m.cfg.Timeout))
	c := &call{done: make(chan struct{}), cancel: cancel}
	c.wait(ctx)
	p.calls[key] = c
	go func() {
		c.res = p.run(pctx, target, serverName, m, rt, c)
		abandoned := errors.Is(pctx.Err(), context.Canceled) // every scrape gave up on it
		cancel()
		if c.res.err != nil && !abandoned {
			p.logFailure(target, m, c.res.err)
		}
		p.mu.Lock()
		if p.calls[key] == c { // not already dropped by leave
			delete(p.calls, key)
		}
		if m.cfg.MinProbeInterval > 0 && !abandoned {
			p.results.put(key, c.res, c.res.at.Add(time.Duration(m.cfg.MinProbeInterval)))
		}
		p.mu.Unlock()
		close(c.done)
	}()
	return c
}

// leave is called by a scrape that stops waiting for c. The last one to
// leave cancels the probe and takes it out of p.calls at once: a scrape that
// asks for the target a moment later starts a fresh probe instead of joining
// one that is only winding down and inheriting its cancellation as a timeout.
func (p *Prober) leave(key string, c *call) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.waiters--
	if c.waiters == 0 {
		c.cancel()
		if p.calls[key] == c {
			delete(p.calls, key)
		}
	}
}

// probeResult is what one probe of a target learned.
type probeResult struct {
	at    time.Time
	certs []*x509.Certificate
	tls   *source.TLSState
	err   error
}

// fill copies the result into a finding. Findings of one probe (joined
// scrapes, a remembered result) share its TLS state, the staple's bytes
// included: they are read, never written.
func (r probeResult) fill(f source.Finding) source.Finding {
	f.Certs, f.TLS, f.Err = r.certs, r.tls, r.err
	return f
}

// recent returns a result younger than the module's min_probe_interval.
func (p *Prober) recent(key string, m *module) (probeResult, bool) {
	if m.cfg.MinProbeInterval <= 0 {
		return probeResult{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.results.get(key)
}

// run waits for a probe slot and probes.
func (p *Prober) run(ctx context.Context, target, serverName string, m *module, rt route, c *call) probeResult {
	r := probeResult{at: time.Now()}
	select {
	case p.sem <- struct{}{}:
		defer func() { <-p.sem }()
		// Given up on while it waited, or about to be (every scrape waiting
		// is past its deadline and leaving): do not connect.
		if ctx.Err() != nil || !p.wanted(c) {
			r.err = source.Errorf(source.ClassTimeout, "waiting for a free probe slot: %w", context.DeadlineExceeded)
			return r
		}
		c.slot.Store(true)
	case <-ctx.Done():
		r.err = source.Errorf(source.ClassTimeout, "waiting for a free probe slot: %w", ctx.Err())
		return r
	}
	state, err := m.handshake(ctx, target, serverName, rt)
	if err != nil {
		r.err = err
		return r
	}
	r.certs, r.tls = state.certs, &state.tls
	r.tls.OCSPStaple = state.staple
	if state.stapleDropped > 0 {
		p.logger.Warn("Stapled OCSP response ignored: too large", "kind", source.KindEndpoint, "target", target,
			"module", m.name, "bytes", state.stapleDropped, "limit", maxStapleSize)
	}
	return r
}

func (p *Prober) logFailure(target string, m *module, err error) {
	p.logger.Warn("Probe failed", "kind", source.KindEndpoint, "target", target, "module", m.name,
		"class", source.ClassOf(err), "err", err)
}

type handshakeResult struct {
	certs  []*x509.Certificate
	tls    source.TLSState
	staple []byte
	// stapleDropped is the size of a staple over maxStapleSize, which is
	// not kept; 0 when none was dropped.
	stapleDropped int
}

// maxStapleSize bounds the stapled OCSP response kept from a handshake (a
// real one is a few KiB). The protocol already keeps it below: TLS 1.2
// sends it in a handshake message crypto/tls refuses over 64 KiB, TLS 1.3 in
// an extension with a 16-bit length. The bound stands on its own anyway, so
// that what a result may hold (remembered for min_probe_interval, for up to
// maxRemembered targets) does not rest on crypto/tls's internals.
const maxStapleSize = 64 << 10

// handshake connects, runs STARTTLS if the module asks for it, and completes
// a full TLS handshake (no session resumption: we need the whole chain).
func (m *module) handshake(ctx context.Context, target, serverName string, rt route) (*handshakeResult, error) {
	conn, err := m.dial(ctx, target, rt)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// Cancellation (scrape abandoned, exporter stopping) unblocks any read.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if m.cfg.StartTLS != "" {
		if err := startTLS(conn, m.cfg.StartTLS, serverName); err != nil {
			return nil, classifyPhase(err, source.ClassStartTLS, "starttls "+m.cfg.StartTLS)
		}
	}

	// The client asks for a stapled OCSP response without being told:
	// crypto/tls sends the status_request extension in every ClientHello
	// (clientHelloMsg.ocspStapling is set unconditionally in
	// handshake_client.go, and no Config field turns it off), and exposes
	// what the server staples as ConnectionState.OCSPResponse, for TLS 1.2
	// (CertificateStatus message) and TLS 1.3 (the leaf's Certificate entry)
	// alike.
	tlsConfig := &tls.Config{
		ServerName: serverName,
		// We record whatever the server presents and verify it ourselves, so
		// that an invalid chain is reported with its reason rather than as a
		// failed connection.
		InsecureSkipVerify:     true, //nolint:gosec // verification happens in the inspector
		MinVersion:             m.minVersion,
		CipherSuites:           allCipherSuites,
		SessionTicketsDisabled: true,
	}
	if isIP(serverName) {
		tlsConfig.ServerName = "" // SNI carries names only
	}
	if m.clientCert != nil {
		tlsConfig.GetClientCertificate = m.clientCert.get
	}
	tlsConn := tls.Client(conn, tlsConfig)
	start := time.Now()
	err = tlsConn.HandshakeContext(ctx)
	elapsed := time.Since(start)
	if err != nil {
		return nil, classifyPhase(err, source.ClassHandshake, "TLS handshake")
	}
	cs := tlsConn.ConnectionState()
	_ = tlsConn.Close()
	if len(cs.PeerCertificates) == 0 {
		return nil, source.Errorf(source.ClassHandshake, "TLS handshake: the server presented no certificate")
	}
	res := &handshakeResult{
		certs: cs.PeerCertificates,
		tls: source.TLSState{
			Version:           tls.VersionName(cs.Version),
			CipherSuite:       tls.CipherSuiteName(cs.CipherSuite),
			HandshakeDuration: elapsed,
			ServerName:        serverName,
		},
	}
	switch n := len(cs.OCSPResponse); {
	case n > maxStapleSize:
		res.stapleDropped = n
	case n > 0:
		// A copy: the connection's buffers are not ours to keep.
		res.staple = bytes.Clone(cs.OCSPResponse)
	}
	return res, nil
}

// allCipherSuites offers every suite Go implements, insecure ones included:
// certwatch sends no data, and an old server must still show its certificate.
var allCipherSuites = func() []uint16 {
	var ids []uint16
	for _, s := range tls.CipherSuites() {
		ids = append(ids, s.ID)
	}
	for _, s := range tls.InsecureCipherSuites() {
		ids = append(ids, s.ID)
	}
	return ids
}()

// classifyPhase classifies an error from a protocol phase: time-outs are
// timeouts wherever they happen; anything else is the phase's own class.
func classifyPhase(err error, class source.Class, phase string) error {
	if c := inferClass(err, ""); c == source.ClassTimeout {
		return source.Errorf(source.ClassTimeout, "%s: %w", phase, err)
	}
	if strings.Contains(err.Error(), "exceeds maximum") { // crypto/tls refuses handshake messages over 64 KiB (256 KiB for Certificate)
		return source.Errorf(source.ClassTooLarge, "%s: %w", phase, err)
	}
	return source.WithClass(class, fmt.Errorf("%s: %w", phase, err))
}

// inferClass is source.Infer with a cancelled context counted as a timeout:
// the caller stopped waiting (a scrape abandoned, the exporter stopping), as
// a deadline does. Without this a cancelled dial reads "refused" and a
// cancelled handshake "handshake", blaming the server.
func inferClass(err error, fallback source.Class) source.Class {
	if errors.Is(err, context.Canceled) {
		return source.ClassTimeout
	}
	return source.Infer(err, fallback)
}

func isIP(host string) bool { return net.ParseIP(strings.Trim(host, "[]")) != nil }

// clientCertLoader reads the module's client certificate from disk, again
// whenever the files change, so rotated mTLS credentials are picked up
// without a reload.
type clientCertLoader struct {
	certFile, keyFile string

	mu      sync.Mutex
	modTime time.Time
	cert    *tls.Certificate
}

func (l *clientCertLoader) get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var newest time.Time
	for _, f := range []string{l.certFile, l.keyFile} {
		if st, err := os.Stat(f); err == nil && st.ModTime().After(newest) {
			newest = st.ModTime()
		}
	}
	if l.cert != nil && newest.Equal(l.modTime) {
		return l.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(l.certFile, l.keyFile)
	if err != nil {
		return nil, source.Errorf(source.ClassConfig, "loading client certificate %s: %w", l.certFile, err)
	}
	l.cert, l.modTime = &cert, newest
	return l.cert, nil
}

// Name is the collector label of the endpoint source.
func (p *Prober) Name() string { return source.KindEndpoint }

// Scrape probes every configured endpoint (CollectAll).
func (p *Prober) Scrape(ctx context.Context) source.Result {
	return source.Result{Findings: p.CollectAll(ctx)}
}
