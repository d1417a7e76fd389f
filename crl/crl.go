// Package crl parses certificate revocation lists without holding them: a
// public CRL can be tens of MB and hundreds of thousands of entries, and
// crypto/x509's parser allocates a big.Int and a struct (plus extensions)
// per entry, hundreds of MB of transient memory for one list.
//
// Summary reads what a CRL says about itself and counts its entries without
// keeping them; Parse also keeps the revoked serials in a compact, sorted
// List (one backing array of serial bytes, times as int64, reasons as int8)
// that Lookup searches. Neither keeps any reference to the DER it was given.
//
// What is checked: the DER structure of RFC 5280's CertificateList, that the
// inner and outer signature algorithms agree, the times, the reason codes,
// and that no entry carries a critical extension this package does not
// understand (certificateIssuer, of indirect CRLs, is one: such a list
// cannot be read correctly without it). Unknown CRL-level extensions are
// ignored, critical or not: the issuing distribution point is critical and
// common, and reporting a CRL does not depend on its scope.
package crl

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"slices"
	"sort"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certwatch/certwatch/source"
)

// maxIssuerCN bounds IssuerCN: it becomes a label value.
const maxIssuerCN = 256

// Summary parses der (one DER CRL) and returns what it says about itself,
// counting entries without keeping them. The signature is not checked.
func Summary(der []byte) (source.CRL, error) {
	p, err := parseOuter(der)
	if err != nil {
		return source.CRL{}, err
	}
	n, _, err := walkEntries(p.revoked, nil)
	if err != nil {
		return source.CRL{}, err
	}
	p.crl.Entries = n
	return p.crl, nil
}

// List is a parsed CRL's revoked serials, held compactly: the serials'
// bytes sorted in one backing array with offsets into it, revocation times
// as unix seconds and reason codes as int8, never the raw DER.
//
// Serials are kept as the content bytes of their DER INTEGER with a leading
// 0x00 that only marks the sign stripped, so that they compare equal to a
// positive big.Int's Bytes(). Negative serials (invalid, but seen in the
// wild) are kept as their two's-complement bytes as they are, behind one
// 0x00 byte that no positive serial starts with once normalised: -129
// (ff 7f) and 65407 (00 ff 7f) stay two serials. Lookup encodes a negative
// big.Int the same way.
type List struct {
	CRL source.CRL

	serials []byte   // every serial's bytes, in sorted order
	offsets []uint32 // serial i is serials[offsets[i]:offsets[i+1]]
	times   []int64  // revocation time of entry i, unix seconds
	reasons []int8   // reason code of entry i, -1 when none
}

// Parse parses der and builds its List. If issuer is non-nil, the CRL's
// issuer name must equal issuer's subject (byte for byte) and its signature
// must verify against issuer's public key; either failing is an error of
// class source.ClassBadSignature.
func Parse(der []byte, issuer *x509.Certificate) (*List, error) {
	p, err := parseOuter(der)
	if err != nil {
		return nil, err
	}
	if issuer != nil {
		if err := p.verify(issuer); err != nil {
			return nil, err
		}
	}
	// Two walks: the first validates and sizes, so that the second fills
	// arrays of exactly the right size instead of growing them by doubling.
	n, serialBytes, err := walkEntries(p.revoked, nil)
	if err != nil {
		return nil, err
	}
	if uint64(serialBytes) > math.MaxUint32 { // offsets are uint32: 4 bytes an entry, not 8
		return nil, source.Errorf(source.ClassTooLarge, "serials take %d bytes, over the 4 GiB a List can hold", serialBytes)
	}
	l := &List{
		CRL:     p.crl,
		serials: make([]byte, 0, serialBytes),
		offsets: make([]uint32, 1, n+1),
		times:   make([]int64, 0, n),
		reasons: make([]int8, 0, n),
	}
	l.CRL.Entries = n
	if _, _, err := walkEntries(p.revoked, func(serial []byte, negative bool, at int64, reason int8) {
		if negative {
			l.serials = append(l.serials, negativeMark)
		}
		l.serials = append(l.serials, serial...)
		l.offsets = append(l.offsets, uint32(len(l.serials)))
		l.times = append(l.times, at)
		l.reasons = append(l.reasons, reason)
	}); err != nil {
		return nil, err // cannot happen: the same bytes walked cleanly a moment ago
	}
	l.sort()
	return l, nil
}

