package revocation

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwatch/certwatch/source"
)

// MaxStapleBytes bounds the stapled response judged: real ones are a few
// hundred bytes to a few KiB.
const MaxStapleBytes = 64 << 10

// ParseStaple judges an OCSP response an endpoint stapled for leaf, issued
// by issuer. The response must be about leaf and signed by issuer, or by a
// responder certificate issuer delegated OCSP signing to (one issued by
// issuer with the OCSP signing extended key usage, valid now); otherwise
// the error says why, classed bad_signature or parse.
func ParseStaple(der []byte, leaf, issuer *x509.Certificate) (Answer, error) {
	if len(der) > MaxStapleBytes {
		return Answer{}, source.Errorf(source.ClassTooLarge, "stapled OCSP response of %d bytes is over %d", len(der), MaxStapleBytes)
	}
	resp, err := verifyOCSP(der, leaf, issuer, time.Now())
	if err != nil {
		return Answer{}, fmt.Errorf("stapled %w", err)
	}
	return answerOf(resp, MethodStaple, ""), nil
}

// verifyOCSP parses an OCSP response about cert and checks its signature:
// by issuer itself (with or without issuer's certificate included), or by
// a responder certificate issuer signed, issued for OCSP signing and valid
// at now. Errors are classed parse or bad_signature and read "OCSP
// response: ...".
func verifyOCSP(der []byte, cert, issuer *x509.Certificate, now time.Time) (*ocsp.Response, error) {
	if cert == nil || issuer == nil {
		return nil, source.Errorf(source.ClassParse, "OCSP response: no certificate or issuer to judge it against")
	}
	// Parsed without the issuer, and the signature checked below:
	// x/crypto/ocsp takes an included certificate for a delegated
	// responder, so a response signed by an intermediate CA that includes
	// its own certificate would fail (the intermediate did not sign
	// itself), and it does not check the delegate's purpose.
	resp, err := ocsp.ParseResponseForCert(der, cert, nil)
	if err != nil {
		var sigErr ocsp.ResponseError
		switch {
		case errors.As(err, &sigErr):
			// The responder answered with an error status (tryLater, ...)
			// rather than a status for the certificate.
			return nil, source.Errorf(source.ClassParse, "OCSP response: %v", err)
		case isSignatureError(err):
			return nil, source.Errorf(source.ClassBadSignature, "OCSP response: %v", err)
		}
		return nil, source.Errorf(source.ClassParse, "OCSP response: %v", err)
	}
	switch rc := resp.Certificate; {
	case rc == nil:
		if err := resp.CheckSignatureFrom(issuer); err != nil {
			return nil, source.Errorf(source.ClassBadSignature, "OCSP response: not signed by the issuer: %v", err)
		}
	case bytes.Equal(rc.RawSubjectPublicKeyInfo, issuer.RawSubjectPublicKeyInfo):
		// The issuer's own key, whose signature the parser checked.
	default:
		if err := rc.CheckSignatureFrom(issuer); err != nil {
			return nil, source.Errorf(source.ClassBadSignature, "OCSP response: signed by %q, a responder certificate not issued by the issuer: %v", rc.Subject.CommonName, err)
		}
		if !slices.Contains(rc.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
			return nil, source.Errorf(source.ClassBadSignature, "OCSP response: signed by %q, a certificate not issued for OCSP signing", rc.Subject.CommonName)
		}
		if now.Before(rc.NotBefore) || now.After(rc.NotAfter) {
			return nil, source.Errorf(source.ClassBadSignature, "OCSP response: signed by %q, a responder certificate outside its validity (%s to %s)",
				rc.Subject.CommonName, rc.NotBefore.UTC().Format(time.RFC3339), rc.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	return resp, nil
}

// isSignatureError tells a response that parsed but is not signed by the
// issuer (or its delegate) from one that did not parse. x/crypto/ocsp
// reports the former as "bad signature on embedded certificate" or as an
// x509 signature error from CheckSignatureFrom.
func isSignatureError(err error) bool {
	var x509Err x509.InsecureAlgorithmError
	if errors.As(err, &x509Err) || errors.Is(err, x509.ErrUnsupportedAlgorithm) {
		return true
	}
	var constraint x509.ConstraintViolationError
	if errors.As(err, &constraint) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"signature", "verification error"} {
		if strings.Contains(strings.ToLower(msg), s) {
			return true
		}
	}
	return false
}

// answerOf turns a parsed, verified OCSP response into an Answer.
func answerOf(resp *ocsp.Response, method Method, url string) Answer {
	a := Answer{Method: method, ThisUpdate: resp.ThisUpdate, NextUpdate: resp.NextUpdate, URL: url, Reason: ReasonNone}
	switch resp.Status {
	case ocsp.Good:
		a.Status = StatusGood
	case ocsp.Revoked:
		a.Status = StatusRevoked
		a.RevokedAt = resp.RevokedAt
		a.Reason = Reason(resp.RevocationReason)
	default:
		a.Status = StatusUnknown
	}
	return a
}
