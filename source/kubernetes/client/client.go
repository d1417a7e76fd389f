// Package client connects certwatch to Kubernetes API servers (in-cluster
// or through kubeconfigs, one connection per block of the kubernetes
// section) and runs the Kubernetes sources across configuration reloads: a
// cluster's informers are restarted only when its own block changes, and a
// cluster that cannot be reached or configured is reported without hiding
// the others.
package client

import (
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sync"

	"github.com/alecthomas/kingpin/v2"
	"k8s.io/client-go/rest"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/shard"
	"github.com/certwatch/certwatch/source"
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
		Kubeconfig: app.Flag("kubeconfig", "Kubeconfig file for the Kubernetes source (for blocks that set no kubeconfig of their own); the in-cluster configuration when empty.").Default("").String(),
		QPS:        app.Flag("kube.qps", "Queries per second to the Kubernetes API server.").Default("20").Float64(),
		Burst:      app.Flag("kube.burst", "Burst of queries to the Kubernetes API server.").Default("40").Int(),
	}
}

// RESTConfig builds the client configuration from the flags alone.
func (f *Flags) RESTConfig() (*rest.Config, error) { return f.restConfigFor(config.Kubernetes{}) }

// Runner owns the running Kubernetes sources: one per block of the
// kubernetes section, each with its own connection.
type Runner struct {
	flags  *Flags
	logger *slog.Logger

	mu       sync.Mutex
	clusters map[string]*cluster // by the block's cluster name ("" for an unnamed block)
	order    []source.Collector  // the clusters, in the order of the blocks
}

// NewRunner returns a Runner; the API connections are made on first use.
func NewRunner(flags *Flags, logger *slog.Logger) *Runner {
	return &Runner{flags: flags, logger: logger, clusters: map[string]*cluster{}}
}

// Apply returns the sources of a configuration's kubernetes blocks, in
// their order. A cluster keeps running while its own block, its kubeconfig
// file's content and the shard stay the same; one whose connection could
// not be configured is tried again. It returns an error, and keeps every running source, when a source
// cannot start: an unnamed block without a usable connection, or an
// unreadable ca_file. A named block whose kubeconfig or context cannot be
// used is not an error: that cluster reports itself down.
func (r *Runner) Apply(blocks config.KubernetesClusters, sh shard.Shard) ([]source.Collector, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := make(map[string]*cluster, len(blocks))
	var order []source.Collector
	var started []*cluster
	for _, b := range blocks {
		c := r.clusters[b.Cluster]
		if c == nil || c.connErr != nil || c.shard != sh || !reflect.DeepEqual(c.block, b) ||
			c.kubeconfigSum != r.flags.kubeconfigSum(b) {
			var err error
			if c, err = newCluster(r.flags, b, sh, r.logger); err != nil {
				return r.order, err // nothing of this configuration was started yet
			}
			started = append(started, c)
		}
		next[b.Cluster] = c
		order = append(order, c)
	}
	var replaced []*cluster
	for name, c := range r.clusters {
		if next[name] != c {
			replaced = append(replaced, c)
		}
	}
	stopClusters(r.logger, replaced...)
	for _, c := range started {
		c.start()
	}
	r.clusters, r.order = next, order
	return order, nil
}

// Stop stops every running source.
func (r *Runner) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	stopClusters(r.logger, slices.Collect(maps.Values(r.clusters))...)
	r.clusters, r.order = map[string]*cluster{}, nil
}
