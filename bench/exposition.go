//go:build linux

package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Figure 3: bytes and time per series of /metrics, by exposition format,
// at about 10,000 certificates (the files tree, in process).
//
// Two timings per format: the encoder alone over families gathered once
// (expfmt.NewEncoder with the format promhttp negotiates for the Accept
// header), and the whole /metrics request with that Accept header (collect,
// judge, gather, encode), with and without gzip.
func runExposition(args []string) {
	fs := flag.NewFlagSet("exposition", flag.ExitOnError)
	var c common
	c.register(fs)
	certs := fs.Int("certs", 10000, "certificates to expose (rounded up to whole folders of the tree)")
	parseFlags(fs, args)

	tb := newTB()
	t := openTree(tb, c.cache)
	n := filesPerDir
	for certsInFirst(n) < *certs {
		n += filesPerDir
	}
	t.ensure(tb, n)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "files:\n  - ca_file: %q\n    paths:\n", t.rootsFile())
	for _, d := range t.dirs(n) {
		fmt.Fprintf(&cfg, "      - %q\n", d)
	}
	x := newInProcess(parseConfig(cfg.String()), nil)
	scrape(x.handler, "/metrics", acceptText, time.Minute, false) // read and judge everything once

	fig := newFigure("exposition", c.runs)
	cs := fmt.Sprintf("%d certs", certsInFirst(n))
	fig.comment("in process, %d files holding %d certificates; timings are medians of %d runs, per series", n, certsInFirst(n), c.runs)

	// The families, gathered once, for the encoder-only timing.
	res := scrape(x.handler, "/metrics", acceptProtobuf, time.Minute, true)
	var families []*dto.MetricFamily
	dec := expfmt.NewDecoder(bytes.NewReader(res.body), expfmt.NewFormat(expfmt.TypeProtoDelim))
	series := 0
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err == io.EOF {
			break
		} else if err != nil {
			fatalf("decoding the protobuf answer: %v", err)
		}
		families = append(families, mf)
		series += len(mf.Metric)
	}
	fig.comment("%d series in %d families (certwatch's and the Go/process collectors')", series, len(families))

	formats := []struct{ name, accept string }{
		{"text 0.0.4", acceptText},
		{"OpenMetrics 1.0.0", acceptOpenMetrics},
		{"protobuf (delimited)", acceptProtobuf},
	}
	for _, f := range formats {
		h := http.Header{}
		h.Set("Accept", f.accept)
		format := expfmt.NegotiateIncludingOpenMetrics(h)
		var enc, whole, wholeGz []float64
		var size, gzSize int64
		for round := range c.runs + 1 { // the first round warms up and is not counted
			cw := &countWriter{}
			start := time.Now()
			e := expfmt.NewEncoder(cw, format)
			for _, mf := range families {
				if err := e.Encode(mf); err != nil {
					fatalf("encoding %s: %v", f.name, err)
				}
			}
			if closer, ok := e.(expfmt.Closer); ok {
				_ = closer.Close()
			}
			encNs := float64(time.Since(start).Nanoseconds()) / float64(series)
			size = cw.n

			r := scrape(x.handler, "/metrics", f.accept, time.Minute, false)
			checkStatus(r)
			if got := r.headers.Get("Content-Type"); !strings.HasPrefix(got, strings.Split(string(format), ";")[0]) {
				fatalf("asked for %s, got %s", f.accept, got)
			}
			rg := scrapeGzip(x.handler, f.accept)
			gzSize = rg.bytes
			if round > 0 {
				enc = append(enc, encNs)
				whole = append(whole, float64(r.total.Nanoseconds())/float64(series))
				wholeGz = append(wholeGz, float64(rg.total.Nanoseconds())/float64(series))
			}
		}
		fig.add(measured(cs, f.name+": bytes per series", "B", []float64{float64(size) / float64(series)}).
			note("%.1f MB per scrape; gzip %.1f B/series (%.1f MB)", float64(size)/1e6, float64(gzSize)/float64(series), float64(gzSize)/1e6))
		fig.add(measured(cs, f.name+": encoding time per series", "ns", enc).note("expfmt encoder alone, families gathered once"))
		fig.add(measured(cs, f.name+": whole /metrics per series", "ns", whole).note("collect + judge + gather + encode, cached files"))
		fig.add(measured(cs, f.name+": whole /metrics per series, gzip", "ns", wholeGz))
	}
	fig.save(c.results)
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// scrapeGzip is scrape with Accept-Encoding: gzip, as Prometheus sends it;
// it checks the answer is compressed and counts the compressed bytes.
func scrapeGzip(h http.Handler, accept string) scrapeResult {
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", accept)
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "60")
	sink := &responseSink{h: http.Header{}, keep: &bytes.Buffer{}}
	start := time.Now()
	h.ServeHTTP(sink, req)
	res := scrapeResult{total: time.Since(start), bytes: sink.n, status: sink.status}
	if sink.h.Get("Content-Encoding") != "gzip" {
		fatalf("no gzip answer for %s", accept)
	}
	zr, err := gzip.NewReader(bytes.NewReader(sink.keep.Bytes()))
	if err != nil {
		fatalf("gzip answer: %v", err)
	}
	if plain, err := io.Copy(io.Discard, zr); err != nil || plain == 0 {
		fatalf("gzip answer: %d bytes, %v", plain, err)
	}
	return res
}
