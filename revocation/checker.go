package revocation

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"io"
	"log/slog"
	"math/big"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/crl"
	"github.com/certwatch/certwatch/outbound"
	"github.com/certwatch/certwatch/source"
)

// The Checker asks OCSP responders and fetches CRLs in the background for
// the certificates the inspector looks up, and answers from what it holds.
//
// Freshness. An answer is refreshed at its next update, clamped to
// [MinRefresh, MaxRefresh] from the fetch (MinRefresh when it names none),
// and only if it is looked up again: certificates no longer seen cost
// nothing. An OCSP answer is given until the later of its refresh time and
// its next update (MaxRefresh after the fetch when it names none), then no
// longer, whatever the responder does. A CRL keeps answering after its next
// update: its finding carries the dates, so the place reports it stale.
//
// Failures. A failed fetch gives no answer (the last good one stays while
// it is valid) and never a revoked one. Each URL backs off after a failure:
// 30 s (or MinRefresh if shorter), doubling up to MinRefresh; while it
// backs off, the certificates naming it are not sent to it. An OCSP
// response already past its next update is a failure (stale). A URL logs
// one warning when it starts failing or fails with another class, and one
// line when it recovers, not one per retry.
//
// Bounds. Fetches in flight: Concurrency, of which at most two CRLs (each
// may hold MaxCRLSize while it is parsed). One request per host per
// HostInterval (0: no spacing). Per request: Timeout. Tracked URLs:
// MaxURLs; cached OCSP answers: MaxOCSPAnswers; beyond them new ones are
// not fetched until entries not looked up for 2×MaxRefresh are evicted.
// The queue holds at most MaxQueue fetches and each at most once: 10,000
// leaves of one issuer naming one CRL cost one fetch.

// Bounds of the Checker's memory.
const (
	MaxURLs        = 1000
	MaxOCSPAnswers = 100_000
	MaxQueue       = 20_000
	// maxURLsPerCert bounds the OCSP and CRL URLs tried per certificate.
	maxURLsPerCert = 3
	// maxOCSPResponse bounds an OCSP response read: real ones are a few KiB.
	maxOCSPResponse = 256 << 10
	// maxCRLFetches bounds the CRL fetches in flight within Concurrency:
	// each may hold up to MaxCRLSize of body while it is parsed.
	maxCRLFetches = 2
	// maxLabelBytes cuts URLs used as label values.
	maxLabelBytes = 1024
	// firstBackoff is the wait after a URL's first failure.
	firstBackoff = 30 * time.Second
)

// Checker fetches OCSP answers and CRLs in the background and answers
// Lookup from its cache. It is a Lookuper and a source.Collector.
type Checker struct {
	logger *slog.Logger
	wake   chan struct{} // a job was queued or finished

	mu       sync.RWMutex
	cfg      config.Fetch
	client   *outbound.Client
	ocsp     map[string]map[serialKey]*ocspEntry // issuer SPKI, serial
	nOCSP    int
	crls     map[string][]*crlEntry // URL; one entry per issuer (almost always one)
	nCRL     int
	stats    map[statKey]*urlStats
	hosts    map[string]*hostQueue
	queued   int
	inflight int
	crlsIn   int  // CRL fetches in flight
	full     bool // a bound refused an entry; logged once per episode
}

// serialKey is a certificate serial as a map key: its magnitude right-aligned
// (or, past 24 bytes, a hash of it) and its sign.
type serialKey struct {
	b      [24]byte
	neg    bool
	hashed bool
}

func serialKeyOf(s *big.Int) serialKey {
	var k serialKey
	if s == nil {
		return k
	}
	k.neg = s.Sign() < 0
	if (s.BitLen()+7)/8 <= len(k.b) {
		s.FillBytes(k.b[:])
		return k
	}
	h := sha256.Sum256(s.Bytes())
	copy(k.b[:], h[:])
	k.hashed = true
	return k
}

// ocspEntry is the OCSP answer about one certificate: only what a refresh
// needs (issuer, serial, URLs), not the certificate.
type ocspEntry struct {
	issuer *x509.Certificate
	serial *big.Int
	urls   []string

	answer    Answer
	has       bool
	refreshAt time.Time
	expiresAt time.Time
	retryAt   time.Time
	queued    bool
	lastUsed  atomic.Int64 // unix seconds of the last Lookup
}

