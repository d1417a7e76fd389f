package kubernetes

import (
	"context"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/workqueue"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/source"
)

// ResourceNamespaces is the informer that follows namespace labels for
// namespace_selector.
const ResourceNamespaces = "namespaces"

// relistPageSize bounds one page of the list that reads a namespace again
// when it starts matching a namespace_selector.
const relistPageSize = 500

// selection is what narrows places beyond the API server's own selectors:
// namespace_selector and annotation_selector by kind, and the labels and
// annotations exposed as metric labels.
type selection struct {
	namespace  map[string]labels.Selector // by kind, for kinds with a namespace_selector
	annotation map[string]labels.Selector // by kind, for kinds with an annotation_selector
	exposed    exposedKeys

	// Guarded by Source.mu.
	nsLabels map[string]labels.Set // the labels of every namespace seen
	// held are the objects of namespaces a namespace_selector does not
	// select, by namespace: object key to the resourceVersion seen. They
	// are not parsed (the informer cache keeps no data); when their
	// namespace starts matching they are read again with one list.
	held map[string]map[string]string

	relists workqueue.TypedRateLimitingInterface[string] // namespaces to read again
}

func newSelection(cfg config.Kubernetes) (selection, error) {
	sel := selection{namespace: map[string]labels.Selector{}, annotation: map[string]labels.Selector{},
		exposed: newExposedKeys(cfg.KubernetesSelect), nsLabels: map[string]labels.Set{}, held: map[string]map[string]string{}}
	add := func(kind string, os config.ObjectSelect) error {
		if os.NamespaceSelector != "" {
			ls, err := labels.Parse(os.NamespaceSelector)
			if err != nil {
				return fmt.Errorf("kubernetes namespace_selector of %ss: %w", kind, err)
			}
			sel.namespace[kind] = ls
		}
		if os.AnnotationSelector != "" {
			ls, err := labels.Parse(os.AnnotationSelector)
			if err != nil {
				return fmt.Errorf("kubernetes annotation_selector of %ss: %w", kind, err)
			}
			sel.annotation[kind] = ls
		}
		return nil
	}
	if cfg.Secrets != nil {
		if err := add(KindSecret, cfg.Secrets.ObjectSelect); err != nil {
			return sel, err
		}
	}
	if cfg.ConfigMaps != nil {
		if err := add(KindConfigMap, cfg.ConfigMaps.ObjectSelect); err != nil {
			return sel, err
		}
	}
	return sel, nil
}

// buildSelectInformers adds the CSR informer and, for namespace_selector,
// the Namespace informer.
func (s *Source) buildSelectInformers() {
	if s.cfg.CSRs {
		s.addCSRWatch()
	}
	if len(s.sel.namespace) > 0 {
		nss := s.client.CoreV1().Namespaces()
		s.addWatch(ResourceNamespaces, "", listWatchOf(nss, "", ""), s.client, &corev1.Namespace{}, s.transformNamespace, func(m metav1.Object) { s.setNamespace(m.GetName(), nil, false) })
	}
}

// startsFirst says which informers run before the others: the password
// Secrets, so keystores open at once, and the Namespaces, so objects are
// not held back and read again only because their namespace was not known
// yet.
func startsFirst(resource string) bool {
	return resource == ResourcePasswordSecrets || resource == ResourceNamespaces
}

// startSelection runs the worker that reads namespaces again, until ctx ends.
func (s *Source) startSelection(ctx context.Context, wg *sync.WaitGroup) {
	s.sel.relists = workqueue.NewTypedRateLimitingQueue(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](reparseRetryMin, reparseRetryMax))
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.runRelists(ctx)
	}()
}

func (s *Source) stopSelection() {
	if s.sel.relists != nil {
		s.sel.relists.ShutDown()
	}
}

// transformNamespace records a namespace's labels and keeps only its name
// and labels in the cache.
func (s *Source) transformNamespace(obj any) any {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj
	}
	s.setNamespace(ns.Name, ns.Labels, true) // never modified: shared with the cached object
	return &corev1.Namespace{TypeMeta: ns.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: ns.Name, UID: ns.UID, ResourceVersion: ns.ResourceVersion, Labels: ns.Labels}}
}

