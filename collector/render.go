package collector

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/x509"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/source"
)

// The text exposition of places.
//
// A place that did not change between scrapes (the same parsed
// certificates, the same verdict, the same labels) has the same series,
// bar the handshake duration of an endpoint. Building those series anew on
// every scrape, as const metrics that the registry turns into protobuf
// structures, sorts, checks and encodes, costs about 7 µs a series; at
// 10,000 files that is half a second of CPU per scrape for nothing. So
// /metrics in the text formats (Prometheus text and OpenMetrics, which is
// what Prometheus asks for) writes the series of places from a cache of
// their rendered label sets, kept across scrapes and rebuilt only for
// places whose content changed. The exporter's own metrics and the process
// metrics still go through the registry and expfmt's encoder, and protobuf
// requests and /probe answers use the registry for everything (emit.go):
// both paths produce the same series, which a test checks.

// placeCache holds the rendered series of every place and target of the
// last scrape.
type placeCache struct {
	mu      sync.Mutex // one scrape renders at a time; writing is cheap next to probing
	gen     uint64     // scrapes, for sweeping entries not seen
	calls   uint64     // findings calls, for finding duplicates
	places  map[placeID]*rendered
	layouts map[layoutKey]*layout
	// crlPlaces marks places of CRLs alone with the findings call that last
	// met them, to skip duplicates.
	crlPlaces map[placeID]uint64
}

// placeID names a place (key set) or a target (target set, key unset).
type placeID struct {
	source, target, key string
	isTarget            bool // the target's own series (success, error)
}

// identity is everything the series of a place are built from. Slices and
// maps are compared by address, which is sound because these pointers keep
// them alive: their memory cannot be reused while the entry exists.
type identity struct {
	certsData unsafe.Pointer // the slice's array; with nCerts, the slice
	nCerts    int
	labels    unsafe.Pointer
	reason    inspect.Reason
	notAfter  int64
	tls       bool
	version   string
	cipher    string
	errClass  source.Class
	// leavesOnly is the exporter's certificate_series setting: a reload that
	// changes it renders every place again.
	leavesOnly bool
}

// rendered is one place's series: label sets rendered as "{...} " in buf
// (series with the same labels share one), grouped by metric, values
// beside them.
type rendered struct {
	id        identity
	chain     chainInput // what verdict was judged from
	verdict   inspect.Verdict
	gen       uint64 // the last scrape that wrote it
	call      uint64 // the last findings call that met it
	slot      int    // for a target: its index in that call's targetState
	buf       []byte
	series    []renderedSeries
	first     [numMetrics + 1]uint32 // series[first[m]:first[m+1]] are metric m's
	hsIndex   int                    // the handshake series, whose value changes every probe; -1 when none
	handshake float64                // its value
}

// renderedSeries is one series: buf[start:end] is its label set with a
// trailing space, buf[value:valueEnd] its value in the text format with a
// newline (the handshake's is formatted when written).
type renderedSeries struct {
	start, end, value, valueEnd uint32
}

// layoutKey is a metric with a set of extra label names.
type layoutKey struct {
	metric int
	extra  string // names joined by NUL
}

// layout is the order of a metric's labels: client_golang writes them
// sorted by name, and so do we.
type layout struct {
	names  []string
	byName []int // byName[k]: position of names[k] among fixed values then extra values
	bad    bool  // an extra label repeats a fixed one; the series are dropped
}

func newPlaceCache() *placeCache {
	return &placeCache{places: map[placeID]*rendered{}, layouts: map[layoutKey]*layout{}, crlPlaces: map[placeID]uint64{}}
}

// pass is one scrape's use of the cache: the places in the order they are
// written, and the per-scrape resolution of label maps.
type pass struct {
	c      *placeCache
	e      *Exporter
	snap   *snapshotBuilder
	order  []*rendered
	extras map[unsafe.Pointer]*extraLabels
	// samples are the places' revocation and CRL series, which go through
	// the registry (revocation.go).
	samples []source.Sample
	// firstCall is the number of this scrape's first findings call.
	firstCall uint64
	// leavesOnly is the exporter's setting, read once per scrape.
	leavesOnly bool
}

