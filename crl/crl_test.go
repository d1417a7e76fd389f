package crl

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certwatch/certwatch/internal/testtools"
	"github.com/certwatch/certwatch/source"
)

// testCA is an issuer made at test time.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var key crypto.Signer
	var err error
	switch kind {
	case "rsa":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "p256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func newCA(t testing.TB, kind, cn string) testCA {
	t.Helper()
	return newCAWithKey(t, newKey(t, kind), cn)
}

func newCAWithKey(t testing.TB, key crypto.Signer, cn string) testCA {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"certwatch tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          []byte{1, 2, 3, 4, 5, 6, 7, 8},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{cert: cert, key: key}
}

func (ca testCA) crl(t testing.TB, tmpl *x509.RevocationList) []byte {
	t.Helper()
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

var oidDeltaCRLIndicator = asn1.ObjectIdentifier{2, 5, 29, 27}

// checkAgainstStdlib compares Summary, Parse and Lookup with crypto/x509's
// view of der.
func checkAgainstStdlib(t *testing.T, der []byte, issuer *x509.Certificate) *List {
	t.Helper()
	want, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("crypto/x509 refuses the CRL: %v", err)
	}
	sum, err := Summary(der)
	if err != nil {
		t.Fatalf("Summary: %v", err)
	}
	l, err := Parse(der, issuer)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	for _, got := range []source.CRL{sum, l.CRL} {
		if got.Issuer != want.Issuer.String() {
			t.Errorf("Issuer = %q, want %q", got.Issuer, want.Issuer.String())
		}
		if got.IssuerCN != want.Issuer.CommonName {
			t.Errorf("IssuerCN = %q, want %q", got.IssuerCN, want.Issuer.CommonName)
		}
		if !got.ThisUpdate.Equal(want.ThisUpdate) || !got.NextUpdate.Equal(want.NextUpdate) {
			t.Errorf("updates = %v, %v; want %v, %v", got.ThisUpdate, got.NextUpdate, want.ThisUpdate, want.NextUpdate)
		}
		if (got.Number == nil) != (want.Number == nil) || got.Number != nil && got.Number.Cmp(want.Number) != 0 {
			t.Errorf("Number = %v, want %v", got.Number, want.Number)
		}
		if !bytes.Equal(got.AuthorityKeyID, want.AuthorityKeyId) {
			t.Errorf("AuthorityKeyID = %x, want %x", got.AuthorityKeyID, want.AuthorityKeyId)
		}
		if got.Entries != len(want.RevokedCertificateEntries) {
			t.Errorf("Entries = %d, want %d", got.Entries, len(want.RevokedCertificateEntries))
		}
		if got.SignatureAlgorithm != want.SignatureAlgorithm.String() {
			t.Errorf("SignatureAlgorithm = %q, want %q", got.SignatureAlgorithm, want.SignatureAlgorithm)
		}
		if got.Fingerprint != sha256.Sum256(der) {
			t.Errorf("Fingerprint is not the SHA-256 of the DER")
		}
		delta := false
		for _, e := range want.Extensions {
			delta = delta || e.Id.Equal(oidDeltaCRLIndicator)
		}
		if got.Delta != delta {
			t.Errorf("Delta = %v, want %v", got.Delta, delta)
		}
	}
	if l.Len() != len(want.RevokedCertificateEntries) {
		t.Fatalf("Len = %d, want %d", l.Len(), len(want.RevokedCertificateEntries))
	}
	for _, e := range want.RevokedCertificateEntries {
		at, reason, revoked := l.Lookup(e.SerialNumber)
		if !revoked {
			t.Errorf("serial %x not found", e.SerialNumber)
			continue
		}
		if !at.Equal(e.RevocationTime) {
			t.Errorf("serial %x: revoked at %v, want %v", e.SerialNumber, at, e.RevocationTime)
		}
		wantReason := e.ReasonCode
		if reason == -1 { // crypto/x509 says 0 for both "absent" and "unspecified"
			reason = 0
		}
		if reason != wantReason {
			t.Errorf("serial %x: reason %d, want %d", e.SerialNumber, reason, wantReason)
		}
	}
	return l
}