// Len returns the number of entries in the list.
func (l *List) Len() int { return len(l.times) }

// Lookup finds serial in the list: revoked or not, when, and the reason
// code (-1 when the entry has none). When a serial is listed twice, one of
// its entries is returned.
func (l *List) Lookup(serial *big.Int) (revokedAt time.Time, reason int, revoked bool) {
	if l == nil || serial == nil {
		return time.Time{}, -1, false
	}
	var buf [32]byte
	var key []byte
	switch n := (serial.BitLen() + 7) / 8; {
	case serial.Sign() < 0:
		key = append([]byte{negativeMark}, negativeContent(serial)...)
	case n <= len(buf):
		key = serial.FillBytes(buf[:n])
	default:
		key = serial.Bytes()
	}
	n := l.Len()
	i := sort.Search(n, func(i int) bool { return compareSerials(l.serial(i), key) >= 0 })
	if i == n || !bytes.Equal(l.serial(i), key) {
		return time.Time{}, -1, false
	}
	return time.Unix(l.times[i], 0).UTC(), int(l.reasons[i]), true
}

// Bytes estimates the memory the List holds, for benchmarks and limits.
func (l *List) Bytes() int {
	if l == nil {
		return 0
	}
	const listStruct = 200 // the struct itself, source.CRL included, and slice headers
	n := listStruct + cap(l.serials) + 4*cap(l.offsets) + 8*cap(l.times) + cap(l.reasons)
	n += len(l.CRL.Issuer) + len(l.CRL.IssuerCN) + len(l.CRL.SignatureAlgorithm) + cap(l.CRL.AuthorityKeyID)
	if l.CRL.Number != nil {
		n += 32 + len(l.CRL.Number.Bits())*8
	}
	return n
}

func (l *List) serial(i int) []byte { return l.serials[l.offsets[i]:l.offsets[i+1]] }

// compareSerials orders serials by length, then bytes: numeric order for
// positive serials without leading zeros. Negative ones fall wherever their
// bytes put them; the order only has to be the one Lookup searches by.
func compareSerials(a, b []byte) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return bytes.Compare(a, b)
}

// sort orders the entries by serial. CRLs are often written in serial or
// revocation order; an already sorted list costs one scan.
func (l *List) sort() {
	n := l.Len()
	sorted := true
	for i := 1; i < n && sorted; i++ {
		sorted = compareSerials(l.serial(i-1), l.serial(i)) <= 0
	}
	if sorted {
		return
	}
	// Sorting keys that hold each serial's first 8 bytes compares integers
	// almost always, instead of chasing offsets into the serials.
	type sortKey struct {
		length uint32
		index  uint32
		head   uint64
	}
	keys := make([]sortKey, n)
	for i := range keys {
		s := l.serial(i)
		var head [8]byte
		copy(head[:], s)
		keys[i] = sortKey{length: uint32(len(s)), index: uint32(i), head: binary.BigEndian.Uint64(head[:])}
	}
	slices.SortFunc(keys, func(a, b sortKey) int {
		switch {
		case a.length != b.length:
			return cmp.Compare(a.length, b.length)
		case a.head != b.head:
			return cmp.Compare(a.head, b.head)
		case a.length <= 8:
			return 0
		}
		return bytes.Compare(l.serial(int(a.index))[8:], l.serial(int(b.index))[8:])
	})
	serials := make([]byte, 0, len(l.serials))
	offsets := make([]uint32, 1, n+1)
	times := make([]int64, n)
	reasons := make([]int8, n)
	for i, k := range keys {
		j := k.index
		serials = append(serials, l.serial(int(j))...)
		offsets = append(offsets, uint32(len(serials)))
		times[i], reasons[i] = l.times[j], l.reasons[j]
	}
	l.serials, l.offsets, l.times, l.reasons = serials, offsets, times, reasons
}

