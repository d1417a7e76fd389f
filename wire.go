package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/certwatch/certwatch/collector"
	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/revocation"
	"github.com/certwatch/certwatch/shard"
	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/decode"
	"github.com/certwatch/certwatch/source/endpoint"
	"github.com/certwatch/certwatch/source/files"
	kubeclient "github.com/certwatch/certwatch/source/kubernetes/client"
	"github.com/certwatch/certwatch/source/spiffe"
	"github.com/certwatch/certwatch/source/urls"
)

// sourceWiring builds the sources of each configuration, and keeps what
// outlives a reload: the files cache, the Kubernetes informers (of each
// cluster), the SPIFFE streams, the URL fetchers and the revocation
// checker's answers.
type sourceWiring struct {
	logger    *slog.Logger
	inspector *inspect.Inspector
	fileCache *files.Cache
	kube      *kubeclient.Runner
	spiffe    *spiffe.Runner
	urls      *urls.Runner
	// checker fetches OCSP answers and CRLs in the background; made when a
	// configuration first opts in to a revocation check.
	checker     *revocation.Checker
	stopChecker context.CancelFunc
	checkerDone chan struct{}
}

func newSourceWiring(kubeFlags *kubeclient.Flags, inspector *inspect.Inspector, logger *slog.Logger) *sourceWiring {
	return &sourceWiring{logger: logger, inspector: inspector, fileCache: files.NewWatchingCache(),
		kube: kubeclient.NewRunner(kubeFlags, logger), spiffe: spiffe.NewRunner(logger), urls: urls.NewRunner(logger)}
}

func (w *sourceWiring) stop() {
	w.fileCache.Stop()
	w.kube.Stop()
	w.spiffe.Stop()
	w.urls.Stop()
	if w.checker != nil {
		w.stopChecker()
		<-w.checkerDone
	}
}

// revocationChecker returns the checker under cfg's rules when a group of
// cfg opts in to a revocation check, and nil otherwise: then nothing about
// revocation leaves the process.
func (w *sourceWiring) revocationChecker(cfg *config.Config) (*revocation.Checker, error) {
	if !wantsRevocation(cfg) {
		return nil, nil
	}
	if w.checker != nil {
		return w.checker, w.checker.Update(cfg.Global.Revocation)
	}
	c, err := revocation.NewChecker(cfg.Global.Revocation, w.logger)
	if err != nil {
		return nil, fmt.Errorf("global.revocation: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.checker, w.stopChecker, w.checkerDone = c, cancel, make(chan struct{})
	go func() {
		defer close(w.checkerDone)
		c.Run(ctx)
	}()
	return c, nil
}

// revocationSettled reports whether the revocation checks asked for so far
// have answered or failed (true when there are none).
func (w *sourceWiring) revocationSettled() bool { return w.checker == nil || w.checker.Idle() }

// wantsRevocation reports whether a module, file group, URL group or a
// Kubernetes block opts in to an active revocation check.
func wantsRevocation(cfg *config.Config) bool {
	for _, m := range cfg.Modules {
		if m.Revocation.Any() {
			return true
		}
	}
	for _, g := range cfg.Files {
		if g.Revocation.Any() {
			return true
		}
	}
	for _, g := range cfg.URLs {
		if g.Revocation.Any() {
			return true
		}
	}
	return cfg.KubernetesClusters.AnyRevocation()
}

// apply builds cfg's sources, in the order their series are written, and
// hands them to e.
func (w *sourceWiring) apply(e *collector.Exporter, cfg *config.Config, sh shard.Shard) error {
	cfg.Shard = sh
	// Set before the sources decode anything under the new configuration.
	prevLimit := decode.MaxCertificates()
	decode.SetMaxCertificates(cfg.Global.MaxCertificatesPerPlace)
	checker, err := w.revocationChecker(cfg)
	if err != nil {
		decode.SetMaxCertificates(prevLimit)
		return err
	}
	kubeSources, err := w.kube.Apply(cfg.KubernetesClusters, sh)
	if err != nil {
		decode.SetMaxCertificates(prevLimit)
		return err
	}
	fileSource := files.New(cfg, w.fileCache, w.logger)
	prober := endpoint.New(cfg, w.logger)
	sources := &collector.Sources{Collectors: []source.Collector{prober, fileSource}, Prober: prober}
	sources.Collectors = append(sources.Collectors, kubeSources...) // one per cluster
	if spiffeSource := w.spiffe.Apply(cfg.SPIFFE); spiffeSource != nil {
		sources.Collectors = append(sources.Collectors, spiffeSource)
	}
	if urlSource := w.urls.Apply(cfg); urlSource != nil {
		sources.Collectors = append(sources.Collectors, urlSource)
	}
	if checker != nil {
		// Its places are the CRLs it fetched; its status, each URL's health.
		sources.Collectors = append(sources.Collectors, checker)
		w.inspector.SetRevocations(checker)
	} else {
		w.inspector.SetRevocations(nil)
	}
	e.SetCertificateSeries(cfg.Global.CertificateSeries)
	e.Update(sources)
	fileSource.Warm() // read the files now, so the first scrape finds them ready
	return nil
}
