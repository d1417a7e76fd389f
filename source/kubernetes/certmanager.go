package kubernetes

// cert-manager lifecycle: Certificates (Ready, renewal, failed issuances),
// the newest CertificateRequest of each, Issuers and ClusterIssuers, and
// whether each Certificate's Secret holds what its status claims.
//
// The four kinds are watched with dynamic informers once discovery says
// cert-manager.io/v1 is served. Each transform keeps the few fields reported
// in a small struct and leaves only metadata in the informer cache, so
// memory follows the number of objects, not their size (a Certificate's
// status, a CertificateRequest's CSR and certificate). These watches do not
// hold /-/ready back: cert-manager may be installed after certwatch, and a
// denied or missing cert-manager API is reported in the informer metrics.

import (
	"context"
	"crypto/x509"
	"maps"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/cache"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/source"
)

// The cert-manager resources, as the resource label of the informer
// metrics names them (plural.group, as kubectl does).
const (
	ResourceCMCertificates        = "certificates.cert-manager.io"
	ResourceCMCertificateRequests = "certificaterequests.cert-manager.io"
	ResourceCMIssuers             = "issuers.cert-manager.io"
	ResourceCMClusterIssuers      = "clusterissuers.cert-manager.io"
)

const (
	certManagerGroupVersion = "cert-manager.io/v1"
	certManagerGroup        = "cert-manager.io"
	// Annotations cert-manager puts on the CertificateRequests it creates.
	certManagerRevisionAnnotation = "cert-manager.io/certificate-revision"
)

// certManagerRediscover is how often discovery asks again whether
// cert-manager.io/v1 is served while it is not: one small request.
var certManagerRediscover = time.Minute

// certManagerDiscoveryTimeout bounds one discovery request.
var certManagerDiscoveryTimeout = 30 * time.Second

// certManagerResources are the watched resources, in discovery's plural
// names; the cluster-scoped one has an empty namespace in its key.
var certManagerResources = []struct {
	resource, plural string
}{
	{ResourceCMCertificates, "certificates"},
	{ResourceCMCertificateRequests, "certificaterequests"},
	{ResourceCMIssuers, "issuers"},
	{ResourceCMClusterIssuers, "clusterissuers"},
}

// Kinds of issuer.
const (
	kindIssuer        = "Issuer"
	kindClusterIssuer = "ClusterIssuer"
)

// Problems between a Certificate and the Secret it writes: a bounded set.
const (
	ProblemSecretMissing    = "secret_missing"     // the Secret does not exist
	ProblemSecretNotWatched = "secret_not_watched" // kubernetes.secrets does not select it: nothing to compare
	ProblemSecretUnreadable = "secret_unreadable"  // tls.crt holds no readable certificate
	ProblemOlderCertificate = "older_certificate"  // its leaf expires before status.notAfter
	ProblemNamesNotCovered  = "names_not_covered"  // its leaf lacks a name of spec.dnsNames, ipAddresses or uris
)

// States of a CertificateRequest, from its conditions.
const (
	requestStateIssued  = "issued"
	requestStatePending = "pending" // neither issued nor refused yet (approval, issuance)
	requestStateFailed  = "failed"
	requestStateDenied  = "denied"  // an approver refused it
	requestStateInvalid = "invalid" // cert-manager found it malformed
)

const (
	conditionReady   = "Ready"
	conditionUnknown = "Unknown"
)

// cmCondition is the Ready condition of an object.
type cmCondition struct {
	status, reason string // status is True, False or Unknown; "" when absent
	since          time.Time
}

// cmCertificate is what is kept of a Certificate.
type cmCertificate struct {
	namespace, name                        string
	secretName                             string
	issuerName, issuerKind, issuerGroup    string
	dnsNames, ipAddresses, uris            []string
	ready                                  cmCondition
	notAfter, renewalTime, lastFailureTime time.Time
	failedIssuanceAttempts                 int64
}

// cmRequest is what is kept of a CertificateRequest.
type cmRequest struct {
	name        string
	certificate string // the Certificate it was made for, in its namespace
	revision    int
	created     time.Time
	state       string
	reason      string
}

// cmIssuer is what is kept of an Issuer or ClusterIssuer.
type cmIssuer struct {
	kind, namespace, name string
	issuerType            string // acme, ca, selfSigned, vault, venafi; "" for others
	ready                 cmCondition
}