// setNamespace records a namespace's labels (exists false: it was deleted)
// and follows the selectors: the places of a namespace that stops matching
// go at once; a namespace that starts matching is read again.
func (s *Source) setNamespace(name string, set labels.Set, exists bool) {
	relist := false
	s.mu.Lock()
	was := make(map[string]bool, len(s.sel.namespace))
	for kind := range s.sel.namespace {
		was[kind] = s.namespaceSelectedLocked(kind, name)
	}
	if exists {
		s.sel.nsLabels[name] = set
	} else {
		delete(s.sel.nsLabels, name)
	}
	for kind := range s.sel.namespace {
		switch is := s.namespaceSelectedLocked(kind, name); {
		case was[kind] && !is:
			s.holdNamespaceLocked(kind, name)
		case !was[kind] && is && s.heldOfKindLocked(kind, name):
			relist = true
		}
	}
	s.mu.Unlock()
	if relist && s.sel.relists != nil {
		s.sel.relists.Add(name)
	}
}

// namespaceSelectedLocked says whether kind's namespace_selector (if any)
// selects ns; a namespace not seen yet is not selected.
func (s *Source) namespaceSelectedLocked(kind, ns string) bool {
	sel := s.sel.namespace[kind]
	if sel == nil {
		return true
	}
	set, known := s.sel.nsLabels[ns]
	return known && sel.Matches(set)
}

// annotationSelected says whether kind's annotation_selector (if any)
// selects an object.
func (s *Source) annotationSelected(kind string, meta metav1.Object) bool {
	sel := s.sel.annotation[kind]
	return sel == nil || sel.Matches(labels.Set(meta.GetAnnotations()))
}

// hold is holdLocked for a version about to be parsed: an object of a
// namespace not selected is not parsed at all.
func (s *Source) hold(key, resourceVersion string) bool {
	if len(s.sel.namespace) == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holdLocked(key, resourceVersion)
}

// holdLocked records key as held, and drops its places, when its
// namespace is not selected; otherwise it forgets that key was held.
func (s *Source) holdLocked(key, resourceVersion string) bool {
	if len(s.sel.namespace) == 0 {
		return false
	}
	kind, ns, _ := splitKey(key)
	if s.namespaceSelectedLocked(kind, ns) {
		s.unholdLocked(key)
		return false
	}
	s.dropLocked(key)
	held := s.sel.held[ns]
	if held == nil {
		held = map[string]string{}
		s.sel.held[ns] = held
	}
	held[key] = resourceVersion
	return true
}

func (s *Source) unholdLocked(key string) {
	if len(s.sel.held) == 0 {
		return
	}
	_, ns, _ := splitKey(key)
	if held := s.sel.held[ns]; held != nil {
		delete(held, key)
		if len(held) == 0 {
			delete(s.sel.held, ns)
		}
	}
}

// holdNamespaceLocked holds every object of kind in ns.
func (s *Source) holdNamespaceLocked(kind, ns string) {
	prefix := objectKey(kind, ns, "")
	for key, p := range s.objects {
		if strings.HasPrefix(key, prefix) {
			s.holdLocked(key, p.resourceVersion)
		}
	}
}

func (s *Source) heldOfKindLocked(kind, ns string) bool {
	prefix := objectKey(kind, ns, "")
	for key := range s.sel.held[ns] {
		if strings.HasPrefix(key, prefix) {
			return true
		}
	}
	return false
}

// dropLocked forgets key's places.
func (s *Source) dropLocked(key string) {
	s.dropDependentLocked(key)
	if _, had := s.objects[key]; had {
		delete(s.objects, key)
		s.owned = nil
	}
}

func splitKey(key string) (kind, namespace, name string) {
	kind, rest, _ := strings.Cut(key, "/")
	namespace, name, _ = strings.Cut(rest, "/")
	return kind, namespace, name
}

