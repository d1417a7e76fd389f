// Command certwatch is a Prometheus exporter that watches the X.509
// certificates served by TLS endpoints and stored in files, and reports when
// each expires and whether each chain is valid.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/certwatch/certwatch/collector"
	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/inventory"
	"github.com/certwatch/certwatch/shard"
	kubeclient "github.com/certwatch/certwatch/source/kubernetes/client"
)

// defaultListenAddress uses a port none of the peer exporters use
// (blackbox 9115, ssl_exporter 9219, x509-certificate-exporter 9793).
const defaultListenAddress = ":9860"

func main() {
	app := kingpin.New("certwatch", "Prometheus exporter for the expiry and validity of X.509 certificates on TLS endpoints and in files.")
	configFile := app.Flag("config.file", "certwatch configuration file.").Default("config.yml").String()
	configCheck := app.Flag("config.check", "Validate the configuration file, print the result and exit.").Bool()
	timeoutOffset := app.Flag("scrape.timeout-offset", "Subtracted from Prometheus' scrape timeout so the answer arrives in time.").Default("500ms").Duration()
	metricsPath := app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
	kubeFlags := kubeclient.AddFlags(app)
	shardIndex := app.Flag("shard.index", "This replica's shard, from 0 to --shard.total - 1.").Default("0").Int()
	shardTotal := app.Flag("shard.total", "Number of replicas sharing the configured targets by a stable hash; 0 or 1 watches everything.").Default("0").Int()
	enablePprof := app.Flag("web.enable-pprof", "Serve Go profiles under /debug/pprof/ (for diagnosing certwatch itself).").Default("false").Bool()
	disableInventory := app.Flag("web.disable-inventory", "Do not serve the certificate inventory (/certificates, /api/v1/certificates, /certificates.csv): they answer 404.").Default("false").Bool()
	enableLifecycle := app.Flag(config.LifecycleFlag, "Reload the configuration on POST /-/reload (otherwise 403; SIGHUP reloads either way).").Default("false").Bool()
	toolkitFlags := kingpinflag.AddFlags(app, defaultListenAddress)
	logConfig := &promslog.Config{}
	flag.AddFlags(app, logConfig)
	app.Version(version.Print("certwatch"))
	app.HelpFlag.Short('h')
	app.Command("serve", "Run the exporter (the default).").Default()
	checkCmd := app.Command("check", "Collect once, print what was found and exit 0 when every place is valid and outside --expiring-within, 1 when not, 2 on a usage or configuration error. Places on the command line (host:port, file paths) replace the configuration file.")
	checkFlags := addCheckFlags(checkCmd)
	command, err := app.Parse(os.Args[1:])
	if err != nil { // a usage error: exit 2, as check documents
		fmt.Fprintf(os.Stderr, "certwatch: %v (try --help)\n", err)
		os.Exit(2)
	}
	logger := promslog.New(logConfig)
	sh := shard.Shard{Index: *shardIndex, Total: *shardTotal}
	if err := sh.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "certwatch:", err)
		os.Exit(2)
	}

	if command == checkCmd.FullCommand() {
		os.Exit(runCheck(checkFlags, *configFile, kubeFlags, sh, logConfig))
	}

	if *configCheck {
		if _, err := config.Load(*configFile); err != nil {
			fmt.Fprintln(os.Stderr, "configuration invalid:", err)
			os.Exit(1)
		}
		fmt.Println("configuration valid:", *configFile)
		return
	}

	logger.Info("Starting certwatch", "version", version.Info(), "build_context", version.BuildContext())

	static := prometheus.NewRegistry()
	static.MustRegister(
		versioncollector.NewCollector("certwatch"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	inspector := inspect.NewInspector(nil)
	exporter := collector.New(logger, inspector, *timeoutOffset)
	wiring := newSourceWiring(kubeFlags, inspector, logger)
	defer wiring.stop()
	reloader, err := config.NewReloader(*configFile, logger, static, func(cfg *config.Config) error {
		return wiring.apply(exporter, cfg, sh)
	})
	if err != nil {
		if errors.Is(err, config.ErrNoFile) {
			logger.Error("Cannot start: the configuration file does not exist", "file", *configFile,
				"hint", "name one with --config.file, e.g. --config.file=config.example.yml")
		} else {
			logger.Error("Cannot start without a valid configuration", "file", *configFile, "err", err)
		}
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reloader.WatchSignals(ctx)

	mux := http.NewServeMux()
	mux.Handle(*metricsPath, exporter.MetricsHandler(static))
	mux.Handle("/probe", exporter.ProbeHandler())
	mux.Handle("/-/reload", reloader.Handler(*enableLifecycle))
	// The certificate inventory reads the snapshot of the last scrape; it is
	// served by the same server, behind the same --web.config.file.
	inv := inventory.New(exporter, logger, inventory.Options{Disabled: *disableInventory, DefaultModule: config.DefaultModuleName})
	inv.Register(mux)
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("Healthy\n")) })
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !exporter.Ready() {
			http.Error(w, "Kubernetes caches not synced yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("Ready\n"))
	})
	if *enablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if *metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "certwatch",
			Description: "Expiry and validity of X.509 certificates on TLS endpoints and in files",
			Version:     version.Info(),
			Form: web.LandingForm{
				Action: "/probe",
				Inputs: []web.LandingFormInput{
					{Label: "Target", Type: "text", Name: "target", Placeholder: "host:port"},
					{Label: "Module", Type: "text", Name: "module", Value: config.DefaultModuleName},
				},
			},
			Links: append([]web.LandingLinks{
				{Address: *metricsPath, Text: "Metrics"},
				{Address: "/-/healthy", Text: "Health"},
			}, inv.LandingLinks()...),
		})
		if err != nil {
			logger.Error("Building the landing page", "err", err)
			os.Exit(1)
		}
		mux.Handle("/", landing)
	}

	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(shutdownCtx)
	}()
	if err := web.ListenAndServe(server, toolkitFlags, logger); err != nil && err != http.ErrServerClosed {
		logger.Error("Web server stopped", "err", err)
		os.Exit(1)
	}
}