// certManager is the cert-manager part of a Source.
type certManager struct {
	mode  config.CertManagerMode
	grace time.Duration

	mu           sync.RWMutex
	watching     bool
	watches      []*informerWatch
	missing      map[source.Class]float64 // failed discoveries while enabled: true finds no API
	certificates map[string]*cmCertificate
	requests     map[string]map[string]*cmRequest // by namespace, then name
	issuers      map[string]*cmIssuer             // by kind/namespace/name
}

// startCertManager discovers the cert-manager API and watches it when served;
// its goroutines join wg.
func (s *Source) startCertManager(ctx context.Context, wg *sync.WaitGroup) {
	mode := s.cfg.CertManager.Mode()
	if mode == config.CertManagerDisabled {
		return
	}
	s.cm = &certManager{mode: mode, grace: s.cfg.CertManager.Grace(), missing: map[source.Class]float64{},
		certificates: map[string]*cmCertificate{}, requests: map[string]map[string]*cmRequest{}, issuers: map[string]*cmIssuer{}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.discoverCertManager(ctx, wg)
	}()
}

// discoverCertManager asks until cert-manager.io/v1 is served, then starts
// its informers. It logs each change of what it finds, not each attempt.
func (s *Source) discoverCertManager(ctx context.Context, wg *sync.WaitGroup) {
	lastLogged := ""
	for {
		served, err := s.certManagerServed(ctx)
		if ctx.Err() != nil {
			return // stopping
		}
		if len(served) > 0 {
			s.watchCertManager(ctx, wg, served)
			return
		}
		state, class := "absent", source.ClassNotFound
		if err != nil {
			state, class = "error: "+err.Error(), classifyAPIError(err)
			if class == "" {
				class = source.ClassUnreachable
			}
		}
		if s.cm.mode == config.CertManagerEnabled {
			s.cm.mu.Lock()
			s.cm.missing[class]++
			s.cm.mu.Unlock()
		}
		if state != lastLogged {
			lastLogged = state
			switch {
			case s.cm.mode == config.CertManagerEnabled && err == nil:
				s.logger.Error("kubernetes.cert_manager.enabled is true, but the API server does not serve "+certManagerGroupVersion+
					" certificates: install cert-manager's CRDs, or set enabled to auto; asking again every minute",
					"group_version", certManagerGroupVersion)
			case err == nil:
				s.logger.Info("cert-manager's API ("+certManagerGroupVersion+") is not served: cert-manager objects are not watched; asking again every minute",
					"group_version", certManagerGroupVersion)
			default:
				s.logger.Warn("Kubernetes discovery of cert-manager's API failed", "group_version", certManagerGroupVersion,
					"class", class, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(certManagerRediscover):
		}
	}
}

// certManagerServed returns the watched resources cert-manager.io/v1
// serves: none when the group version is not served (err nil) or discovery
// failed (err set). Certificates are required: without them nothing else
// is reported.
func (s *Source) certManagerServed(ctx context.Context) ([]string, error) {
	// Bounded, and cancelled by Stop: an unreachable API server must not
	// hold a reload or a shutdown.
	ctx, cancel := context.WithTimeout(ctx, certManagerDiscoveryTimeout)
	defer cancel()
	list, err := discovery.ToDiscoveryInterfaceWithContext(s.client.Discovery()).ServerResourcesForGroupVersionWithContext(ctx, certManagerGroupVersion)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, r := range list.APIResources {
		names[r.Name] = true
	}
	if !names["certificates"] {
		return nil, nil
	}
	var out []string
	for _, r := range certManagerResources {
		if names[r.plural] {
			out = append(out, r.resource)
		}
	}
	return out, nil
}

// watchCertManager builds and runs the informers of the served resources.
func (s *Source) watchCertManager(ctx context.Context, wg *sync.WaitGroup, served []string) {
	var watches []*informerWatch
	for _, r := range certManagerResources {
		if !slices.Contains(served, r.resource) {
			continue
		}
		gvr := schema.GroupVersionResource{Group: certManagerGroup, Version: "v1", Resource: r.plural}
		var transform func(*unstructured.Unstructured)
		var forget func(namespace, name string)
		switch r.resource {
		case ResourceCMCertificates:
			transform, forget = s.cm.storeCertificate, s.cm.forgetCertificate
		case ResourceCMCertificateRequests:
			transform, forget = s.cm.storeRequest, s.cm.forgetRequest
		case ResourceCMIssuers:
			transform = func(u *unstructured.Unstructured) { s.cm.storeIssuer(kindIssuer, u) }
			forget = func(ns, name string) { s.cm.forgetIssuer(kindIssuer, ns, name) }
		case ResourceCMClusterIssuers:
			transform = func(u *unstructured.Unstructured) { s.cm.storeIssuer(kindClusterIssuer, u) }
			forget = func(ns, name string) { s.cm.forgetIssuer(kindClusterIssuer, ns, name) }
		}
		watches = append(watches, s.certManagerInformer(r.resource, gvr, transform, forget))
	}
	s.cm.mu.Lock()
	s.cm.watching, s.cm.watches = true, watches
	s.cm.mu.Unlock()
	s.logger.Info("Watching cert-manager objects", "resources", strings.Join(served, ","))
	for _, w := range watches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.informer.RunWithContext(ctx)
		}()
	}
}