// begin locks the cache for one scrape; finish sweeps it and unlocks.
func (c *placeCache) begin(e *Exporter) *pass {
	c.mu.Lock()
	c.gen++
	return &pass{c: c, e: e, extras: map[unsafe.Pointer]*extraLabels{}, firstCall: c.calls + 1, leavesOnly: e.leavesOnly.Load()}
}

// findings adds the places and targets of one collector, judged together
// as the registry path does.
func (p *pass) findings(findings []source.Finding) {
	// Duplicates (a place or target seen twice in this collector's
	// findings) are found by marking cache entries with this call's number:
	// a warm scrape then costs one map lookup per place and per target.
	// Only places and targets new to the cache need maps of their own.
	p.c.calls++
	call := p.c.calls
	targets := make([]targetState, 0, len(findings))
	var newTargets map[placeID]int
	var newPlaces map[placeID]struct{}
	places := make([]*source.Finding, 0, len(findings))
	cached := make([]*rendered, 0, len(findings))
	for i := range findings {
		f := &findings[i]
		tid := placeID{source: f.Source, target: f.Target, isTarget: true}
		var t int
		if tr := p.c.places[tid]; tr != nil {
			if tr.call != call {
				tr.call, tr.slot = call, len(targets)
				targets = append(targets, targetState{place: f.Place, r: tr})
			}
			t = tr.slot
		} else {
			if newTargets == nil {
				newTargets = map[placeID]int{}
			}
			var ok bool
			if t, ok = newTargets[tid]; !ok {
				t = len(targets)
				newTargets[tid] = t
				targets = append(targets, targetState{place: f.Place})
			}
		}
		if f.Err != nil && targets[t].err == nil {
			targets[t].err = f.Err
		}
		if len(f.Certs) == 0 {
			p.snap.failed(f)
			if len(f.CRLs) > 0 {
				p.crlOnly(f, call)
			}
			continue
		}
		id := placeID{source: f.Source, target: f.Target, key: f.Key}
		r := p.c.places[id]
		if r != nil {
			if r.call == call {
				continue // a duplicate place would make the scrape invalid
			}
			r.call = call
		} else {
			if newPlaces == nil {
				newPlaces = map[placeID]struct{}{}
			}
			if _, dup := newPlaces[id]; dup {
				continue
			}
			newPlaces[id] = struct{}{}
		}
		places = append(places, f)
		cached = append(cached, r)
	}
	// A place whose chain is the one judged last time keeps its verdict
	// while it stands, as the inspector's cache would return it, without
	// hashing the chain to look it up.
	verdicts := make([]inspect.Verdict, len(places))
	var chains []inspect.Chain
	var judged []int
	for i, f := range places {
		if r := cached[i]; r != nil && r.chain.same(f) && p.e.inspector.Stands(r.verdict) {
			verdicts[i] = r.verdict
			continue
		}
		chains = append(chains, chainOf(f))
		judged = append(judged, i)
	}
	for j, verdict := range p.e.inspector.JudgeAll(chains) {
		verdicts[judged[j]] = verdict
	}
	for i, f := range places {
		// The cache keeps the verdict without revocation, which is laid
		// over it anew at every scrape.
		judgedNow := p.e.inspector.Revoke(chainOf(f), verdicts[i])
		p.snap.judged(f, judgedNow)
		p.place(f, judgedNow, verdicts[i], cached[i])
		p.samples = placeSamples(p.samples, f, judgedNow)
	}
	for _, ts := range targets {
		p.target(ts)
	}
}

// crlOnly adds the series of a place that holds CRLs and no certificate,
// once per findings call like any place.
func (p *pass) crlOnly(f *source.Finding, call uint64) {
	id := placeID{source: f.Source, target: f.Target, key: f.Key}
	if r := p.c.crlPlaces[id]; r == call {
		return
	}
	p.c.crlPlaces[id] = call
	p.samples = crlSamples(p.samples, f)
}

// targetState is what the findings of one target said: its first place's
// labels, its first error, and its cache entry (nil when new).
type targetState struct {
	place source.Place
	err   error
	r     *rendered
}

