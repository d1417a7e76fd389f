// Package spiffe is the SPIFFE source: the X.509 SVIDs and trust bundles a
// SPIRE agent (or any SPIFFE Workload API) gives certwatch, watched as a
// stream rather than polled, and the bundles of federated trust domains
// fetched from their bundle endpoints.
//
// SVIDs are places of kind spiffe_svid (target: the Workload API address,
// key: the SPIFFE ID, with "#hint" when the agent gave one), each judged
// against its own trust domain's bundle by the SVID rules. Bundles are
// places of kind spiffe_bundle (target: the trust domain, key: the address
// or URL it came from), judged as bundles of anchors. The source's own
// health (stream up, last update, errors, rotation due, bundle refresh)
// goes out as status samples.
package spiffe

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/source"
)

// Runner owns the watchers and fetchers across configuration reloads: a
// Workload API or bundle endpoint that stays in the configuration keeps its
// stream and what it received.
type Runner struct {
	logger *slog.Logger

	mu       sync.Mutex
	watchers map[string]*watcher
	fetchers map[string]*fetcher
}

// NewRunner returns a Runner with nothing running.
func NewRunner(logger *slog.Logger) *Runner {
	return &Runner{logger: logger, watchers: map[string]*watcher{}, fetchers: map[string]*fetcher{}}
}

// Apply starts what cfg adds, stops what it removes, and returns the source
// for cfg; nil when cfg has no spiffe section.
func (r *Runner) Apply(cfg *config.SPIFFE) *Source {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &Source{}
	keepW := map[string]bool{}
	if cfg != nil {
		for _, w := range cfg.WorkloadAPI {
			keepW[w.Address] = true
			wt := r.watchers[w.Address]
			if wt == nil {
				wt = newWatcher(w, r.logger)
				r.watchers[w.Address] = wt
				wt.start()
			}
			s.watchers = append(s.watchers, watched{cfg: w, w: wt})
		}
	}
	for addr, wt := range r.watchers {
		if !keepW[addr] {
			wt.stop()
			delete(r.watchers, addr)
		}
	}
	keepF := map[string]bool{}
	if cfg != nil {
		for _, b := range cfg.BundleEndpoints {
			key := fetcherKey(b)
			keepF[key] = true
			f := r.fetchers[key]
			if f == nil {
				f = newFetcher(b, r.logger)
				r.fetchers[key] = f
				f.start()
			}
			s.fetchers = append(s.fetchers, fetched{cfg: b, f: f})
		}
	}
	for key, f := range r.fetchers {
		if !keepF[key] {
			f.stop()
			delete(r.fetchers, key)
		}
	}
	if cfg == nil {
		return nil
	}
	return s
}

// Stop stops every watcher and fetcher.
func (r *Runner) Stop() { r.Apply(nil) }

// fetcherKey identifies a bundle endpoint across reloads: a change of how
// it is fetched starts a new fetcher.
func fetcherKey(b config.BundleEndpoint) string {
	return fmt.Sprintf("%s|%s|%s|%s|%s|%s|%s", b.TrustDomain, b.URL, b.Profile, b.EndpointSPIFFEID, b.BundleFile, b.CAFile, time.Duration(b.RefreshInterval))
}

// Source is the SPIFFE source of one configuration.
type Source struct {
	watchers []watched
	fetchers []fetched
}

type watched struct {
	cfg config.WorkloadAPI // this configuration's settings (labels may change on reload)
	w   *watcher
}

type fetched struct {
	cfg config.BundleEndpoint
	f   *fetcher
}

// Name is the collector label of the SPIFFE source.
func (s *Source) Name() string { return "spiffe" }

// Ready reports whether every Workload API and bundle endpoint has been
// tried once: answered, or failed with a reason to report.
func (s *Source) Ready() bool {
	for _, w := range s.watchers {
		if _, _, _, _, _, attempted := w.w.state(); !attempted {
			return false
		}
	}
	for _, f := range s.fetchers {
		if !f.f.snapshot().attempted {
			return false
		}
	}
	return true
}

