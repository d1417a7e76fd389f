package kubernetes

// Service-mesh presets: the objects where Istio and Linkerd keep the CA that
// signs every workload certificate and the trust roots every proxy checks
// peers against. Each is watched by an informer of its own, narrowed by a
// field selector to the object's name (and namespace), so a preset needs
// list and watch on those names only and never widens or changes what the
// secrets and configmaps selections watch.
//
// How the CA material is judged: a CA Secret's signing certificate is one
// place together with the rest of its chain and its root (cert-chain.pem,
// root-cert.pem, ca.crt), verified against the roots stored beside it, so
// an intermediate CA verifies as a chain (a lone CA certificate would be
// read as a bundle of anchors and never verified); its private key is only
// compared with it. The roots stored beside it, and the trust-root
// ConfigMaps, are bundles of anchors.

import (
	"bytes"
	"crypto/x509"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/decode"
)

// Labels on every series of a preset's places.
const (
	// LabelMesh names the mesh: istio or linkerd.
	LabelMesh = "mesh"
	// LabelMeshRole says what the place is to the mesh: MeshRoleIssuer,
	// MeshRoleRoot or MeshRoleTrustRoots.
	LabelMeshRole = "mesh_role"
)

// Values of LabelMesh and LabelMeshRole.
const (
	MeshIstio   = "istio"
	MeshLinkerd = "linkerd"
	// MeshRoleIssuer is the CA that signs workload certificates, with the
	// rest of its chain: when it expires, every workload loses its identity.
	MeshRoleIssuer = "issuer"
	// MeshRoleRoot is the roots stored beside the issuer in its Secret.
	MeshRoleRoot = "root"
	// MeshRoleTrustRoots is a trust bundle the mesh distributes to proxies.
	MeshRoleTrustRoots = "trust_roots"
)

// The objects the presets watch.
const (
	IstioCACertsSecret      = "cacerts"            // plug-in CA
	IstioSelfSignedSecret   = "istio-ca-secret"    // istiod's own self-signed CA (type istio.io/ca-root)
	IstioRootCertConfigMap  = "istio-ca-root-cert" // written by istiod into every namespace
	LinkerdIssuerSecret     = "linkerd-identity-issuer"
	LinkerdTrustRootsConfig = "linkerd-identity-trust-roots"
)

// meshObject is one object a preset watches: by name, in one namespace or
// (namespace "") in all.
type meshObject struct {
	mesh      string
	resource  string // ResourceSecrets or ResourceConfigMaps
	namespace string
	name      string
}

// meshObjects lists what the configured presets watch.
func (s *Source) meshObjects() []meshObject {
	m := s.cfg.Mesh
	var out []meshObject
	if m.IstioEnabled() {
		ns := m.Istio.Namespace
		out = append(out,
			meshObject{MeshIstio, ResourceSecrets, ns, IstioCACertsSecret},
			meshObject{MeshIstio, ResourceSecrets, ns, IstioSelfSignedSecret},
			meshObject{MeshIstio, ResourceConfigMaps, metav1.NamespaceAll, IstioRootCertConfigMap})
	}
	if m.LinkerdEnabled() {
		ns := m.Linkerd.Namespace
		out = append(out,
			meshObject{MeshLinkerd, ResourceSecrets, ns, LinkerdIssuerSecret},
			meshObject{MeshLinkerd, ResourceConfigMaps, ns, LinkerdTrustRootsConfig})
	}
	return out
}

// meshState holds what the presets' objects yielded, apart from the
// selections' objects, by the same object keys (so one object is sharded
// alike whichever way it was found).
type meshState struct {
	mu      sync.RWMutex
	objects map[string]*parsed
	owned   []string // as Source.owned
}

// addMeshWatches starts an informer per preset object.
func (s *Source) addMeshWatches() {
	objs := s.meshObjects()
	if len(objs) == 0 {
		return
	}
	s.mesh = &meshState{objects: map[string]*parsed{}}
	for _, o := range objs {
		selector := fields.OneTermEqualSelector("metadata.name", o.name).String()
		// The resource label names the object: two informers in one
		// namespace stay two series, and the label reads as the RBAC rule
		// that allows it (resourceNames).
		resource := o.resource + "/" + o.name
		switch o.resource {
		case ResourceSecrets:
			s.addWatch(resource, o.namespace, listWatchOf(s.client.CoreV1().Secrets(o.namespace), "", selector), s.client, &corev1.Secret{}, s.transformMeshSecret(o), s.forgetMesh(KindSecret))
		case ResourceConfigMaps:
			s.addWatch(resource, o.namespace, listWatchOf(s.client.CoreV1().ConfigMaps(o.namespace), "", selector), s.client, &corev1.ConfigMap{}, s.transformMeshConfigMap(o), s.forgetMesh(KindConfigMap))
		}
	}
}