// negativeContent returns the content bytes of the DER INTEGER of a
// negative n (minimal two's complement), as a CRL would carry it.
func negativeContent(n *big.Int) []byte {
	var b cryptobyte.Builder
	b.AddASN1BigInt(n)
	der, err := b.Bytes()
	if err != nil {
		return nil
	}
	s := cryptobyte.String(der)
	var content cryptobyte.String
	if !s.ReadASN1(&content, cbasn1.INTEGER) {
		return nil
	}
	return content
}

// negativeMark precedes a negative serial's bytes in a List.
const negativeMark = 0x00

// normaliseSerial strips the leading zero bytes of a non-negative INTEGER's
// content (in DER only one, marking the sign of a value whose top bit is
// set), so that it equals big.Int.Bytes(). Negative contents are returned
// as they are, with negative set: the List marks them.
func normaliseSerial(b []byte) (out []byte, negative bool) {
	if b[0]&0x80 != 0 {
		return b, true
	}
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b, false
}

// outer is what parseOuter read: the CRL's own summary (Entries not yet
// counted) and what verification and the entry walk need. Its byte slices
// point into the DER and are not kept past Summary or Parse.
type outer struct {
	crl       source.CRL
	tbsRaw    []byte
	issuerRaw []byte
	alg       signatureAlgorithm
	signature []byte
	revoked   cryptobyte.String // the content of revokedCertificates; empty when absent
}

func parseErrorf(format string, args ...any) error {
	return source.Errorf(source.ClassParse, format, args...)
}

var (
	tagVersion   = cbasn1.INTEGER
	tagExtension = cbasn1.Tag(0).Constructed().ContextSpecific()

	oidCRLNumber      = []byte{0x55, 0x1d, 0x14} // 2.5.29.20
	oidAuthorityKeyID = []byte{0x55, 0x1d, 0x23} // 2.5.29.35
	oidDeltaCRL       = []byte{0x55, 0x1d, 0x1b} // 2.5.29.27
	oidReasonCode     = []byte{0x55, 0x1d, 0x15} // 2.5.29.21
)

// parseOuter reads everything but the entries.
func parseOuter(der []byte) (*outer, error) {
	input := cryptobyte.String(der)
	var list cryptobyte.String
	if !input.ReadASN1(&list, cbasn1.SEQUENCE) {
		return nil, parseErrorf("not a DER SEQUENCE, or truncated")
	}
	if !input.Empty() {
		return nil, parseErrorf("trailing data after the CRL")
	}
	p := &outer{}
	var tbsRaw, outerAlg cryptobyte.String
	if !list.ReadASN1Element(&tbsRaw, cbasn1.SEQUENCE) {
		return nil, parseErrorf("malformed tbsCertList")
	}
	if !list.ReadASN1Element(&outerAlg, cbasn1.SEQUENCE) {
		return nil, parseErrorf("malformed signatureAlgorithm")
	}
	var sig asn1.BitString
	if !list.ReadASN1BitString(&sig) || sig.BitLength%8 != 0 {
		return nil, parseErrorf("malformed signature")
	}
	if !list.Empty() {
		return nil, parseErrorf("unexpected data after the signature")
	}
	p.tbsRaw, p.signature = tbsRaw, sig.Bytes

	var tbs cryptobyte.String
	tbsRaw.ReadASN1(&tbs, cbasn1.SEQUENCE) // read as an element above: cannot fail
	if tbs.PeekASN1Tag(tagVersion) {
		var version int64
		if !tbs.ReadASN1Integer(&version) {
			return nil, parseErrorf("malformed version")
		}
		if version != 0 && version != 1 { // v1 is usually absent, v2 is 1
			return nil, parseErrorf("unsupported version %d", version+1)
		}
	}
	var innerAlg cryptobyte.String
	if !tbs.ReadASN1Element(&innerAlg, cbasn1.SEQUENCE) {
		return nil, parseErrorf("malformed tbsCertList signature algorithm")
	}
	if !bytes.Equal(innerAlg, outerAlg) {
		return nil, parseErrorf("the signature algorithms inside and outside tbsCertList differ")
	}
	alg, err := parseSignatureAlgorithm(outerAlg)
	if err != nil {
		return nil, err
	}
	p.alg = alg
	p.crl.SignatureAlgorithm = alg.name()

	var issuer cryptobyte.String
	if !tbs.ReadASN1Element(&issuer, cbasn1.SEQUENCE) {
		return nil, parseErrorf("malformed issuer")
	}
	p.issuerRaw = issuer
	if err := p.readIssuer(issuer); err != nil {
		return nil, err
	}
	thisUpdate, ok := readTime(&tbs)
	if !ok {
		return nil, parseErrorf("malformed thisUpdate")
	}
	p.crl.ThisUpdate = time.Unix(thisUpdate, 0).UTC()
	if tbs.PeekASN1Tag(cbasn1.UTCTime) || tbs.PeekASN1Tag(cbasn1.GeneralizedTime) {
		nextUpdate, ok := readTime(&tbs)
		if !ok {
			return nil, parseErrorf("malformed nextUpdate")
		}
		p.crl.NextUpdate = time.Unix(nextUpdate, 0).UTC()
	}
	if tbs.PeekASN1Tag(cbasn1.SEQUENCE) {
		if !tbs.ReadASN1(&p.revoked, cbasn1.SEQUENCE) {
			return nil, parseErrorf("malformed revokedCertificates")
		}
	}
	if tbs.PeekASN1Tag(tagExtension) {
		var wrapped, exts cryptobyte.String
		if !tbs.ReadASN1(&wrapped, tagExtension) || !wrapped.ReadASN1(&exts, cbasn1.SEQUENCE) || !wrapped.Empty() {
			return nil, parseErrorf("malformed crlExtensions")
		}
		if err := p.readExtensions(exts); err != nil {
			return nil, err
		}
	}
	if !tbs.Empty() {
		return nil, parseErrorf("unexpected data at the end of tbsCertList")
	}
	sum := sha256.Sum256(der)
	p.crl.Fingerprint = sum
	return p, nil
}