// certManagerInformer is a cluster-wide dynamic informer whose transform
// keeps the reported fields through store and leaves metadata only.
func (s *Source) certManagerInformer(resource string, gvr schema.GroupVersionResource, store func(*unstructured.Unstructured), forget func(namespace, name string)) *informerWatch {
	lw := listWatchOf(s.dyn.Resource(gvr), "", "")
	informer := cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, s.dyn), &unstructured.Unstructured{}, cache.SharedIndexInformerOptions{})
	w := &informerWatch{resource: resource, informer: informer}
	_ = informer.SetTransform(certManagerTransform(store))
	_ = informer.SetWatchErrorHandlerWithContext(s.watchErrorHandler(w))
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if u, ok := obj.(*unstructured.Unstructured); ok {
				forget(u.GetNamespace(), u.GetName())
			}
		},
	})
	return w
}

// certManagerTransform hands each object to store and keeps its metadata.
func certManagerTransform(store func(*unstructured.Unstructured)) cache.TransformFunc {
	return func(obj any) (any, error) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return obj, nil
		}
		// The transform may see an object it already stripped again (the
		// initial list streamed over a watch is replaced into the store):
		// every cert-manager object has a spec (the CRDs require it), a
		// stripped one has none.
		if _, hasSpec := u.Object["spec"]; !hasSpec {
			return u, nil
		}
		store(u)
		return stripUnstructured(u), nil
	}
}

// stripUnstructured keeps the metadata an informer needs.
func stripUnstructured(u *unstructured.Unstructured) *unstructured.Unstructured {
	out := &unstructured.Unstructured{Object: map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind()}}
	out.SetNamespace(u.GetNamespace())
	out.SetName(u.GetName())
	out.SetUID(u.GetUID())
	out.SetResourceVersion(u.GetResourceVersion())
	return out
}

func (cm *certManager) storeCertificate(u *unstructured.Unstructured) {
	c := parseCertificate(u)
	cm.mu.Lock()
	cm.certificates[u.GetNamespace()+"/"+u.GetName()] = c
	cm.mu.Unlock()
}

func (cm *certManager) forgetCertificate(namespace, name string) {
	cm.mu.Lock()
	delete(cm.certificates, namespace+"/"+name)
	cm.mu.Unlock()
}

func (cm *certManager) storeRequest(u *unstructured.Unstructured) {
	r := parseRequest(u)
	cm.mu.Lock()
	defer cm.mu.Unlock()
	byName := cm.requests[u.GetNamespace()]
	if r.certificate == "" { // not made for a Certificate: nothing to report it under
		delete(byName, r.name)
		return
	}
	if byName == nil {
		byName = map[string]*cmRequest{}
		cm.requests[u.GetNamespace()] = byName
	}
	byName[r.name] = r
}

func (cm *certManager) forgetRequest(namespace, name string) {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	delete(cm.requests[namespace], name)
	if len(cm.requests[namespace]) == 0 {
		delete(cm.requests, namespace)
	}
}

func (cm *certManager) storeIssuer(kind string, u *unstructured.Unstructured) {
	i := parseIssuer(kind, u)
	cm.mu.Lock()
	cm.issuers[kind+"/"+u.GetNamespace()+"/"+u.GetName()] = i
	cm.mu.Unlock()
}

