package collector

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/source"
)

// Metric names and help texts. They are an API: dashboards, alerts and users
// depend on them; README.md documents each one.
const (
	nameCertNotAfter   = "certwatch_cert_not_after_timestamp_seconds"
	nameCertNotBefore  = "certwatch_cert_not_before_timestamp_seconds"
	nameCertInfo       = "certwatch_cert_info"
	nameChainValid     = "certwatch_chain_valid"
	nameChainNotAfter  = "certwatch_chain_not_after_timestamp_seconds"
	nameTargetSuccess  = "certwatch_target_success"
	nameTargetError    = "certwatch_target_error_info"
	nameTLSVersion     = "certwatch_tls_version_info"
	nameHandshake      = "certwatch_tls_handshake_duration_seconds"
	nameCollectorTime  = "certwatch_collector_duration_seconds"
	nameCollectorOK    = "certwatch_collector_success"
	helpCertNotAfter   = "Unix time after which the certificate is no longer valid."
	helpCertNotBefore  = "Unix time before which the certificate is not yet valid."
	helpCertInfo       = "Attributes of the certificate that change across renewals (value is always 1)."
	helpChainValid     = "Whether the chain at this place verified (1) or not (0); reason says why not, ok when valid."
	helpChainNotAfter  = "Earliest not-after of the chain the place relies on: the moment it breaks."
	helpTargetSuccess  = "Whether the target could be read or probed (1) or not (0)."
	helpTargetError    = "Why the target could not be read or probed (value is always 1, present only on failure)."
	helpTLSVersion     = "TLS version and cipher suite negotiated with the endpoint (value is always 1)."
	helpHandshake      = "Duration of the TLS handshake with the endpoint, in seconds."
	helpCollectorTime  = "Duration of the collector's part of this scrape, in seconds."
	helpCollectorOK    = "Whether the collector finished within the scrape (1) or failed or was cut short (0)."
	maxLabelValueBytes = inspect.MaxInfoBytes // the longest value a certificate puts in a label (cut by inspect.FactsOf)
)

var (
	targetLabels = []string{"source", "target"}
	placeLabels  = []string{"source", "target", "key"}
	certLabels   = []string{"source", "target", "key", "index", "role", "subject_cn", "issuer_cn"}
	infoLabels   = []string{"serial", "fingerprint_sha256", "subject", "issuer", "dns_names", "ip_addresses",
		"uris", "email_addresses", "key_algorithm", "key_bits", "signature_algorithm", "is_ca", "self_signed"}
)

// emitter writes the metrics of one scrape.
type emitter struct {
	e  *Exporter
	ch chan<- prometheus.Metric
	// snap gathers the scrape's snapshot; nil for /probe, whose places are
	// not the configured ones.
	snap *snapshotBuilder
	// leavesOnly is the exporter's setting, read once per scrape.
	leavesOnly bool

	// Per-scrape state of findings: label sets resolved once, and series
	// buffered until they can be sent sorted.
	noExtra *labelSet
	sets    map[unsafe.Pointer]*labelSet
	keySets map[string]*keySet
	pending [numMetrics][]pendingSeries
	// Slabs that label values and series are carved from.
	arena                                       []string
	seriesSlab                                  []series
	pairSlab                                    []dto.LabelPair
	pairPtrSlab                                 []*dto.LabelPair
	chunk, seriesChunk, pairChunk, pairPtrChunk int
}

// chainsOf returns what the inspector judges of each place.
func chainsOf(places []*source.Finding) []inspect.Chain {
	chains := make([]inspect.Chain, len(places))
	for i, f := range places {
		chains[i] = chainOf(f)
	}
	return chains
}

// chainOf is what the inspector judges of a place.
func chainOf(f *source.Finding) inspect.Chain {
	return inspect.Chain{Certs: f.Certs, KeyPublics: f.KeyPublics, Verify: f.Verify, Staple: f.Staple()}
}

func (e *Exporter) newEmitter(ch chan<- prometheus.Metric) *emitter {
	return &emitter{e: e, ch: ch, leavesOnly: e.leavesOnly.Load(), sets: map[unsafe.Pointer]*labelSet{}, keySets: map[string]*keySet{}}
}

