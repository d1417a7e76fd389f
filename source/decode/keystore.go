package decode

import (
	"bytes"
	"crypto"
	"crypto/sha1" //nolint:gosec // the keystores' integrity check is SHA-1 by format
	"crypto/subtle"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"unicode/utf16"

	"github.com/certwatch/certwatch/source"
)

// Java keystores come in two formats that share one layout: JKS (magic
// 0xFEEDFEED, versions 1 and 2) and JCEKS (0xCECECECE, version 2), which
// adds sealed secret-key entries. Both end with the same keyed SHA-1 digest.
var (
	jksMagic   = []byte{0xfe, 0xed, 0xfe, 0xed}
	jceksMagic = []byte{0xce, 0xce, 0xce, 0xce}
)

// Entry tags of a keystore.
const (
	keystorePrivateKey  = 1
	keystoreTrustedCert = 2
	keystoreSecretKey   = 3 // JCEKS only: a Java-serialized sealed key, no certificate
)

// keystoreDigestLen is the size of the integrity digest after the entries.
const keystoreDigestLen = sha1.Size

// storedEntry is one entry of a keystore as stored: slices of the data,
// nothing decoded.
type storedEntry struct {
	tag   uint32
	alias string
	key   []byte   // the protected private key (private key entries)
	certs [][]byte // DER certificates, leaf first (private key entries) or one (trusted)
}

// walkKeystore walks a keystore's structure and checks that every length and
// count it declares fits in the data before anything is allocated for it: a
// 40-byte file may declare four billion certificates, and allocating that
// kills the process (a fatal error, not a recoverable panic). Every step
// consumes bytes or fails, so the walk is linear in the data. visit, when not
// nil, receives each entry (slices of data); a nil visit allocates nothing.
// It returns where the digest starts.
func walkKeystore(data []byte, jceks bool, visit func(storedEntry)) (digestAt int, err error) {
	r := jksReader{b: data}
	r.skip(4) // magic, checked by the caller
	version := r.u32()
	switch {
	case r.err != nil:
	case jceks && version != 2:
		return 0, fmt.Errorf("unknown JCEKS version %d", version)
	case !jceks && version != 1 && version != 2:
		return 0, fmt.Errorf("unknown version %d", version)
	}
	count := r.u32()
	for i := uint32(0); i < count && r.err == nil; i++ {
		tag := r.u32()
		alias := r.take(int(r.u16()))
		r.skip(8) // creation time
		e := storedEntry{tag: tag}
		switch tag {
		case keystorePrivateKey:
			e.key = r.take(int(r.u32()))
			certs := r.u32()
			for j := uint32(0); j < certs && r.err == nil; j++ {
				if c := r.cert(version); visit != nil && r.err == nil {
					e.certs = append(e.certs, c)
				}
			}
		case keystoreTrustedCert:
			if c := r.cert(version); visit != nil && r.err == nil {
				e.certs = [][]byte{c}
			}
		case keystoreSecretKey:
			if jceks {
				skipJavaObject(&r)
				break
			}
			fallthrough
		default:
			if r.err == nil {
				return 0, fmt.Errorf("entry %d: unknown tag %d", i, tag)
			}
		}
		if visit != nil && r.err == nil {
			e.alias = string(alias)
			visit(e)
		}
	}
	digestAt = len(data) - len(r.b)
	r.skip(keystoreDigestLen)
	return digestAt, r.err
}