// crlEntry is one CRL URL as one issuer's list.
type crlEntry struct {
	url       string
	issuer    *x509.Certificate
	issuerKey string

	list         *crl.List
	etag         string
	lastModified string
	fetchedAt    time.Time
	refreshAt    time.Time
	retryAt      time.Time
	queued       bool
	lastUsed     atomic.Int64
}

type statKey struct {
	method Method
	url    string
}

// urlStats is one URL's fetch history, for metrics, backoff and logs.
type urlStats struct {
	attempts    uint64
	lastOK      bool
	lastSuccess time.Time
	lastErr     error
	lastClass   source.Class
	failures    int // consecutive
	retryAt     time.Time
	errors      map[source.Class]uint64
	lastUsed    time.Time
}

// hostQueue is the fetches waiting for one host and when it may next be asked.
type hostQueue struct {
	next time.Time
	jobs []job
}

type job struct {
	host string
	ocsp *ocspEntry
	crl  *crlEntry
}

var (
	_ Lookuper         = (*Checker)(nil)
	_ source.Collector = (*Checker)(nil)
)

// NewChecker returns a Checker fetching under f. Zero fields of f take the
// configuration defaults, except HostInterval: 0 spaces requests not at all.
// A nil logger discards.
func NewChecker(f config.Fetch, logger *slog.Logger) (*Checker, error) {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Checker{
		logger: logger,
		wake:   make(chan struct{}, 1),
		ocsp:   map[string]map[serialKey]*ocspEntry{},
		crls:   map[string][]*crlEntry{},
		stats:  map[statKey]*urlStats{},
		hosts:  map[string]*hostQueue{},
	}
	if err := c.Update(f); err != nil {
		return nil, err
	}
	return c, nil
}

func withDefaults(f config.Fetch) config.Fetch {
	if f.Concurrency <= 0 {
		f.Concurrency = config.DefaultFetchConcurrency
	}
	if f.Timeout <= 0 {
		f.Timeout = config.DefaultFetchTimeout
	}
	if f.MaxCRLSize <= 0 {
		f.MaxCRLSize = config.DefaultMaxCRLSize
	}
	if f.MinRefresh <= 0 {
		f.MinRefresh = config.DefaultMinRefresh
	}
	if f.MaxRefresh <= 0 {
		f.MaxRefresh = config.DefaultMaxRefresh
	}
	if f.MaxRefresh < f.MinRefresh {
		f.MaxRefresh = f.MinRefresh
	}
	if f.HostInterval < 0 {
		f.HostInterval = 0
	}
	return f
}

// Update applies a reloaded configuration. The cache is kept: answers
// fetched under the old rules stay until their refresh.
func (c *Checker) Update(f config.Fetch) error {
	f = withDefaults(f)
	p, err := outbound.NewPolicy(f)
	if err != nil {
		return err
	}
	client := p.Client(nil, time.Duration(f.Timeout))
	c.mu.Lock()
	old := c.client
	c.cfg, c.client = f, client
	c.mu.Unlock()
	if old != nil {
		old.CloseIdleConnections()
	}
	c.signal()
	return nil
}

// Idle reports whether nothing is queued or being fetched: every answer the
// lookups so far asked for has come in, or failed and waits for its retry.
func (c *Checker) Idle() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.queued == 0 && c.inflight == 0
}

// Name is the collector label of the Checker's own series.
func (c *Checker) Name() string { return "revocation" }