func (em *emitter) gauge(name, help string, fixed []string, values []string, extra map[string]string, v float64) {
	names := fixed
	if len(extra) > 0 {
		keys := sortedKeys(extra)
		names = append(append(make([]string, 0, len(fixed)+len(keys)), fixed...), keys...)
		values = append(make([]string, 0, len(names)), values...)
		for _, k := range keys {
			values = append(values, extra[k])
		}
	}
	for i, v := range values {
		if !utf8.ValidString(v) { // names in a hostile certificate can be any bytes
			values[i] = strings.ToValidUTF8(v, "\uFFFD")
		}
	}
	m, err := prometheus.NewConstMetric(em.e.descs.get(name, help, names), prometheus.GaugeValue, v, values...)
	if err != nil {
		em.e.logger.Error("Dropping a series that cannot be built", "metric", name, "err", err)
		return
	}
	em.ch <- m
}

func (em *emitter) collectorStatus(name string, ok bool, took time.Duration) {
	em.gauge(nameCollectorTime, helpCollectorTime, []string{"collector"}, []string{name}, nil, took.Seconds())
	em.gauge(nameCollectorOK, helpCollectorOK, []string{"collector"}, []string{name}, nil, boolValue(ok))
}

// scrapeStatus emits the exporter's own metrics about one scrape: how each
// collector did, and each source's own health.
func (em *emitter) scrapeStatus(results []sourceResult) {
	for _, r := range results {
		em.collectorStatus(r.name, r.ok, r.took)
		for _, st := range r.Status {
			em.sample(st)
		}
	}
}

// sample emits one series of a source's own health.
func (em *emitter) sample(st source.Sample) {
	if len(st.LabelNames) != len(st.Values) {
		em.e.logger.Error("Dropping a status series with mismatched labels", "metric", st.Name)
		return
	}
	vt := prometheus.GaugeValue
	if st.Counter {
		vt = prometheus.CounterValue
	}
	values := make([]string, len(st.Values))
	for i, v := range st.Values {
		values[i] = validUTF8(v)
	}
	m, err := prometheus.NewConstMetric(em.e.descs.get(st.Name, st.Help, st.LabelNames), vt, st.Value, values...)
	if err != nil {
		em.e.logger.Error("Dropping a status series that cannot be built", "metric", st.Name, "err", err)
		return
	}
	em.ch <- m
}

// findings emits the metrics of every place. A target with several keys
// (keystore aliases, kubeconfig users) gets one success series, failed when
// any key failed.
//
// The series are buffered and sent family by family, each family in the
// order the registry sorts it into (label values in label-name order), then
// the registry's own sort finds them sorted and costs one comparison per
// series instead of n log n comparisons that chase pointers through every
// label pair. The answer is the same: the registry sorts regardless.
func (em *emitter) findings(findings []source.Finding) {
	type targetKey struct{ source, target string }
	type placeKey struct{ source, target, key string }
	type targetState struct {
		place source.Place
		err   error
	}
	var order []targetKey
	targets := map[targetKey]*targetState{}
	seen := map[placeKey]bool{}
	var places, crlOnly []*source.Finding
	for i := range findings {
		f := &findings[i]
		tk := targetKey{f.Source, f.Target}
		ts, ok := targets[tk]
		if !ok {
			ts = &targetState{place: f.Place}
			targets[tk] = ts
			order = append(order, tk)
		}
		if f.Err != nil && ts.err == nil {
			ts.err = f.Err
		}
		pk := placeKey{f.Source, f.Target, f.Key}
		if len(f.Certs) == 0 {
			em.snap.failed(f)
			if len(f.CRLs) > 0 && !seen[pk] {
				seen[pk] = true
				crlOnly = append(crlOnly, f)
			}
			continue
		}
		if seen[pk] {
			continue // a duplicate place would make the scrape invalid
		}
		seen[pk] = true
		places = append(places, f)
	}
	// Judged together: chains not judged before are verified on every core.
	chains := chainsOf(places)
	var samples []source.Sample
	for i, verdict := range em.e.inspector.JudgeAll(chains) {
		verdict = em.e.inspector.Revoke(chains[i], verdict)
		em.snap.judged(places[i], verdict)
		em.place(places[i], verdict)
		samples = placeSamples(samples, places[i], verdict)
	}
	for _, f := range crlOnly {
		samples = crlSamples(samples, f)
	}
	for _, s := range samples {
		em.sample(s)
	}
	for _, tk := range order {
		ts := targets[tk]
		ls := em.labelSet(ts.place.Labels)
		src, tgt := validUTF8(ts.place.Source), validUTF8(ts.place.Target)
		em.add(ls, metricTargetSuccess, em.strs(src, tgt), boolValue(ts.err == nil))
		if ts.err != nil {
			em.add(ls, metricTargetError, em.strs(src, tgt, validUTF8(string(source.ClassOf(ts.err)))), 1)
		}
	}
	em.flush()
}

