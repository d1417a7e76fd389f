package decode

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"

	"github.com/certwatch/certwatch/internal/intern"
)

// certificates shares one parsed certificate among all holders of the same
// DER, keyed by its SHA-256. The same certificate turns up many times: every
// cert-manager Secret of one issuer carries the same ca.crt, and thousands
// of files and Secrets carry the same intermediate. Sharing costs a hash
// instead of a parse, and keeps memory proportional to the distinct
// certificates. Nothing in certwatch writes to a parsed certificate.
var certificates intern.Table[[32]byte, x509.Certificate]

// parseCertificate returns the certificate encoded by der, parsed once for
// every holder of the same bytes. owned says der may be kept by the result
// (a parsed certificate points into the bytes it was parsed from); when it
// is false the bytes belong to a buffer that is reused or wiped, and a copy
// is parsed.
func parseCertificate(der []byte, owned bool) (*x509.Certificate, error) {
	fp := sha256.Sum256(der)
	if c := certificates.Get(fp); c != nil {
		return c, nil
	}
	if !owned {
		der = bytes.Clone(der)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		if c = partialCertificate(der, err); c == nil {
			return nil, err
		}
	}
	return certificates.Put(fp, c), nil
}