// Metrics of the source's own health.
const (
	nameUp           = "certwatch_spiffe_workload_api_up"
	helpUp           = "Whether the X.509 context stream from the Workload API is established and has delivered a context (1) or not (0)."
	nameLastUpdate   = "certwatch_spiffe_workload_api_last_update_timestamp_seconds"
	helpLastUpdate   = "Unix time of the last X.509 context received from the Workload API."
	nameErrors       = "certwatch_spiffe_workload_api_errors_total"
	helpErrors       = "Failures of the X.509 context stream from the Workload API, by error class."
	nameRotationDue  = "certwatch_spiffe_svid_rotation_due_timestamp_seconds"
	helpRotationDue  = "Unix time by which the agent should have rotated the SVID: its not-before plus rotation_fraction of its lifetime."
	nameBundleUp     = "certwatch_spiffe_bundle_endpoint_up"
	helpBundleUp     = "Whether the last fetch of the trust domain's bundle from its bundle endpoint succeeded (1) or not (0)."
	nameBundleFetch  = "certwatch_spiffe_bundle_last_refresh_timestamp_seconds"
	helpBundleFetch  = "Unix time of the last successful fetch of the trust domain's bundle from its bundle endpoint."
	nameBundleHint   = "certwatch_spiffe_bundle_refresh_hint_seconds"
	helpBundleHint   = "The refresh hint of the bundle last fetched from the bundle endpoint (0 when it has none)."
	nameBundleSerial = "certwatch_spiffe_bundle_sequence_number"
	helpBundleSerial = "The sequence number of the bundle last fetched from the bundle endpoint."
)

// Scrape reports every SVID and bundle last received, and the health of
// every stream and bundle endpoint. It never waits on the network.
func (s *Source) Scrape(context.Context) source.Result {
	var res source.Result
	now := time.Now()
	for _, w := range s.watchers {
		s.scrapeWatcher(&res, w, now)
	}
	for _, f := range s.fetchers {
		s.scrapeFetcher(&res, f)
	}
	return res
}

func (s *Source) scrapeWatcher(res *source.Result, wd watched, now time.Time) {
	cfg := wd.cfg
	last, up, failedAt, lastErr, errs, _ := wd.w.state()
	target := cfg.Address
	res.Status = append(res.Status, gauge(nameUp, helpUp, cfg.Labels, boolValue(up), "target", target))
	classes := make([]string, 0, len(errs))
	for c := range errs {
		classes = append(classes, string(c))
	}
	sort.Strings(classes)
	for _, c := range classes {
		st := gauge(nameErrors, helpErrors, cfg.Labels, errs[source.Class(c)], "target", target, "class", c)
		st.Counter = true
		res.Status = append(res.Status, st)
	}
	if last == nil {
		err := lastErr
		if err == nil {
			err = source.Errorf(source.ClassTimeout, "connecting to the workload API: no X.509 context yet")
		}
		res.Findings = append(res.Findings, source.Finding{Place: place(source.KindSPIFFESVID, target, "", cfg.Labels), Err: err})
		return
	}
	res.Status = append(res.Status, gauge(nameLastUpdate, helpLastUpdate, cfg.Labels, float64(last.at.Unix()), "target", target))
	// Down for longer than stale_after: what was received is still
	// reported, marked stale, with why the stream fails.
	var stale error
	if !up && !failedAt.IsZero() && now.Sub(failedAt) > time.Duration(cfg.StaleAfter) {
		stale = source.Errorf(source.ClassStale, "no update from the workload API since %s (the stream failed at %s: %s: %v)",
			last.at.UTC().Format(time.RFC3339), failedAt.UTC().Format(time.RFC3339), source.ClassOf(lastErr), lastErr)
	}
	if len(last.svids) == 0 {
		// A context with no SVIDs: the agent has nothing for certwatch.
		res.Findings = append(res.Findings, source.Finding{Place: place(source.KindSPIFFESVID, target, "", cfg.Labels),
			Err: source.Errorf(source.ClassNoIdentity, "the workload API sent an X.509 context without SVIDs")})
	}
	seen := make(map[string]bool, len(last.svids))
	for _, v := range last.svids {
		key := v.id
		if v.hint != "" {
			key += "#" + v.hint
		}
		// Two SVIDs of one ID and hint would be one place: the first is
		// the one the Workload API says to use.
		if seen[key] {
			continue
		}
		seen[key] = true
		f := source.Finding{Place: place(source.KindSPIFFESVID, target, key, cfg.Labels), Certs: v.certs, Err: v.err,
			Verify: source.VerifyParams{Roots: v.pool, Anchors: v.bundle, RootsID: v.bundleID, SPIFFEID: v.id}}
		if v.keyPublic != nil {
			f.KeyPublics = []crypto.PublicKey{v.keyPublic}
		}
		if f.Err == nil {
			f.Err = stale
		}
		res.Findings = append(res.Findings, f)
		if len(v.certs) > 0 {
			leaf := v.certs[0]
			due := leaf.NotBefore.Add(time.Duration(cfg.RotationFraction * float64(leaf.NotAfter.Sub(leaf.NotBefore))))
			res.Status = append(res.Status, gauge(nameRotationDue, helpRotationDue, cfg.Labels, float64(due.Unix()), "target", target, "key", key))
		}
	}
	tds := make([]string, 0, len(last.bundles))
	byName := map[string][]*x509.Certificate{}
	for td, certs := range last.bundles {
		tds = append(tds, td.Name())
		byName[td.Name()] = certs
	}
	sort.Strings(tds)
	for _, td := range tds {
		f := source.Finding{Place: place(source.KindSPIFFEBundle, td, target, cfg.Labels), Certs: byName[td], Err: stale}
		if len(f.Certs) == 0 && f.Err == nil {
			f.Err = source.Errorf(source.ClassParse, "the bundle of %s holds no readable X.509 authority", td)
		}
		res.Findings = append(res.Findings, f)
	}
}