func (cm *certManager) forgetIssuer(kind, namespace, name string) {
	cm.mu.Lock()
	delete(cm.issuers, kind+"/"+namespace+"/"+name)
	cm.mu.Unlock()
}

// parseCertificate reads the reported fields of a Certificate. Fields
// missing or of the wrong type read as empty: the API server validated
// the object against cert-manager's schema.
func parseCertificate(u *unstructured.Unstructured) *cmCertificate {
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	status, _, _ := unstructured.NestedMap(u.Object, "status")
	c := &cmCertificate{namespace: u.GetNamespace(), name: u.GetName(),
		secretName:  cmString(spec, "secretName"),
		issuerName:  cmString(spec, "issuerRef", "name"),
		issuerKind:  cmString(spec, "issuerRef", "kind"),
		issuerGroup: cmString(spec, "issuerRef", "group"),
		dnsNames:    cmStrings(spec, "dnsNames"), ipAddresses: cmStrings(spec, "ipAddresses"), uris: cmStrings(spec, "uris"),
		ready:    cmReadyCondition(status),
		notAfter: cmTime(status, "notAfter"), renewalTime: cmTime(status, "renewalTime"), lastFailureTime: cmTime(status, "lastFailureTime"),
	}
	// cert-manager's defaults for an issuerRef that leaves them out.
	if c.issuerKind == "" {
		c.issuerKind = kindIssuer
	}
	if c.issuerGroup == "" {
		c.issuerGroup = certManagerGroup
	}
	if n, ok, _ := unstructured.NestedInt64(status, "failedIssuanceAttempts"); ok {
		c.failedIssuanceAttempts = n
	}
	return c
}

// parseRequest reads a CertificateRequest's Certificate, revision and state.
func parseRequest(u *unstructured.Unstructured) *cmRequest {
	r := &cmRequest{name: u.GetName(), certificate: u.GetAnnotations()[certManagerCertificateAnnotation],
		created: u.GetCreationTimestamp().Time}
	if r.certificate == "" {
		for _, o := range u.GetOwnerReferences() {
			if o.Kind == "Certificate" && strings.HasPrefix(o.APIVersion, certManagerGroup+"/") {
				r.certificate = o.Name
			}
		}
	}
	r.revision, _ = strconv.Atoi(u.GetAnnotations()[certManagerRevisionAnnotation])
	status, _, _ := unstructured.NestedMap(u.Object, "status")
	conds := cmConditions(status)
	ready := conds[conditionReady]
	switch {
	case conds["Denied"].status == "True":
		r.state, r.reason = requestStateDenied, conds["Denied"].reason
	case conds["InvalidRequest"].status == "True":
		r.state, r.reason = requestStateInvalid, conds["InvalidRequest"].reason
	case ready.status == "True":
		r.state, r.reason = requestStateIssued, ready.reason
	case ready.status == "False" && ready.reason == "Failed":
		r.state, r.reason = requestStateFailed, ready.reason
	default:
		r.state, r.reason = requestStatePending, ready.reason
	}
	return r
}

// cmIssuerTypes are the issuer kinds cert-manager itself implements, by
// their spec key.
var cmIssuerTypes = []string{"acme", "ca", "selfSigned", "vault", "venafi"}

func parseIssuer(kind string, u *unstructured.Unstructured) *cmIssuer {
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	status, _, _ := unstructured.NestedMap(u.Object, "status")
	i := &cmIssuer{kind: kind, namespace: u.GetNamespace(), name: u.GetName(), ready: cmReadyCondition(status)}
	for _, t := range cmIssuerTypes {
		if _, ok := spec[t]; ok {
			i.issuerType = t
			break
		}
	}
	return i
}

func cmConditions(status map[string]any) map[string]cmCondition {
	list, _, _ := unstructured.NestedSlice(status, "conditions")
	out := map[string]cmCondition{}
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		out[cmString(m, "type")] = cmCondition{status: cmString(m, "status"), reason: cmString(m, "reason"), since: cmTime(m, "lastTransitionTime")}
	}
	return out
}

func cmReadyCondition(status map[string]any) cmCondition { return cmConditions(status)[conditionReady] }

func cmString(m map[string]any, path ...string) string {
	v, _, _ := unstructured.NestedString(m, path...)
	return v
}