// runRelists reads again the namespaces that started matching, until Stop.
func (s *Source) runRelists(ctx context.Context) {
	for {
		ns, quit := s.sel.relists.Get()
		if quit {
			return
		}
		if err := s.relistNamespace(ctx, ns); err != nil && ctx.Err() == nil {
			s.logger.Warn("Cannot read the objects of a namespace that started matching namespace_selector; retrying",
				"namespace", ns, "class", source.ClassOf(err), "err", err)
			s.sel.relists.AddRateLimited(ns)
		} else {
			s.sel.relists.Forget(ns)
		}
		s.sel.relists.Done(ns)
	}
}

// relistNamespace reads the held objects of a namespace that started
// matching from the API server (the informer cache holds no data), with
// the informer's own selectors, and parses them. The informer's later
// versions win: an object is stored only while still held.
func (s *Source) relistNamespace(ctx context.Context, ns string) error {
	if sw := s.cfg.Secrets; sw != nil && s.relistWanted(KindSecret, ns) {
		opts := metav1.ListOptions{LabelSelector: sw.LabelSelector, FieldSelector: secretFieldSelector(sw)}
		err := listPages(ctx, opts, func(ctx context.Context, o metav1.ListOptions) (string, error) {
			list, err := s.client.CoreV1().Secrets(ns).List(ctx, o)
			if err != nil {
				return "", err
			}
			for i := range list.Items {
				sec := &list.Items[i]
				s.storeRelisted(objectKey(KindSecret, sec.Namespace, sec.Name), sec.ResourceVersion, func() parsed { return s.parseSecret(sec) })
			}
			return list.Continue, nil
		})
		if err != nil {
			return source.Errorf(classifyAPIErrorOr(err), "listing Secrets of namespace %s: %w", ns, err)
		}
	}
	if cw := s.cfg.ConfigMaps; cw != nil && s.relistWanted(KindConfigMap, ns) {
		opts := metav1.ListOptions{LabelSelector: cw.LabelSelector}
		err := listPages(ctx, opts, func(ctx context.Context, o metav1.ListOptions) (string, error) {
			list, err := s.client.CoreV1().ConfigMaps(ns).List(ctx, o)
			if err != nil {
				return "", err
			}
			for i := range list.Items {
				cm := &list.Items[i]
				s.storeRelisted(objectKey(KindConfigMap, cm.Namespace, cm.Name), cm.ResourceVersion, func() parsed {
					return parsed{findings: s.parseConfigMap(cm)}
				})
			}
			return list.Continue, nil
		})
		if err != nil {
			return source.Errorf(classifyAPIErrorOr(err), "listing ConfigMaps of namespace %s: %w", ns, err)
		}
	}
	return nil
}

func classifyAPIErrorOr(err error) source.Class {
	if c := classifyAPIError(err); c != "" {
		return c
	}
	return source.ClassUnknown
}

func (s *Source) relistWanted(kind, ns string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sel.namespace[kind] != nil && s.namespaceSelectedLocked(kind, ns) && s.heldOfKindLocked(kind, ns)
}

// storeRelisted parses an object read again and stores it if it is still
// held in a namespace now selected.
func (s *Source) storeRelisted(key, resourceVersion string, parse func() parsed) {
	isHeld := func() bool {
		kind, ns, _ := splitKey(key)
		_, held := s.sel.held[ns][key]
		return held && s.namespaceSelectedLocked(kind, ns)
	}
	s.mu.RLock()
	wanted := isHeld()
	s.mu.RUnlock()
	if !wanted {
		return // not held: the informer has parsed a version of its own (or it is not there yet)
	}
	np := parse()
	np.resourceVersion = resourceVersion
	s.mu.Lock()
	if !isHeld() {
		s.mu.Unlock()
		return
	}
	s.putLocked(key, &np)
	s.mu.Unlock()
	s.recheckPassword(key, np.password)
}

func listPages(ctx context.Context, opts metav1.ListOptions, page func(context.Context, metav1.ListOptions) (string, error)) error {
	opts.Limit = relistPageSize
	for {
		next, err := page(ctx, opts)
		if err != nil || next == "" {
			return err
		}
		opts.Continue = next
	}
}

// secretFieldSelector selects the one Secret type configured on the API
// server; several are filtered by certwatch.
func secretFieldSelector(sw *config.SecretWatch) string {
	if len(sw.Types) == 1 {
		return fields.OneTermEqualSelector("type", sw.Types[0]).String()
	}
	return ""
}
