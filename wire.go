package main

import (
	"log/slog"

	"github.com/certwatch/certwatch/collector"
	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/shard"
	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/decode"
	"github.com/certwatch/certwatch/source/endpoint"
	"github.com/certwatch/certwatch/source/files"
	kubeclient "github.com/certwatch/certwatch/source/kubernetes/client"
	"github.com/certwatch/certwatch/source/spiffe"
)

// sourceWiring builds the sources of each configuration, and keeps what
// outlives a reload: the files cache, the Kubernetes informers and the
// SPIFFE streams.
type sourceWiring struct {
	logger    *slog.Logger
	fileCache *files.Cache
	kube      *kubeclient.Runner
	spiffe    *spiffe.Runner
}

func newSourceWiring(kubeFlags *kubeclient.Flags, logger *slog.Logger) *sourceWiring {
	return &sourceWiring{logger: logger, fileCache: files.NewCache(),
		kube: kubeclient.NewRunner(kubeFlags, logger), spiffe: spiffe.NewRunner(logger)}
}

func (w *sourceWiring) stop() {
	w.kube.Stop()
	w.spiffe.Stop()
}

// apply builds cfg's sources, in the order their series are written, and
// hands them to e.
func (w *sourceWiring) apply(e *collector.Exporter, cfg *config.Config, sh shard.Shard) error {
	cfg.Shard = sh
	// Set before the sources decode anything under the new configuration.
	prevLimit := decode.MaxCertificates()
	decode.SetMaxCertificates(cfg.Global.MaxCertificatesPerPlace)
	kubeSource, err := w.kube.Apply(cfg.Kubernetes, sh)
	if err != nil {
		decode.SetMaxCertificates(prevLimit)
		return err
	}
	fileSource := files.New(cfg, w.fileCache, w.logger)
	prober := endpoint.New(cfg, w.logger)
	sources := &collector.Sources{Collectors: []source.Collector{prober, fileSource}, Prober: prober}
	if kubeSource != nil {
		sources.Collectors = append(sources.Collectors, kubeSource)
	}
	if spiffeSource := w.spiffe.Apply(cfg.SPIFFE); spiffeSource != nil {
		sources.Collectors = append(sources.Collectors, spiffeSource)
	}
	e.Update(sources)
	fileSource.Warm() // read the files now, so the first scrape finds them ready
	return nil
}
