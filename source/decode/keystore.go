package decode

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // the keystores' integrity check is SHA-1 by format
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"
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
// count it declares fits in the data, before anything trusts them: a 40-byte
// file may declare four billion certificates, and a library allocating that
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

// keystoreDigestMatches checks a keystore's integrity digest: SHA-1 over the
// password (Java chars, UTF-16 big-endian), the phrase "Mighty Aphrodite"
// and the keystore up to the digest.
func keystoreDigestMatches(data []byte, digestAt int, password []byte) bool {
	h := sha1.New() //nolint:gosec // by format
	units := utf16.Encode([]rune(string(password)))
	pw := make([]byte, 0, 2*len(units))
	for _, u := range units {
		pw = binary.BigEndian.AppendUint16(pw, u)
	}
	h.Write(pw)
	clear(pw)
	h.Write([]byte("Mighty Aphrodite"))
	h.Write(data[:digestAt])
	return subtle.ConstantTimeCompare(h.Sum(nil), data[digestAt:digestAt+keystoreDigestLen]) == 1
}

// jksWellFormed checks a JKS keystore's structure before keystore-go, which
// allocates whatever a length field says, reads it.
func jksWellFormed(data []byte) error {
	_, err := walkKeystore(data, false, nil)
	return err
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