func (c *Checker) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Lookup returns the answers held about cert, issued by issuer, for the
// methods asked, and queues what is missing or due for a refresh. It never
// waits on the network: a few map reads under a read lock.
func (c *Checker) Lookup(cert, issuer *x509.Certificate, wantOCSP, wantCRL bool) []Answer {
	if cert == nil || issuer == nil || cert.SerialNumber == nil {
		return nil
	}
	now := time.Now()
	sec := now.Unix()
	var out []Answer
	queueOCSP := false
	var queueCRL string

	c.mu.RLock()
	if wantOCSP && len(cert.OCSPServer) > 0 {
		e := c.ocsp[string(issuer.RawSubjectPublicKeyInfo)][serialKeyOf(cert.SerialNumber)]
		if e == nil {
			queueOCSP = true
		} else {
			touch(&e.lastUsed, sec)
			if e.has && now.Before(e.expiresAt) {
				out = append(make([]Answer, 0, 2), e.answer)
			}
			queueOCSP = !e.queued && !now.Before(e.refreshAt) && !now.Before(e.retryAt)
		}
	}
	if wantCRL {
		tried := 0
		for _, u := range cert.CRLDistributionPoints {
			if !isHTTP(u) {
				continue
			}
			if tried++; tried > maxURLsPerCert {
				break
			}
			e := c.findCRL(u, issuer)
			if e == nil {
				queueCRL = u
				break
			}
			touch(&e.lastUsed, sec)
			if !e.queued && !now.Before(e.refreshAt) && !now.Before(e.retryAt) {
				queueCRL = u
			}
			if e.list != nil {
				if out == nil {
					out = make([]Answer, 0, 1)
				}
				out = append(out, crlAnswer(e, cert.SerialNumber))
				break
			}
			if queueCRL != "" || e.queued || e.fetchedAt.IsZero() && e.retryAt.IsZero() {
				break // its first fetch is under way: wait for it
			}
			// This URL fails and has nothing: the next one may answer.
		}
	}
	c.mu.RUnlock()

	if queueOCSP || queueCRL != "" {
		c.enqueue(cert, issuer, queueOCSP, queueCRL, now)
	}
	return out
}

func touch(v *atomic.Int64, sec int64) {
	if v.Load() != sec {
		v.Store(sec)
	}
}

func isHTTP(u string) bool {
	return len(u) > 7 && strings.EqualFold(u[:7], "http://") || len(u) > 8 && strings.EqualFold(u[:8], "https://")
}

// findCRL returns the entry of url for issuer; c.mu is held.
func (c *Checker) findCRL(url string, issuer *x509.Certificate) *crlEntry {
	for _, e := range c.crls[url] {
		if e.issuerKey == string(issuer.RawSubjectPublicKeyInfo) {
			return e
		}
	}
	return nil
}

func crlAnswer(e *crlEntry, serial *big.Int) Answer {
	a := Answer{Method: MethodCRL, Status: StatusGood, Reason: ReasonNone, URL: e.url,
		ThisUpdate: e.list.CRL.ThisUpdate, NextUpdate: e.list.CRL.NextUpdate}
	if at, reason, revoked := e.list.Lookup(serial); revoked {
		a.Status, a.RevokedAt, a.Reason = StatusRevoked, at, Reason(reason)
	}
	return a
}

// enqueue creates the entries a Lookup missed and queues their fetches,
// within the bounds.
func (c *Checker) enqueue(cert, issuer *x509.Certificate, wantOCSP bool, crlURL string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	queued := false
	if wantOCSP {
		queued = c.enqueueOCSP(cert, issuer, now) || queued
	}
	if crlURL != "" {
		queued = c.enqueueCRL(crlURL, issuer, now) || queued
	}
	if queued {
		c.signal()
	}
}

func (c *Checker) enqueueOCSP(cert, issuer *x509.Certificate, now time.Time) bool {
	ik := string(issuer.RawSubjectPublicKeyInfo)
	sk := serialKeyOf(cert.SerialNumber)
	e := c.ocsp[ik][sk]
	if e == nil {
		var urls []string
		for _, u := range cert.OCSPServer {
			if isHTTP(u) && len(urls) < maxURLsPerCert {
				urls = append(urls, u)
			}
		}
		if len(urls) == 0 || !c.room(c.nOCSP < MaxOCSPAnswers, "cached OCSP answers", MaxOCSPAnswers) {
			return false
		}
		for _, u := range urls {
			if !c.track(MethodOCSP, u, now) {
				return false
			}
		}
		e = &ocspEntry{issuer: issuer, serial: new(big.Int).Set(cert.SerialNumber), urls: urls}
		e.lastUsed.Store(now.Unix())
		if c.ocsp[ik] == nil {
			c.ocsp[ik] = map[serialKey]*ocspEntry{}
		}
		c.ocsp[ik][sk] = e
		c.nOCSP++
	}
	if e.queued || now.Before(e.refreshAt) || now.Before(e.retryAt) {
		return false
	}
	return c.push(job{host: hostOf(e.urls[0]), ocsp: e}, func() { e.queued = true })
}

