package decode

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certwatch/certwatch/source"
)

// partialCertificate reads what it can of a certificate crypto/x509
// refused (err): the outer structure, serial, names, validity and public
// key algorithm. It returns nil when even that cannot be read (junk, a
// truncated block): then the certificate is a parse error as before. The
// result is marked with source.MarkUnparsed, so the inspector says why a
// client would refuse it, and its dates are still reported.
func partialCertificate(der []byte, err error) *x509.Certificate {
	input := cryptobyte.String(der)
	var cert, tbs, tbsRaw cryptobyte.String
	if !input.ReadASN1(&cert, cbasn1.SEQUENCE) || !input.Empty() ||
		!cert.ReadASN1Element(&tbsRaw, cbasn1.SEQUENCE) {
		return nil
	}
	tbs = tbsRaw
	var body cryptobyte.String
	if !tbs.ReadASN1(&body, cbasn1.SEQUENCE) {
		return nil
	}
	c := &x509.Certificate{Raw: der, RawTBSCertificate: tbsRaw, Version: 1}
	var version int
	var hasVersion bool
	var versionField cryptobyte.String
	if !body.ReadOptionalASN1(&versionField, &hasVersion, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil
	}
	if hasVersion && versionField.ReadASN1Integer(&version) {
		c.Version = version + 1
	}
	serial := new(big.Int)
	var issuer, validity, subject, spki cryptobyte.String
	if !body.ReadASN1Integer(serial) || !body.SkipASN1(cbasn1.SEQUENCE) ||
		!body.ReadASN1Element(&issuer, cbasn1.SEQUENCE) ||
		!body.ReadASN1(&validity, cbasn1.SEQUENCE) ||
		!body.ReadASN1Element(&subject, cbasn1.SEQUENCE) ||
		!body.ReadASN1Element(&spki, cbasn1.SEQUENCE) {
		return nil
	}
	notBefore, ok1 := readTime(&validity)
	notAfter, ok2 := readTime(&validity)
	if !ok1 || !ok2 {
		return nil
	}
	c.SerialNumber, c.NotBefore, c.NotAfter = serial, notBefore, notAfter
	c.RawIssuer, c.RawSubject, c.RawSubjectPublicKeyInfo = issuer, subject, spki
	c.Issuer, c.Subject = readName(issuer), readName(subject)
	c.PublicKeyAlgorithm = keyAlgorithm(spki)
	if c.PublicKeyAlgorithm != x509.UnknownPublicKeyAlgorithm {
		// The key may be fine (a negative serial, a bad name): keep it, so
		// the chain can still be followed.
		if pub, err := x509.ParsePKIXPublicKey(spki); err == nil {
			c.PublicKey = pub
		}
	}
	source.MarkUnparsed(c, err)
	return c
}

func readTime(s *cryptobyte.String) (time.Time, bool) {
	var t time.Time
	switch {
	case s.PeekASN1Tag(cbasn1.UTCTime):
		return t, s.ReadASN1UTCTime(&t)
	case s.PeekASN1Tag(cbasn1.GeneralizedTime):
		return t, s.ReadASN1GeneralizedTime(&t)
	}
	return t, false
}

// readName is the name as far as encoding/asn1 can read it; empty when it
// cannot.
func readName(raw []byte) pkix.Name {
	var rdns pkix.RDNSequence
	var name pkix.Name
	if rest, err := asn1.Unmarshal(raw, &rdns); err == nil && len(rest) == 0 {
		name.FillFromRDNSequence(&rdns)
	}
	return name
}

var (
	oidRSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidECDSA   = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidDSA     = asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 1}
	oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
)

func keyAlgorithm(spki []byte) x509.PublicKeyAlgorithm {
	s := cryptobyte.String(spki)
	var body, alg cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&body, cbasn1.SEQUENCE) || !body.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
		return x509.UnknownPublicKeyAlgorithm
	}
	switch {
	case oid.Equal(oidRSA):
		return x509.RSA
	case oid.Equal(oidECDSA):
		return x509.ECDSA
	case oid.Equal(oidDSA):
		return x509.DSA
	case oid.Equal(oidEd25519):
		return x509.Ed25519
	}
	return x509.UnknownPublicKeyAlgorithm
}
