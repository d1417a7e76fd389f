// Package collector turns what the sources found and what the inspector
// judged into Prometheus metrics. Every scrape reports exactly the places
// found now, and a place that disappears takes its series with it. Series
// are built at scrape time: as const metrics through the registry for
// protobuf and /probe (emit.go), and in the text formats from a cache of
// each unchanged place's rendered series (render.go).
package collector

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/source"
)

// Sources are the sources of one configuration, in the order their
// series are written.
type Sources struct {
	Collectors []source.Collector
	// Prober answers /probe; nil refuses every probe.
	Prober source.Prober

	// last holds each source's last complete result with these sources,
	// served when the source misses a scrape's deadline.
	last lastResults
}

// lastResults remembers each source's last complete result, by name.
type lastResults struct {
	mu sync.Mutex
	m  map[string]sourceResult
}

func (l *lastResults) put(r sourceResult) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]sourceResult{}
	}
	l.m[r.name] = r
}

func (l *lastResults) get(name string) (sourceResult, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.m[name]
	return r, ok
}

// Exporter serves /metrics and /probe from the current sources.
type Exporter struct {
	logger        *slog.Logger
	inspector     *inspect.Inspector
	sources       atomic.Pointer[Sources]
	snapshot      atomic.Pointer[Snapshot]
	timeoutOffset time.Duration
	descs         descCache
	places        *placeCache
	// leavesOnly limits per-certificate series to leaves and anchors
	// (SetCertificateSeries).
	leavesOnly atomic.Bool
}

// New returns an Exporter; call Update before serving. timeoutOffset is
// subtracted from Prometheus' scrape timeout to leave time to answer.
func New(logger *slog.Logger, inspector *inspect.Inspector, timeoutOffset time.Duration) *Exporter {
	return &Exporter{logger: logger, inspector: inspector, timeoutOffset: timeoutOffset, places: newPlaceCache()}
}

// Update switches to the sources of a new configuration.
func (e *Exporter) Update(s *Sources) { e.sources.Store(s) }

// The values SetCertificateSeries takes, as global.certificate_series
// spells them.
const (
	CertificateSeriesAll    = "all"
	CertificateSeriesLeaves = "leaves"
)

// SetCertificateSeries chooses which certificates of a place get the
// per-certificate series (not-after, not-before, info): every one
// (CertificateSeriesAll), or leaves and trust anchors only
// (CertificateSeriesLeaves), which cuts a leaf-and-intermediate file from
// 9 series to 6. Intermediates and roots are judged either way, and count in
// the chain series and the revocation series. It takes effect at the next
// scrape. Any other value is logged and read as all.
func (e *Exporter) SetCertificateSeries(mode string) {
	switch mode {
	case CertificateSeriesAll, CertificateSeriesLeaves:
	default:
		e.logger.Error("Unknown certificate_series; reporting every certificate", "certificate_series", mode)
	}
	e.leavesOnly.Store(mode == CertificateSeriesLeaves)
}

// scrapeContext bounds a scrape by Prometheus' X-Prometheus-Scrape-Timeout-Seconds
// header, less the offset, so that late probes become timeouts in an answer
// that arrives in time rather than a scrape that fails as a whole.
func (e *Exporter) scrapeContext(r *http.Request) (context.Context, context.CancelFunc) {
	if v := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil && secs > 0 {
			timeout := time.Duration(secs*float64(time.Second)) - e.timeoutOffset
			if timeout < 100*time.Millisecond {
				timeout = 100 * time.Millisecond
			}
			return context.WithTimeout(r.Context(), timeout)
		}
	}
	return context.WithCancel(r.Context())
}

// MetricsHandler serves every configured place, plus the process-wide
// metrics in static. The text formats write places from the rendered-place
// cache (render.go); protobuf goes through the registry.
func (e *Exporter) MetricsHandler(static prometheus.Gatherer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := e.scrapeContext(r)
		defer cancel()
		sources := e.sources.Load()
		format := expfmt.NegotiateIncludingOpenMetrics(r.Header)
		if t := format.FormatType(); t != expfmt.TypeTextPlain && t != expfmt.TypeOpenMetrics {
			reg := prometheus.NewRegistry()
			reg.MustRegister(&scrape{e: e, ctx: ctx, sources: sources})
			e.serve(w, r, prometheus.Gatherers{static, reg})
			return
		}
		at := time.Now()
		results := e.runSources(ctx, sources)
		p := e.places.begin(e)
		p.snap = &snapshotBuilder{}
		for _, res := range results {
			p.findings(res.Findings)
		}
		places := p.finish()
		p.snap.publish(e, at, results)
		reg := prometheus.NewRegistry()
		reg.MustRegister(&scrapeStatus{e: e, results: results, samples: p.samples})
		families, err := prometheus.Gatherers{static, reg}.Gather()
		if err != nil { // as promhttp.ContinueOnError: serve what was gathered
			e.logger.Error("Error gathering metrics", "err", err)
		}
		e.writeText(w, r, format, families, places)
	})
}