func TestParseAgainstStdlib(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	entries := []x509.RevocationListEntry{
		{SerialNumber: big.NewInt(42), RevocationTime: now.Add(-time.Hour)},
		{SerialNumber: big.NewInt(7), RevocationTime: now.Add(-2 * time.Hour), ReasonCode: 1},
		{SerialNumber: new(big.Int).SetBytes([]byte{0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9}), RevocationTime: now.Add(-3 * time.Hour), ReasonCode: 4},
		{SerialNumber: new(big.Int).Lsh(big.NewInt(1), 158), RevocationTime: time.Date(2051, 3, 4, 5, 6, 7, 0, time.UTC), ReasonCode: 10},
	}
	// Serials of every length from 1 to 20 bytes, many sharing prefixes, in
	// no order: they exercise the sort.
	var many []x509.RevocationListEntry
	seen := map[string]bool{}
	for i := range 2000 {
		b := make([]byte, 2+i%19)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 && len(b) > 9 {
			copy(b, []byte{0x55, 1, 2, 3, 4, 5, 6, 7, 8})
		}
		if b[0] == 0 || seen[string(b)] { // one entry per serial: Lookup returns one of a repeated serial's
			continue
		}
		seen[string(b)] = true
		many = append(many, x509.RevocationListEntry{SerialNumber: new(big.Int).SetBytes(b), RevocationTime: now.Add(-time.Duration(i) * time.Minute), ReasonCode: i % 11})
	}
	delta := []pkix.Extension{{Id: oidDeltaCRLIndicator, Critical: true, Value: []byte{0x02, 0x01, 0x05}}}
	for _, tc := range []struct {
		name, key string
		alg       x509.SignatureAlgorithm
		entries   []x509.RevocationListEntry
		extra     []pkix.Extension
	}{
		{name: "rsa", key: "rsa", entries: entries},
		{name: "rsa sha512", key: "rsa", alg: x509.SHA512WithRSA, entries: entries},
		{name: "rsa-pss", key: "rsa", alg: x509.SHA256WithRSAPSS, entries: entries},
		{name: "rsa-pss sha384", key: "rsa", alg: x509.SHA384WithRSAPSS, entries: entries},
		{name: "ecdsa p256", key: "p256", entries: entries},
		{name: "ecdsa p384 sha512", key: "p384", alg: x509.ECDSAWithSHA512, entries: entries},
		{name: "ed25519", key: "ed25519", entries: entries},
		{name: "no entries", key: "p256"},
		{name: "2000 random serials", key: "p256", entries: many},
		{name: "delta", key: "p256", entries: entries[:1], extra: delta},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := newCA(t, tc.key, "CRL CA "+tc.name)
			der := ca.crl(t, &x509.RevocationList{
				SignatureAlgorithm:        tc.alg,
				Number:                    big.NewInt(1234567),
				ThisUpdate:                now.Add(-time.Minute),
				NextUpdate:                now.Add(7 * 24 * time.Hour),
				RevokedCertificateEntries: tc.entries,
				ExtraExtensions:           tc.extra,
			})
			l := checkAgainstStdlib(t, der, ca.cert)
			if _, _, revoked := l.Lookup(big.NewInt(43)); revoked {
				t.Error("serial 43 was never revoked")
			}
			if l.Bytes() <= 0 {
				t.Errorf("Bytes = %d", l.Bytes())
			}
		})
	}
}

