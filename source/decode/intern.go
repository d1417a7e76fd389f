package decode

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"runtime"
	"sync"
	"weak"
)

// interned maps the SHA-256 of a certificate's DER to the certificate parsed
// from it, for as long as some source still holds that certificate. The same
// certificate turns up many times: every cert-manager Secret of one issuer
// carries the same ca.crt, and thousands of files and Secrets carry the same
// intermediate. Sharing one parsed object costs a hash instead of a parse,
// and keeps memory proportional to the distinct certificates. Entries hold
// weak pointers, so the table never keeps a certificate alive; a cleanup
// drops the entry once its certificate is collected.
//
// Shared certificates must not be modified; nothing in certwatch writes to a
// parsed certificate.
var interned = struct {
	sync.Mutex
	m map[[32]byte]weak.Pointer[x509.Certificate]
}{m: map[[32]byte]weak.Pointer[x509.Certificate]{}}

// parseCertificate returns the certificate encoded by der, parsed once for
// every holder of the same bytes. owned says der may be kept by the result
// (a parsed certificate points into the bytes it was parsed from); when it
// is false the bytes belong to a buffer that is reused or wiped, and a copy
// is parsed.
func parseCertificate(der []byte, owned bool) (*x509.Certificate, error) {
	fp := sha256.Sum256(der)
	if c := lookupInterned(fp); c != nil {
		return c, nil
	}
	if !owned {
		der = bytes.Clone(der)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	interned.Lock()
	if w, ok := interned.m[fp]; ok {
		if shared := w.Value(); shared != nil { // parsed concurrently by another reader
			interned.Unlock()
			return shared, nil
		}
	}
	interned.m[fp] = weak.Make(c)
	interned.Unlock()
	runtime.AddCleanup(c, forgetInterned, fp)
	return c, nil
}

func lookupInterned(fp [32]byte) *x509.Certificate {
	interned.Lock()
	w, ok := interned.m[fp]
	interned.Unlock()
	if !ok {
		return nil
	}
	return w.Value()
}

// forgetInterned drops the entry of a collected certificate, unless a newer
// certificate with the same content took its place.
func forgetInterned(fp [32]byte) {
	interned.Lock()
	if w, ok := interned.m[fp]; ok && w.Value() == nil {
		delete(interned.m, fp)
	}
	interned.Unlock()
}

// internedCount reports the table's size, for tests.
func internedCount() int {
	interned.Lock()
	defer interned.Unlock()
	return len(interned.m)
}
