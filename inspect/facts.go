// Package inspect turns certificates into facts and verdicts: the attributes
// of each certificate (dates, names, serial, fingerprint, key and signature
// algorithms) and, for each place, whether its chain verifies and, if not, the
// one reason from a small fixed set. It knows nothing of where certificates
// came from or of metrics.
package inspect

import (
	"bytes"
	"crypto/dsa" //nolint:staticcheck // DSA keys still turn up in old stores and must be reported as weak.
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"time"
)

// Facts are the attributes of one certificate that certwatch reports.
type Facts struct {
	NotBefore          time.Time
	NotAfter           time.Time
	SubjectCN          string
	IssuerCN           string
	Subject            string // full distinguished name, RFC 2253 style
	Issuer             string
	Serial             string // lowercase hex of the serial's bytes, leading zeros kept
	FingerprintSHA256  string // lowercase hex
	DNSNames           []string
	IPAddresses        []string
	URIs               []string // SPIFFE IDs live here
	EmailAddresses     []string
	KeyAlgorithm       string // RSA, ECDSA, Ed25519, DSA, unknown
	KeyBits            int
	SignatureAlgorithm string
	IsCA               bool
	SelfSigned         bool
}

// FactsOf extracts the facts of one certificate.
func FactsOf(c *x509.Certificate) Facts {
	fp := sha256.Sum256(c.Raw)
	f := Facts{
		NotBefore:          c.NotBefore,
		NotAfter:           c.NotAfter,
		SubjectCN:          c.Subject.CommonName,
		IssuerCN:           c.Issuer.CommonName,
		Subject:            c.Subject.String(),
		Issuer:             c.Issuer.String(),
		Serial:             SerialHex(c),
		FingerprintSHA256:  hex.EncodeToString(fp[:]),
		DNSNames:           c.DNSNames,
		EmailAddresses:     c.EmailAddresses,
		SignatureAlgorithm: c.SignatureAlgorithm.String(),
		IsCA:               c.IsCA,
		SelfSigned:         IsSelfSigned(c),
	}
	for _, ip := range c.IPAddresses {
		f.IPAddresses = append(f.IPAddresses, ip.String())
	}
	for _, u := range c.URIs {
		f.URIs = append(f.URIs, u.String())
	}
	f.KeyAlgorithm, f.KeyBits = KeyInfo(c)
	return f
}

// SerialHex renders the serial number as lowercase hex of its big-endian
// bytes, so "0a1b" keeps its leading zero nibble.
func SerialHex(c *x509.Certificate) string {
	if c.SerialNumber == nil {
		return ""
	}
	s := hex.EncodeToString(c.SerialNumber.Bytes())
	if s == "" {
		s = "00"
	}
	if c.SerialNumber.Sign() < 0 {
		return "-" + s
	}
	return s
}

// KeyInfo names the certificate's public key algorithm and its size in bits.
func KeyInfo(c *x509.Certificate) (string, int) {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 256
	case *dsa.PublicKey:
		return "DSA", k.P.BitLen()
	}
	return "unknown", 0
}

// IsSelfSigned reports whether the certificate is signed by its own key.
func IsSelfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawIssuer, c.RawSubject) {
		return false
	}
	err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
	if err == nil {
		return true
	}
	// MD5 and older are refused outright; fall back on the key identifiers.
	var insecure x509.InsecureAlgorithmError
	if errors.As(err, &insecure) {
		return len(c.AuthorityKeyId) == 0 || bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId)
	}
	return false
}

// hasWeakSignature reports a signature made with a broken hash (MD2, MD5, SHA-1).
func hasWeakSignature(c *x509.Certificate) bool {
	switch c.SignatureAlgorithm {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return true
	}
	return false
}

// hasWeakKey reports keys too small to be trusted: RSA under 2048 bits, ECDSA
// under 256 bits, and any DSA key.
func hasWeakKey(c *x509.Certificate) bool {
	alg, bits := KeyInfo(c)
	switch alg {
	case "RSA":
		return bits < 2048
	case "ECDSA":
		return bits < 256
	case "DSA":
		return true
	}
	return false
}
