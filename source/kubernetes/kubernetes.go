// Package kubernetes is the source that finds certificates in Kubernetes:
// Secrets (kubernetes.io/tls and others by key pattern, PKCS#12 and JKS
// values included), ConfigMaps, and the caBundle fields of webhook
// configurations, APIServices and CRD conversion webhooks.
//
// It watches with client-go informers (one list, then a watch; no polling
// and no list per scrape). Objects are parsed when their resourceVersion
// changes, inside the informer's transform, which then strips the payload so
// the informer cache holds metadata only: memory grows with the number of
// certificates, not with the bytes of every Secret. A scrape reads the parsed
// results.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/shard"
	"github.com/certwatch/certwatch/source"
)

// Kinds of Kubernetes place, used as the "source" label.
const (
	KindSecret            = "secret"
	KindConfigMap         = "configmap"
	KindValidatingWebhook = "validatingwebhook"
	KindMutatingWebhook   = "mutatingwebhook"
	KindAPIService        = "apiservice"
	KindCRD               = "crd"
)

// Labels certwatch adds to Kubernetes places.
const (
	LabelNamespace   = "kube_namespace"
	LabelCertificate = "certmanager_certificate"
)

// certManagerCertificateAnnotation names the cert-manager Certificate that
// wrote a Secret.
const certManagerCertificateAnnotation = "cert-manager.io/certificate-name"

// Source watches the objects a configuration selects.
type Source struct {
	logger *slog.Logger
	cfg    config.Kubernetes
	client kubernetes.Interface
	dyn    dynamic.Interface
	verify source.VerifyParams // for certificates without a ca.crt beside them
	shard  shard.Shard

	mu      sync.RWMutex
	objects map[string]*parsed // by kind/namespace/name
	// owned are the keys of objects this replica reports, sorted; nil when
	// objects came or went since a scrape last built it.
	owned []string
	// dependents are the Secrets parsed with a password from
	// secrets.password_secret, by the password Secret's namespace: they are
	// parsed again when that password changes.
	dependents map[string]map[string]struct{}
	watches    []*informerWatch
	sel        selection // namespace_selector, annotation_selector, exposed labels (selection.go)
	// mesh holds the service-mesh presets' objects (mesh.go); nil when none is on.
	mesh *meshState

	pwMu      sync.Mutex
	passwords map[string]*passwordEntry // by the password Secret's namespace; values never logged
	pwGen     uint64                    // counts password changes
	reparses  workqueue.TypedRateLimitingInterface[string]

	// cm reports cert-manager's objects (certmanager.go); nil when off.
	cm *certManager

	cancel   context.CancelFunc
	stopped  chan struct{}
	started  bool
	resyncOf time.Duration
}

// parsed is what one object yielded.
type parsed struct {
	resourceVersion string
	findings        []source.Finding
	password        *passwordUse // set when a value was opened with secrets.password_secret
}

// watch is one informer: a resource, cluster-wide or in one namespace.
type informerWatch struct {
	resource  string
	namespace string // "" for cluster-wide
	informer  cache.SharedIndexInformer

	mu       sync.Mutex
	errors   map[source.Class]float64
	lastErr  string
	lastTime time.Time
}

// Status reports one informer's health for the exporter's own metrics.
type Status struct {
	Resource, Namespace string
	Synced              bool
	WatchErrors         map[source.Class]float64
}

// New prepares a Source; Start begins watching.
// Every replica watches every object (an informer cannot be split); sh
// decides which objects' certificates this replica reports.
func New(cfg config.Kubernetes, sh shard.Shard, client kubernetes.Interface, dyn dynamic.Interface, logger *slog.Logger) (*Source, error) {
	s := &Source{logger: logger, cfg: cfg, shard: sh, client: client, dyn: dyn, objects: map[string]*parsed{},
		dependents: map[string]map[string]struct{}{}, passwords: map[string]*passwordEntry{},
		verify: source.VerifyParams{RootsID: "system"}}
	if cfg.CAFile != "" {
		ca, err := source.LoadCAFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kubernetes.ca_file: %w", err)
		}
		s.verify = ca.VerifyParams()
	}
	s.verify.Revocation = cfg.Revocation
	var err error
	if s.sel, err = newSelection(cfg); err != nil {
		return nil, err
	}
	s.buildInformers()
	return s, nil
}