// chainInput is what a verdict was given: compared by address, and held
// so that the addresses stay theirs.
type chainInput struct {
	certs      []*x509.Certificate
	keyPublics []crypto.PublicKey
	verify     source.VerifyParams
}

func (c *chainInput) same(f *source.Finding) bool {
	return sameSlice(c.certs, f.Certs) && sameSlice(c.keyPublics, f.KeyPublics) &&
		sameSlice(c.verify.Extra, f.Verify.Extra) && c.verify.Roots == f.Verify.Roots &&
		c.verify.RootsID == f.Verify.RootsID && c.verify.DNSName == f.Verify.DNSName &&
		c.verify.ServerAuth == f.Verify.ServerAuth && c.verify.Revocation == f.Verify.Revocation
}

func sameSlice[T any](a, b []T) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// place writes one place from its cached entry r (nil when new), rendered
// again when what its series are built from changed.
func (p *pass) place(f *source.Finding, verdict, unrevoked inspect.Verdict, r *rendered) {
	if !verdict.Valid() {
		p.e.logger.Debug("Chain not valid", "kind", f.Source, "target", f.Target, "key", f.Key,
			"reason", verdict.Reason, "detail", verdict.Detail)
	}
	id := identity{certsData: unsafe.Pointer(unsafe.SliceData(f.Certs)), nCerts: len(f.Certs),
		labels: mapAddress(f.Labels), reason: verdict.Reason, notAfter: verdict.ChainNotAfter.Unix(), leavesOnly: p.leavesOnly}
	if f.TLS != nil {
		id.tls, id.version, id.cipher = true, f.TLS.Version, f.TLS.CipherSuite
	}
	if r == nil || r.id != id {
		r = p.renderPlace(f, verdict, id)
		p.c.places[placeID{source: f.Source, target: f.Target, key: f.Key}] = r
	}
	r.chain = chainInput{certs: f.Certs, keyPublics: f.KeyPublics, verify: f.Verify}
	r.verdict = unrevoked
	if r.hsIndex >= 0 {
		r.handshake = f.TLS.HandshakeDuration.Seconds()
	}
	r.gen = p.c.gen
	p.order = append(p.order, r)
}

func (p *pass) target(ts targetState) {
	pl, err, r := ts.place, ts.err, ts.r
	id := identity{labels: mapAddress(pl.Labels)}
	if err != nil {
		id.errClass = source.ClassOf(err)
	}
	if r == nil || r.id != id {
		r = p.newRendered(id)
		ex := p.extra(pl.Labels)
		src, tgt := validUTF8(pl.Source), validUTF8(pl.Target)
		p.add(r, ex, metricTargetSuccess, []string{src, tgt}, boolValue(err == nil))
		if err != nil {
			p.add(r, ex, metricTargetError, []string{src, tgt, validUTF8(string(id.errClass))}, 1)
		}
		p.seal(r)
		p.c.places[placeID{source: pl.Source, target: pl.Target, isTarget: true}] = r
	}
	r.gen = p.c.gen
	p.order = append(p.order, r)
}

func (p *pass) newRendered(id identity) *rendered {
	return &rendered{id: id, hsIndex: -1}
}