func (em *emitter) place(f *source.Finding, verdict inspect.Verdict) {
	if !verdict.Valid() {
		em.e.logger.Debug("Chain not valid", "kind", f.Source, "target", f.Target, "key", f.Key,
			"reason", verdict.Reason, "detail", verdict.Detail)
	}
	ls := em.labelSet(f.Labels)
	src, tgt, key := validUTF8(f.Source), validUTF8(f.Target), validUTF8(f.Key)
	em.add(ls, metricChainValid, em.strs(src, tgt, key, validUTF8(string(verdict.Reason))), boolValue(verdict.Valid()))
	em.add(ls, metricChainNotAfter, em.strs(src, tgt, key), unixSeconds(verdict.ChainNotAfter))
	for i, c := range f.Certs {
		role := roleOf(verdict, i)
		if !certSeriesKept(em.leavesOnly, role) {
			continue
		}
		facts := inspect.FactsOf(c)
		cv := em.strs(src, tgt, key, strconv.Itoa(i), role, validUTF8(facts.SubjectCN), validUTF8(facts.IssuerCN))
		em.add(ls, metricCertNotAfter, cv, unixSeconds(facts.NotAfter))
		em.add(ls, metricCertNotBefore, cv, unixSeconds(facts.NotBefore))
		em.add(ls, metricCertInfo, appendInfoValues(em.alloc(len(metricDefs[metricCertInfo].labels))[:0], cv, &facts), 1)
	}
	if f.TLS != nil {
		em.add(ls, metricTLSVersion, em.strs(src, tgt, validUTF8(f.TLS.Version), validUTF8(f.TLS.CipherSuite)), 1)
		em.add(ls, metricHandshake, em.strs(src, tgt), f.TLS.HandshakeDuration.Seconds())
	}
}

// The metrics of places and targets, by index into metricDefs.
const (
	metricChainValid = iota
	metricChainNotAfter
	metricCertNotAfter
	metricCertNotBefore
	metricCertInfo
	metricTLSVersion
	metricHandshake
	metricTargetSuccess
	metricTargetError
	numMetrics
)

var metricDefs = [numMetrics]struct {
	name, help string
	labels     []string // before the extra labels
}{
	metricChainValid:    {nameChainValid, helpChainValid, append(placeLabels[:3:3], "reason")},
	metricChainNotAfter: {nameChainNotAfter, helpChainNotAfter, placeLabels},
	metricCertNotAfter:  {nameCertNotAfter, helpCertNotAfter, certLabels},
	metricCertNotBefore: {nameCertNotBefore, helpCertNotBefore, certLabels},
	metricCertInfo:      {nameCertInfo, helpCertInfo, append(certLabels[:len(certLabels):len(certLabels)], infoLabels...)},
	metricTLSVersion:    {nameTLSVersion, helpTLSVersion, append(targetLabels[:2:2], "version", "cipher")},
	metricHandshake:     {nameHandshake, helpHandshake, targetLabels},
	metricTargetSuccess: {nameTargetSuccess, helpTargetSuccess, targetLabels},
	metricTargetError:   {nameTargetError, helpTargetError, append(targetLabels[:2:2], "class")},
}

// labelSet is the extra labels of a place (the configuration's, or a
// Kubernetes object's), resolved once per scrape rather than per series.
type labelSet struct {
	values []string // UTF-8-valid, in the order of keys.names
	keys   *keySet
}

// keySet is a set of extra label names and the descriptors of every metric
// with them.
type keySet struct {
	names []string // sorted
	descs [numMetrics]*seriesDesc
}