func (s *Source) scrapeFetcher(res *source.Result, fd fetched) {
	cfg := fd.cfg
	st := fd.f.snapshot()
	target, key := cfg.TrustDomain, cfg.URL
	res.Status = append(res.Status, gauge(nameBundleUp, helpBundleUp, cfg.Labels, boolValue(st.lastErr == nil && !st.fetchedAt.IsZero()), "target", target, "key", key))
	f := source.Finding{Place: place(source.KindSPIFFEBundle, target, key, cfg.Labels), Err: st.lastErr}
	if st.bundle != nil {
		f.Certs = st.bundle.X509Authorities()
		res.Status = append(res.Status,
			gauge(nameBundleFetch, helpBundleFetch, cfg.Labels, float64(st.fetchedAt.Unix()), "target", target, "key", key))
		hint, _ := st.bundle.RefreshHint()
		res.Status = append(res.Status, gauge(nameBundleHint, helpBundleHint, cfg.Labels, hint.Seconds(), "target", target, "key", key))
		if seq, ok := st.bundle.SequenceNumber(); ok {
			res.Status = append(res.Status, gauge(nameBundleSerial, helpBundleSerial, cfg.Labels, float64(seq), "target", target, "key", key))
		}
		if len(f.Certs) == 0 && f.Err == nil {
			f.Err = source.Errorf(source.ClassParse, "the bundle holds no X.509 authority")
		}
	} else if f.Err == nil {
		f.Err = source.Errorf(source.ClassTimeout, "no bundle fetched yet")
	}
	res.Findings = append(res.Findings, f)
}

func place(kind, target, key string, labels map[string]string) source.Place {
	return source.Place{Source: kind, Target: target, Key: key, Labels: labels}
}

// gauge is a health sample with the given label pairs, then the extra
// labels of its configuration entry, so alerts on it route like the
// entry's places.
func gauge(name, help string, extra map[string]string, v float64, labels ...string) source.Sample {
	st := source.Sample{Name: name, Help: help, Value: v}
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

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func poolOf(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// bundleID identifies a bundle's content for the inspector's verdict cache.
func bundleID(certs []*x509.Certificate) string {
	h := sha256.New()
	for _, c := range certs {
		sum := sha256.Sum256(c.Raw)
		h.Write(sum[:])
	}
	return "spiffe:" + strconv.Itoa(len(certs)) + ":" + hex.EncodeToString(h.Sum(nil)[:16])
}