func (p *outer) readIssuer(raw []byte) error {
	var rdns pkix.RDNSequence
	rest, err := asn1.Unmarshal(raw, &rdns)
	if err != nil || len(rest) > 0 {
		return parseErrorf("malformed issuer name")
	}
	var name pkix.Name
	name.FillFromRDNSequence(&rdns)
	p.crl.Issuer = name.String()
	p.crl.IssuerCN = cutUTF8(name.CommonName, maxIssuerCN)
	return nil
}

// cutUTF8 cuts s to at most n bytes, on a character boundary.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// extension reads one Extension: its OID's encoding (not copied), critical
// flag and value.
func readExtension(exts *cryptobyte.String) (oid []byte, critical bool, value cryptobyte.String, ok bool) {
	var ext, oidBytes cryptobyte.String
	if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1(&oidBytes, cbasn1.OBJECT_IDENTIFIER) || len(oidBytes) == 0 {
		return nil, false, nil, false
	}
	if ext.PeekASN1Tag(cbasn1.BOOLEAN) && !ext.ReadASN1Boolean(&critical) {
		return nil, false, nil, false
	}
	if !ext.ReadASN1(&value, cbasn1.OCTET_STRING) || !ext.Empty() {
		return nil, false, nil, false
	}
	return oidBytes, critical, value, true
}

func (p *outer) readExtensions(exts cryptobyte.String) error {
	for i := 0; !exts.Empty(); i++ {
		oid, _, value, ok := readExtension(&exts)
		if !ok {
			return parseErrorf("crlExtensions: extension %d: malformed", i)
		}
		switch {
		case bytes.Equal(oid, oidCRLNumber):
			n := new(big.Int)
			if !value.ReadASN1Integer(n) || !value.Empty() {
				return parseErrorf("crlExtensions: malformed CRL number")
			}
			p.crl.Number = n
		case bytes.Equal(oid, oidAuthorityKeyID):
			// AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, ... }
			var aki cryptobyte.String
			if !value.ReadASN1(&aki, cbasn1.SEQUENCE) || !value.Empty() {
				return parseErrorf("crlExtensions: malformed authority key identifier")
			}
			if aki.PeekASN1Tag(cbasn1.Tag(0).ContextSpecific()) {
				var id cryptobyte.String
				if !aki.ReadASN1(&id, cbasn1.Tag(0).ContextSpecific()) {
					return parseErrorf("crlExtensions: malformed authority key identifier")
				}
				p.crl.AuthorityKeyID = bytes.Clone(id) // the DER may be wiped after parsing
			}
		case bytes.Equal(oid, oidDeltaCRL):
			p.crl.Delta = true
		}
	}
	return nil
}

