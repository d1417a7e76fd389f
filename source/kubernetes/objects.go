package kubernetes

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"sort"
	"sync"

	"github.com/bmatcuk/doublestar/v4"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/decode"
)

// secretFindings reads a Secret. tls.crt (in kubernetes.io/tls Secrets and
// any other that has one) is one place verified against ca.crt when present
// and checked against tls.key; ca.crt is a place of its own; other keys
// matching the patterns are places of their own (keystore aliases below
// them). PKCS#12 and JKS values take their password from password_key in
// the Secret, else from password_secret: use then says so.
func (s *Source) secretFindings(sec *corev1.Secret) (out []source.Finding, use *passwordUse) {
	labels := s.placeLabels(sec)
	target := targetOf(sec.Namespace, sec.Name)
	place := func(key string) source.Place {
		return source.Place{Source: KindSecret, Target: target, Key: key, Labels: labels}
	}
	handled := map[string]bool{}

	tlsCrt, hasTLS := sec.Data[corev1.TLSCertKey]
	if hasTLS || sec.Type == corev1.SecretTypeTLS {
		handled[corev1.TLSCertKey], handled[corev1.TLSPrivateKeyKey], handled["ca.crt"] = true, true, true
		f := source.Finding{Place: place(corev1.TLSCertKey), Verify: s.verify}
		if ca, ok := sec.Data["ca.crt"]; ok && len(ca) > 0 {
			// A ca.crt holding only CRLs gives no anchors: keep the configured roots.
			if entries, err := decode.Decode(ca, nil); err == nil && len(entries) > 0 && len(entries[0].Certs) > 0 {
				f.Verify = verifyWith(entries[0].Certs)
				f.Verify.Revocation = s.verify.Revocation
			}
			out = append(out, s.findingFrom(place("ca.crt"), ca, nil, s.verify)...)
		}
		entries, err := decode.Decode(tlsCrt, nil)
		switch {
		case err != nil:
			f.Err = err
		case len(entries) > 0:
			f.Certs, f.CRLs, f.Err = entries[0].Certs, entries[0].CRLs, entries[0].Err
		}
		if key := sec.Data[corev1.TLSPrivateKeyKey]; len(key) > 0 {
			f.KeyPublics = decode.KeyPublics(key) // only to compare; the key itself is not kept
		}
		if f.Err != nil {
			s.logger.Warn("Certificate in Secret unreadable", "kind", KindSecret, "target", target, "key", corev1.TLSCertKey,
				"class", source.ClassOf(f.Err), "err", f.Err)
		}
		out = append(out, f)
	}

	var password []byte
	samePassword := false
	if k := s.cfg.Secrets.PasswordKey; k != "" {
		if pw, ok := sec.Data[k]; ok {
			password, samePassword = trimNewline(pw), true
			handled[k] = true
		}
	}
	var external passwordEntry
	keys := make([]string, 0, len(sec.Data))
	for k := range sec.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if handled[k] || !matchesAny(s.cfg.Secrets.KeyPatterns, k) {
			continue
		}
		if ps := s.cfg.Secrets.PasswordSecret; ps != nil && !samePassword && decode.TakesPassword(sec.Data[k]) {
			if use == nil {
				ns := passwordNamespace(ps, sec.Namespace)
				external = s.password(ns)
				use = &passwordUse{namespace: ns, gen: external.gen}
			}
			for _, f := range s.keystoreFindings(place(k), sec.Data[k], use.namespace, external) {
				use.findings = append(use.findings, len(out))
				out = append(out, f)
			}
			continue
		}
		out = append(out, s.findingFrom(place(k), sec.Data[k], password, s.verify)...)
	}
	return out, use
}