// seriesDesc describes the series of one metric with one set of extra
// labels. Its labels are in name order, the order the registry wants label
// pairs in (it sorts them otherwise) and sorts series by.
type seriesDesc struct {
	desc   *prometheus.Desc
	err    error    // the descriptor is unusable (an extra label clashes); its series are dropped
	names  []string // label names, sorted
	byName []int    // byName[k] is the position, among the fixed values then the extra values, of names[k]
}

// pendingSeries is a series waiting for its family to be sorted and sent.
type pendingSeries struct {
	d      *seriesDesc
	values []string // in label-name order
	v      float64
}

func (em *emitter) labelSet(extra map[string]string) *labelSet {
	if len(extra) == 0 {
		if em.noExtra == nil {
			em.noExtra = &labelSet{keys: &keySet{}}
		}
		return em.noExtra
	}
	// Places of one group share one map: resolve it once.
	id := mapAddress(extra)
	if ls, ok := em.sets[id]; ok {
		return ls
	}
	ex := newExtraLabels(extra)
	ks, ok := em.keySets[ex.sig]
	if !ok {
		ks = &keySet{names: ex.names}
		em.keySets[ex.sig] = ks
	}
	ls := &labelSet{keys: ks, values: ex.values}
	em.sets[id] = ls
	return ls
}

// extraLabels is the extra labels of a place (the configuration's, or a
// Kubernetes object's): names sorted, values made UTF-8-valid, and the
// names joined as a key for what depends on them alone.
type extraLabels struct {
	names  []string
	sig    string
	values []string // in names order
}

func newExtraLabels(m map[string]string) *extraLabels {
	ex := &extraLabels{names: sortedKeys(m)}
	ex.sig = strings.Join(ex.names, "\x00")
	ex.values = make([]string, len(ex.names))
	for i, k := range ex.names {
		ex.values[i] = validUTF8(m[k])
	}
	return ex
}

// labelOrder is the order of a metric's labels with extra label names:
// sorted by name, the order client_golang writes and sorts them in.
// byName[k] is the position of names[k] among the fixed values, then the
// extra values.
func labelOrder(metric int, extra []string) (names []string, byName []int) {
	fixed := metricDefs[metric].labels
	declared := append(append(make([]string, 0, len(fixed)+len(extra)), fixed...), extra...)
	byName = make([]int, len(declared))
	for i := range byName {
		byName[i] = i
	}
	slices.SortStableFunc(byName, func(a, b int) int { return strings.Compare(declared[a], declared[b]) })
	names = make([]string, len(declared))
	for k, i := range byName {
		names[k] = declared[i]
	}
	return names, byName
}

func (em *emitter) desc(ks *keySet, metric int) *seriesDesc {
	if d := ks.descs[metric]; d != nil {
		return d
	}
	def := metricDefs[metric]
	d := &seriesDesc{}
	d.names, d.byName = labelOrder(metric, ks.names)
	d.desc = em.e.descs.get(def.name, def.help, d.names)
	// The descriptor's own error (a duplicate label name) is what
	// NewConstMetric would report for every series of it.
	if _, err := prometheus.NewConstMetric(d.desc, prometheus.GaugeValue, 0, make([]string, len(d.names))...); err != nil {
		d.err = err
	}
	ks.descs[metric] = d
	return d
}

// add buffers one gauge series. values are UTF-8-valid, in the order of the
// metric's fixed labels; the extra labels' values are added here.
func (em *emitter) add(ls *labelSet, metric int, values []string, v float64) {
	d := em.desc(ls.keys, metric)
	ordered := em.alloc(len(d.byName))
	for k, i := range d.byName {
		if i < len(values) {
			ordered[k] = values[i]
		} else {
			ordered[k] = ls.values[i-len(values)]
		}
	}
	em.pending[metric] = append(em.pending[metric], pendingSeries{d: d, values: ordered, v: v})
}

// flush sends every buffered series, each family sorted.
func (em *emitter) flush() {
	for metric := range em.pending {
		pending := em.pending[metric]
		slices.SortFunc(pending, compareSeries)
		for _, p := range pending {
			if p.d.err != nil {
				em.e.logger.Error("Dropping a series that cannot be built", "metric", metricDefs[metric].name, "err", p.d.err)
				continue
			}
			em.ch <- em.series(p)
		}
		clear(pending) // let the values go
		em.pending[metric] = pending[:0]
	}
}

