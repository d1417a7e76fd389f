// Package client connects certwatch to a Kubernetes API server (in-cluster
// or through a kubeconfig) and runs the Kubernetes source across
// configuration reloads: informers are restarted only when the kubernetes
// section of the configuration changes.
package client

import (
	"fmt"
	"log/slog"
	"reflect"
	"sync"

	"github.com/alecthomas/kingpin/v2"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/shard"
	kubesrc "github.com/certwatch/certwatch/source/kubernetes"
)

// Flags are the command-line settings of the API connection.
type Flags struct {
	Kubeconfig *string
	QPS        *float64
	Burst      *int
}

// AddFlags registers --kubeconfig, --kube.qps and --kube.burst.
func AddFlags(app *kingpin.Application) *Flags {
	return &Flags{
		Kubeconfig: app.Flag("kubeconfig", "Kubeconfig file for the Kubernetes source; the in-cluster configuration when empty.").Default("").String(),
		QPS:        app.Flag("kube.qps", "Queries per second to the Kubernetes API server.").Default("20").Float64(),
		Burst:      app.Flag("kube.burst", "Burst of queries to the Kubernetes API server.").Default("40").Int(),
	}
}

// RESTConfig builds the client configuration from the flags.
func (f *Flags) RESTConfig() (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if *f.Kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", *f.Kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(*f.QPS), *f.Burst
	cfg.UserAgent = "certwatch"
	return cfg, nil
}

// Runner owns the running Kubernetes source.
type Runner struct {
	flags  *Flags
	logger *slog.Logger

	mu      sync.Mutex
	cfg     *config.Kubernetes
	shard   shard.Shard
	current *kubesrc.Source
	client  kubernetes.Interface
	dyn     dynamic.Interface
}

// NewRunner returns a Runner; the API connection is made on first use.
func NewRunner(flags *Flags, logger *slog.Logger) *Runner {
	return &Runner{flags: flags, logger: logger}
}

// Apply returns the source for a configuration's kubernetes section,
// restarting the informers only when that section changed. It returns nil
// when the section is absent or the source cannot start (logged).
func (r *Runner) Apply(cfg *config.Kubernetes, sh shard.Shard) *kubesrc.Source {
	r.mu.Lock()
	defer r.mu.Unlock()
	if reflect.DeepEqual(cfg, r.cfg) && sh == r.shard {
		return r.current
	}
	r.shard = sh
	if r.current != nil {
		r.current.Stop()
		r.current = nil
	}
	r.cfg = cfg
	if cfg == nil {
		return nil
	}
	if r.client == nil {
		restCfg, err := r.flags.RESTConfig()
		if err == nil {
			r.client, err = kubernetes.NewForConfig(restCfg)
		}
		if err == nil {
			r.dyn, err = dynamic.NewForConfig(restCfg)
		}
		if err != nil {
			r.logger.Error("Kubernetes source disabled: cannot build a client", "err", err)
			r.client, r.dyn, r.cfg = nil, nil, nil
			return nil
		}
	}
	src, err := kubesrc.New(*cfg, sh, r.client, r.dyn, r.logger)
	if err != nil {
		r.logger.Error("Kubernetes source disabled", "err", err)
		return nil
	}
	src.Start()
	r.current = src
	r.logger.Info("Kubernetes source started")
	return src
}

// Stop stops the running source.
func (r *Runner) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.current != nil {
		r.current.Stop()
		r.current = nil
	}
}
