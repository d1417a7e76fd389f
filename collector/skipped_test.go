package collector

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/promslog"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/endpoint"
	"github.com/certwatch/certwatch/source/files"
)

// TestSkippedFilesGauge reads certwatch_file_skipped_files back from
// /metrics, in text and in protobuf: one series per file group, labelled by
// the group's index, counting what its walks skipped (0 included).
func TestSkippedFilesGauge(t *testing.T) {
	dir := t.TempDir()
	testpki.WriteFile(t, dir, "pki/a.crt", testpki.PEM(testpki.New(t, nil, testpki.Options{CommonName: "a"})))
	testpki.WriteFile(t, dir, "pki/openssl.cnf", []byte("[ req ]\n"))
	testpki.WriteFile(t, dir, "pki/serial.srl", []byte("1000\n"))
	testpki.WriteFile(t, dir, "pki/README", []byte("read me\n"))
	testpki.WriteFile(t, dir, "other/b.pem", testpki.PEM(testpki.New(t, nil, testpki.Options{CommonName: "b"})))
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte("files:\n  - paths: [pki]\n  - paths: [other]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logger := promslog.NewNopLogger()
	e := New(logger, inspect.NewInspector(nil), 0)
	prober := endpoint.New(cfg, logger)
	e.Update(&Sources{Collectors: []source.Collector{prober, files.New(cfg, files.NewCache(), logger)}, Prober: prober})
	h := e.MetricsHandler(prometheus.NewRegistry())
	for _, format := range []expfmt.Format{expfmt.NewFormat(expfmt.TypeTextPlain), expfmt.NewFormat(expfmt.TypeProtoDelim)} {
		_, body := get(t, h, string(format), "")
		mf := decode(t, body, format)["certwatch_file_skipped_files"]
		if mf == nil {
			t.Fatalf("%s: no %s family", format, "certwatch_file_skipped_files")
		}
		got := map[string]float64{}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "group" {
				t.Fatalf("%s: labels %v, want group only", format, m.GetLabel())
			}
			got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
		if fmt.Sprint(got) != fmt.Sprint(map[string]float64{"0": 3, "1": 0}) {
			t.Errorf("%s: skipped files %v, want group 0: 3, group 1: 0", format, got)
		}
	}
}