func (s *Source) configMapFindings(cm *corev1.ConfigMap) []source.Finding {
	labels := s.placeLabels(cm)
	target := targetOf(cm.Namespace, cm.Name)
	values := map[string][]byte{}
	for k, v := range cm.Data {
		values[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		values[k] = v
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		if matchesAny(s.cfg.ConfigMaps.KeyPatterns, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []source.Finding
	for _, k := range keys {
		out = append(out, s.findingFrom(source.Place{Source: KindConfigMap, Target: target, Key: k, Labels: labels}, values[k], nil, s.verify)...)
	}
	return out
}

// caBundleFindings reads a caBundle; base64 says whether it is still
// base64-encoded (unstructured objects) or already PEM (typed clients).
func (s *Source) caBundleFindings(kind, name, key string, obj metav1.Object, bundle string, isBase64 bool) []source.Finding {
	if bundle == "" {
		return nil // no bundle: the API server uses its own roots
	}
	data := []byte(bundle)
	place := source.Place{Source: kind, Target: name, Key: key, Labels: s.placeLabels(obj)}
	if isBase64 {
		decoded, err := base64.StdEncoding.DecodeString(bundle)
		if err != nil {
			f := source.Finding{Place: place, Err: source.Errorf(source.ClassParse, "caBundle is not valid base64")}
			s.logFailure(f)
			return []source.Finding{f}
		}
		data = decoded
	}
	return s.findingFrom(place, data, nil, s.verify)
}

// findingFrom decodes one value into findings: one, or one per keystore
// alias; failures are logged.
func (s *Source) findingFrom(place source.Place, data, password []byte, verify source.VerifyParams) []source.Finding {
	out := s.decodeFindings(place, data, password, verify)
	s.logFailures(out)
	return out
}

// decodeFindings is findingFrom without the logging.
func (s *Source) decodeFindings(place source.Place, data, password []byte, verify source.VerifyParams) []source.Finding {
	entries, err := decode.Decode(data, password)
	if err != nil {
		return []source.Finding{{Place: place, Verify: verify, Err: err}}
	}
	out := make([]source.Finding, 0, len(entries))
	for _, e := range entries {
		p := place
		if e.Key != "" {
			p.Key = place.Key + "/" + e.Key
		}
		out = append(out, source.Finding{Place: p, Certs: e.Certs, KeyPublics: e.KeyPublics, CRLs: e.CRLs, Verify: verify, Err: e.Err})
	}
	return out
}

func (s *Source) logFailures(findings []source.Finding) {
	for _, f := range findings {
		if f.Err != nil {
			s.logFailure(f)
		}
	}
}

func (s *Source) logFailure(f source.Finding) {
	s.logger.Warn("Certificate in Kubernetes object unreadable", "kind", f.Source, "target", f.Target, "key", f.Key,
		"class", source.ClassOf(f.Err), "err", f.Err)
}

// verifyWith makes verification parameters from the Secret's own ca.crt,
// split as every CA file is (source.NewCA: self-signed certificates are
// anchors, the others intermediates). Secrets of one issuer all carry the
// same ca.crt: they share one set of parameters (one pool, one RootsID
// string) rather than 10,000 Secrets building 10,000 identical pools.
func verifyWith(certs []*x509.Certificate) source.VerifyParams {
	h := sha256.New()
	for _, c := range certs {
		h.Write(c.Raw)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	caParams.Lock()
	defer caParams.Unlock()
	if p, ok := caParams.m[sum]; ok {
		return p
	}
	if len(caParams.m) >= maxSharedCAs { // ca.crt values rotated away; the live ones come back
		clear(caParams.m)
	}
	p := source.NewCA(certs).VerifyParams()
	p.RootsID = "ca.crt:" + hex.EncodeToString(sum[:])
	caParams.m[sum] = p
	return p
}

// caParams holds the parameters built from each ca.crt, by the hash of its
// certificates. A cluster has as many distinct ca.crt values as issuers:
// a few, rarely hundreds.
var caParams = struct {
	sync.Mutex
	m map[[32]byte]source.VerifyParams
}{m: map[[32]byte]source.VerifyParams{}}

const maxSharedCAs = 1024

func matchesAny(patterns []string, key string) bool {
	for _, p := range patterns {
		if ok, _ := doublestar.Match(p, key); ok {
			return true
		}
	}
	return false
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