// writeText answers in a text format: the registry's families through
// expfmt's encoder, then the places.
func (e *Exporter) writeText(w http.ResponseWriter, r *http.Request, format expfmt.Format, families []*dto.MetricFamily, places []placeSnapshot) {
	w.Header().Set("Content-Type", string(format))
	var out io.Writer = w
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzipWriters.Get().(*gzip.Writer)
		gz.Reset(w)
		defer func() {
			_ = gz.Close()
			gzipWriters.Put(gz)
		}()
		out = gz
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	enc := expfmt.NewEncoder(bw, format)
	fail := func(err error) { e.logger.Error("Error writing the metrics answer", "err", err) }
	for _, mf := range families {
		if err := enc.Encode(mf); err != nil {
			fail(err)
			return
		}
	}
	if err := writePlaces(bw, places, format.FormatType() == expfmt.TypeOpenMetrics); err != nil {
		fail(err)
		return
	}
	if closer, ok := enc.(expfmt.Closer); ok { // OpenMetrics ends with "# EOF"
		if err := closer.Close(); err != nil {
			fail(err)
			return
		}
	}
	if err := bw.Flush(); err != nil {
		fail(err)
	}
}

// gzipWriters compress at klauspost/compress's fastest level: on a 26 MB
// answer of 10,000 files it takes 23 ms and gives 1.6 MB, where
// compress/gzip's default level (promhttp's) takes 128 ms for 1.1 MB. The
// answer is for a scraper on the network, not for storage.
var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

// acceptsGzip reads an Accept-Encoding header: gzip listed, and not with q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// ProbeHandler serves /probe?target=host:port&module=name: the same metrics
// for one endpoint, so Prometheus service discovery can drive probing.
func (e *Exporter) ProbeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.URL.Query().Get("target")
		moduleName := r.URL.Query().Get("module")
		if moduleName == "" {
			moduleName = "default"
		}
		if target == "" {
			http.Error(w, "the target parameter is missing", http.StatusBadRequest)
			return
		}
		s := e.sources.Load()
		ctx, cancel := e.scrapeContext(r)
		defer cancel()
		// The admission check may resolve the name: it shares the scrape's
		// deadline, and ends when the caller hangs up. A refusal is the
		// caller's mistake, not the exporter's: logged at debug level, so
		// that anyone who can reach the port cannot fill the log.
		if s == nil || s.Prober == nil {
			http.Error(w, "no source answers /probe", http.StatusNotFound)
			return
		}
		if err := s.Prober.AllowedContext(ctx, target, moduleName); err != nil {
			e.logger.Debug("Probe refused", "target", target, "module", moduleName, "err", err)
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(&probe{e: e, ctx: ctx, prober: s.Prober, target: target, module: moduleName})
		e.serve(w, r, reg)
	})
}

func (e *Exporter) serve(w http.ResponseWriter, r *http.Request, g prometheus.Gatherer) {
	promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(e.logger.Handler(), slog.LevelError),
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	}).ServeHTTP(w, r)
}

// scrape is the collector of one /metrics request.
type scrape struct {
	e       *Exporter
	ctx     context.Context
	sources *Sources
}

func (s *scrape) Describe(chan<- *prometheus.Desc) {} // unchecked: label sets follow the configuration

func (s *scrape) Collect(ch chan<- prometheus.Metric) {
	at := time.Now()
	results := s.e.runSources(s.ctx, s.sources)
	em := s.e.newEmitter(ch)
	em.snap = &snapshotBuilder{}
	for _, r := range results {
		em.findings(r.Findings)
	}
	em.snap.publish(s.e, at, results)
	em.scrapeStatus(results)
}

// scrapeStatus is the collector of the exporter's own metrics about one
// scrape, when the places are written from the cache.
type scrapeStatus struct {
	e       *Exporter
	results []sourceResult
	samples []source.Sample // the places' revocation and CRL series
}

func (s *scrapeStatus) Describe(chan<- *prometheus.Desc) {}

func (s *scrapeStatus) Collect(ch chan<- prometheus.Metric) {
	em := s.e.newEmitter(ch)
	em.scrapeStatus(s.results)
	for _, st := range s.samples {
		em.sample(st)
	}
}

// sourceResult is what one source found in one scrape.
type sourceResult struct {
	name string
	source.Result
	ok   bool
	took time.Duration
}

