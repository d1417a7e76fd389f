package hostile

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Parse parses a Prometheus text-format answer, as Prometheus would.
func Parse(body []byte) (map[string]*dto.MetricFamily, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parsing the answer as Prometheus text: %w", err)
	}
	return mfs, nil
}

// Check returns what the answer gets wrong about the places: a good place
// must be a success with its certificates, a hostile one a failure with
// certwatch_target_error_info of one of its sensible classes.
func (s *Setup) Check(mfs map[string]*dto.MetricFamily) []string {
	var problems []string
	for _, p := range s.Places {
		if msg := checkPlace(mfs, p); msg != "" {
			problems = append(problems, p.String()+": "+msg)
		}
	}
	return problems
}

func checkPlace(mfs map[string]*dto.MetricFamily, p Place) string {
	// certwatch_target_success and certwatch_target_error_info are per
	// target; certificate series carry the key too.
	want := map[string]string{"source": p.Source, "target": p.Target}
	success := samples(mfs, "certwatch_target_success", want)
	errs := samples(mfs, "certwatch_target_error_info", want)
	if p.Key != "" {
		want["key"] = p.Key
	}
	var classes []string
	for _, m := range errs {
		classes = append(classes, labelOf(m, "class"))
	}
	if p.Good() {
		switch {
		case len(errs) > 0:
			return fmt.Sprintf("failed with class %s, want success", strings.Join(classes, ","))
		case len(success) == 0 || success[0].GetGauge().GetValue() != 1:
			return "no certwatch_target_success 1"
		case len(samples(mfs, "certwatch_cert_not_after_timestamp_seconds", want)) == 0:
			return "no certwatch_cert_not_after_timestamp_seconds"
		}
		return ""
	}
	if len(errs) == 0 {
		return fmt.Sprintf("no certwatch_target_error_info (want class %s)", strings.Join(p.Classes, " or "))
	}
	for _, c := range classes {
		if !slices.Contains(p.Classes, c) {
			return fmt.Sprintf("class %q, want %s", c, strings.Join(p.Classes, " or "))
		}
	}
	for _, m := range success {
		if m.GetGauge().GetValue() != 0 {
			return "certwatch_target_success is not 0 beside an error"
		}
	}
	return ""
}

// samples returns the series of a metric whose labels include want.
func samples(mfs map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	mf := mfs[name]
	if mf == nil {
		return nil
	}
	var out []*dto.Metric
next:
	for _, m := range mf.Metric {
		for k, v := range want {
			if labelOf(m, k) != v {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

func labelOf(m *dto.Metric, name string) string {
	for _, lp := range m.Label {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// Figures are the exporter's own resource figures, from its answer.
type Figures struct {
	Goroutines int
	OpenFDs    int
	RSS        float64 // bytes
}

// FiguresOf reads go_goroutines, process_open_fds and
// process_resident_memory_bytes from an answer.
func FiguresOf(mfs map[string]*dto.MetricFamily) (Figures, error) {
	value := func(name string) (float64, error) {
		mf := mfs[name]
		if mf == nil || len(mf.Metric) != 1 {
			return 0, fmt.Errorf("the answer has no single %s", name)
		}
		m := mf.Metric[0]
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), nil
		case m.Counter != nil:
			return m.Counter.GetValue(), nil
		case m.Untyped != nil:
			return m.Untyped.GetValue(), nil
		}
		return 0, fmt.Errorf("%s has no value", name)
	}
	var f Figures
	g, err := value("go_goroutines")
	if err != nil {
		return f, err
	}
	fds, err := value("process_open_fds")
	if err != nil {
		return f, err
	}
	rss, err := value("process_resident_memory_bytes")
	if err != nil {
		return f, err
	}
	return Figures{Goroutines: int(g), OpenFDs: int(fds), RSS: rss}, nil
}

func (f Figures) String() string {
	return fmt.Sprintf("%d goroutines, %d fds, RSS %.1f MiB", f.Goroutines, f.OpenFDs, f.RSS/(1<<20))
}