func cmStrings(m map[string]any, path ...string) []string {
	v, _, _ := unstructured.NestedStringSlice(m, path...)
	return v
}

func cmTime(m map[string]any, path ...string) time.Time {
	v, _, _ := unstructured.NestedString(m, path...)
	if v == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}
	}
	return t
}

// newestRequests returns the newest CertificateRequest of each Certificate,
// by namespace/certificate: the highest revision, then the latest created.
func newestRequests(requests map[string]map[string]*cmRequest) map[string]*cmRequest {
	out := map[string]*cmRequest{}
	for ns, byName := range requests {
		for _, r := range byName {
			k := ns + "/" + r.certificate
			if cur, ok := out[k]; !ok || newerRequest(r, cur) {
				out[k] = r
			}
		}
	}
	return out
}

func newerRequest(a, b *cmRequest) bool {
	if a.revision != b.revision {
		return a.revision > b.revision
	}
	if !a.created.Equal(b.created) {
		return a.created.After(b.created)
	}
	return a.name > b.name
}

// secretView is what the Secrets watch knows of one Secret.
type secretView struct {
	problem string            // a problem found before any comparison, or ""
	leaf    *x509.Certificate // the first certificate of tls.crt
	synced  bool              // false: not known yet, report nothing
}

// certificateSecret looks up the Secret a Certificate writes in what the
// Secrets informers hold.
func (s *Source) certificateSecret(namespace, name string) secretView {
	s.mu.RLock()
	p := s.objects[objectKey(KindSecret, namespace, name)]
	s.mu.RUnlock()
	if p != nil {
		for _, f := range p.findings {
			if f.Key == "tls.crt" {
				if len(f.Certs) == 0 {
					return secretView{problem: ProblemSecretUnreadable, synced: true}
				}
				return secretView{leaf: f.Certs[0], synced: true}
			}
		}
		return secretView{problem: ProblemSecretUnreadable, synced: true}
	}
	sw := s.cfg.Secrets
	if sw == nil {
		return secretView{problem: ProblemSecretNotWatched, synced: true}
	}
	// Not parsed: cached but left out by the selection, absent, or outside
	// what the informers list.
	var covering *informerWatch
	for _, w := range s.watches {
		if w.resource != ResourceSecrets || (w.namespace != "" && w.namespace != namespace) {
			continue
		}
		if _, exists, _ := w.informer.GetIndexer().GetByKey(namespace + "/" + name); exists {
			return secretView{problem: ProblemSecretNotWatched, synced: true}
		}
		covering = w
	}
	switch {
	case covering == nil, sw.LabelSelector != "", !typeSelected(sw.Types, "kubernetes.io/tls"), s.namespaceExcluded(sw.Selection, namespace):
		// The API server was not asked for it, or may have filtered it out.
		return secretView{problem: ProblemSecretNotWatched, synced: true}
	case !covering.informer.HasSynced():
		return secretView{}
	}
	return secretView{problem: ProblemSecretMissing, synced: true}
}

// secretProblems compares a Certificate with its Secret's leaf.
func secretProblems(c *cmCertificate, v secretView) []string {
	if v.problem != "" {
		return []string{v.problem}
	}
	if v.leaf == nil {
		return nil
	}
	var out []string
	if !c.notAfter.IsZero() && v.leaf.NotAfter.Unix() < c.notAfter.Unix() {
		out = append(out, ProblemOlderCertificate)
	}
	if !cmNamesCovered(c, v.leaf) {
		out = append(out, ProblemNamesNotCovered)
	}
	return out
}

// namesCovered reports whether the leaf has every name the Certificate asks
// for: DNS names (a wildcard of the leaf covers one label), IP addresses and
// URIs.
func cmNamesCovered(c *cmCertificate, leaf *x509.Certificate) bool {
	for _, want := range c.dnsNames {
		if !slices.ContainsFunc(leaf.DNSNames, func(have string) bool { return cmDNSCovers(have, want) }) {
			return false
		}
	}
	for _, want := range c.ipAddresses {
		ip := net.ParseIP(want)
		if ip == nil || !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return false
		}
	}
	for _, want := range c.uris {
		if !slices.ContainsFunc(leaf.URIs, func(u *url.URL) bool { return u.String() == want }) {
			return false
		}
	}
	return true
}