// runSources runs every source concurrently within ctx.
func (e *Exporter) runSources(ctx context.Context, sources *Sources) []sourceResult {
	return e.runAll(ctx, sources.Collectors, &sources.last)
}

// runAll runs sources concurrently and returns by ctx's deadline whatever
// happens. Sources see a deadline a little earlier (sourceMargin), so that
// each can build its answer from what it has by then. A source still
// running at the deadline is answered with its last complete result (ok
// false) and left to end in the background: it sends its result into a
// buffered channel nobody reads any more, never into the results being
// answered.
func (e *Exporter) runAll(ctx context.Context, runs []source.Collector, last *lastResults) []sourceResult {
	sourceCtx, cancel := ctx, context.CancelFunc(func() {})
	if deadline, ok := ctx.Deadline(); ok {
		sourceCtx, cancel = context.WithDeadline(ctx, deadline.Add(-sourceMargin(time.Until(deadline))))
	}
	defer cancel()
	type done struct {
		i      int
		result sourceResult
	}
	finished := make(chan done, len(runs))
	start := time.Now()
	for i, r := range runs {
		go func() {
			name := r.Name()
			res := sourceResult{name: name}
			var ok bool
			res.Result, ok = e.guard(name, func() source.Result { return r.Scrape(sourceCtx) })
			if sourceCtx.Err() != nil {
				ok = false // cut short by the scrape deadline
			}
			res.ok, res.took = ok, time.Since(start)
			if ok {
				last.put(res)
			}
			finished <- done{i, res}
		}()
	}
	results := make([]sourceResult, len(runs))
	got := make([]bool, len(runs))
	take := func(d done) { results[d.i], got[d.i] = d.result, true }
	for range runs {
		select {
		case d := <-finished:
			take(d)
			continue
		case <-ctx.Done():
		}
		for drained := false; !drained; { // results that arrived with the deadline still count
			select {
			case d := <-finished:
				take(d)
			default:
				drained = true
			}
		}
		for i, r := range runs {
			if !got[i] {
				// Its places keep what the last complete collection said
				// rather than vanish from this answer (Prometheus would mark
				// every one of their series stale); collector_success says
				// the source was cut short.
				name := r.Name()
				prev, had := last.get(name)
				e.logger.Warn("Collector did not return by the scrape deadline; answering with its last complete result",
					"collector", name, "have_last", had)
				results[i] = sourceResult{name: name, Result: prev.Result, took: time.Since(start)}
			}
		}
		break
	}
	return results
}

// sourceMargin is how much earlier than the scrape's deadline the sources'
// deadline is: a tenth of the time left, between 10ms and 1s (building the
// answer of 100,000 files takes a few hundred milliseconds).
func sourceMargin(left time.Duration) time.Duration {
	return min(max(left/10, 10*time.Millisecond), time.Second)
}

// Ready reports whether the sources can serve complete answers: every
// source that needs time to start (informers, streams) says it is ready.
func (e *Exporter) Ready() bool {
	s := e.sources.Load()
	if s == nil {
		return false
	}
	for _, c := range s.Collectors {
		if r, ok := c.(source.Readier); ok && !r.Ready() {
			return false
		}
	}
	return true
}

// guard runs a source, turning a panic into a failed collection rather than
// a dead exporter.
func (e *Exporter) guard(name string, run func() source.Result) (result source.Result, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			e.logger.Error("Collector panicked", "collector", name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			result, ok = source.Result{}, false
		}
	}()
	return run(), true
}

// probe is the collector of one /probe request.
type probe struct {
	e      *Exporter
	ctx    context.Context
	prober source.Prober
	target string
	module string
}

func (p *probe) Describe(chan<- *prometheus.Desc) {}

func (p *probe) Collect(ch chan<- prometheus.Metric) {
	start := time.Now()
	name := p.prober.Name()
	res, ok := p.e.guard(name, func() source.Result {
		return source.Result{Findings: []source.Finding{p.prober.Probe(p.ctx, p.target, p.module)}}
	})
	em := p.e.newEmitter(ch)
	em.collectorStatus(name, ok, time.Since(start))
	em.findings(res.Findings)
}

// descCache reuses descriptors across scrapes; the set of extra label names
// is small (one per configured label set).
type descCache struct{ m sync.Map }

func (c *descCache) get(name, help string, labels []string) *prometheus.Desc {
	key := name + "\x00" + strings.Join(labels, "\x00")
	if d, ok := c.m.Load(key); ok {
		return d.(*prometheus.Desc)
	}
	d := prometheus.NewDesc(name, help, labels, nil)
	c.m.Store(key, d)
	return d
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
