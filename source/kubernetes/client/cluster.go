package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/shard"
	"github.com/certwatch/certwatch/source"
	kubesrc "github.com/certwatch/certwatch/source/kubernetes"
)

// The health of a named cluster's connection.
const (
	nameClusterUp = "certwatch_kubernetes_cluster_up"
	helpClusterUp = "Whether the cluster's API server answered certwatch's last /version request (1), or did not, or its kubeconfig or context cannot be used (0). Only for kubernetes blocks that name their cluster."
)

// Defaults of the reachability check.
const (
	defaultProbeInterval = 10 * time.Second
	defaultProbeTimeout  = 5 * time.Second
)

// reachability is what the last /version request said.
type reachability int32

const (
	unprobed reachability = iota
	reachable
	unreachable
)

// cluster is one kubernetes block: its connection, its source and whether
// its API server answers. It is a source.Collector of its own, so one
// cluster's failure leaves the others' places in the scrape.
type cluster struct {
	name   string // the block's cluster; "" for a single unnamed block
	block  config.Kubernetes
	shard  shard.Shard
	logger *slog.Logger

	src *kubesrc.Source // nil when the connection cannot be configured
	// connErr says why src is nil.
	connErr error
	// kubeconfigSum is the digest of the kubeconfig file connected with
	// ("" in-cluster): a reload reconnects when the file changed (a
	// rotated credential in a mounted Secret).
	kubeconfigSum string

	client        kubernetes.Interface
	probeInterval time.Duration
	probeTimeout  time.Duration
	state         atomic.Int32 // a reachability
	// settled latches once the cluster's informers have synced or it was
	// found unreachable: readiness never waits on it again.
	settled atomic.Bool
	cancel  context.CancelFunc
	done    sync.WaitGroup
}