// TestOpenSSL reads a CRL made by `openssl ca -gencrl` after revoking a
// certificate for keyCompromise.
func TestOpenSSL(t *testing.T) {
	testtools.RequireTools(t, false, "openssl")
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "newcerts"), 0o700); err != nil {
		t.Fatal(err)
	}
	write("index.txt", "")
	write("serial", "8badf00d01\n")
	write("crlnumber", "1000\n")
	write("ca.cnf", `[ ca ]
default_ca = CA_default
[ CA_default ]
dir = `+dir+`
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/ca.pem
private_key = $dir/ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 30
default_crl_days = 7
policy = policy_any
crl_extensions = crl_ext
unique_subject = no
[ policy_any ]
commonName = supplied
[ crl_ext ]
authorityKeyIdentifier = keyid:always
`)
	openssl := func(args ...string) {
		t.Helper()
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
		"-out", "ca.pem", "-subj", "/O=certwatch tests/CN=OpenSSL CRL CA", "-days", "30",
		"-addext", "keyUsage=critical,keyCertSign,cRLSign")
	for _, leaf := range []string{"a", "b"} {
		openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", leaf+".key",
			"-out", leaf+".csr", "-subj", "/CN=leaf "+leaf)
		openssl("ca", "-batch", "-config", "ca.cnf", "-in", leaf+".csr", "-out", leaf+".pem")
	}
	openssl("ca", "-config", "ca.cnf", "-revoke", "a.pem", "-crl_reason", "keyCompromise")
	openssl("ca", "-config", "ca.cnf", "-gencrl", "-out", "crl.pem")

	caCert := readPEMCert(t, filepath.Join(dir, "ca.pem"))
	revokedCert := readPEMCert(t, filepath.Join(dir, "a.pem"))
	goodCert := readPEMCert(t, filepath.Join(dir, "b.pem"))
	data, err := os.ReadFile(filepath.Join(dir, "crl.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "X509 CRL" {
		t.Fatalf("openssl wrote no X509 CRL block")
	}
	l := checkAgainstStdlib(t, block.Bytes, caCert)
	if l.CRL.Entries != 1 || l.CRL.Number.Cmp(big.NewInt(0x1000)) != 0 || l.CRL.AuthorityKeyID == nil {
		t.Errorf("CRL = %+v, want one entry, number 0x1000 and an authority key id", l.CRL)
	}
	if l.CRL.IssuerCN != "OpenSSL CRL CA" || l.CRL.Issuer != "CN=OpenSSL CRL CA,O=certwatch tests" {
		t.Errorf("issuer = %q (CN %q)", l.CRL.Issuer, l.CRL.IssuerCN)
	}
	if _, reason, revoked := l.Lookup(revokedCert.SerialNumber); !revoked || reason != 1 {
		t.Errorf("revoked leaf: revoked=%v reason=%d, want true, 1 (keyCompromise)", revoked, reason)
	}
	if _, _, revoked := l.Lookup(goodCert.SerialNumber); revoked {
		t.Error("the leaf never revoked is listed")
	}
}

func readPEMCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rawCRL builds CRLs by hand, for the shapes crypto/x509 will not write: no
// nextUpdate, no number, GeneralizedTime, negative serials, unknown entry
// extensions, SHA-1 and unknown signature algorithms.
type rawCRL struct {
	version      int64 // -1: absent
	thisUpdate   time.Time
	nextUpdate   time.Time // zero: absent
	generalized  bool      // write times as GeneralizedTime
	entries      []rawEntry
	emptyRevoked bool // write an empty revokedCertificates
	number       *big.Int
	algOID       asn1.ObjectIdentifier // nil: ECDSA with SHA-256
	sha1RSA      bool                  // sign with RSA PKCS#1 v1.5 and SHA-1
}

type rawEntry struct {
	serial   *big.Int
	at       time.Time
	reason   int // -1: none
	extOID   asn1.ObjectIdentifier
	critical bool
}

var (
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidSHA1WithRSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
)

func addTime(b *cryptobyte.Builder, t time.Time, generalized bool) {
	if generalized {
		b.AddASN1GeneralizedTime(t)
	} else {
		b.AddASN1UTCTime(t)
	}
}

