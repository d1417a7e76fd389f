// Package urls is the source of certificates, bundles and CRLs published
// over HTTP(S) at URLs the configuration lists: a CA's chain and CRL as
// HashiCorp Vault's PKI engine serves them (/v1/<mount>/ca_chain,
// /v1/<mount>/issuer/<ref>/pem, /v1/<mount>/crl/pem, /v1/<mount>/crl), a
// step-ca's /roots.pem, a public CA's CRL distribution point.
//
// Each URL is fetched in the background, every interval of its group and
// revalidated with If-None-Match and If-Modified-Since, through the outbound
// package's client: a URL the configuration names is trusted as written
// (loopback included), a redirect is followed only to the same host, and
// every body is capped at global.revocation.max_crl_size. Bodies are raw PEM
// or DER, decoded as the files source decodes (certificates, keystores and
// X509 CRL blocks); a JSON answer (Vault's /v1/<mount>/issuer/<ref> without
// /pem) is not read. A scrape never waits on the network: it reports what
// the last fetches left.
//
// Each URL is a place of kind url (target: the URL as configured). A fetch
// that fails after a good one keeps the certificates and CRLs last read and
// reports why it failed, so the certificates stay watched while
// certwatch_target_success says the URL is failing.
package urls

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/source"
)

// Runner owns the fetchers across configuration reloads: a URL that stays
// in the configuration, fetched the same way, keeps its fetcher and what it
// last read.
type Runner struct {
	logger *slog.Logger

	mu       sync.Mutex
	fetchers map[string]*fetcher // by fetchSpec.key()
	pacer    *pacer              // shared by every fetcher
}

// NewRunner returns a Runner with nothing running.
func NewRunner(logger *slog.Logger) *Runner {
	return &Runner{logger: logger, fetchers: map[string]*fetcher{}, pacer: newPacer()}
}

// Apply starts fetching the URLs cfg adds (those of cfg.Shard), stops those
// it removes, and returns the source of cfg; nil when cfg lists no URL
// group.
func (r *Runner) Apply(cfg *config.Config) *Source {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := map[string]bool{}
	// A URL fetched another way after the reload (a new interval or TLS
	// setting) starts from what its previous fetcher read.
	previous := map[string]*fetcher{}
	for _, f := range r.fetchers {
		previous[f.spec.url] = f
	}
	var s *Source
	if cfg != nil && len(cfg.URLs) > 0 {
		r.pacer.set(cfg.Global.Revocation.Concurrency, time.Duration(cfg.Global.Revocation.HostInterval))
		s = &Source{}
		for _, g := range cfg.URLs {
			verify := source.VerifyParams{RootsID: "system"}
			var verifyErr error
			if g.CAFile != "" {
				ca, err := source.LoadCAFile(g.CAFile)
				if err != nil {
					verifyErr = source.WithClass(source.ClassConfig, fmt.Errorf("reading ca_file %s: %w", g.CAFile, err))
				} else {
					verify = ca.VerifyParams()
				}
			}
			verify.Revocation = g.Revocation
			for _, u := range g.URLs {
				if !cfg.Shard.Owns(source.KindURL + "|" + u) {
					continue
				}
				spec := newSpec(u, g, cfg.Global)
				key := spec.key()
				keep[key] = true
				f := r.fetchers[key]
				if f == nil {
					f = newFetcher(spec, r.pacer, r.logger)
					if old := previous[u]; old != nil {
						// The first fetch under the new settings reads
						// the whole body again rather than revalidating.
						f.state = old.snapshot()
						f.state.etag, f.state.lastModified = "", ""
					}
					r.fetchers[key] = f
					f.start()
				}
				s.urls = append(s.urls, watched{url: u, labels: g.Labels, verify: verify, verifyErr: verifyErr, f: f})
			}
		}
	}
	for key, f := range r.fetchers {
		if !keep[key] {
			f.stop()
			delete(r.fetchers, key)
		}
	}
	return s
}

