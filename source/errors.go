package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
)

// Class is why a place could not be read. The set is small and fixed because
// it becomes a label value that alerts match on.
type Class string

// The error classes. Keep README.md's list in step with this one.
const (
	ClassTimeout       Class = "timeout"        // connect, STARTTLS or handshake did not finish in time
	ClassRefused       Class = "refused"        // connection refused or reset before TLS began
	ClassUnreachable   Class = "unreachable"    // no route to host / network unreachable
	ClassDNS           Class = "dns"            // the name did not resolve
	ClassProxy         Class = "proxy"          // the HTTP CONNECT proxy failed or refused
	ClassStartTLS      Class = "starttls"       // the server did not agree to STARTTLS
	ClassHandshake     Class = "handshake"      // TLS handshake failed (alert, not TLS, protocol error)
	ClassParse         Class = "parse"          // malformed, truncated, empty or junk content
	ClassPermission    Class = "permission"     // not allowed to read
	ClassNotFound      Class = "not_found"      // the file or path does not exist (or vanished)
	ClassTooLarge      Class = "too_large"      // over the size cap
	ClassWrongPassword Class = "wrong_password" // a keystore password did not decrypt it
	ClassSymlinkLoop   Class = "symlink_loop"   // a path resolves through a symlink loop
	ClassConfig        Class = "config"         // the module or entry settings could not be used (e.g. a missing client cert)
	ClassNoIdentity    Class = "no_identity"    // a SPIFFE Workload API issued no identity to certwatch: no registration entry matches it
	ClassStale         Class = "stale"          // what is reported is the last data received, older than its source's stale_after
	ClassDenied        Class = "denied"         // the outbound rules refused the URL (scheme, address, redirect to another host)
	ClassHTTP          Class = "http"           // an HTTP server answered with a status other than 200 (or 304 to a revalidation)
	ClassBadSignature  Class = "bad_signature"  // an OCSP response or CRL whose signature does not verify against its issuer
	ClassUnknown       Class = "unknown"        // anything else; the log line carries the detail
)

// Classes lists every class, for documentation and tests.
var Classes = []Class{ClassTimeout, ClassRefused, ClassUnreachable, ClassDNS, ClassProxy, ClassStartTLS,
	ClassHandshake, ClassParse, ClassPermission, ClassNotFound, ClassTooLarge, ClassWrongPassword,
	ClassSymlinkLoop, ClassConfig, ClassNoIdentity, ClassStale, ClassDenied, ClassHTTP, ClassBadSignature,
	ClassUnknown}

// Error is an error with its class.
type Error struct {
	Class Class
	Err   error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns a classified error; format follows fmt.Errorf (%w wraps).
func Errorf(class Class, format string, args ...any) error {
	return &Error{Class: class, Err: fmt.Errorf(format, args...)}
}

// WithClass classifies err unless it already carries a class.
func WithClass(class Class, err error) error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return err
	}
	return &Error{Class: class, Err: err}
}

// ClassOf returns err's class: the one it carries, or one inferred from the
// standard library's error types for network and file errors.
func ClassOf(err error) Class {
	if err == nil {
		return ""
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Class
	}
	return Infer(err, ClassUnknown)
}

// Infer maps well-known network and file errors to a class, or returns
// fallback.
func Infer(err error, fallback Class) Class {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr):
		if dnsErr.IsTimeout {
			return ClassTimeout
		}
		return ClassDNS
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ClassTimeout
	case errors.As(err, &netErr) && netErr.Timeout():
		return ClassTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return ClassRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EADDRNOTAVAIL):
		return ClassUnreachable
	case errors.Is(err, syscall.ELOOP):
		return ClassSymlinkLoop
	case errors.Is(err, fs.ErrNotExist):
		return ClassNotFound
	case errors.Is(err, fs.ErrPermission):
		return ClassPermission
	}
	return fallback
}
