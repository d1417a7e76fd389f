package decode

import (
	"crypto/x509"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certwatch/certwatch/source"
)

// ParseDERChain reads concatenated DER certificates, as the SPIFFE Workload
// API and bundle formats carry them. Certificates are shared with every
// other holder of the same bytes, and a certificate crypto/x509 refuses is
// kept from a partial parse as elsewhere. data is not kept. On a malformed
// certificate it returns those before it with the error.
func ParseDERChain(data []byte) ([]*x509.Certificate, error) {
	limit := MaxCertificates()
	var certs []*x509.Certificate
	for in := cryptobyte.String(data); !in.Empty(); {
		var der cryptobyte.String
		if !in.ReadASN1Element(&der, cbasn1.SEQUENCE) {
			return certs, source.Errorf(source.ClassParse, "certificate %d: not a DER SEQUENCE", len(certs))
		}
		if len(certs) == limit {
			return certs, source.Errorf(source.ClassTooLarge, "holds more than %d certificates, the limit (global.max_certificates_per_place)", limit)
		}
		c, err := parseCertificate(der, false)
		if err != nil {
			return certs, source.WithClass(source.ClassParse, fmt.Errorf("certificate %d: %w", len(certs), err))
		}
		certs = append(certs, c)
	}
	return certs, nil
}
