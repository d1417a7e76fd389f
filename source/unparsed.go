package source

import (
	"crypto/x509"
	"runtime"
	"sync"
	"weak"
)

// A certificate crypto/x509 refuses to parse (a P-192 key, a negative
// serial number, a malformed name) still has dates that matter: a source
// that can read its outer structure reports it as a certificate built from
// what could be read, marked with MarkUnparsed, and the inspector gives it
// a verdict that says why a client would refuse it.

var unparsed = struct {
	sync.Mutex
	m map[weak.Pointer[x509.Certificate]]error
}{m: map[weak.Pointer[x509.Certificate]]error{}}

// MarkUnparsed records that c was built by a partial parse because
// crypto/x509 refused the certificate with err. The mark lives as long as c.
func MarkUnparsed(c *x509.Certificate, err error) {
	w := weak.Make(c)
	unparsed.Lock()
	_, had := unparsed.m[w]
	unparsed.m[w] = err
	unparsed.Unlock()
	if !had {
		runtime.AddCleanup(c, func(w weak.Pointer[x509.Certificate]) {
			unparsed.Lock()
			delete(unparsed.m, w)
			unparsed.Unlock()
		}, w)
	}
}

// ParseFailure returns why crypto/x509 refused c, or nil for a certificate
// it parsed.
func ParseFailure(c *x509.Certificate) error {
	unparsed.Lock()
	defer unparsed.Unlock()
	if len(unparsed.m) == 0 {
		return nil
	}
	return unparsed.m[weak.Make(c)]
}