// Start runs the informers until Stop.
func (s *Source) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.stopped = make(chan struct{})
	s.reparses = workqueue.NewTypedRateLimitingQueue(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](reparseRetryMin, reparseRetryMax))
	var wg sync.WaitGroup
	s.startSelection(ctx, &wg) // before any informer: their transforms queue namespaces
	run := func(w *informerWatch) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.informer.RunWithContext(ctx)
		}()
	}
	var first []cache.InformerSynced
	for _, w := range s.watches {
		if startsFirst(w.resource) {
			run(w)
			first = append(first, w.informer.HasSynced)
		}
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		// Password Secrets first, so keystores are opened with their
		// password at once instead of being fetched again when it arrives;
		// bounded, so an unreadable password Secret holds nothing back.
		if len(first) > 0 {
			waitCtx, cancelWait := context.WithTimeout(ctx, passwordSyncWait)
			cache.WaitForCacheSync(waitCtx.Done(), first...)
			cancelWait()
		}
		for _, w := range s.watches {
			if !startsFirst(w.resource) && ctx.Err() == nil {
				run(w)
			}
		}
	}()
	go func() {
		defer wg.Done()
		s.runReparses(ctx)
	}()
	s.startCertManager(ctx, &wg)
	go func() {
		wg.Wait()
		close(s.stopped)
	}()
	s.started = true
}

// Stop ends the informers and waits for them.
func (s *Source) Stop() {
	if !s.started {
		return
	}
	s.cancel()
	s.reparses.ShutDown()
	s.stopSelection()
	<-s.stopped
}

// Synced reports whether every informer has completed its first list.
func (s *Source) Synced() bool {
	for _, w := range s.watches {
		if !w.informer.HasSynced() {
			return false
		}
	}
	return true
}

// WaitForSync waits until Synced or ctx ends.
func (s *Source) WaitForSync(ctx context.Context) bool {
	var synced []cache.InformerSynced
	for _, w := range s.watches {
		synced = append(synced, w.informer.HasSynced)
	}
	return cache.WaitForCacheSync(ctx.Done(), synced...)
}

