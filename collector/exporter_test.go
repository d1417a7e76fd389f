package collector

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/endpoint"
	"github.com/certwatch/certwatch/source/files"
)

// newTestExporter writes yml as config.yml in dir and returns an exporter
// serving its endpoints and files, judged at now (nil: the clock), with its
// global.certificate_series applied as a reload applies it.
func newTestExporter(t testing.TB, dir, yml string, now func() time.Time) *Exporter {
	t.Helper()
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logger := promslog.NewNopLogger()
	e := New(logger, inspect.NewInspector(now), 0)
	e.SetCertificateSeries(cfg.Global.CertificateSeries)
	prober := endpoint.New(cfg, logger)
	e.Update(&Sources{Collectors: []source.Collector{prober, files.New(cfg, files.NewCache(), logger)}, Prober: prober})
	return e
}
