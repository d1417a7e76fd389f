package inventory

import (
	"crypto/sha1" //nolint:gosec // SHA-1 fingerprints are what many tools and people still look certificates up by.
	"crypto/x509"
	"encoding/hex"
	"net/url"
	"strconv"
	"time"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/source"
)

// List is the answer of /api/v1/certificates (schema/certificates-v1.schema.json).
type List struct {
	SnapshotTime string            `json:"snapshot_time"` // RFC 3339; "" before anything was collected
	Total        int               `json:"total"`         // places in the snapshot
	Matched      int               `json:"matched"`       // places the filters selected
	Page         int               `json:"page"`
	PageSize     int               `json:"page_size"`
	Reasons      map[string]int    `json:"reasons"`       // judged places of the snapshot by verdict reason
	ErrorClasses map[string]int    `json:"error_classes"` // places of the snapshot with an error, by class
	Collectors   []CollectorStatus `json:"collectors"`
	Items        []Item            `json:"items"`
}

// CollectorStatus is how one source did in the snapshot's scrape.
type CollectorStatus struct {
	Name        string  `json:"name"`
	OK          bool    `json:"ok"`
	TookSeconds float64 `json:"took_seconds"`
}

// Item is one place.
type Item struct {
	Source            string            `json:"source"`
	Target            string            `json:"target"`
	Key               string            `json:"key"`
	Labels            map[string]string `json:"labels"`
	Certificates      int               `json:"certificates"` // how many the place holds
	SubjectCN         string            `json:"subject_cn"`   // of the leaf
	IssuerCN          string            `json:"issuer_cn"`
	SANs              []string          `json:"sans"`
	FingerprintSHA256 string            `json:"fingerprint_sha256"`
	NotBefore         *string           `json:"not_before"`        // of the leaf, RFC 3339; null without certificates
	NotAfter          *string           `json:"not_after"`         // of the leaf
	ChainNotAfter     *string           `json:"chain_not_after"`   // earliest not-after of the chain the place relies on
	TimeLeftSeconds   *int64            `json:"time_left_seconds"` // until the leaf's not-after; negative once expired
	LifetimeUsed      *float64          `json:"lifetime_used"`     // fraction of the leaf's validity passed: 0 at not-before, 1 at not-after
	Reason            *string           `json:"reason"`            // verdict reason; null without certificates
	ReasonDetail      string            `json:"reason_detail"`
	ErrorClass        *string           `json:"error_class"` // null when the place was read
	Error             *string           `json:"error"`
	DetailURL         string            `json:"detail_url"`
}

// Place is the answer of /api/v1/certificates/place: one place with its
// whole chain.
type Place struct {
	SnapshotTime  string            `json:"snapshot_time"`
	Source        string            `json:"source"`
	Target        string            `json:"target"`
	Key           string            `json:"key"`
	Labels        map[string]string `json:"labels"`
	Reason        *string           `json:"reason"`
	ReasonDetail  string            `json:"reason_detail"`
	ChainNotAfter *string           `json:"chain_not_after"`
	ErrorClass    *string           `json:"error_class"`
	Error         *string           `json:"error"`
	KeyStored     bool              `json:"key_stored"` // a private key is stored with the certificates (never shown)
	Leaf          *int              `json:"leaf"`       // index of the leaf; null without certificates
	TLS           *TLS              `json:"tls"`        // endpoints only
	ProbeURL      *string           `json:"probe_url"`  // endpoints only: /probe with the default module
	Certificates  []Certificate     `json:"certificates"`
}

// TLS is what the handshake with an endpoint told.
type TLS struct {
	Version                  string  `json:"version"`
	CipherSuite              string  `json:"cipher_suite"`
	ServerName               string  `json:"server_name"`
	HandshakeDurationSeconds float64 `json:"handshake_duration_seconds"`
}