// walkEntries checks every entry of revokedCertificates and counts them and
// the bytes their serials take in a List; fill, when set, receives each
// entry (serial points into the DER).
func walkEntries(revoked cryptobyte.String, fill func(serial []byte, negative bool, at int64, reason int8)) (n, serialBytes int, err error) {
	for ; !revoked.Empty(); n++ {
		var entry, serial cryptobyte.String
		if !revoked.ReadASN1(&entry, cbasn1.SEQUENCE) {
			return 0, 0, parseErrorf("entry %d: malformed", n)
		}
		if !entry.ReadASN1(&serial, cbasn1.INTEGER) || len(serial) == 0 {
			return 0, 0, parseErrorf("entry %d: malformed serial number", n)
		}
		at, ok := readTime(&entry)
		if !ok {
			return 0, 0, parseErrorf("entry %d: malformed revocationDate", n)
		}
		reason := int8(-1)
		if !entry.Empty() {
			var exts cryptobyte.String
			if !entry.ReadASN1(&exts, cbasn1.SEQUENCE) || !entry.Empty() {
				return 0, 0, parseErrorf("entry %d: malformed crlEntryExtensions", n)
			}
			if reason, err = entryReason(exts, n); err != nil {
				return 0, 0, err
			}
		}
		s, negative := normaliseSerial(serial)
		serialBytes += len(s)
		if negative {
			serialBytes++
		}
		if fill != nil {
			fill(s, negative, at, reason)
		}
	}
	return n, serialBytes, nil
}

// maxReasonCode bounds the CRLReason values accepted (RFC 5280 defines 0
// to 10); anything outside int8 would not fit the List.
const maxReasonCode = 127

func entryReason(exts cryptobyte.String, n int) (int8, error) {
	reason := int8(-1)
	for i := 0; !exts.Empty(); i++ {
		oid, critical, value, ok := readExtension(&exts)
		if !ok {
			return 0, parseErrorf("entry %d: extension %d: malformed", n, i)
		}
		switch {
		case bytes.Equal(oid, oidReasonCode):
			var code int
			if !value.ReadASN1Enum(&code) || !value.Empty() {
				return 0, parseErrorf("entry %d: malformed reasonCode", n)
			}
			if code < 0 || code > maxReasonCode {
				return 0, parseErrorf("entry %d: reasonCode %d out of range", n, code)
			}
			reason = int8(code)
		case critical:
			return 0, parseErrorf("entry %d: unsupported critical extension %s", n, oidString(oid))
		}
	}
	return reason, nil
}

// oidString renders an OID's encoding for an error message, short.
func oidString(enc []byte) string {
	const maxLen = 64
	var oid asn1.ObjectIdentifier
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(enc) })
	der, err := b.Bytes()
	s := cryptobyte.String(der)
	if err != nil || !s.ReadASN1ObjectIdentifier(&oid) {
		return "(malformed OID)"
	}
	return cutUTF8(oid.String(), maxLen)
}

// readTime reads a UTCTime or GeneralizedTime as unix seconds. The forms
// RFC 5280 prescribes (seconds, "Z") are parsed without allocating, as a
// large CRL has one per entry; anything else goes through cryptobyte.
func readTime(s *cryptobyte.String) (int64, bool) {
	save := *s
	var content cryptobyte.String
	var tag cbasn1.Tag
	if !s.ReadAnyASN1(&content, &tag) {
		return 0, false
	}
	if t, ok := fastTime(content, tag); ok {
		return t, true
	}
	*s = save
	var t time.Time
	var ok bool
	switch tag {
	case cbasn1.UTCTime:
		ok = s.ReadASN1UTCTime(&t)
	case cbasn1.GeneralizedTime:
		ok = s.ReadASN1GeneralizedTime(&t)
	}
	return t.Unix(), ok
}