// Statuses reports every informer's health.
func (s *Source) Statuses() []Status {
	out := make([]Status, 0, len(s.watches))
	for _, w := range s.watches {
		w.mu.Lock()
		st := Status{Resource: w.resource, Namespace: w.namespace, Synced: w.informer.HasSynced(), WatchErrors: cloneCounts(w.errors)}
		w.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// cloneCounts copies error counts for a caller outside the lock.
func cloneCounts(m map[source.Class]float64) map[source.Class]float64 {
	out := make(map[source.Class]float64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Collect returns the findings of every watched object, from the parsed
// cache: no API call happens during a scrape.
func (s *Source) Collect(context.Context) []source.Finding {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owned == nil { // the set of objects changed since the last scrape
		s.owned = ownedKeys(s.objects, s.shard)
	}
	var out []source.Finding
	for _, k := range s.owned {
		out = append(out, s.objects[k].findings...)
	}
	return s.withMesh(out)
}

// Objects returns how many objects are held, for tests and benchmarks.
func (s *Source) Objects() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.objects)
}

// store records an object's findings, unless its resourceVersion was
// already parsed (transforms may run more than once for one version).
func (s *Source) store(key, resourceVersion string, parse func() []source.Finding) {
	s.storeParsed(key, resourceVersion, func() parsed { return parsed{findings: parse()} })
}

// storeParsed is store for parses that may depend on a password Secret.
func (s *Source) storeParsed(key, resourceVersion string, parse func() parsed) {
	s.mu.RLock()
	p, ok := s.objects[key]
	s.mu.RUnlock()
	if ok && p.resourceVersion == resourceVersion || s.hold(key, resourceVersion) {
		return
	}
	np := parse()
	np.resourceVersion = resourceVersion
	s.mu.Lock()
	s.putLocked(key, &np)
	s.mu.Unlock()
	s.recheckPassword(key, np.password)
}

// putLocked records p as key's findings and keeps dependents in step.
func (s *Source) putLocked(key string, p *parsed) {
	if s.holdLocked(key, p.resourceVersion) {
		return // its namespace stopped matching meanwhile
	}
	s.dropDependentLocked(key)
	_, had := s.objects[key]
	if len(p.findings) == 0 {
		if had {
			delete(s.objects, key)
			s.owned = nil
		}
		return
	}
	if !had {
		s.owned = nil
	}
	s.objects[key] = p
	if p.password != nil {
		deps := s.dependents[p.password.namespace]
		if deps == nil {
			deps = map[string]struct{}{}
			s.dependents[p.password.namespace] = deps
		}
		deps[key] = struct{}{}
	}
}

func (s *Source) dropDependentLocked(key string) {
	if old := s.objects[key]; old != nil && old.password != nil {
		ns := old.password.namespace
		delete(s.dependents[ns], key)
		if len(s.dependents[ns]) == 0 {
			delete(s.dependents, ns)
		}
	}
}

func (s *Source) forget(key string) {
	s.mu.Lock()
	s.unholdLocked(key)
	s.dropDependentLocked(key)
	if _, had := s.objects[key]; had {
		delete(s.objects, key)
		s.owned = nil
	}
	s.mu.Unlock()
}

// watchErrorHandler counts and logs list/watch failures by class; RBAC
// denials become "permission".
func (s *Source) watchErrorHandler(w *informerWatch) cache.WatchErrorHandlerWithContext {
	return func(ctx context.Context, _ *cache.Reflector, err error) {
		if ctx.Err() != nil {
			return // stopping
		}
		class := classifyAPIError(err)
		if class == "" {
			return // a watch closing normally
		}
		w.mu.Lock()
		if w.errors == nil {
			w.errors = map[source.Class]float64{}
		}
		w.errors[class]++
		w.lastErr, w.lastTime = err.Error(), time.Now()
		w.mu.Unlock()
		s.logger.Warn("Kubernetes watch failed", "resource", w.resource, "namespace", w.namespace, "class", class, "err", err)
	}
}

func classifyAPIError(err error) source.Class {
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return ""
	case apierrors.IsResourceExpired(err), apierrors.IsGone(err):
		return "" // routine: the informer relists
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return source.ClassPermission
	case apierrors.IsNotFound(err):
		return source.ClassNotFound
	case apierrors.IsTimeout(err), apierrors.IsServerTimeout(err):
		return source.ClassTimeout
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return source.ClassUnknown
	}
	if c := source.Infer(err, ""); c != "" {
		return c
	}
	if isEOF(err) {
		return ""
	}
	return source.ClassUnreachable
}

func (s *Source) namespaceExcluded(sel config.Selection, ns string) bool {
	return slices.Contains(sel.ExcludeNamespaces, ns)
}

// placeLabels are the configured labels plus the object's namespace and,
// for cert-manager Secrets, the Certificate that wrote it.
func (s *Source) placeLabels(meta metav1.Object) map[string]string {
	labels := make(map[string]string, len(s.cfg.Labels)+2+s.sel.exposed.count())
	for k, v := range s.cfg.Labels {
		labels[k] = v
	}
	if ns := meta.GetNamespace(); ns != "" {
		labels[LabelNamespace] = ns
	}
	if name := meta.GetAnnotations()[certManagerCertificateAnnotation]; name != "" {
		labels[LabelCertificate] = name
	}
	s.sel.exposed.addTo(labels, meta)
	return labels
}

func objectKey(kind, namespace, name string) string { return kind + "/" + namespace + "/" + name }

func targetOf(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// The health of every informer, as series about the source.
const (
	nameSynced      = "certwatch_kubernetes_informer_synced"
	helpSynced      = "Whether the Kubernetes informer has completed its first list (1) or not yet (0); namespace is empty for cluster-wide informers."
	nameWatchErrors = "certwatch_kubernetes_watch_errors_total"
	helpWatchErrors = "List and watch failures of the Kubernetes informer, by error class (permission for RBAC denials)."
)

// Name is the collector label of the Kubernetes source.
func (s *Source) Name() string { return "kubernetes" }

// Ready reports whether every informer has completed its first list.
func (s *Source) Ready() bool { return s.Synced() }

// Scrape is Collect, with every informer's health as status.
func (s *Source) Scrape(ctx context.Context) source.Result {
	findings := s.Collect(ctx)
	status := statusSamples(s.Statuses())
	status = append(status, s.certManagerSamples(time.Now())...)
	return source.Result{Findings: findings, Status: status}
}

// statusSamples are informers' health as series about the source.
func statusSamples(statuses []Status) []source.Sample {
	var out []source.Sample
	for _, st := range statuses {
		out = append(out, source.Sample{Name: nameSynced, Help: helpSynced,
			LabelNames: []string{"resource", "namespace"}, Values: []string{st.Resource, st.Namespace}, Value: boolValue(st.Synced)})
		for _, class := range source.Classes {
			n, ok := st.WatchErrors[class]
			if !ok && class != source.ClassPermission {
				continue // permission is always present, so "RBAC denied" alerts have a series to match
			}
			out = append(out, source.Sample{Name: nameWatchErrors, Help: helpWatchErrors, Counter: true,
				LabelNames: []string{"resource", "namespace", "class"}, Values: []string{st.Resource, st.Namespace, string(class)}, Value: n})
		}
	}
	return out
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// ownedKeys returns the keys of objects this replica reports, sorted, so
// that places come out in the same order on every scrape.
func ownedKeys(objects map[string]*parsed, sh shard.Shard) []string {
	owned := make([]string, 0, len(objects))
	for k := range objects {
		if sh.Owns(k) {
			owned = append(owned, k)
		}
	}
	sort.Strings(owned)
	return owned
}
