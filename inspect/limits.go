package inspect

import (
	"strings"
	"unicode/utf8"
)

// Limits on the string facts, which become label values. A certificate's
// names are whatever its issuer wrote: a 1 MiB common name would otherwise
// make every series of the certificate a megabyte long. A longer value is
// cut at a UTF-8 character boundary and ends in "…", the whole within the
// limit; bytes that are not UTF-8 become U+FFFD first.
const (
	// MaxNameBytes bounds SubjectCN and IssuerCN (subject_cn, issuer_cn).
	MaxNameBytes = 256
	// MaxInfoBytes bounds Subject, Issuer and Serial, and each of DNSNames,
	// IPAddresses, URIs and EmailAddresses joined with commas (the
	// certwatch_cert_info labels).
	MaxInfoBytes = 1024
)

// CutMark ends a value that was cut.
const CutMark = "…"

// limitString makes s valid UTF-8 and cuts it to at most max bytes.
func limitString(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= max {
		return s
	}
	return cutAt(s, max-len(CutMark)) + CutMark
}

// cutAt returns the longest prefix of s of at most n bytes that ends on a
// character boundary.
func cutAt(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if n >= len(s) {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// limitList makes every value valid UTF-8 and bounds the list so that its
// values joined with commas take at most max bytes: whole values while they
// fit, then the next one cut and marked. The input is returned as it is
// (shared, not copied) when nothing needed changing.
func limitList(values []string, max int) []string {
	if joinedLen(values) <= max && allValid(values) {
		return values
	}
	clean := make([]string, len(values))
	for i, v := range values {
		clean[i] = strings.ToValidUTF8(v, "\uFFFD")
	}
	if joinedLen(clean) <= max {
		return clean
	}
	budget := max - len(CutMark)
	out, used := clean[:0], 0
	for i, v := range clean {
		sep := min(i, 1)
		if used+sep+len(v) <= budget {
			out = append(out, v)
			used += sep + len(v)
			continue
		}
		if room := budget - used - sep; room >= 0 {
			out = append(out, cutAt(v, room)+CutMark)
		} else { // no room for a comma: mark the end of the last value kept
			out[len(out)-1] += CutMark
		}
		break
	}
	return out
}

func joinedLen(values []string) int {
	n := max(len(values)-1, 0)
	for _, v := range values {
		n += len(v)
	}
	return n
}

func allValid(values []string) bool {
	for _, v := range values {
		if !utf8.ValidString(v) {
			return false
		}
	}
	return true
}
