//go:build linux

package main

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"

	"github.com/certwatch/certwatch/collector"
	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/endpoint"
	"github.com/certwatch/certwatch/source/files"
	"github.com/certwatch/certwatch/source/kubernetes"
)

// Accept headers: what Prometheus sends for each exposition format.
const (
	acceptText        = "text/plain;version=0.0.4"
	acceptOpenMetrics = "application/openmetrics-text;version=1.0.0"
	acceptProtobuf    = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
)

// inProcess is the exporter built as main.go builds it (collector.New,
// Update, MetricsHandler with the same static collectors), minus the HTTP
// server: requests are handed to the handler directly.
type inProcess struct {
	exporter *collector.Exporter
	files    *files.Source
	handler  http.Handler
}

// benchLogger is certwatch's default level (info) writing nowhere: the cost
// of building log records stays in, the cost of a terminal does not.
func benchLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func newInProcess(cfg *config.Config, kube *kubernetes.Source) *inProcess {
	logger := benchLogger()
	static := prometheus.NewRegistry()
	static.MustRegister(
		versioncollector.NewCollector("certwatch"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	e := collector.New(logger, inspect.NewInspector(nil), 500*time.Millisecond)
	prober, fileSource := endpoint.New(cfg, logger), files.New(cfg, files.NewCache(), logger)
	s := &collector.Sources{Collectors: []source.Collector{prober, fileSource}, Prober: prober}
	if kube != nil {
		s.Collectors = append(s.Collectors, kube)
	}
	e.Update(s)
	return &inProcess{exporter: e, files: fileSource, handler: e.MetricsHandler(static)}
}

func parseConfig(yaml string) *config.Config {
	cfg, err := config.Parse([]byte(yaml), "/")
	if err != nil {
		fatalf("bench configuration: %v\n%s", err, yaml)
	}
	return cfg
}

// scrapeResult is one /metrics answer.
type scrapeResult struct {
	total   time.Duration // whole request
	gather  time.Duration // until the first byte: collect, judge, build and gather every series
	bytes   int64
	status  int
	body    []byte // only when kept
	headers http.Header
}

// responseSink is an http.ResponseWriter that counts and drops the body
// (or keeps it, for validation scrapes), noting when the first byte came.
type responseSink struct {
	h      http.Header
	status int
	n      int64
	first  time.Time
	keep   *bytes.Buffer
}

func (r *responseSink) Header() http.Header { return r.h }

func (r *responseSink) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	if r.first.IsZero() {
		r.first = time.Now()
	}
}

func (r *responseSink) Write(p []byte) (int, error) {
	if r.first.IsZero() {
		r.first = time.Now()
	}
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.n += int64(len(p))
	if r.keep != nil {
		r.keep.Write(p)
	}
	return len(p), nil
}

// scrape sends one request to h, as Prometheus would (its Accept header and
// its scrape timeout header), and drops the body unless keep.
func scrape(h http.Handler, path, accept string, timeout time.Duration, keep bool) scrapeResult {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Accept", accept)
	if timeout > 0 {
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", formatSeconds(timeout))
	}
	sink := &responseSink{h: http.Header{}}
	if keep {
		sink.keep = &bytes.Buffer{}
	}
	start := time.Now()
	h.ServeHTTP(sink, req)
	end := time.Now()
	res := scrapeResult{total: end.Sub(start), bytes: sink.n, status: sink.status, headers: sink.h}
	if !sink.first.IsZero() {
		res.gather = sink.first.Sub(start)
	}
	if keep {
		res.body = sink.keep.Bytes()
	}
	return res
}

func formatSeconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

// exposition is a parsed text-format answer, enough to validate a scrape.
type exposition struct {
	series   map[string]int            // by metric name
	values   map[string]map[string]int // metric -> "label=value" (of one chosen label) or value -> count
	failures []string                  // lines of certwatch_target_error_info
}

// parseText counts series by name, and for a few metrics, the values of the
// label that matters (success, reason, class).
func parseText(body []byte) exposition {
	e := exposition{series: map[string]int{}, values: map[string]map[string]int{}}
	count := func(metric, key string) {
		if e.values[metric] == nil {
			e.values[metric] = map[string]int{}
		}
		e.values[metric][key]++
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		e.series[name]++
		value := line[strings.LastIndexByte(line, ' ')+1:]
		switch name {
		case "certwatch_target_success", "certwatch_collector_success":
			count(name, labelValue(line, "source")+labelValue(line, "collector")+"="+value)
		case "certwatch_chain_valid":
			count(name, labelValue(line, "reason"))
		case "certwatch_target_error_info":
			count(name, labelValue(line, "class"))
			if len(e.failures) < 5 {
				e.failures = append(e.failures, line)
			}
		}
	}
	return e
}

func labelValue(line, label string) string {
	i := strings.Index(line, label+`="`)
	if i < 0 {
		return ""
	}
	rest := line[i+len(label)+2:]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return ""
}

// cpuProfile profiles f into dir/name.pprof when dir is set.
func cpuProfile(dir, name string, f func()) {
	if dir == "" {
		f()
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fatalf("%v", err)
	}
	out, err := os.Create(filepath.Join(dir, name+".pprof"))
	if err != nil {
		fatalf("%v", err)
	}
	defer out.Close()
	if err := pprof.StartCPUProfile(out); err != nil {
		fatalf("%v", err)
	}
	f()
	pprof.StopCPUProfile()
	logf("wrote %s", out.Name())
}

func heapProfile(dir, name string) {
	if dir == "" {
		return
	}
	_ = os.MkdirAll(dir, 0o755)
	out, err := os.Create(filepath.Join(dir, name+".pprof"))
	if err != nil {
		fatalf("%v", err)
	}
	defer out.Close()
	heapAfterGC()
	if err := pprof.Lookup("heap").WriteTo(out, 0); err != nil {
		fatalf("%v", err)
	}
	logf("wrote %s", out.Name())
}