// Certificate is one certificate of a place, in the place's order.
type Certificate struct {
	Index                  int      `json:"index"`
	Role                   string   `json:"role"` // leaf, intermediate, root, anchor; "" when unknown
	Subject                string   `json:"subject"`
	SubjectCN              string   `json:"subject_cn"`
	Issuer                 string   `json:"issuer"`
	IssuerCN               string   `json:"issuer_cn"`
	Serial                 string   `json:"serial"` // lowercase hex
	FingerprintSHA256      string   `json:"fingerprint_sha256"`
	FingerprintSHA1        string   `json:"fingerprint_sha1"`
	NotBefore              string   `json:"not_before"`
	NotAfter               string   `json:"not_after"`
	KeyAlgorithm           string   `json:"key_algorithm"`
	KeyBits                int      `json:"key_bits"`
	SignatureAlgorithm     string   `json:"signature_algorithm"`
	DNSNames               []string `json:"dns_names"`
	IPAddresses            []string `json:"ip_addresses"`
	EmailAddresses         []string `json:"email_addresses"`
	URIs                   []string `json:"uris"`
	KeyUsage               []string `json:"key_usage"`
	ExtKeyUsage            []string `json:"ext_key_usage"`
	BasicConstraintsValid  bool     `json:"basic_constraints_valid"`
	IsCA                   bool     `json:"is_ca"`
	MaxPathLen             *int     `json:"max_path_len"` // null when unlimited or absent
	SelfSigned             bool     `json:"self_signed"`
	OCSPServers            []string `json:"ocsp_servers"`
	IssuingCertificateURLs []string `json:"issuing_certificate_urls"`
	CRLDistributionPoints  []string `json:"crl_distribution_points"`
	PEMURL                 string   `json:"pem_url"`
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func timePtr(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := rfc3339(t)
	return &s
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func labelsOf(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// placeValues are the parameters naming a place.
func placeValues(src, target, key string) url.Values {
	v := url.Values{"source": {src}, "target": {target}}
	if key != "" {
		v.Set("key", key)
	}
	return v
}

func (r *row) detailURL() string {
	return PlacePath + "?" + placeValues(r.source, r.target, r.key).Encode()
}

func (r *row) item(now time.Time) Item {
	it := Item{
		Source: r.source, Target: r.target, Key: r.key, Labels: labelsOf(r.labels),
		Certificates: len(r.j.Certs),
		SubjectCN:    r.subjectCN, IssuerCN: r.issuerCN, SANs: nonNil(r.sans), FingerprintSHA256: r.fingerprint,
		ReasonDetail: r.detail, ErrorClass: strPtr(r.errClass), Error: strPtr(r.errMsg),
		DetailURL: r.detailURL(),
	}
	if r.judged() {
		it.NotBefore, it.NotAfter, it.ChainNotAfter = timePtr(r.notBefore), timePtr(r.notAfter), timePtr(r.chainNotAfter)
		left := int64(r.notAfter.Sub(now) / time.Second)
		it.TimeLeftSeconds = &left
		if u, ok := lifetimeUsed(r, now); ok {
			u = float64(int64(u*1e4)) / 1e4
			it.LifetimeUsed = &u
		}
		it.Reason = strPtr(r.reason)
	}
	return it
}

// place describes a row's place with its whole chain.
func (r *row) place(at time.Time, defaultModule string) Place {
	j := r.j
	p := Place{
		SnapshotTime: rfc3339(at), Source: r.source, Target: r.target, Key: r.key, Labels: labelsOf(r.labels),
		ReasonDetail: r.detail, ErrorClass: strPtr(r.errClass), Error: strPtr(r.errMsg),
		KeyStored: len(j.KeyPublics) > 0, Certificates: []Certificate{},
	}
	if r.judged() {
		p.Reason, p.ChainNotAfter = strPtr(r.reason), timePtr(r.chainNotAfter)
		leaf := r.leaf
		p.Leaf = &leaf
	}
	if j.TLS != nil {
		p.TLS = &TLS{Version: j.TLS.Version, CipherSuite: j.TLS.CipherSuite, ServerName: j.TLS.ServerName,
			HandshakeDurationSeconds: j.TLS.HandshakeDuration.Seconds()}
	}
	if r.source == source.KindEndpoint {
		u := probePath + "?" + url.Values{"target": {r.target}, "module": {defaultModule}}.Encode()
		p.ProbeURL = &u
	}
	for i, c := range j.Certs {
		role := ""
		if i < len(j.Verdict.Roles) {
			role = string(j.Verdict.Roles[i])
		}
		p.Certificates = append(p.Certificates, certificateOf(c, i, role, r))
	}
	return p
}

func (r *row) pemURL(i int) string {
	v := placeValues(r.source, r.target, r.key)
	v.Set("index", strconv.Itoa(i))
	return PEMPath + "?" + v.Encode()
}

// Bounds on the lists taken from a certificate's extensions, which its
// issuer wrote: a hostile one may list thousands of URLs.
const (
	maxListItems = 64
	maxItemBytes = 1024
)

func boundList(in []string) []string {
	out := make([]string, 0, min(len(in), maxListItems))
	for i, s := range in {
		if i == maxListItems {
			out = append(out, "… "+strconv.Itoa(len(in)-maxListItems)+" more")
			break
		}
		out = append(out, boundString(s))
	}
	return out
}

func boundString(s string) string {
	if len(s) <= maxItemBytes {
		return s
	}
	n := maxItemBytes
	for n > 0 && s[n]&0xC0 == 0x80 { // back to a UTF-8 character boundary
		n--
	}
	return s[:n] + inspect.CutMark
}

func certificateOf(c *x509.Certificate, i int, role string, r *row) Certificate {
	f := inspect.FactsOf(c)
	sum := sha1.Sum(c.Raw) //nolint:gosec // a fingerprint, not a signature
	out := Certificate{
		Index: i, Role: role,
		Subject: f.Subject, SubjectCN: f.SubjectCN, Issuer: f.Issuer, IssuerCN: f.IssuerCN,
		Serial: f.Serial, FingerprintSHA256: f.FingerprintSHA256, FingerprintSHA1: hex.EncodeToString(sum[:]),
		NotBefore: rfc3339(f.NotBefore), NotAfter: rfc3339(f.NotAfter),
		KeyAlgorithm: f.KeyAlgorithm, KeyBits: f.KeyBits, SignatureAlgorithm: f.SignatureAlgorithm,
		DNSNames: nonNil(f.DNSNames), IPAddresses: nonNil(f.IPAddresses), EmailAddresses: nonNil(f.EmailAddresses),
		URIs:     nonNil(f.URIs),
		KeyUsage: keyUsages(c.KeyUsage), ExtKeyUsage: extKeyUsages(c),
		BasicConstraintsValid: c.BasicConstraintsValid, IsCA: c.IsCA, SelfSigned: f.SelfSigned,
		OCSPServers: boundList(c.OCSPServer), IssuingCertificateURLs: boundList(c.IssuingCertificateURL),
		CRLDistributionPoints: boundList(c.CRLDistributionPoints),
		PEMURL:                r.pemURL(i),
	}
	if c.BasicConstraintsValid && c.IsCA && (c.MaxPathLen > 0 || c.MaxPathLenZero) {
		n := c.MaxPathLen
		out.MaxPathLen = &n
	}
	return out
}

var keyUsageNames = []struct {
	bit  x509.KeyUsage
	name string
}{
	{x509.KeyUsageDigitalSignature, "digitalSignature"},
	{x509.KeyUsageContentCommitment, "contentCommitment"},
	{x509.KeyUsageKeyEncipherment, "keyEncipherment"},
	{x509.KeyUsageDataEncipherment, "dataEncipherment"},
	{x509.KeyUsageKeyAgreement, "keyAgreement"},
	{x509.KeyUsageCertSign, "keyCertSign"},
	{x509.KeyUsageCRLSign, "cRLSign"},
	{x509.KeyUsageEncipherOnly, "encipherOnly"},
	{x509.KeyUsageDecipherOnly, "decipherOnly"},
}

// keyUsages names the key usage bits as RFC 5280 does.
func keyUsages(ku x509.KeyUsage) []string {
	out := []string{}
	for _, k := range keyUsageNames {
		if ku&k.bit != 0 {
			out = append(out, k.name)
		}
	}
	return out
}

var extKeyUsageNames = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:                            "any",
	x509.ExtKeyUsageServerAuth:                     "serverAuth",
	x509.ExtKeyUsageClientAuth:                     "clientAuth",
	x509.ExtKeyUsageCodeSigning:                    "codeSigning",
	x509.ExtKeyUsageEmailProtection:                "emailProtection",
	x509.ExtKeyUsageIPSECEndSystem:                 "ipsecEndSystem",
	x509.ExtKeyUsageIPSECTunnel:                    "ipsecTunnel",
	x509.ExtKeyUsageIPSECUser:                      "ipsecUser",
	x509.ExtKeyUsageTimeStamping:                   "timeStamping",
	x509.ExtKeyUsageOCSPSigning:                    "OCSPSigning",
	x509.ExtKeyUsageMicrosoftServerGatedCrypto:     "msSGC",
	x509.ExtKeyUsageNetscapeServerGatedCrypto:      "nsSGC",
	x509.ExtKeyUsageMicrosoftCommercialCodeSigning: "msCodeCom",
	x509.ExtKeyUsageMicrosoftKernelCodeSigning:     "msKernelCode",
}

// extKeyUsages names the extended key usages; unknown ones by OID.
func extKeyUsages(c *x509.Certificate) []string {
	out := []string{}
	for _, u := range c.ExtKeyUsage {
		if n, ok := extKeyUsageNames[u]; ok {
			out = append(out, n)
		} else {
			out = append(out, "unknown")
		}
	}
	for i, oid := range c.UnknownExtKeyUsage {
		if i == maxListItems {
			out = append(out, "… more")
			break
		}
		out = append(out, oid.String())
	}
	return out
}