// fastTime parses YYMMDDHHMMSSZ (UTCTime) and YYYYMMDDHHMMSSZ
// (GeneralizedTime).
func fastTime(b []byte, tag cbasn1.Tag) (int64, bool) {
	var year int
	switch {
	case tag == cbasn1.UTCTime && len(b) == 13 && b[12] == 'Z':
		yy, ok := digits(b[0:2])
		if !ok {
			return 0, false
		}
		year, b = 1900+yy, b[2:]
		if yy < 50 {
			year += 100
		}
	case tag == cbasn1.GeneralizedTime && len(b) == 15 && b[14] == 'Z':
		yyyy, ok := digits(b[0:4])
		if !ok {
			return 0, false
		}
		year, b = yyyy, b[4:]
	default:
		return 0, false
	}
	month, ok1 := digits(b[0:2])
	day, ok2 := digits(b[2:4])
	hour, ok3 := digits(b[4:6])
	minute, ok4 := digits(b[6:8])
	second, ok5 := digits(b[8:10])
	if !(ok1 && ok2 && ok3 && ok4 && ok5) || month < 1 || month > 12 || day < 1 ||
		day > daysIn(time.Month(month), year) || hour > 23 || minute > 59 || second > 59 {
		return 0, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, second, 0, time.UTC).Unix(), true
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// signatureAlgorithm is a CRL's signature algorithm: known to crypto/x509,
// or only an OID.
type signatureAlgorithm struct {
	x509    x509.SignatureAlgorithm // UnknownSignatureAlgorithm when not one crypto/x509 verifies
	label   string                  // the name when x509 is unknown: "SHA1-RSAPSS" or the OID
	unknown bool                    // neither crypto/x509 nor this package knows it
}

func (a signatureAlgorithm) name() string {
	if a.x509 != x509.UnknownSignatureAlgorithm {
		return a.x509.String()
	}
	return a.label
}

var (
	oidRSAPSS = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}

	// simpleAlgorithms are the algorithms named by their OID alone.
	simpleAlgorithms = []struct {
		oid asn1.ObjectIdentifier
		alg x509.SignatureAlgorithm
	}{
		{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 4}, x509.MD5WithRSA},
		{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}, x509.SHA1WithRSA},
		{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, x509.SHA256WithRSA},
		{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}, x509.SHA384WithRSA},
		{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}, x509.SHA512WithRSA},
		{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}, x509.ECDSAWithSHA1},
		{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}, x509.ECDSAWithSHA256},
		{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}, x509.ECDSAWithSHA384},
		{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}, x509.ECDSAWithSHA512},
		{asn1.ObjectIdentifier{1, 3, 101, 112}, x509.PureEd25519},
	}
)

// parseSignatureAlgorithm maps an AlgorithmIdentifier (the whole element)
// to an algorithm. An unknown OID is not an error here: Summary reports it
// by its OID; only verification needs to know it.
func parseSignatureAlgorithm(ai cryptobyte.String) (signatureAlgorithm, error) {
	var seq cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !ai.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1ObjectIdentifier(&oid) {
		return signatureAlgorithm{}, parseErrorf("malformed signature algorithm")
	}
	for _, a := range simpleAlgorithms {
		if oid.Equal(a.oid) {
			return signatureAlgorithm{x509: a.alg}, nil
		}
	}
	if !oid.Equal(oidRSAPSS) {
		return signatureAlgorithm{label: cutUTF8(oid.String(), 64), unknown: true}, nil
	}
	hash, err := pssHash(seq)
	if err != nil {
		return signatureAlgorithm{}, err
	}
	switch {
	case hash.Equal(oidSHA256):
		return signatureAlgorithm{x509: x509.SHA256WithRSAPSS}, nil
	case hash.Equal(oidSHA384):
		return signatureAlgorithm{x509: x509.SHA384WithRSAPSS}, nil
	case hash.Equal(oidSHA512):
		return signatureAlgorithm{x509: x509.SHA512WithRSAPSS}, nil
	case hash.Equal(oidSHA1):
		// crypto/x509 has no name for it and would refuse SHA-1 anyway.
		return signatureAlgorithm{label: "SHA1-RSAPSS"}, nil
	}
	return signatureAlgorithm{label: "RSAPSS with hash " + cutUTF8(hash.String(), 64), unknown: true}, nil
}