func (r rawCRL) sign(t testing.TB, ca testCA) []byte {
	t.Helper()
	alg := r.algOID
	switch {
	case alg != nil:
	case r.sha1RSA:
		alg = oidSHA1WithRSA
	default:
		alg = oidECDSAWithSHA256
	}
	addAlg := func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(alg)
			if r.sha1RSA {
				b.AddASN1NULL()
			}
		})
	}
	var tb cryptobyte.Builder
	tb.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if r.version >= 0 {
			b.AddASN1Int64(r.version)
		}
		addAlg(b)
		b.AddBytes(ca.cert.RawSubject)
		addTime(b, r.thisUpdate, r.generalized)
		if !r.nextUpdate.IsZero() {
			addTime(b, r.nextUpdate, r.generalized)
		}
		if len(r.entries) > 0 || r.emptyRevoked {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, e := range r.entries {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1BigInt(e.serial)
						addTime(b, e.at, r.generalized)
						if e.reason < 0 && e.extOID == nil {
							return
						}
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							if e.reason >= 0 {
								addExtension(b, asn1.ObjectIdentifier{2, 5, 29, 21}, false, func(b *cryptobyte.Builder) {
									b.AddASN1Enum(int64(e.reason))
								})
							}
							if e.extOID != nil {
								addExtension(b, e.extOID, e.critical, func(b *cryptobyte.Builder) { b.AddASN1NULL() })
							}
						})
					})
				}
			})
		}
		if r.number != nil {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					addExtension(b, asn1.ObjectIdentifier{2, 5, 29, 20}, false, func(b *cryptobyte.Builder) { b.AddASN1BigInt(r.number) })
				})
			})
		}
	})
	tbs := tb.BytesOrPanic()
	var sig []byte
	var err error
	if r.sha1RSA {
		digest := sha1.Sum(tbs)
		sig, err = ca.key.Sign(rand.Reader, digest[:], crypto.SHA1)
	} else {
		digest := sha256.Sum256(tbs)
		sig, err = ca.key.Sign(rand.Reader, digest[:], crypto.SHA256)
	}
	if err != nil {
		t.Fatal(err)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		addAlg(b)
		b.AddASN1BitString(sig)
	})
	return b.BytesOrPanic()
}

func addExtension(b *cryptobyte.Builder, oid asn1.ObjectIdentifier, critical bool, value func(*cryptobyte.Builder)) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if critical {
			b.AddASN1Boolean(true)
		}
		b.AddASN1(cbasn1.OCTET_STRING, value)
	})
}

