package kubernetes

import (
	"context"
	"errors"
	"io"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/source"
)

// Resources as they appear in the exporter's own metrics and in RBAC rules.
const (
	ResourceSecrets           = "secrets"
	ResourceConfigMaps        = "configmaps"
	ResourceValidatingWebhook = "validatingwebhookconfigurations"
	ResourceMutatingWebhook   = "mutatingwebhookconfigurations"
	ResourceAPIServices       = "apiservices"
	ResourceCRDs              = "customresourcedefinitions"
)

var (
	apiServiceGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: ResourceAPIServices}
	crdGVR        = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: ResourceCRDs}
)

func (s *Source) buildInformers() {
	if sw := s.cfg.Secrets; sw != nil {
		// One type can be selected by the API server; several are filtered here.
		fieldSelector := ""
		if len(sw.Types) == 1 {
			fieldSelector = fields.OneTermEqualSelector("type", sw.Types[0]).String()
		}
		for _, ns := range namespacesOf(sw.Selection) {
			lw := listWatchOf(s.client.CoreV1().Secrets(ns), sw.LabelSelector, fieldSelector)
			s.addWatch(ResourceSecrets, ns, lw, s.client, &corev1.Secret{}, s.transformSecret, s.forgetKind(KindSecret))
		}
		if sw.PasswordSecret != nil {
			s.addPasswordWatches()
		}
	}
	if cw := s.cfg.ConfigMaps; cw != nil {
		for _, ns := range namespacesOf(cw.Selection) {
			lw := listWatchOf(s.client.CoreV1().ConfigMaps(ns), cw.LabelSelector, "")
			s.addWatch(ResourceConfigMaps, ns, lw, s.client, &corev1.ConfigMap{}, s.transformConfigMap, s.forgetKind(KindConfigMap))
		}
	}
	if s.cfg.Webhooks {
		vw := s.client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
		s.addWatch(ResourceValidatingWebhook, "", listWatchOf(vw, "", ""), s.client, &admissionv1.ValidatingWebhookConfiguration{}, s.transformValidating, s.forgetKind(KindValidatingWebhook))
		mw := s.client.AdmissionregistrationV1().MutatingWebhookConfigurations()
		s.addWatch(ResourceMutatingWebhook, "", listWatchOf(mw, "", ""), s.client, &admissionv1.MutatingWebhookConfiguration{}, s.transformMutating, s.forgetKind(KindMutatingWebhook))
	}
	if s.cfg.APIServices {
		s.addDynamicWatch(ResourceAPIServices, apiServiceGVR, KindAPIService, []string{"spec", "caBundle"})
	}
	if s.cfg.CRDs {
		s.addDynamicWatch(ResourceCRDs, crdGVR, KindCRD, []string{"spec", "conversion", "webhook", "clientConfig", "caBundle"})
	}
	s.buildSelectInformers()
	s.addMeshWatches()
}

func namespacesOf(sel config.Selection) []string {
	if len(sel.Namespaces) == 0 {
		return []string{metav1.NamespaceAll}
	}
	return sel.Namespaces
}

// addWatch builds an informer whose transform parses each new version of an
// object and strips it, and whose delete handler forgets it.
func (s *Source) addWatch(resource, namespace string, lw *cache.ListWatch, client any, example runtime.Object, transform func(any) any, onDelete func(metav1.Object)) {
	// The client says whether it supports streaming lists (test fakes do not).
	informer := cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, client), example, cache.SharedIndexInformerOptions{})
	w := &informerWatch{resource: resource, namespace: namespace, informer: informer}
	_ = informer.SetTransform(func(obj any) (any, error) { return transform(obj), nil })
	_ = informer.SetWatchErrorHandlerWithContext(s.watchErrorHandler(w))
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if m, err := meta.Accessor(obj); err == nil {
				onDelete(m)
			}
		},
	})
	s.watches = append(s.watches, w)
}

func (s *Source) addDynamicWatch(resource string, gvr schema.GroupVersionResource, kind string, caBundlePath []string) {
	lw := listWatchOf(s.dyn.Resource(gvr), "", "")
	s.addWatch(resource, "", lw, s.dyn, &unstructured.Unstructured{}, func(obj any) any {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return obj
		}
		s.store(objectKey(kind, "", u.GetName()), u.GetResourceVersion(), func() []source.Finding {
			bundle, _, _ := unstructured.NestedString(u.Object, caBundlePath...)
			return s.caBundleFindings(kind, u.GetName(), "", u, bundle, true)
		})
		// Keep metadata only.
		stripped := &unstructured.Unstructured{Object: map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind()}}
		stripped.SetName(u.GetName())
		stripped.SetUID(u.GetUID())
		stripped.SetResourceVersion(u.GetResourceVersion())
		return stripped
	}, s.forgetKind(kind))
}