func (c *Checker) enqueueCRL(u string, issuer *x509.Certificate, now time.Time) bool {
	e := c.findCRL(u, issuer)
	if e == nil {
		if !c.track(MethodCRL, u, now) {
			return false
		}
		e = &crlEntry{url: u, issuer: issuer, issuerKey: string(issuer.RawSubjectPublicKeyInfo)}
		e.lastUsed.Store(now.Unix())
		c.crls[u] = append(c.crls[u], e)
		c.nCRL++
	}
	if e.queued || now.Before(e.refreshAt) || now.Before(e.retryAt) {
		return false
	}
	return c.push(job{host: hostOf(u), crl: e}, func() { e.queued = true })
}

// track makes sure url has its stats, within MaxURLs; c.mu is held.
func (c *Checker) track(m Method, u string, now time.Time) bool {
	k := statKey{m, u}
	if s, ok := c.stats[k]; ok {
		s.lastUsed = now
		return true
	}
	if !c.room(len(c.stats) < MaxURLs, "tracked URLs", MaxURLs) {
		return false
	}
	c.stats[k] = &urlStats{errors: map[source.Class]uint64{}, lastUsed: now}
	return true
}

// room reports ok, logging once when a bound starts refusing.
func (c *Checker) room(ok bool, what string, limit int) bool {
	if !ok && !c.full {
		c.full = true
		c.logger.Warn("revocation checks: bound reached, new certificates are not checked until idle entries are evicted", "bound", what, "limit", limit)
	}
	return ok
}

// push queues j unless the queue is full; c.mu is held.
func (c *Checker) push(j job, mark func()) bool {
	if c.queued >= MaxQueue {
		return false
	}
	h := c.hosts[j.host]
	if h == nil {
		h = &hostQueue{}
		c.hosts[j.host] = h
	}
	h.jobs = append(h.jobs, j)
	c.queued++
	mark()
	return true
}

// hostOf is the host requests to u are spaced by.
func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return strings.ToLower(p.Hostname())
}

// Run fetches in the background until ctx ends, and returns once every
// fetch it started has finished and its connections are closed. Call it
// once; Lookup only queues until it runs.
func (c *Checker) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		c.mu.RLock()
		client := c.client
		c.mu.RUnlock()
		client.CloseIdleConnections()
	}()
	lastSweep := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		c.mu.RLock()
		sweepEvery := min(time.Duration(c.cfg.MinRefresh), time.Minute)
		c.mu.RUnlock()
		if now.Sub(lastSweep) >= sweepEvery {
			c.sweep(now)
			lastSweep = now
		}
		j, wait, ok := c.next(now)
		if ok {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.do(ctx, j)
			}()
			continue
		}
		wait = min(wait, sweepEvery-now.Sub(lastSweep))
		timer.Reset(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-timer.C:
		}
	}
}

// next takes the next fetch whose host may be asked now, within the
// concurrency bound; otherwise it says how long to wait at most.
func (c *Checker) next(now time.Time) (job, time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	wait := time.Hour
	if c.inflight >= c.cfg.Concurrency {
		return job{}, wait, false
	}
	for _, h := range c.hosts {
		if len(h.jobs) == 0 {
			continue
		}
		if h.jobs[0].crl != nil && c.crlsIn >= maxCRLFetches {
			continue // a fetch ending wakes the dispatcher
		}
		if d := h.next.Sub(now); d > 0 {
			wait = min(wait, d)
			continue
		}
		j := h.jobs[0]
		h.jobs[0] = job{}
		h.jobs = h.jobs[1:]
		if len(h.jobs) == 0 {
			h.jobs = nil
		}
		h.next = now.Add(time.Duration(c.cfg.HostInterval))
		c.queued--
		c.inflight++
		if j.crl != nil {
			c.crlsIn++
		}
		return j, 0, true
	}
	return job{}, wait, false
}