func TestHandBuilt(t *testing.T) {
	ca := newCA(t, "p256", "Hand CA")
	now := time.Now().UTC().Truncate(time.Second)
	negative := big.NewInt(-129)
	for _, tc := range []struct {
		name  string
		crl   rawCRL
		check func(t *testing.T, l *List)
	}{
		{"v1 without nextUpdate, number or entries", rawCRL{version: -1, thisUpdate: now}, func(t *testing.T, l *List) {
			if !l.CRL.NextUpdate.IsZero() || l.CRL.Number != nil || l.CRL.Entries != 0 || l.CRL.AuthorityKeyID != nil {
				t.Errorf("CRL = %+v, want no nextUpdate, number, entries or key id", l.CRL)
			}
		}},
		{"empty revokedCertificates", rawCRL{version: 1, thisUpdate: now, nextUpdate: now.Add(time.Hour), emptyRevoked: true}, func(t *testing.T, l *List) {
			if l.CRL.Entries != 0 {
				t.Errorf("Entries = %d", l.CRL.Entries)
			}
		}},
		{"GeneralizedTime, unsorted, noncritical unknown extension", rawCRL{version: 1, thisUpdate: now, nextUpdate: time.Date(2061, 1, 2, 3, 4, 5, 0, time.UTC), generalized: true,
			number: big.NewInt(9),
			entries: []rawEntry{
				{serial: big.NewInt(300), at: now.Add(-time.Hour), reason: -1, extOID: asn1.ObjectIdentifier{2, 5, 29, 24}},
				{serial: big.NewInt(5), at: now.Add(-2 * time.Hour), reason: 0},
				{serial: big.NewInt(70000), at: time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), reason: 6},
			}}, func(t *testing.T, l *List) {
			if !l.CRL.NextUpdate.Equal(time.Date(2061, 1, 2, 3, 4, 5, 0, time.UTC)) || l.CRL.Number.Int64() != 9 {
				t.Errorf("CRL = %+v", l.CRL)
			}
			for _, want := range []struct {
				serial int64
				at     time.Time
				reason int
			}{{300, now.Add(-time.Hour), -1}, {5, now.Add(-2 * time.Hour), 0}, {70000, time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), 6}} {
				at, reason, revoked := l.Lookup(big.NewInt(want.serial))
				if !revoked || !at.Equal(want.at) || reason != want.reason {
					t.Errorf("Lookup(%d) = %v, %d, %v; want %v, %d, true", want.serial, at, reason, revoked, want.at, want.reason)
				}
			}
		}},
		{"negative serial", rawCRL{version: 1, thisUpdate: now, entries: []rawEntry{
			{serial: negative, at: now, reason: 1}, {serial: big.NewInt(129), at: now, reason: 2}}}, func(t *testing.T, l *List) {
			if _, reason, revoked := l.Lookup(negative); !revoked || reason != 1 {
				t.Errorf("Lookup(-129) = %d, %v", reason, revoked)
			}
			if _, reason, revoked := l.Lookup(big.NewInt(129)); !revoked || reason != 2 {
				t.Errorf("Lookup(129) = %d, %v", reason, revoked)
			}
			if _, _, revoked := l.Lookup(big.NewInt(-1)); revoked {
				t.Error("Lookup(-1) found an entry")
			}
			if _, _, revoked := l.Lookup(big.NewInt(0xff7f)); revoked {
				t.Error("Lookup(65407) found -129, whose two's complement is ff 7f")
			}
		}},
		{"long serials sharing their first bytes, unsorted", rawCRL{version: 1, thisUpdate: now, entries: []rawEntry{
			{serial: sharedPrefix(0x0a), at: now, reason: 1}, {serial: sharedPrefix(0x08), at: now, reason: 2}, {serial: sharedPrefix(0x09), at: now, reason: 3}}},
			func(t *testing.T, l *List) {
				for last, reason := range map[byte]int{0x0a: 1, 0x08: 2, 0x09: 3} {
					if _, got, revoked := l.Lookup(sharedPrefix(last)); !revoked || got != reason {
						t.Errorf("Lookup(...%02x) = %d, %v; want %d, true", last, got, revoked, reason)
					}
				}
				if _, _, revoked := l.Lookup(sharedPrefix(0x0b)); revoked {
					t.Error("Lookup(...0b) found an entry")
				}
			}},
		{"zero serial", rawCRL{version: 1, thisUpdate: now, entries: []rawEntry{{serial: big.NewInt(0), at: now, reason: -1}}}, func(t *testing.T, l *List) {
			if _, _, revoked := l.Lookup(big.NewInt(0)); !revoked {
				t.Error("Lookup(0) found nothing")
			}
			if _, _, revoked := l.Lookup(nil); revoked {
				t.Error("Lookup(nil) found an entry")
			}
		}},
		{"unknown signature algorithm", rawCRL{version: 1, thisUpdate: now, algOID: asn1.ObjectIdentifier{1, 2, 3, 4, 5}}, func(t *testing.T, l *List) {
			if l.CRL.SignatureAlgorithm != "1.2.3.4.5" {
				t.Errorf("SignatureAlgorithm = %q, want the OID", l.CRL.SignatureAlgorithm)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			der := tc.crl.sign(t, ca)
			sum, err := Summary(der)
			if err != nil {
				t.Fatalf("Summary: %v", err)
			}
			l, err := Parse(der, nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if sum.Entries != l.Len() || sum.Entries != len(tc.crl.entries) {
				t.Errorf("Summary counts %d entries, Parse %d; built %d", sum.Entries, l.Len(), len(tc.crl.entries))
			}
			if tc.crl.algOID == nil {
				if _, err := Parse(der, ca.cert); err != nil {
					t.Errorf("Parse with issuer: %v", err)
				}
			}
			tc.check(t, l)
		})
	}
}

// sharedPrefix is a 12-byte serial whose first 11 bytes are always the same.
func sharedPrefix(last byte) *big.Int {
	return new(big.Int).SetBytes([]byte{0x71, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, last})
}