// pssHash reads the hash of RSASSA-PSS-params (RFC 4055): SEQUENCE {
// hashAlgorithm [0] EXPLICIT AlgorithmIdentifier DEFAULT sha1, ... }. The
// mask generation, salt length and trailer are left to the verification,
// which fails when they are not the ones crypto/x509 expects.
func pssHash(params cryptobyte.String) (asn1.ObjectIdentifier, error) {
	if params.Empty() {
		return oidSHA1, nil
	}
	var seq cryptobyte.String
	if !params.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return nil, parseErrorf("malformed RSA-PSS parameters")
	}
	tag0 := cbasn1.Tag(0).Constructed().ContextSpecific()
	if !seq.PeekASN1Tag(tag0) {
		return oidSHA1, nil
	}
	var explicit, hashAI cryptobyte.String
	var hash asn1.ObjectIdentifier
	if !seq.ReadASN1(&explicit, tag0) || !explicit.ReadASN1(&hashAI, cbasn1.SEQUENCE) || !hashAI.ReadASN1ObjectIdentifier(&hash) {
		return nil, parseErrorf("malformed RSA-PSS hash algorithm")
	}
	return hash, nil
}

// verify checks that issuer issued the CRL: its subject is the CRL's
// issuer and its key made the signature.
func (p *outer) verify(issuer *x509.Certificate) error {
	if !bytes.Equal(p.issuerRaw, issuer.RawSubject) {
		return source.Errorf(source.ClassBadSignature, "CRL issuer %q is not the subject of the given issuer certificate (%q)",
			cutUTF8(p.crl.Issuer, maxIssuerCN), cutUTF8(issuer.Subject.String(), maxIssuerCN))
	}
	switch {
	case p.alg.unknown:
		return parseErrorf("unsupported signature algorithm %s", p.alg.label)
	case p.alg.x509 == x509.UnknownSignatureAlgorithm: // SHA-1 RSA-PSS
		return source.Errorf(source.ClassBadSignature, "signature algorithm %s is insecure", p.alg.label)
	case insecure[p.alg.x509]:
		// Certificate.CheckSignature accepts SHA-1 (only chain verification
		// refuses it), so the refusal is made here.
		return source.Errorf(source.ClassBadSignature, "signature algorithm %s is insecure: %w", p.alg.x509, x509.InsecureAlgorithmError(p.alg.x509))
	}
	if err := issuer.CheckSignature(p.alg.x509, p.tbsRaw, p.signature); err != nil {
		return source.Errorf(source.ClassBadSignature, "signature does not verify against the issuer's key: %w", err)
	}
	return nil
}

// insecure are the algorithms whose signatures prove nothing: collisions
// in their hash can be made.
var insecure = map[x509.SignatureAlgorithm]bool{x509.MD5WithRSA: true, x509.SHA1WithRSA: true, x509.ECDSAWithSHA1: true}

// LooksLikeCRL says whether der has the shape of a CRL: a SEQUENCE whose
// first element (tbsCertList) starts with an optional INTEGER, an
// AlgorithmIdentifier, a Name and a time. A certificate's TBS starts with
// [0] or a serial INTEGER followed by an AlgorithmIdentifier, a Name and a
// validity SEQUENCE; a PKCS#12 file with an INTEGER outside any TBS. Callers
// that recognise formats by content use it to report a broken CRL as one.
func LooksLikeCRL(der []byte) bool {
	input := cryptobyte.String(der)
	var list, tbs cryptobyte.String
	if !input.ReadASN1(&list, cbasn1.SEQUENCE) || !list.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return false
	}
	if tbs.PeekASN1Tag(cbasn1.INTEGER) && !tbs.SkipASN1(cbasn1.INTEGER) {
		return false
	}
	if !tbs.SkipASN1(cbasn1.SEQUENCE) || !tbs.SkipASN1(cbasn1.SEQUENCE) {
		return false
	}
	return tbs.PeekASN1Tag(cbasn1.UTCTime) || tbs.PeekASN1Tag(cbasn1.GeneralizedTime)
}

// String names the list for logs.
func (l *List) String() string {
	return fmt.Sprintf("CRL of %s, %d entries", l.CRL.Issuer, l.Len())
}