func (s *Source) transformMeshSecret(o meshObject) func(any) any {
	return func(obj any) any {
		sec, ok := obj.(*corev1.Secret)
		if !ok {
			return obj
		}
		if sec.Name == o.name { // the field selector already says so; a fake client may not
			s.storeMesh(objectKey(KindSecret, sec.Namespace, sec.Name), sec.ResourceVersion, func() []source.Finding {
				return s.meshSecretFindings(o.mesh, sec)
			})
		}
		stripMeta(&sec.ObjectMeta)
		sec.Data, sec.StringData = nil, nil
		return sec
	}
}

func (s *Source) transformMeshConfigMap(o meshObject) func(any) any {
	return func(obj any) any {
		cm, ok := obj.(*corev1.ConfigMap)
		if !ok {
			return obj
		}
		if cm.Name == o.name {
			s.storeMesh(objectKey(KindConfigMap, cm.Namespace, cm.Name), cm.ResourceVersion, func() []source.Finding {
				return s.meshTrustRootFindings(o.mesh, cm)
			})
		}
		stripMeta(&cm.ObjectMeta)
		cm.Data, cm.BinaryData = nil, nil
		return cm
	}
}

func (s *Source) storeMesh(key, resourceVersion string, parse func() []source.Finding) {
	m := s.mesh
	m.mu.RLock()
	p, ok := m.objects[key]
	m.mu.RUnlock()
	if ok && p.resourceVersion == resourceVersion {
		return
	}
	np := &parsed{resourceVersion: resourceVersion, findings: parse()}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, had := m.objects[key]; !had {
		m.owned = nil
	}
	m.objects[key] = np
}

func (s *Source) forgetMesh(kind string) func(metav1.Object) {
	return func(o metav1.Object) {
		m := s.mesh
		m.mu.Lock()
		defer m.mu.Unlock()
		key := objectKey(kind, o.GetNamespace(), o.GetName())
		if _, had := m.objects[key]; had {
			delete(m.objects, key)
			m.owned = nil
		}
	}
}

// withMesh adds the presets' places to the selections' findings. A place
// both found (the same source, target and key) is reported once, as the
// preset reads it: with the mesh labels, and judged as CA material. The
// selections' other places of that object stay as they are. The presets'
// places come first, so the target's own series carry the mesh labels.
func (s *Source) withMesh(selected []source.Finding) []source.Finding {
	m := s.mesh
	if m == nil {
		return selected
	}
	m.mu.Lock()
	if m.owned == nil {
		m.owned = ownedKeys(m.objects, s.shard)
	}
	var out []source.Finding
	presetPlaces := map[placeKey]bool{}
	for _, k := range m.owned {
		for _, f := range m.objects[k].findings {
			presetPlaces[placeKey{f.Source, f.Target, f.Key}] = true
			out = append(out, f)
		}
	}
	m.mu.Unlock()
	if len(out) == 0 {
		return selected
	}
	for _, f := range selected {
		if !presetPlaces[placeKey{f.Source, f.Target, f.Key}] {
			out = append(out, f)
		}
	}
	return out
}

type placeKey struct{ source, target, key string }

// caKeys names the keys of one layout of a CA Secret.
type caKeys struct {
	cert, privateKey, chain, roots string
}

// The layouts the presets read.
var (
	// Istio's plug-in cacerts and istiod's istio-ca-secret (whose
	// cert-chain.pem and root-cert.pem are empty when it is self-signed).
	istioCAKeys = caKeys{cert: "ca-cert.pem", privateKey: "ca-key.pem", chain: "cert-chain.pem", roots: "root-cert.pem"}
	// A kubernetes.io/tls CA Secret, as cert-manager writes it: Istio
	// accepts cacerts in this form, Linkerd's issuer usually is one.
	tlsCAKeys = caKeys{cert: corev1.TLSCertKey, privateKey: corev1.TLSPrivateKeyKey, roots: "ca.crt"}
	// Linkerd's issuer as `linkerd install` wrote it before it used
	// kubernetes.io/tls (scheme linkerd.io/tls): no root beside it.
	linkerdLegacyKeys = caKeys{cert: "crt.pem", privateKey: "key.pem"}
)

// meshSecretFindings reads a preset's CA Secret.
func (s *Source) meshSecretFindings(mesh string, sec *corev1.Secret) []source.Finding {
	keys := tlsCAKeys
	switch {
	case mesh == MeshIstio && len(sec.Data[tlsCAKeys.cert]) == 0:
		keys = istioCAKeys
	case mesh == MeshLinkerd && len(sec.Data[tlsCAKeys.cert]) == 0:
		keys = linkerdLegacyKeys
	}
	return s.caFindings(mesh, sec, keys)
}