// renderPlace builds the series of a place, in metric order.
func (p *pass) renderPlace(f *source.Finding, verdict inspect.Verdict, id identity) *rendered {
	r := p.newRendered(id)
	ex := p.extra(f.Labels)
	src, tgt, key := validUTF8(f.Source), validUTF8(f.Target), validUTF8(f.Key)
	p.add(r, ex, metricChainValid, []string{src, tgt, key, validUTF8(string(verdict.Reason))}, boolValue(verdict.Valid()))
	p.add(r, ex, metricChainNotAfter, []string{src, tgt, key}, unixSeconds(verdict.ChainNotAfter))
	kept := make([]int, 0, len(f.Certs)) // the certificates with series of their own, by index
	for i := range f.Certs {
		if certSeriesKept(p.leavesOnly, roleOf(verdict, i)) {
			kept = append(kept, i)
		}
	}
	facts := make([]inspect.Facts, len(kept))
	for k, i := range kept {
		facts[k] = inspect.FactsOf(f.Certs[i])
	}
	certValues := func(k int) []string {
		i := kept[k]
		return []string{src, tgt, key, strconv.Itoa(i), roleOf(verdict, i), validUTF8(facts[k].SubjectCN), validUTF8(facts[k].IssuerCN)}
	}
	notAfterAt := make([]int, len(kept))
	for k := range kept {
		notAfterAt[k] = -1
		if p.add(r, ex, metricCertNotAfter, certValues(k), unixSeconds(facts[k].NotAfter)) {
			notAfterAt[k] = len(r.series) - 1
		}
	}
	for k := range kept {
		if notAfterAt[k] >= 0 { // the same labels: share the rendered label set
			p.again(r, metricCertNotBefore, notAfterAt[k], unixSeconds(facts[k].NotBefore))
		}
	}
	for k := range kept {
		p.add(r, ex, metricCertInfo, appendInfoValues(nil, certValues(k), &facts[k]), 1)
	}
	if f.TLS != nil {
		p.add(r, ex, metricTLSVersion, []string{src, tgt, validUTF8(f.TLS.Version), validUTF8(f.TLS.CipherSuite)}, 1)
		if p.add(r, ex, metricHandshake, []string{src, tgt}, 0) { // the value is written from r.handshake
			r.hsIndex = len(r.series) - 1
		}
	}
	p.seal(r)
	return r
}

// add renders one series into r; metrics must come in metricDefs order.
// It reports whether the series was kept.
func (p *pass) add(r *rendered, ex *extraLabels, metric int, fixed []string, v float64) bool {
	lay := p.layout(metric, ex)
	if lay.bad {
		p.e.logger.Error("Dropping a series whose extra labels repeat a fixed label", "metric", metricDefs[metric].name)
		return false
	}
	start := len(r.buf)
	for k, name := range lay.names {
		if k == 0 {
			r.buf = append(r.buf, '{')
		} else {
			r.buf = append(r.buf, ',')
		}
		i := lay.byName[k]
		var v string
		if i < len(fixed) {
			v = fixed[i]
		} else {
			v = ex.values[i-len(fixed)]
		}
		r.buf = append(r.buf, name...)
		r.buf = append(r.buf, '=', '"')
		r.buf = appendEscaped(r.buf, v)
		r.buf = append(r.buf, '"')
	}
	if len(lay.names) > 0 {
		r.buf = append(r.buf, '}')
	}
	r.buf = append(r.buf, ' ')
	s := renderedSeries{start: uint32(start), end: uint32(len(r.buf))}
	r.appendValue(&s, v)
	r.series = append(r.series, s)
	r.mark(metric)
	return true
}

// again adds a series of metric whose labels are those of series like.
func (p *pass) again(r *rendered, metric, like int, v float64) {
	s := r.series[like]
	r.appendValue(&s, v)
	r.series = append(r.series, s)
	r.mark(metric)
}

func (r *rendered) appendValue(s *renderedSeries, v float64) {
	s.value = uint32(len(r.buf))
	r.buf = append(appendValue(r.buf, v, false), '\n')
	s.valueEnd = uint32(len(r.buf))
}

// mark records that the last series is metric's: series come in metric
// order, so every later metric starts after it.
func (r *rendered) mark(metric int) {
	for m := metric + 1; m <= numMetrics; m++ {
		r.first[m] = uint32(len(r.series))
	}
}

// seal copies r's buffers to their exact size: they live until the place
// changes, and appending left up to half of them unused.
func (p *pass) seal(r *rendered) {
	r.buf = slices.Clone(r.buf)
	r.series = slices.Clone(r.series)
}

func (p *pass) layout(metric int, ex *extraLabels) *layout {
	k := layoutKey{metric: metric, extra: ex.sig}
	if l := p.c.layouts[k]; l != nil {
		return l
	}
	l := &layout{}
	l.names, l.byName = labelOrder(metric, ex.names)
	for k := 1; k < len(l.names); k++ {
		if l.names[k] == l.names[k-1] {
			l.bad = true
		}
	}
	p.c.layouts[k] = l
	return l
}

// extra resolves a place's extra labels once per scrape (places of one
// configured group share their map).
func (p *pass) extra(m map[string]string) *extraLabels {
	addr := mapAddress(m)
	if ex, ok := p.extras[addr]; ok {
		return ex
	}
	ex := newExtraLabels(m)
	p.extras[addr] = ex
	return ex
}