// restConfigFor builds the connection of one block: its kubeconfig (or
// --kubeconfig) and context, or the in-cluster configuration.
func (f *Flags) restConfigFor(k config.Kubernetes) (*rest.Config, error) {
	path := f.kubeconfigPath(k)
	var cfg *rest.Config
	var err error
	switch {
	case path != "":
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
		overrides := &clientcmd.ConfigOverrides{CurrentContext: k.Context}
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
		if err != nil {
			err = fmt.Errorf("kubeconfig %s: %w", path, err)
		}
	case k.Context != "":
		err = fmt.Errorf("context %q needs a kubeconfig: set kubeconfig in the block or --kubeconfig", k.Context)
	default:
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(*f.QPS), *f.Burst
	cfg.UserAgent = "certwatch"
	return cfg, nil
}

// kubeconfigPath is the kubeconfig file a block connects with, "" for the
// in-cluster configuration.
func (f *Flags) kubeconfigPath(k config.Kubernetes) string {
	if k.Kubeconfig != "" {
		return k.Kubeconfig
	}
	return *f.Kubeconfig
}

// kubeconfigSum is the SHA-256 of the block's kubeconfig file, "" when it
// has none or it cannot be read (restConfigFor then says why).
func (f *Flags) kubeconfigSum(k config.Kubernetes) string {
	path := f.kubeconfigPath(k)
	if path == "" {
		return ""
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// newCluster connects a block and prepares its source. For a named block a
// connection that cannot be configured is not an error: the cluster then
// reports itself down and the other clusters carry on. kubesrc.New's own
// errors (an unreadable ca_file) are returned.
func newCluster(flags *Flags, block config.Kubernetes, sh shard.Shard, logger *slog.Logger) (*cluster, error) {
	c := &cluster{name: block.Cluster, block: block, shard: sh, logger: logger,
		probeInterval: defaultProbeInterval, probeTimeout: defaultProbeTimeout}
	if c.name != "" {
		c.logger = logger.With("cluster", c.name)
	}
	c.kubeconfigSum = flags.kubeconfigSum(block)
	restCfg, err := flags.restConfigFor(block)
	if err == nil {
		c.client, err = kubernetes.NewForConfig(restCfg)
	}
	var dyn dynamic.Interface
	if err == nil {
		dyn, err = dynamic.NewForConfig(restCfg)
	}
	if err != nil {
		if c.name == "" {
			return nil, err
		}
		c.connErr = err
		return c, nil
	}
	c.src, err = kubesrc.New(c.sourceConfig(), sh, c.client, dyn, c.logger)
	if err != nil {
		return nil, c.qualify(err)
	}
	return c, nil
}

// sourceConfig is the block as the source sees it: a named cluster's
// places carry the cluster label among the block's labels (validation
// keeps labels.cluster out of such a block).
func (c *cluster) sourceConfig() config.Kubernetes {
	k := c.block
	if c.name != "" {
		k.Labels = maps.Clone(k.Labels)
		if k.Labels == nil {
			k.Labels = map[string]string{}
		}
		k.Labels[config.LabelCluster] = c.name
	}
	return k
}

func (c *cluster) qualify(err error) error {
	if c.name == "" {
		return err
	}
	return fmt.Errorf("kubernetes cluster %s: %w", c.name, err)
}

// start runs the informers and the reachability check.
func (c *cluster) start() {
	if c.src == nil {
		c.state.Store(int32(unreachable))
		c.logger.Error("Kubernetes cluster cannot be configured; its places are missing until the configuration is reloaded", "err", c.connErr)
		return
	}
	c.src.Start()
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		c.probeLoop(ctx)
	}()
	c.logger.Info("Kubernetes source started")
}

// stopWait bounds how long stopping waits for a cluster's informers: one
// whose API server is down may sit in client-go's backoff, which does not
// heed its context, for up to half a minute before it sees it should stop.
const stopWait = 3 * time.Second

// stopClusters ends the informers and reachability checks of clusters,
// all at once, waiting at most stopWait for their informers: those still
// backing off then stop on their own when their backoff ends.
func stopClusters(logger *slog.Logger, clusters ...*cluster) {
	var wg sync.WaitGroup
	for _, c := range clusters {
		if c.src == nil {
			continue
		}
		c.cancel()
		c.done.Wait()
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.src.Stop()
		}()
	}
	stopped := make(chan struct{})
	go func() {
		wg.Wait()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(stopWait):
		logger.Info("Kubernetes informers of an unreachable cluster are still backing off; they stop when their backoff ends")
	}
}

// probeLoop asks the API server for /version now and then: the informers
// retry on their own, this says whether the cluster answers, and lets
// readiness stop waiting for a cluster that does not.
func (c *cluster) probeLoop(ctx context.Context) {
	t := time.NewTicker(c.probeInterval)
	defer t.Stop()
	for {
		c.probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *cluster) probe(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, c.probeTimeout)
	defer cancel()
	_, err := c.client.Discovery().RESTClient().Get().AbsPath("/version").DoRaw(pctx)
	if ctx.Err() != nil {
		return // stopping
	}
	now := reachable
	if err != nil {
		now = unreachable
	}
	was := reachability(c.state.Swap(int32(now)))
	switch {
	case now == unreachable && was != unreachable:
		c.logger.Warn("Kubernetes API server unreachable; the informers keep retrying", "err", err)
	case now == reachable && was == unreachable:
		c.logger.Info("Kubernetes API server reachable again")
	}
}

// Name is the collector label: kubernetes, or kubernetes/<cluster>.
func (c *cluster) Name() string {
	if c.name == "" {
		return "kubernetes"
	}
	return "kubernetes/" + c.name
}

// Ready reports whether the cluster no longer holds readiness back: its
// informers have synced, or it was found unreachable, or it cannot be
// configured. Once true it stays true.
func (c *cluster) Ready() bool {
	if c.settled.Load() {
		return true
	}
	if c.src == nil || c.src.Ready() || reachability(c.state.Load()) == unreachable {
		c.settled.Store(true)
		return true
	}
	return false
}

// Scrape is the source's scrape. For a named cluster every target is
// prefixed with the cluster (the same Secret in two clusters is two
// places), every health series gets the cluster label, and
// certwatch_kubernetes_cluster_up is added.
func (c *cluster) Scrape(ctx context.Context) source.Result {
	var res source.Result
	if c.src != nil {
		res = c.src.Scrape(ctx)
	}
	if c.name == "" {
		return res
	}
	findings := slices.Clone(res.Findings)
	for i := range findings {
		findings[i].Target = c.name + "/" + findings[i].Target
	}
	status := make([]source.Sample, 0, len(res.Status)+1)
	for _, st := range res.Status {
		if !slices.Contains(st.LabelNames, config.LabelCluster) {
			st.LabelNames = append(slices.Clip(st.LabelNames), config.LabelCluster)
			st.Values = append(slices.Clip(st.Values), c.name)
		}
		status = append(status, st)
	}
	up := 0.0
	if c.src != nil && reachability(c.state.Load()) == reachable {
		up = 1
	}
	status = append(status, source.Sample{Name: nameClusterUp, Help: helpClusterUp,
		LabelNames: []string{config.LabelCluster}, Values: []string{c.name}, Value: up})
	return source.Result{Findings: findings, Status: status}
}