// Stop stops every fetcher and waits for them.
func (r *Runner) Stop() { r.Apply(nil) }

// Source is the urls source of one configuration.
type Source struct {
	urls []watched
}

// watched is one URL with this configuration's settings of its group
// (labels and verification may change on reload without a new fetcher).
type watched struct {
	url       string
	labels    map[string]string
	verify    source.VerifyParams
	verifyErr error // the group's ca_file could not be read
	f         *fetcher
}

// Name is the collector label of the urls source.
func (s *Source) Name() string { return source.KindURL }

// Ready reports whether every URL has had a first outcome: an answer, or a
// failure with a reason to report.
func (s *Source) Ready() bool {
	for _, w := range s.urls {
		if !w.f.attempted() {
			return false
		}
	}
	return true
}

// Metrics of the source's own health.
const (
	nameLastSuccess = "certwatch_url_last_success_timestamp_seconds"
	helpLastSuccess = "Unix time of the last fetch of the URL that succeeded: a 200 whose body decoded, or a 304 confirming what was last read."
	nameErrors      = "certwatch_url_fetch_errors_total"
	helpErrors      = "Failed fetches of the URL, by error class; a body that does not decode counts too (class parse, or too_large past max_certificates_per_place)."
)

// Scrape reports what the last fetch of each URL left, and each URL's
// fetch health. It never waits on the network.
func (s *Source) Scrape(context.Context) source.Result {
	var res source.Result
	for _, w := range s.urls {
		s.scrapeURL(&res, w)
	}
	return res
}

func (s *Source) scrapeURL(res *source.Result, w watched) {
	st := w.f.snapshot()
	if !st.lastSuccess.IsZero() {
		res.Status = append(res.Status, sample(nameLastSuccess, helpLastSuccess, false, w.labels,
			float64(st.lastSuccess.Unix()), "target", w.url))
	}
	classes := make([]string, 0, len(st.errors))
	for c := range st.errors {
		classes = append(classes, string(c))
	}
	sort.Strings(classes)
	for _, c := range classes {
		res.Status = append(res.Status, sample(nameErrors, helpErrors, true, w.labels,
			st.errors[source.Class(c)], "target", w.url, "class", c))
	}
	place := source.Place{Source: source.KindURL, Target: w.url, Labels: w.labels}
	if st.entries == nil {
		err := st.lastErr
		if err == nil {
			err = source.Errorf(source.ClassTimeout, "not fetched yet")
		}
		res.Findings = append(res.Findings, source.Finding{Place: place, Verify: w.verify, Err: err})
		return
	}
	for _, e := range st.entries {
		f := source.Finding{Place: place, Certs: e.Certs, KeyPublics: e.KeyPublics, CRLs: e.CRLs, Verify: w.verify}
		if len(st.entries) > 1 {
			f.Key = e.Key
		}
		// What failed last says most: the fetch, then the group's CA
		// file, then a part of the body that did not decode.
		switch {
		case st.lastErr != nil:
			f.Err = st.lastErr
		case w.verifyErr != nil:
			f.Err = w.verifyErr
		default:
			f.Err = e.Err
		}
		res.Findings = append(res.Findings, f)
	}
}

// sample is a health series with the given label pairs, then the extra
// labels of the URL's group, so that alerts on it route like its places.
func sample(name, help string, counter bool, extra map[string]string, v float64, labels ...string) source.Sample {
	st := source.Sample{Name: name, Help: help, Counter: counter, Value: v}
	for i := 0; i+1 < len(labels); i += 2 {
		st.LabelNames = append(st.LabelNames, labels[i])
		st.Values = append(st.Values, labels[i+1])
	}
	names := make([]string, 0, len(extra))
	for k := range extra {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		st.LabelNames = append(st.LabelNames, k)
		st.Values = append(st.Values, extra[k])
	}
	return st
}

// joinKey builds a map key of fields that may hold any character.
func joinKey(fields ...string) string {
	return strings.Join(fields, "\x00")
}
