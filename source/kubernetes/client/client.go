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
// restarting the informers only when that section (or the shard) changed.
// It returns nil when the section is absent, and an error when the source
// cannot start (no cluster configuration, unreadable ca_file); the running
// source is then kept.
func (r *Runner) Apply(cfg *config.Kubernetes, sh shard.Shard) (*kubesrc.Source, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if reflect.DeepEqual(cfg, r.cfg) && sh == r.shard {
		return r.current, nil
	}
	if cfg == nil {
		r.stopLocked()
		r.cfg, r.shard = nil, sh
		return nil, nil
	}
	if r.client == nil {
		restCfg, err := r.flags.RESTConfig()
		if err != nil {
			return r.current, err
		}
		client, err := kubernetes.NewForConfig(restCfg)
		if err != nil {
			return r.current, fmt.Errorf("kubernetes client: %w", err)
		}
		dyn, err := dynamic.NewForConfig(restCfg)
		if err != nil {
			return r.current, fmt.Errorf("kubernetes dynamic client: %w", err)
		}
		r.client, r.dyn = client, dyn
	}
	src, err := kubesrc.New(*cfg, sh, r.client, r.dyn, r.logger)
	if err != nil {
		return r.current, err
	}
	r.stopLocked()
	src.Start()
	r.current, r.cfg, r.shard = src, cfg, sh
	r.logger.Info("Kubernetes source started")
	return src, nil
}

func (r *Runner) stopLocked() {
	if r.current != nil {
		r.current.Stop()
		r.current = nil
	}
}

// Stop stops the running source.
func (r *Runner) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
}