func TestErrors(t *testing.T) {
	ca := newCA(t, "p256", "Error CA")
	now := time.Now().UTC().Truncate(time.Second)
	good := ca.crl(t, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(3), RevocationTime: now}}})
	flipped := bytes.Clone(good)
	flipped[len(flipped)-3] ^= 0x01 // inside the signature
	sameNameOtherKey := newCA(t, "p256", "Error CA")
	otherName := newCAWithKey(t, ca.key, "Another CA")
	rsaCA := newCA(t, "rsa", "SHA-1 CA")
	sha1Signed := rawCRL{version: 1, thisUpdate: now, sha1RSA: true}.sign(t, rsaCA)
	unknownAlg := rawCRL{version: 1, thisUpdate: now, algOID: asn1.ObjectIdentifier{1, 2, 3, 4, 5}}.sign(t, ca)
	criticalExt := rawCRL{version: 1, thisUpdate: now, entries: []rawEntry{
		{serial: big.NewInt(1), at: now, reason: -1, extOID: asn1.ObjectIdentifier{2, 5, 29, 29}, critical: true}}}.sign(t, ca)
	badReason := rawCRL{version: 1, thisUpdate: now, entries: []rawEntry{{serial: big.NewInt(1), at: now, reason: 300}}}.sign(t, ca)
	badVersion := rawCRL{version: 5, thisUpdate: now}.sign(t, ca)

	for _, tc := range []struct {
		name      string
		der       []byte
		issuer    *x509.Certificate
		class     source.Class
		summaryOK bool // Summary does not check signatures: it accepts the CRL
		want      string
	}{
		{"flipped signature byte", flipped, ca.cert, source.ClassBadSignature, true, "does not verify"},
		{"issuer with the same name, another key", good, sameNameOtherKey.cert, source.ClassBadSignature, true, "does not verify"},
		{"issuer with another name", good, otherName.cert, source.ClassBadSignature, true, "is not the subject"},
		{"SHA-1", sha1Signed, rsaCA.cert, source.ClassBadSignature, true, "SHA1-RSA is insecure"},
		{"unknown algorithm", unknownAlg, ca.cert, source.ClassParse, true, "unsupported signature algorithm 1.2.3.4.5"},
		{"truncated", good[:len(good)/2], nil, source.ClassParse, false, "truncated"},
		{"trailing data", append(bytes.Clone(good), 0, 0), nil, source.ClassParse, false, "trailing data"},
		{"empty", nil, nil, source.ClassParse, false, "not a DER SEQUENCE"},
		{"a certificate", ca.cert.Raw, nil, source.ClassParse, false, "malformed tbsCertList signature algorithm"},
		{"critical unknown entry extension", criticalExt, nil, source.ClassParse, false, "entry 0: unsupported critical extension 2.5.29.29"},
		{"reason out of range", badReason, nil, source.ClassParse, false, "entry 0: reasonCode 300 out of range"},
		{"unsupported version", badVersion, nil, source.ClassParse, false, "unsupported version 6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.der, tc.issuer)
			if err == nil {
				t.Fatal("Parse accepted it")
			}
			if got := source.ClassOf(err); got != tc.class {
				t.Errorf("class %q, want %q (%v)", got, tc.class, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if _, err := Summary(tc.der); (err == nil) != tc.summaryOK {
				t.Errorf("Summary error = %v, want accepted: %v", err, tc.summaryOK)
			}
		})
	}
	var insecure x509.InsecureAlgorithmError
	if _, err := Parse(sha1Signed, rsaCA.cert); !errors.As(err, &insecure) {
		t.Errorf("SHA-1 error %v does not wrap crypto/x509's InsecureAlgorithmError", err)
	}
}