func cmDNSCovers(have, want string) bool {
	have, want = strings.ToLower(strings.TrimSuffix(have, ".")), strings.ToLower(strings.TrimSuffix(want, "."))
	if have == want {
		return true
	}
	rest, ok := strings.CutPrefix(have, "*.")
	if !ok {
		return false
	}
	_, wantRest, found := strings.Cut(want, ".")
	return found && wantRest == rest && !strings.HasPrefix(want, "*.")
}

// The cert-manager series. Certificate and issuer series carry
// kube_namespace (empty for ClusterIssuers) and the kubernetes section's
// extra labels.
const (
	helpCMReady          = "Whether the cert-manager Certificate's Ready condition is True (1) or False, Unknown or absent (0)."
	helpCMInfo           = "Always 1: the cert-manager Certificate's Secret, issuer reference and Ready condition status and reason."
	helpCMReadySince     = "Unix time of the last transition of the cert-manager Certificate's Ready condition."
	helpCMRenewal        = "Unix time at which cert-manager renews the Certificate (status.renewalTime); it moves forward on each renewal."
	helpCMRenewalOverdue = "Whether the cert-manager Certificate is past status.renewalTime by more than kubernetes.cert_manager.renewal_grace (1) or not (0)."
	helpCMNotAfter       = "Unix time after which the certificate cert-manager last issued for the Certificate expires (status.notAfter)."
	helpCMFailures       = "Consecutive failed issuances of the cert-manager Certificate (status.failedIssuanceAttempts; 0 after a success)."
	helpCMLastFailure    = "Unix time of the cert-manager Certificate's last failed issuance (status.lastFailureTime)."
	helpCMMismatch       = "1 for each way the Secret disagrees with its cert-manager Certificate: secret_missing, secret_unreadable, older_certificate, names_not_covered; secret_not_watched when kubernetes.secrets does not select it."
	helpCMRequest        = "Always 1: the newest CertificateRequest of the cert-manager Certificate, its state (pending, issued, failed, denied, invalid) and the reason of that condition."
	helpCMIssuerReady    = "Whether the cert-manager Issuer or ClusterIssuer's Ready condition is True (1) or not (0)."
	helpCMIssuerSince    = "Unix time of the last transition of the cert-manager Issuer or ClusterIssuer's Ready condition."
	helpCMIssuerInfo     = "Always 1: the cert-manager Issuer or ClusterIssuer's type (acme, ca, selfSigned, vault, venafi) and Ready reason."
)

