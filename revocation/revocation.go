// Package revocation answers whether certificates are revoked. It judges
// the OCSP responses endpoints staple to their handshakes, and, for the
// places that opt in, asks the OCSP responders and fetches the CRLs that
// certificates name, in the background, keeping each answer until its next
// update. The inspector only reads what it holds: a scrape never waits on
// the network, and a responder that fails never changes a verdict.
package revocation

import (
	"crypto/x509"
	"strconv"
	"time"
)

// Method is how an answer was obtained: the value of the "method" label.
type Method string

// The methods.
const (
	MethodStaple Method = "ocsp_staple" // the OCSP response an endpoint stapled
	MethodOCSP   Method = "ocsp"        // asked of the responder in the certificate's AIA
	MethodCRL    Method = "crl"         // looked up in the CRL of its distribution points
)

// Status is what an answer says of a certificate: the value of the
// "status" label.
type Status string

// The statuses.
const (
	StatusGood    Status = "good"
	StatusRevoked Status = "revoked"
	StatusUnknown Status = "unknown" // an OCSP responder that does not know the certificate
)

// Answer is what one method says of one certificate. Only answers whose
// signature verified against the certificate's issuer are ever given.
type Answer struct {
	Method     Method
	Status     Status
	RevokedAt  time.Time // when revoked
	Reason     Reason    // why, when revoked; ReasonNone when not given
	ThisUpdate time.Time
	NextUpdate time.Time // zero when the answer names none
	URL        string    // where it came from; empty for a staple
}

// Reason is an RFC 5280 CRLReason code.
type Reason int

// ReasonNone marks an answer without a reason code.
const ReasonNone Reason = -1

// reasonNames are the RFC 5280 names, by code (7 is not used).
var reasonNames = [...]string{0: "unspecified", 1: "keyCompromise", 2: "cACompromise", 3: "affiliationChanged",
	4: "superseded", 5: "cessationOfOperation", 6: "certificateHold", 8: "removeFromCRL",
	9: "privilegeWithdrawn", 10: "aACompromise"}

// String returns the reason's RFC 5280 name, "" for none, or the code for
// one RFC 5280 does not name.
func (r Reason) String() string {
	if r == ReasonNone {
		return ""
	}
	if r >= 0 && int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return "code_" + strconv.Itoa(int(r))
}

// Lookuper is what the inspector reads: the answers held about cert,
// issued by issuer, for the methods asked. A certificate without an answer
// yet is queued for the background; Lookup never waits on the network.
type Lookuper interface {
	Lookup(cert, issuer *x509.Certificate, ocsp, crl bool) []Answer
}