func TestLooksLikeCRL(t *testing.T) {
	ca := newCA(t, "p256", "Shape CA")
	now := time.Now()
	crlDER := ca.crl(t, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour)})
	v1 := rawCRL{version: -1, thisUpdate: now}.sign(t, ca)
	for _, tc := range []struct {
		name string
		der  []byte
		want bool
	}{
		{"v2 CRL", crlDER, true},
		{"v1 CRL", v1, true},
		{"broken entries still look like a CRL", rawCRL{version: 1, thisUpdate: now, entries: []rawEntry{{serial: big.NewInt(1), at: now, reason: 300}}}.sign(t, ca), true},
		{"certificate", ca.cert.Raw, false},
		{"junk", []byte("hello"), false},
		{"empty", nil, false},
	} {
		if got := LooksLikeCRL(tc.der); got != tc.want {
			t.Errorf("%s: LooksLikeCRL = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseKeepsNoReferenceToTheDER(t *testing.T) {
	ca := newCA(t, "p256", "Wipe CA")
	now := time.Now().UTC().Truncate(time.Second)
	der := ca.crl(t, &x509.RevocationList{Number: big.NewInt(77), ThisUpdate: now, NextUpdate: now.Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(0x1234), RevocationTime: now, ReasonCode: 5}}})
	want, err := x509.ParseRevocationList(bytes.Clone(der))
	if err != nil {
		t.Fatal(err)
	}
	l, err := Parse(der, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Summary(der)
	if err != nil {
		t.Fatal(err)
	}
	clear(der) // callers wipe buffers that may have held keys
	if !bytes.Equal(l.CRL.AuthorityKeyID, want.AuthorityKeyId) || !bytes.Equal(sum.AuthorityKeyID, want.AuthorityKeyId) {
		t.Errorf("AuthorityKeyID changed with the DER: %x, %x", l.CRL.AuthorityKeyID, sum.AuthorityKeyID)
	}
	if l.CRL.Number.Int64() != 77 {
		t.Errorf("Number = %v", l.CRL.Number)
	}
	if _, reason, revoked := l.Lookup(big.NewInt(0x1234)); !revoked || reason != 5 {
		t.Errorf("Lookup after wiping the DER = %d, %v", reason, revoked)
	}
}

func TestIssuerCNCut(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	key := newKey(t, "p256")
	ca := newCAWithKey(t, key, long)
	now := time.Now()
	sum, err := Summary(ca.crl(t, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour)}))
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.IssuerCN) > maxIssuerCN || !strings.HasPrefix(long, sum.IssuerCN) || len(sum.IssuerCN) < maxIssuerCN-1 {
		t.Errorf("IssuerCN is %d bytes, want a prefix of at most %d", len(sum.IssuerCN), maxIssuerCN)
	}
}

func FuzzParse(f *testing.F) {
	ca := newCA(f, "p256", "Fuzz CA")
	now := time.Now().UTC().Truncate(time.Second)
	f.Add(ca.crl(f, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{
			{SerialNumber: big.NewInt(3), RevocationTime: now, ReasonCode: 1},
			{SerialNumber: big.NewInt(1), RevocationTime: now.Add(-time.Hour)},
		},
		ExtraExtensions: []pkix.Extension{{Id: oidDeltaCRLIndicator, Value: []byte{2, 1, 1}}}}))
	f.Add(rawCRL{version: -1, thisUpdate: now, generalized: true, entries: []rawEntry{
		{serial: big.NewInt(-5), at: now, reason: -1, extOID: asn1.ObjectIdentifier{2, 5, 29, 24}},
		{serial: big.NewInt(0), at: now, reason: 2}}}.sign(f, ca))
	f.Add(rawCRL{version: 1, thisUpdate: now, emptyRevoked: true, number: big.NewInt(5)}.sign(f, ca))
	f.Fuzz(func(t *testing.T, der []byte) {
		sum, sumErr := Summary(der)
		l, err := Parse(der, nil)
		if (sumErr == nil) != (err == nil) {
			t.Fatalf("Summary error %v, Parse error %v", sumErr, err)
		}
		if err != nil {
			if c := source.ClassOf(err); c != source.ClassParse {
				t.Fatalf("error class %q: %v", c, err)
			}
			return
		}
		if sum.Entries != l.Len() || l.CRL.Entries != l.Len() {
			t.Fatalf("Summary counts %d entries, Parse %d (List says %d)", sum.Entries, l.Len(), l.CRL.Entries)
		}
		for i := range l.Len() {
			s := l.serial(i)
			if len(s) > 0 && s[0] == negativeMark {
				continue // negative: its big.Int is another encoding
			}
			if _, _, revoked := l.Lookup(new(big.Int).SetBytes(s)); !revoked {
				t.Fatalf("entry %d not found by its own serial", i)
			}
		}
		_ = l.Bytes()
	})
}