// certManagerSamples are the cert-manager series and the health of its
// informers, read from what the transforms kept: no API request.
func (s *Source) certManagerSamples(now time.Time) []source.Sample {
	cm := s.cm
	if cm == nil {
		return nil
	}
	out := s.certManagerInformerSamples()
	extra := slices.Sorted(maps.Keys(s.cfg.Labels))
	labelled := func(names []string, values ...string) ([]string, []string) {
		n := append(slices.Clip(names), extra...)
		for _, k := range extra {
			values = append(values, s.cfg.Labels[k])
		}
		return n, values
	}
	add := func(name, help string, names []string, value float64, values ...string) {
		n, v := labelled(names, values...)
		out = append(out, source.Sample{Name: name, Help: help, LabelNames: n, Values: v, Value: value})
	}
	certLabels := []string{LabelNamespace, LabelCertificate}

	cm.mu.RLock()
	certs := make([]*cmCertificate, 0, len(cm.certificates))
	for _, c := range cm.certificates {
		if s.shard.Owns(objectKey("certificate."+certManagerGroup, c.namespace, c.name)) {
			certs = append(certs, c)
		}
	}
	newest := newestRequests(cm.requests)
	issuers := make([]*cmIssuer, 0, len(cm.issuers))
	for _, i := range cm.issuers {
		if s.shard.Owns(objectKey(strings.ToLower(i.kind)+"."+certManagerGroup, i.namespace, i.name)) {
			issuers = append(issuers, i)
		}
	}
	cm.mu.RUnlock()
	sort.Slice(certs, func(a, b int) bool {
		return certs[a].namespace < certs[b].namespace || certs[a].namespace == certs[b].namespace && certs[a].name < certs[b].name
	})
	sort.Slice(issuers, func(a, b int) bool {
		x, y := issuers[a], issuers[b]
		return x.kind+"/"+x.namespace+"/"+x.name < y.kind+"/"+y.namespace+"/"+y.name
	})

	for _, c := range certs {
		id := []string{c.namespace, c.name}
		status := c.ready.status
		if status == "" {
			status = conditionUnknown
		}
		add("certwatch_certmanager_certificate_ready", helpCMReady, certLabels, boolValue(c.ready.status == "True"), id...)
		add("certwatch_certmanager_certificate_info", helpCMInfo,
			append(certLabels, "secret", "issuer_name", "issuer_kind", "issuer_group", "ready_status", "ready_reason"), 1,
			append(id, c.secretName, c.issuerName, c.issuerKind, c.issuerGroup, status, c.ready.reason)...)
		if !c.ready.since.IsZero() {
			add("certwatch_certmanager_certificate_ready_transition_timestamp_seconds", helpCMReadySince, certLabels, cmUnix(c.ready.since), id...)
		}
		if !c.renewalTime.IsZero() {
			add("certwatch_certmanager_certificate_renewal_timestamp_seconds", helpCMRenewal, certLabels, cmUnix(c.renewalTime), id...)
			add("certwatch_certmanager_certificate_renewal_overdue", helpCMRenewalOverdue, certLabels,
				boolValue(now.After(c.renewalTime.Add(cm.grace))), id...)
		}
		if !c.notAfter.IsZero() {
			add("certwatch_certmanager_certificate_not_after_timestamp_seconds", helpCMNotAfter, certLabels, cmUnix(c.notAfter), id...)
		}
		add("certwatch_certmanager_certificate_failed_issuance_attempts", helpCMFailures, certLabels, float64(c.failedIssuanceAttempts), id...)
		if !c.lastFailureTime.IsZero() {
			add("certwatch_certmanager_certificate_last_failure_timestamp_seconds", helpCMLastFailure, certLabels, cmUnix(c.lastFailureTime), id...)
		}
		if c.secretName != "" {
			if v := s.certificateSecret(c.namespace, c.secretName); v.synced {
				for _, p := range secretProblems(c, v) {
					add("certwatch_certmanager_certificate_secret_mismatch", helpCMMismatch, append(certLabels, "problem"), 1, append(id, p)...)
				}
			}
		}
		if r := newest[c.namespace+"/"+c.name]; r != nil {
			add("certwatch_certmanager_certificate_request_info", helpCMRequest, append(certLabels, "request", "state", "reason"), 1,
				append(id, r.name, r.state, r.reason)...)
		}
	}
	issuerLabels := []string{LabelNamespace, "issuer_name", "issuer_kind"}
	for _, i := range issuers {
		id := []string{i.namespace, i.name, i.kind}
		add("certwatch_certmanager_issuer_ready", helpCMIssuerReady, issuerLabels, boolValue(i.ready.status == "True"), id...)
		add("certwatch_certmanager_issuer_info", helpCMIssuerInfo, append(issuerLabels, "issuer_type", "ready_reason"), 1,
			append(id, i.issuerType, i.ready.reason)...)
		if !i.ready.since.IsZero() {
			add("certwatch_certmanager_issuer_ready_transition_timestamp_seconds", helpCMIssuerSince, issuerLabels, cmUnix(i.ready.since), id...)
		}
	}
	return out
}

// certManagerInformerSamples reports the cert-manager informers as the
// other informers are reported. With enabled: true and no cert-manager API,
// each resource is reported unsynced with its failed discoveries as watch
// errors (not_found when the API is not served), so the informer alerts
// fire.
func (s *Source) certManagerInformerSamples() []source.Sample {
	cm := s.cm
	cm.mu.RLock()
	watching, watches, missing := cm.watching, cm.watches, cloneCounts(cm.missing)
	cm.mu.RUnlock()
	var statuses []Status
	switch {
	case watching:
		for _, w := range watches {
			w.mu.Lock()
			statuses = append(statuses, Status{Resource: w.resource, Synced: w.informer.HasSynced(), WatchErrors: cloneCounts(w.errors)})
			w.mu.Unlock()
		}
	case cm.mode == config.CertManagerEnabled:
		for _, r := range certManagerResources {
			statuses = append(statuses, Status{Resource: r.resource, WatchErrors: missing})
		}
	}
	return statusSamples(statuses)
}

func cmUnix(t time.Time) float64 { return float64(t.Unix()) }