// caFindings makes the places of a CA Secret: the issuer (its certificate
// with the chain and roots stored beside it, verified against those roots,
// its private key compared), then the roots alone as a bundle of anchors.
// The private key's value goes nowhere else.
func (s *Source) caFindings(mesh string, sec *corev1.Secret, keys caKeys) []source.Finding {
	target := targetOf(sec.Namespace, sec.Name)
	place := func(key, role string) source.Place {
		labels := s.placeLabels(sec)
		labels[LabelMesh], labels[LabelMeshRole] = mesh, role
		return source.Place{Source: KindSecret, Target: target, Key: key, Labels: labels}
	}
	issuer := source.Finding{Place: place(keys.cert, MeshRoleIssuer), Verify: s.verify}
	var roots []*x509.Certificate
	if keys.roots != "" && len(sec.Data[keys.roots]) > 0 {
		if entries, err := decode.Decode(sec.Data[keys.roots], nil); err == nil && len(entries) > 0 && len(entries[0].Certs) > 0 {
			roots = entries[0].Certs
			issuer.Verify = verifyWith(roots)
			issuer.Verify.Revocation = s.verify.Revocation
		}
	}
	certPEM := sec.Data[keys.cert]
	switch entries, err := decode.Decode(certPEM, nil); {
	case len(certPEM) == 0:
		issuer.Err = source.Errorf(source.ClassParse, "the %s Secret holds no %s", mesh, keys.cert)
	case err != nil:
		issuer.Err = err
	case len(entries) > 0:
		issuer.Certs, issuer.Err = entries[0].Certs, entries[0].Err
	}
	if issuer.Err == nil {
		// The rest of the chain and the roots, each certificate once: with
		// its issuers beside it a CA certificate is a chain to verify.
		if keys.chain != "" && len(sec.Data[keys.chain]) > 0 {
			if entries, err := decode.Decode(sec.Data[keys.chain], nil); err == nil && len(entries) > 0 {
				issuer.Certs = appendNew(issuer.Certs, entries[0].Certs)
			}
		}
		if len(roots) > 0 && !issuedBy(issuer.Certs, roots) {
			// The roots beside it would make the place read as a bundle of
			// anchors, never verified: say what is wrong instead.
			issuer.Err = source.Errorf(source.ClassBadSignature, "no root of %s signed %s or its chain", keys.roots, keys.cert)
		} else {
			issuer.Certs = appendNew(issuer.Certs, roots)
		}
		if key := sec.Data[keys.privateKey]; len(key) > 0 {
			issuer.KeyPublics = decode.KeyPublics(key)
		}
	}
	out := []source.Finding{issuer}
	if keys.roots != "" && len(sec.Data[keys.roots]) > 0 {
		out = append(out, s.decodeFindings(place(keys.roots, MeshRoleRoot), sec.Data[keys.roots], nil, s.verify)...)
	}
	s.logFailures(out)
	return out
}

// meshTrustRootFindings reads a trust-root ConfigMap: its one key, a bundle
// of anchors.
func (s *Source) meshTrustRootFindings(mesh string, cm *corev1.ConfigMap) []source.Finding {
	key := "root-cert.pem"
	if mesh == MeshLinkerd {
		key = "ca-bundle.crt"
	}
	labels := s.placeLabels(cm)
	labels[LabelMesh], labels[LabelMeshRole] = mesh, MeshRoleTrustRoots
	place := source.Place{Source: KindConfigMap, Target: targetOf(cm.Namespace, cm.Name), Key: key, Labels: labels}
	value, ok := cm.Data[key]
	data := []byte(value)
	if !ok {
		data, ok = cm.BinaryData[key]
	}
	if !ok || len(data) == 0 {
		f := source.Finding{Place: place, Verify: s.verify, Err: source.Errorf(source.ClassParse, "the %s trust roots ConfigMap holds no %s", mesh, key)}
		s.logFailure(f)
		return []source.Finding{f}
	}
	return s.findingFrom(place, data, nil, s.verify)
}

// issuedBy reports whether one of roots is among certs or signed one of
// them.
func issuedBy(certs, roots []*x509.Certificate) bool {
	for _, r := range roots {
		for _, c := range certs {
			if c.Equal(r) || c.CheckSignatureFrom(r) == nil {
				return true
			}
		}
	}
	return false
}

// appendNew appends the certificates of more that certs does not hold yet.
func appendNew(certs, more []*x509.Certificate) []*x509.Certificate {
	for _, c := range more {
		held := false
		for _, h := range certs {
			if bytes.Equal(h.Raw, c.Raw) {
				held = true
				break
			}
		}
		if !held {
			certs = append(certs, c)
		}
	}
	return certs
}