// forgetKind is the delete handler of informers whose objects are places.
func (s *Source) forgetKind(kind string) func(metav1.Object) {
	return func(m metav1.Object) { s.forget(objectKey(kind, m.GetNamespace(), m.GetName())) }
}

func (s *Source) transformSecret(obj any) any {
	sec, ok := obj.(*corev1.Secret)
	if !ok {
		return obj
	}
	s.storeParsed(objectKey(KindSecret, sec.Namespace, sec.Name), sec.ResourceVersion, func() parsed { return s.parseSecret(sec) })
	stripMeta(&sec.ObjectMeta)
	sec.Data, sec.StringData = nil, nil
	return sec
}

func (s *Source) parseSecret(sec *corev1.Secret) parsed {
	sw := s.cfg.Secrets
	if s.namespaceExcluded(sw.Selection, sec.Namespace) || !typeSelected(sw.Types, string(sec.Type)) || !s.annotationSelected(KindSecret, sec) {
		return parsed{}
	}
	findings, use := s.secretFindings(sec)
	return parsed{findings: findings, password: use}
}

func (s *Source) transformConfigMap(obj any) any {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return obj
	}
	s.store(objectKey(KindConfigMap, cm.Namespace, cm.Name), cm.ResourceVersion, func() []source.Finding { return s.parseConfigMap(cm) })
	stripMeta(&cm.ObjectMeta)
	cm.Data, cm.BinaryData = nil, nil
	return cm
}

func (s *Source) parseConfigMap(cm *corev1.ConfigMap) []source.Finding {
	if s.namespaceExcluded(s.cfg.ConfigMaps.Selection, cm.Namespace) || !s.annotationSelected(KindConfigMap, cm) {
		return nil
	}
	return s.configMapFindings(cm)
}

func (s *Source) transformValidating(obj any) any {
	c, ok := obj.(*admissionv1.ValidatingWebhookConfiguration)
	if !ok {
		return obj
	}
	bundles := make([]webhookBundle, len(c.Webhooks))
	for i, w := range c.Webhooks {
		bundles[i] = webhookBundle{w.Name, w.ClientConfig.CABundle}
	}
	s.storeWebhooks(KindValidatingWebhook, c, bundles)
	c.Webhooks = nil
	return c
}

func (s *Source) transformMutating(obj any) any {
	c, ok := obj.(*admissionv1.MutatingWebhookConfiguration)
	if !ok {
		return obj
	}
	bundles := make([]webhookBundle, len(c.Webhooks))
	for i, w := range c.Webhooks {
		bundles[i] = webhookBundle{w.Name, w.ClientConfig.CABundle}
	}
	s.storeWebhooks(KindMutatingWebhook, c, bundles)
	c.Webhooks = nil
	return c
}

// webhookBundle is one webhook's name and caBundle.
type webhookBundle struct {
	name     string
	caBundle []byte
}

// storeWebhooks parses the caBundles of a webhook configuration and strips
// its metadata.
func (s *Source) storeWebhooks(kind string, obj metav1.Object, bundles []webhookBundle) {
	s.store(objectKey(kind, "", obj.GetName()), obj.GetResourceVersion(), func() []source.Finding {
		var out []source.Finding
		for _, b := range bundles {
			out = append(out, s.caBundleFindings(kind, obj.GetName(), b.name, obj, string(b.caBundle), false)...)
		}
		return out
	})
	obj.SetAnnotations(nil)
	obj.SetLabels(nil)
	obj.SetManagedFields(nil)
}

// stripMeta drops what the cache does not need: annotations (kubectl's
// last-applied-configuration holds a whole Secret's data) and managed fields.
func stripMeta(m *metav1.ObjectMeta) {
	m.Annotations = nil
	m.ManagedFields = nil
	m.Labels = nil
}

func typeSelected(types []string, t string) bool {
	for _, want := range types {
		if want == t {
			return true
		}
	}
	return false
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "very short watch")
}

// listWatcher is what a typed or dynamic client offers for one resource.
type listWatcher[L runtime.Object] interface {
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// listWatchOf lists and watches through c, with the label and field
// selectors given (empty: everything).
func listWatchOf[L runtime.Object](c listWatcher[L], labelSelector, fieldSelector string) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector, o.FieldSelector = labelSelector, fieldSelector
			return c.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector, o.FieldSelector = labelSelector, fieldSelector
			return c.Watch(ctx, o)
		},
	}
}
