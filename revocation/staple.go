package revocation

import (
	"crypto/x509"
	"errors"
	"strings"

	"golang.org/x/crypto/ocsp"

	"github.com/certwatch/certwatch/source"
)

// MaxStapleBytes bounds the stapled response judged: real ones are a few
// hundred bytes to a few KiB.
const MaxStapleBytes = 64 << 10

// ParseStaple judges an OCSP response an endpoint stapled for leaf, issued
// by issuer. The response must be about leaf and signed by issuer, or by a
// responder certificate issuer delegated OCSP signing to; otherwise the
// error says why, classed bad_signature or parse.
func ParseStaple(der []byte, leaf, issuer *x509.Certificate) (Answer, error) {
	if len(der) > MaxStapleBytes {
		return Answer{}, source.Errorf(source.ClassTooLarge, "stapled OCSP response of %d bytes is over %d", len(der), MaxStapleBytes)
	}
	resp, err := ocsp.ParseResponseForCert(der, leaf, issuer)
	if err != nil {
		var sigErr ocsp.ResponseError
		switch {
		case errors.As(err, &sigErr):
			// The responder answered with an error status (tryLater, ...)
			// rather than a status for the certificate.
			return Answer{}, source.Errorf(source.ClassParse, "stapled OCSP response: %v", err)
		case isSignatureError(err):
			return Answer{}, source.Errorf(source.ClassBadSignature, "stapled OCSP response: %v", err)
		}
		return Answer{}, source.Errorf(source.ClassParse, "stapled OCSP response: %v", err)
	}
	return answerOf(resp, MethodStaple, ""), nil
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