// finish forgets places not seen in this scrape and unlocks the cache;
// the places to write are returned.
func (p *pass) finish() []placeSnapshot {
	for k, r := range p.c.places {
		if r.gen != p.c.gen {
			delete(p.c.places, k)
		}
	}
	for k, call := range p.c.crlPlaces {
		if call < p.firstCall {
			delete(p.c.crlPlaces, k)
		}
	}
	if len(p.c.layouts) > 1024 { // label sets follow the configuration; a reload may leave old ones
		clear(p.c.layouts)
	}
	out := make([]placeSnapshot, len(p.order))
	for i, r := range p.order {
		out[i] = placeSnapshot{r: r, handshake: r.handshake}
	}
	p.c.mu.Unlock()
	return out
}

// writePlaces writes the places' series family by family. openMetrics
// selects OpenMetrics' number syntax. Rendered places do not change once
// built, but for the handshake value, which finish copied out under the
// cache lock: writing needs no lock.
func writePlaces(w *bufio.Writer, places []placeSnapshot, openMetrics bool) error {
	var num []byte
	for m := range numMetrics {
		header := false
		for _, ps := range places {
			r := ps.r
			for i := r.first[m]; i < r.first[m+1]; i++ {
				s := r.series[i]
				if !header {
					writeHeader(w, metricDefs[m].name, metricDefs[m].help, openMetrics)
					header = true
				}
				_, _ = w.WriteString(metricDefs[m].name)
				value := r.buf[s.value:s.valueEnd]
				switch {
				case int(i) == r.hsIndex:
					num = append(appendValue(num[:0], ps.handshake, openMetrics), '\n')
					value = num
				case openMetrics && integral(value):
					num = append(append(num[:0], value[:len(value)-1]...), ".0\n"...)
					value = num
				case s.value == s.end: // labels and value rendered together: one copy
					if _, err := w.Write(r.buf[s.start:s.valueEnd]); err != nil {
						return err
					}
					continue
				}
				_, _ = w.Write(r.buf[s.start:s.end])
				if _, err := w.Write(value); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// placeSnapshot is a rendered place and the one value that changes while
// it stays the same.
type placeSnapshot struct {
	r         *rendered
	handshake float64
}

func writeHeader(w *bufio.Writer, name, help string, openMetrics bool) {
	_, _ = w.WriteString("# HELP ")
	_, _ = w.WriteString(name)
	_ = w.WriteByte(' ')
	for i := 0; i < len(help); i++ {
		switch c := help[i]; {
		case c == '\\':
			_, _ = w.WriteString(`\\`)
		case c == '\n':
			_, _ = w.WriteString(`\n`)
		case c == '"' && openMetrics:
			_, _ = w.WriteString(`\"`)
		default:
			_ = w.WriteByte(c)
		}
	}
	_, _ = w.WriteString("\n# TYPE ")
	_, _ = w.WriteString(name)
	_, _ = w.WriteString(" gauge\n")
}

// appendValue formats a sample value as expfmt does in each format:
// OpenMetrics marks integral values as floats ("1.0").
func appendValue(b []byte, v float64, openMetrics bool) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	start := len(b)
	b = strconv.AppendFloat(b, v, 'g', -1, 64)
	if openMetrics && !bytes.ContainsAny(b[start:], "e.") {
		b = append(b, '.', '0')
	}
	return b
}

// integral says whether a value in the text format (with its newline)
// reads as an integer, which OpenMetrics writes with ".0".
func integral(text []byte) bool {
	text = text[:len(text)-1]
	return !bytes.ContainsAny(text, "e.") && string(text) != "NaN" && string(text) != "+Inf" && string(text) != "-Inf"
}

// appendEscaped appends a label value escaped as the text formats want:
// backslash, double quote and newline.
func appendEscaped(b []byte, v string) []byte {
	if !strings.ContainsAny(v, "\\\"\n") {
		return append(b, v...)
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '"':
			b = append(b, '\\', '"')
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return b
}

func mapAddress(m map[string]string) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&m))
}