// reserve waits for a slot to ask host, for the fallback URLs a job tries
// beyond the one it was dispatched for.
func (c *Checker) reserve(ctx context.Context, host string) error {
	c.mu.Lock()
	h := c.hosts[host]
	if h == nil {
		h = &hostQueue{}
		c.hosts[host] = h
	}
	now := time.Now()
	slot := h.next
	if slot.Before(now) {
		slot = now
	}
	h.next = slot.Add(time.Duration(c.cfg.HostInterval))
	c.mu.Unlock()
	if d := slot.Sub(now); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func (c *Checker) do(ctx context.Context, j job) {
	defer func() {
		c.mu.Lock()
		c.inflight--
		if j.ocsp != nil {
			j.ocsp.queued = false
		}
		if j.crl != nil {
			j.crl.queued = false
			c.crlsIn--
		}
		c.mu.Unlock()
		c.signal()
	}()
	c.mu.RLock()
	client, cfg := c.client, c.cfg
	c.mu.RUnlock()
	switch {
	case j.ocsp != nil:
		c.fetchOCSP(ctx, client, cfg, j.ocsp)
	case j.crl != nil:
		c.fetchCRL(ctx, client, cfg, j.crl)
	}
}

// refreshAt is when an answer fetched at now with next update next is
// refreshed: at next, clamped to [MinRefresh, MaxRefresh] after now;
// MinRefresh after now when it names none.
func refreshAt(cfg config.Fetch, now, next time.Time) time.Time {
	d := time.Duration(cfg.MinRefresh)
	if !next.IsZero() {
		d = min(max(next.Sub(now), time.Duration(cfg.MinRefresh)), time.Duration(cfg.MaxRefresh))
	}
	return now.Add(d)
}

// backoff is the wait after the n-th consecutive failure of a URL.
func backoff(cfg config.Fetch, n int) time.Duration {
	ceiling := time.Duration(cfg.MinRefresh)
	d := min(firstBackoff, ceiling)
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

// inBackoff reports until when url must not be asked; zero when it may.
func (c *Checker) inBackoff(m Method, u string, now time.Time) time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if s := c.stats[statKey{m, u}]; s != nil && now.Before(s.retryAt) {
		return s.retryAt
	}
	return time.Time{}
}

// recordSuccess notes a fetch of url that worked.
func (c *Checker) recordSuccess(m Method, u string, now time.Time) {
	c.mu.Lock()
	s := c.statsFor(m, u, now)
	recovered := s.attempts > 0 && !s.lastOK
	s.attempts++
	s.lastOK, s.lastSuccess, s.lastErr, s.lastClass, s.failures, s.retryAt = true, now, nil, "", 0, time.Time{}
	c.mu.Unlock()
	if recovered {
		c.logger.Info("revocation fetch recovered", "method", string(m), "url", u)
	}
}

// recordFailure notes a failed fetch of url and returns when it may be
// asked again. It logs when the URL starts failing or fails differently.
func (c *Checker) recordFailure(m Method, u string, err error, now time.Time) time.Time {
	class := source.ClassOf(err)
	c.mu.Lock()
	s := c.statsFor(m, u, now)
	changed := s.attempts == 0 || s.lastOK || s.lastClass != class
	s.attempts++
	s.errors[class]++
	s.failures++
	s.lastOK, s.lastErr, s.lastClass = false, err, class
	s.retryAt = now.Add(backoff(c.cfg, s.failures))
	retry := s.retryAt
	c.mu.Unlock()
	if changed {
		c.logger.Warn("revocation fetch failed", "method", string(m), "url", u, "class", string(class), "err", err)
	}
	return retry
}

// statsFor returns url's stats, made if a sweep dropped them; c.mu is held.
func (c *Checker) statsFor(m Method, u string, now time.Time) *urlStats {
	k := statKey{m, u}
	s := c.stats[k]
	if s == nil {
		s = &urlStats{errors: map[source.Class]uint64{}}
		c.stats[k] = s
	}
	s.lastUsed = now
	return s
}

// sweep evicts entries not looked up for 2×MaxRefresh, the stats of URLs
// no entry names any more, and idle hosts.
func (c *Checker) sweep(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	idle := 2 * time.Duration(c.cfg.MaxRefresh)
	cutoff := now.Add(-idle).Unix()
	named := map[statKey]bool{}
	for ik, m := range c.ocsp {
		for sk, e := range m {
			if !e.queued && e.lastUsed.Load() < cutoff {
				delete(m, sk)
				c.nOCSP--
				continue
			}
			for _, u := range e.urls {
				named[statKey{MethodOCSP, u}] = true
			}
		}
		if len(m) == 0 {
			delete(c.ocsp, ik)
		}
	}
	for u, es := range c.crls {
		kept := es[:0]
		for _, e := range es {
			if !e.queued && e.lastUsed.Load() < cutoff {
				c.nCRL--
				continue
			}
			kept = append(kept, e)
		}
		if len(kept) == 0 {
			delete(c.crls, u)
			continue
		}
		c.crls[u] = kept
		named[statKey{MethodCRL, u}] = true
	}
	for k, s := range c.stats {
		if !named[k] && now.Sub(s.lastUsed) > idle {
			delete(c.stats, k)
		}
	}
	for name, h := range c.hosts {
		if len(h.jobs) == 0 && now.After(h.next) {
			delete(c.hosts, name)
		}
	}
	if c.nOCSP < MaxOCSPAnswers && len(c.stats) < MaxURLs {
		c.full = false
	}
}

// Series names of the Checker's own health.
const (
	metricSuccess     = "certwatch_revocation_fetch_success"
	metricLastSuccess = "certwatch_revocation_fetch_last_success_timestamp_seconds"
	metricErrors      = "certwatch_revocation_fetch_errors_total"
)

const (
	helpSuccess = "Whether the last fetch from this OCSP responder or CRL distribution point (URLs taken from the certificates checked) " +
		"succeeded: 1 yes, 0 no. A failing URL gives no answer, never a revoked one; certificates keep their last answer while it is valid."
	helpLastSuccess = "Unix time of the last successful fetch from this OCSP responder or CRL distribution point; 0 if none has succeeded since certwatch started."
	helpErrors      = "Failed fetches from this OCSP responder or CRL distribution point, by error class (timeout, refused, denied by global.revocation rules, " +
		"http status, too_large, bad_signature, parse, ...). Retries back off, so the rate is bounded."
)

// Scrape reports, without waiting on the network, one finding per CRL URL
// fetched (its last good CRL, and the class of the last fetch when it
// failed) and the fetch health of every URL.
func (c *Checker) Scrape(ctx context.Context) source.Result {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var res source.Result
	for u, es := range c.crls {
		var best *crlEntry
		for _, e := range es {
			if best == nil || (e.list != nil && (best.list == nil || e.fetchedAt.After(best.fetchedAt))) {
				best = e
			}
		}
		s := c.stats[statKey{MethodCRL, u}]
		if s == nil || s.attempts == 0 {
			continue // queued, not fetched yet
		}
		f := source.Finding{Place: source.Place{Source: source.KindCRLDistributionPoint, Target: cut(u)}}
		if best.list != nil {
			f.CRLs = []source.CRL{best.list.CRL}
		}
		if !s.lastOK && s.lastErr != nil {
			f.Err = s.lastErr
		}
		res.Findings = append(res.Findings, f)
	}
	names := []string{"method", "url"}
	for k, s := range c.stats {
		if s.attempts == 0 {
			continue
		}
		values := []string{string(k.method), cut(k.url)}
		ok, last := 0.0, 0.0
		if s.lastOK {
			ok = 1
		}
		if !s.lastSuccess.IsZero() {
			last = float64(s.lastSuccess.UnixNano()) / 1e9
		}
		res.Status = append(res.Status,
			source.Sample{Name: metricSuccess, Help: helpSuccess, LabelNames: names, Values: values, Value: ok},
			source.Sample{Name: metricLastSuccess, Help: helpLastSuccess, LabelNames: names, Values: values, Value: last})
		for class, n := range s.errors {
			res.Status = append(res.Status, source.Sample{Name: metricErrors, Help: helpErrors, Counter: true,
				LabelNames: []string{"method", "url", "class"}, Values: []string{string(k.method), cut(k.url), string(class)}, Value: float64(n)})
		}
	}
	return res
}

// cut shortens a URL used as a label value to maxLabelBytes, at a rune
// boundary.
func cut(s string) string {
	if len(s) <= maxLabelBytes {
		return s
	}
	s = s[:maxLabelBytes]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