// parseKeystore reads the certificates of a Java keystore, JKS or JCEKS:
// those of trusted certificate entries and the chains of private key
// entries, one entry per alias, sorted. JCEKS secret key entries hold no
// certificate and are skipped. password nil (none configured) skips the
// integrity check; a wrong one marks every alias wrong_password, its
// certificates still reported. With the check passed, private keys are
// opened with the same password for the key-match check, as keytool
// protects them by default.
func parseKeystore(data, password []byte, limit int, jceks bool) ([]entry, error) {
	name := "Java keystore"
	if jceks {
		name = "Java keystore (JCEKS)"
	}
	var stored []storedEntry
	digestAt, err := walkKeystore(data, jceks, func(e storedEntry) { stored = append(stored, e) })
	if err != nil {
		return nil, source.Errorf(source.ClassParse, "%s: %v", name, err)
	}
	var problem error
	if password != nil && !keystoreDigestMatches(data, digestAt, password) {
		problem = source.Errorf(source.ClassWrongPassword, "%s: the configured password does not match its integrity check", name)
	}
	// As in Java, a later entry replaces an earlier one of the same alias.
	last := map[string]int{}
	for i, e := range stored {
		last[e.alias] = i
	}
	aliases := make([]string, 0, len(last))
	for alias, i := range last {
		if stored[i].tag != keystoreSecretKey {
			aliases = append(aliases, alias)
		}
	}
	sort.Strings(aliases)
	budget := maxJCEKSIterations
	var entries []entry
	for _, alias := range aliases {
		se := stored[last[alias]]
		e := entry{key: alias, err: problem}
		if len(se.certs) > limit { // an alias is a place of its own
			e.err = tooManyCertificates(len(se.certs), limit)
			entries = append(entries, e)
			continue
		}
		for i, der := range se.certs {
			c, err := parseCertificate(der, false)
			if err != nil {
				e.err = source.Errorf(source.ClassParse, "alias %q certificate %d: %v", alias, i, err)
				continue
			}
			e.certs = append(e.certs, c)
		}
		if se.tag == keystorePrivateKey && password != nil && problem == nil {
			if pub := keystoreKeyPublic(se.key, password, &budget); pub != nil {
				e.keyPublics = []crypto.PublicKey{pub}
			}
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		if problem != nil {
			return nil, problem
		}
		return nil, source.WithClass(source.ClassParse, ErrNoCertificates)
	}
	return entries, nil
}

// keystoreDigestMatches checks a keystore's integrity digest: SHA-1 over the
// password (Java chars, UTF-16 big-endian), the phrase "Mighty Aphrodite"
// and the keystore up to the digest.
func keystoreDigestMatches(data []byte, digestAt int, password []byte) bool {
	h := sha1.New() //nolint:gosec // by format
	pw := javaChars(password)
	h.Write(pw)
	clear(pw)
	h.Write([]byte("Mighty Aphrodite"))
	h.Write(data[:digestAt])
	return subtle.ConstantTimeCompare(h.Sum(nil), data[digestAt:digestAt+keystoreDigestLen]) == 1
}

// javaChars is a password as Java's char[] hashes it: UTF-16 big-endian.
func javaChars(password []byte) []byte {
	units := utf16.Encode([]rune(string(password)))
	out := make([]byte, 0, 2*len(units))
	for _, u := range units {
		out = binary.BigEndian.AppendUint16(out, u)
	}
	return out
}

type encryptedPrivateKeyInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Data      []byte
}

// oidJKSKeyProtector is Sun's own key protection, that of JKS.
var oidJKSKeyProtector = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 42, 2, 17, 1, 1}

// keystoreKeyPublic opens a stored private key (an EncryptedPrivateKeyInfo
// under JKS's or JCEKS's protection) and returns its public half, or nil.
func keystoreKeyPublic(protected, password []byte, budget *int) crypto.PublicKey {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(protected, &info); err != nil || len(rest) > 0 {
		return nil
	}
	switch {
	case info.Algorithm.Algorithm.Equal(oidJKSKeyProtector):
		return jksKeyPublic(info.Data, password)
	case info.Algorithm.Algorithm.Equal(oidPBEWithMD5AndTripleDES):
		return jceksKeyPublic(info, password, budget)
	}
	return nil
}

// jksKeyPublic opens a key under JKS's protection: a 20-byte salt, the key
// XORed with a SHA-1 chain seeded with the password and the salt, and a
// SHA-1 of password and plain key that tells a wrong password. The plain key
// is wiped.
func jksKeyPublic(data, password []byte) crypto.PublicKey {
	const n = sha1.Size
	if len(data) < 2*n+1 {
		return nil
	}
	salt, enc, check := data[:n], data[n:len(data)-n], data[len(data)-n:]
	pw := javaChars(password)
	defer clear(pw)
	plain := make([]byte, len(enc))
	defer clear(plain)
	h := sha1.New() //nolint:gosec // by format
	digest := salt
	var sum [n]byte
	for off := 0; off < len(enc); off += n {
		h.Reset()
		h.Write(pw)
		h.Write(digest)
		digest = h.Sum(sum[:0])
		for i := off; i < len(enc) && i < off+n; i++ {
			plain[i] = enc[i] ^ digest[i-off]
		}
	}
	h.Reset()
	h.Write(pw)
	h.Write(plain)
	if subtle.ConstantTimeCompare(h.Sum(nil), check) != 1 {
		return nil
	}
	return publicOfPrivateDER("PRIVATE KEY", plain)
}

// isKeystore says whether data starts like a Java keystore of either format.
func isKeystore(data []byte) bool {
	return bytes.HasPrefix(data, jksMagic) || bytes.HasPrefix(data, jceksMagic)
}

// jksReader reads a keystore's big-endian fields; after the first field that
// does not fit, every read returns zero and err is set.
type jksReader struct {
	b   []byte
	err error
}

func (r *jksReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errors.New("truncated or malformed")
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *jksReader) skip(n int) { r.take(n) }

func (r *jksReader) u8() byte {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *jksReader) u16() uint16 {
	if p := r.take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (r *jksReader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (r *jksReader) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// fail records a structural problem unless one is already recorded.
func (r *jksReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

// cert reads one stored certificate: its type (version 2) and its encoding.
func (r *jksReader) cert(version uint32) []byte {
	if version == 2 {
		r.skip(int(r.u16())) // certificate type
	}
	return r.take(int(r.u32()))
}