// compareSeries orders series as the registry does (client_golang's
// internal.MetricSorter): fewer labels first, then label values compared
// one by one in label-name order.
func compareSeries(a, b pendingSeries) int {
	if len(a.values) != len(b.values) {
		return len(a.values) - len(b.values)
	}
	for k := range a.values {
		if c := strings.Compare(a.values[k], b.values[k]); c != 0 {
			return c
		}
	}
	return 0
}

// series is one gauge sample of a scrape. It writes what a const metric
// from prometheus.NewConstMetric writes (sorted label pairs, a gauge
// value), but its label pairs come from slabs carved per scrape instead of
// three allocations per label, and they are built in name order, so neither
// the constructor nor the registry sorts them.
type series struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	gauge  dto.Gauge
	value  float64
}

func (s *series) Desc() *prometheus.Desc { return s.desc }

func (s *series) Write(out *dto.Metric) error {
	out.Label = s.labels
	out.Gauge = &s.gauge
	return nil
}

func (em *emitter) series(p pendingSeries) prometheus.Metric {
	n := len(p.values)
	s := &carve(&em.seriesSlab, &em.seriesChunk, 1, 4096)[0]
	s.desc, s.value = p.d.desc, p.v
	s.gauge.Value = &s.value
	s.labels = carve(&em.pairPtrSlab, &em.pairPtrChunk, n, 1<<16)
	pairs := carve(&em.pairSlab, &em.pairChunk, n, 1<<16)
	for k := range p.values {
		pairs[k].Name, pairs[k].Value = &p.d.names[k], &p.values[k]
		s.labels[k] = &pairs[k]
	}
	return s
}

// strs returns a slice holding values, carved from a per-scrape arena so
// that a scrape does not allocate one small slice per series.
func (em *emitter) strs(values ...string) []string {
	out := em.alloc(len(values))
	copy(out, values)
	return out
}

func (em *emitter) alloc(n int) []string { return carve(&em.arena, &em.chunk, n, 1<<16) }

// carve takes n elements off a slab, allocating a new slab when it runs
// out. Slabs double from 64 elements up to maxChunk, so a /probe answer
// allocates little and a /metrics answer over many places few times.
func carve[T any](slab *[]T, chunk *int, n, maxChunk int) []T {
	if len(*slab) < n {
		*chunk = min(max(2**chunk, 64), maxChunk)
		*slab = make([]T, max(n, *chunk))
	}
	out := (*slab)[:n:n]
	*slab = (*slab)[n:]
	return out
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD") // names in a hostile certificate can be any bytes
}

func unixSeconds(t time.Time) float64 { return float64(t.Unix()) }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// appendInfoValues appends the values of a certificate's info series: its
// certLabels values, then the infoLabels ones.
func appendInfoValues(out, certValues []string, f *inspect.Facts) []string {
	out = append(out, certValues...)
	return append(out,
		validUTF8(f.Serial), validUTF8(f.FingerprintSHA256), validUTF8(f.Subject), validUTF8(f.Issuer),
		validUTF8(joinValues(f.DNSNames)), validUTF8(joinValues(f.IPAddresses)), validUTF8(joinValues(f.URIs)),
		validUTF8(joinValues(f.EmailAddresses)), validUTF8(f.KeyAlgorithm), strconv.Itoa(f.KeyBits),
		validUTF8(f.SignatureAlgorithm), strconv.FormatBool(f.IsCA), strconv.FormatBool(f.SelfSigned))
}

// joinValues joins a list fact with commas. inspect.FactsOf has bounded the
// result (inspect.MaxInfoBytes), as it has every string fact: both
// exposition paths write the same, already cut, values.
func joinValues(values []string) string { return strings.Join(values, ",") }

// certSeriesKept says whether a certificate with role gets per-certificate
// series: always, or with leavesOnly when it is a leaf or a trust anchor (a
// CA file or trust store has no leaf: its anchors are what it is for).
func certSeriesKept(leavesOnly bool, role string) bool {
	return !leavesOnly || role == string(inspect.RoleLeaf) || role == string(inspect.RoleAnchor)
}

// roleOf is the role label of a place's i-th certificate.
func roleOf(v inspect.Verdict, i int) string {
	if i < len(v.Roles) {
		return string(v.Roles[i])
	}
	return ""
}
