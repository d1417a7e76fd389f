package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"

	"github.com/certwatch/certwatch/check"
	"github.com/certwatch/certwatch/collector"
	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/inventory"
	"github.com/certwatch/certwatch/shard"
	kubeclient "github.com/certwatch/certwatch/source/kubernetes/client"
)

type checkFlags struct {
	places         *[]string
	expiringWithin *string
	format         *string
	timeout        *time.Duration
}

func addCheckFlags(cmd *kingpin.CmdClause) checkFlags {
	return checkFlags{
		expiringWithin: cmd.Flag("expiring-within", "Also fail places whose chain breaks within this time (30d, 12h).").Default("0s").String(),
		format:         cmd.Flag("format", "Report format: table or json (the inventory API's schema).").Default(check.FormatTable).Enum(check.FormatTable, check.FormatJSON),
		timeout:        cmd.Flag("timeout", "How long collecting may take; unfinished places are reported as timeouts.").Default("60s").Duration(),
		places:         cmd.Arg("places", "host:port endpoints and certificate files to check instead of --config.file's places.").Strings(),
	}
}

// runCheck is `certwatch check`: the exporter's sources and judgement,
// collected once, reported on stdout.
func runCheck(f checkFlags, configFile string, kubeFlags *kubeclient.Flags, sh shard.Shard, logConfig *promslog.Config) int {
	within, err := inventory.ParseWithin(*f.expiringWithin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "certwatch check: --expiring-within:", err)
		return check.ExitUsage
	}
	var cfg *config.Config
	if len(*f.places) > 0 {
		cfg, err = check.ConfigFromArgs(*f.places)
	} else {
		cfg, err = config.Load(configFile)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "certwatch check: configuration invalid:", err)
		return check.ExitUsage
	}
	// Failed places are in the report: the log says only what breaks the
	// check itself, unless asked for more.
	if logConfig.Level == nil || logConfig.Level.String() == "info" {
		logConfig = &promslog.Config{Level: promslog.NewLevel(), Format: logConfig.Format}
		_ = logConfig.Level.Set("error")
	}
	logger := promslog.New(logConfig)
	inspector := inspect.NewInspector(nil)
	exporter := collector.New(logger, inspector, 0)
	wiring := newSourceWiring(kubeFlags, inspector, logger)
	defer wiring.stop()
	if err := wiring.apply(exporter, cfg, sh); err != nil {
		fmt.Fprintln(os.Stderr, "certwatch check:", err)
		return check.ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return check.Run(ctx, exporter, exporter.Ready, check.Options{
		ExpiringWithin: within, Format: *f.format, Timeout: *f.timeout, Progress: os.Stderr,
		Settled: wiring.revocationSettled,
	}, os.Stdout)
}
