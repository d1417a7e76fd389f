package source

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
)

// CA is a set of CA certificates a source verifies against: the content
// of a ca_file or of a Kubernetes Secret's ca.crt. Every source loads CA
// certificates through ParseCA, so that a chain gets the same verdict
// wherever it is found.
//
// Only self-signed certificates are trust anchors, as for a TLS client or
// `openssl verify` without -partial_chain. Other CA certificates in the set
// (intermediates) help build and diagnose chains — a chain that verifies
// with them was presented without its intermediate — but are never trusted
// on their own: trusting them would let a server that omits its
// intermediate read as valid.
type CA struct {
	Anchors       []*x509.Certificate
	Intermediates []*x509.Certificate
	// ID identifies the set for caching verdicts: the hash of its
	// certificates, in order.
	ID string
}

// ParseCA reads the PEM CERTIFICATE (and TRUSTED CERTIFICATE) blocks of
// data. Other blocks are ignored; no certificate at all is an error.
func ParseCA(data []byte) (CA, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" && block.Type != "TRUSTED CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			// OpenSSL's TRUSTED CERTIFICATE appends trust settings after the
			// certificate: parse the certificate alone.
			if c, err = parseLeadingCertificate(block.Bytes); err != nil {
				return CA{}, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
			}
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return CA{}, fmt.Errorf("no PEM certificates found")
	}
	return NewCA(certs), nil
}

// parseLeadingCertificate parses the DER certificate at the start of der,
// ignoring what follows it.
func parseLeadingCertificate(der []byte) (*x509.Certificate, error) {
	var raw asn1.RawValue
	if _, err := asn1.Unmarshal(der, &raw); err != nil {
		return nil, fmt.Errorf("malformed DER: %w", err)
	}
	return x509.ParseCertificate(raw.FullBytes)
}

// NewCA splits certificates into anchors and intermediates.
func NewCA(certs []*x509.Certificate) CA {
	var ca CA
	h := sha256.New()
	for _, c := range certs {
		h.Write(c.Raw)
		if IsSelfSigned(c) {
			ca.Anchors = append(ca.Anchors, c)
		} else {
			ca.Intermediates = append(ca.Intermediates, c)
		}
	}
	ca.ID = hex.EncodeToString(h.Sum(nil))
	return ca
}

// LoadCAFile reads a CA file.
func LoadCAFile(path string) (CA, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return CA{}, err
	}
	ca, err := ParseCA(data)
	if err != nil {
		return CA{}, fmt.Errorf("%s: %w", path, err)
	}
	return ca, nil
}

// VerifyParams returns verification settings that trust the set's anchors
// (and nothing else) and know its intermediates.
func (ca CA) VerifyParams() VerifyParams {
	pool := x509.NewCertPool()
	for _, c := range ca.Anchors {
		pool.AddCert(c)
	}
	return VerifyParams{Roots: pool, Anchors: ca.Anchors, Extra: ca.Intermediates, RootsID: ca.ID}
}

// IsSelfSigned reports whether the certificate is signed by its own key
// (its issuer and subject names are the same and its signature verifies
// with its own key). A signature algorithm too weak for crypto/x509 to
// check (MD5 and older) falls back on the key identifiers.
func IsSelfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawIssuer, c.RawSubject) {
		return false
	}
	err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
	if err == nil {
		return true
	}
	if _, insecure := err.(x509.InsecureAlgorithmError); insecure || err == x509.ErrUnsupportedAlgorithm {
		return len(c.AuthorityKeyId) == 0 || bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId)
	}
	return false
}
