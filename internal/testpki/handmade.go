package testpki

import (
	"bytes"
	"crypto"
	"crypto/dsa" //nolint:staticcheck // DSA certificates are what the weak-key checks must recognise.
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// This file makes what crypto/x509 refuses to: certificates with DSA keys,
// certificates signed with DSA or MD5, and RSA keys too small or too large
// for it to generate quickly. crypto/x509 lays the certificate out (with a
// stand-in key); the subject key and the signature are then swapped in by
// re-encoding the TBSCertificate.

// DSAKey is a DSA private key as a crypto.Signer: Sign takes a digest and
// returns the DER SEQUENCE{r, s} that X.509 signatures hold.
type DSAKey struct{ Key *dsa.PrivateKey }

// Public returns the *dsa.PublicKey.
func (k DSAKey) Public() crypto.PublicKey { return &k.Key.PublicKey }

// Sign signs a digest, truncated to the group order's size as FIPS 186-3
// 4.6 says (dsa.Sign leaves that to its caller).
func (k DSAKey) Sign(_ io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	if n := (k.Key.Q.BitLen() + 7) / 8; len(digest) > n {
		digest = digest[:n]
	}
	r, s, err := dsa.Sign(rand.Reader, k.Key, digest)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(struct{ R, S *big.Int }{r, s})
}

var dsaParams struct {
	once sync.Once
	p    dsa.Parameters
	err  error
}

// newDSAKey returns a DSA key over parameters shared by the process (1024
// bits: generating them is the slow part, and any DSA key is weak).
func newDSAKey() (crypto.Signer, error) {
	dsaParams.once.Do(func() { dsaParams.err = dsa.GenerateParameters(&dsaParams.p, rand.Reader, dsa.L1024N160) })
	if dsaParams.err != nil {
		return nil, dsaParams.err
	}
	k := &dsa.PrivateKey{PublicKey: dsa.PublicKey{Parameters: dsaParams.p}}
	if err := dsa.GenerateKey(k, rand.Reader); err != nil {
		return nil, err
	}
	return DSAKey{k}, nil
}

// newRSAKey generates the RSA sizes crypto/x509 users rarely want: 512 and
// 768 bits (they need GODEBUG rsa1024min=0, which go.mod sets) and 8192
// bits, which takes Go a minute on a busy machine: that one comes from
// openssl when it is installed, and is kept in the user's cache folder so
// that it is made once per machine rather than once per test run.
func newRSAKey(keyType string) (crypto.Signer, error) {
	switch keyType {
	case "rsa512":
		return rsa.GenerateKey(rand.Reader, 512)
	case "rsa768":
		return rsa.GenerateKey(rand.Reader, 768)
	case "rsa8192":
		return cachedRSAKey(8192)
	}
	return nil, fmt.Errorf("unknown RSA key type %q", keyType)
}

func cachedRSAKey(bits int) (crypto.Signer, error) {
	var path string
	if dir, err := os.UserCacheDir(); err == nil {
		path = filepath.Join(dir, "certwatch", "testpki", fmt.Sprintf("rsa%d.key", bits))
		if data, err := os.ReadFile(path); err == nil {
			if k, err := parseKeyPEM(data); err == nil {
				if rk, ok := k.(*rsa.PrivateKey); ok && rk.N.BitLen() == bits {
					return rk, nil
				}
			}
		}
	}
	var key crypto.Signer
	if out, err := exec.Command("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", fmt.Sprintf("rsa_keygen_bits:%d", bits)).Output(); err == nil {
		if k, err := parseKeyPEM(out); err == nil {
			key = k
		}
	}
	if key == nil {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, err
		}
		key = k
	}
	if path != "" {
		if der, err := x509.MarshalPKCS8PrivateKey(key); err == nil && os.MkdirAll(filepath.Dir(path), 0o700) == nil {
			tmp := path + fmt.Sprintf(".%d", os.Getpid())
			if os.WriteFile(tmp, pemOf("PRIVATE KEY", der), 0o600) == nil {
				_ = os.Rename(tmp, path) // best effort: the next run generates again otherwise
			}
		}
	}
	return key, nil
}

func parseKeyPEM(data []byte) (crypto.Signer, error) {
	der, err := firstPEM(data, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%T is not a signer", k)
	}
	return s, nil
}

// handmade reports whether crypto/x509 cannot make the certificate itself.
func handmade(key, signer crypto.Signer, alg x509.SignatureAlgorithm) bool {
	_, dsaKey := key.(DSAKey)
	_, dsaSigner := signer.(DSAKey)
	return dsaKey || dsaSigner || alg == x509.MD5WithRSA
}

var (
	oidExtKeyUsage     = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidDSA             = asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 1}
	oidDSAWithSHA256   = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 2}
	oidMD5WithRSA      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 4}
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidEd25519         = asn1.ObjectIdentifier{1, 3, 101, 112}
	asn1Null           = asn1.RawValue{FullBytes: []byte{0x05, 0x00}}
)

type algorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

// signatureScheme picks the signature algorithm identifier and digest for
// a signer: DSA-SHA256 for DSA, MD5-RSA when asked, else the common one.
func signatureScheme(signer crypto.Signer, alg x509.SignatureAlgorithm) (algorithmIdentifier, crypto.Hash, error) {
	switch k := signer.(type) {
	case DSAKey:
		return algorithmIdentifier{Algorithm: oidDSAWithSHA256}, crypto.SHA256, nil
	case *rsa.PrivateKey:
		if alg == x509.MD5WithRSA {
			return algorithmIdentifier{Algorithm: oidMD5WithRSA, Parameters: asn1Null}, crypto.MD5, nil
		}
		return algorithmIdentifier{Algorithm: oidSHA256WithRSA, Parameters: asn1Null}, crypto.SHA256, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return algorithmIdentifier{}, 0, fmt.Errorf("hand-made certificates are signed with P-256 ECDSA only, not %s", k.Curve.Params().Name)
		}
		return algorithmIdentifier{Algorithm: oidECDSAWithSHA256}, crypto.SHA256, nil
	case ed25519.PrivateKey:
		return algorithmIdentifier{Algorithm: oidEd25519}, 0, nil
	}
	return algorithmIdentifier{}, 0, fmt.Errorf("cannot sign by hand with %T", signer)
}

// createHandmade creates a certificate of tmpl for key, signed by
// signerKey (whose certificate is parent; parent == tmpl when self-signed).
func createHandmade(tmpl, parent *x509.Certificate, key, signerKey crypto.Signer, alg x509.SignatureAlgorithm) ([]byte, error) {
	stand, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	layout := *tmpl
	layout.SignatureAlgorithm = x509.UnknownSignatureAlgorithm
	pub := key.Public()
	if _, ok := key.(DSAKey); ok {
		pub = stand.Public()
	}
	issuer := &layout
	if parent != tmpl {
		p := *parent
		p.PublicKey = stand.Public() // CreateCertificate checks that the signer is the parent's key
		issuer = &p
	}
	der, err := x509.CreateCertificate(rand.Reader, &layout, issuer, pub, stand)
	if err != nil {
		return nil, err
	}
	laid, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}

	sigAlg, hash, err := signatureScheme(signerKey, alg)
	if err != nil {
		return nil, err
	}
	sigAlgDER, err := asn1.Marshal(sigAlg)
	if err != nil {
		return nil, err
	}
	replace := map[int][]byte{2: sigAlgDER} // TBSCertificate.signature
	if dk, ok := key.(DSAKey); ok {
		spki, err := dsaSPKI(&dk.Key.PublicKey)
		if err != nil {
			return nil, err
		}
		replace[6] = spki // TBSCertificate.subjectPublicKeyInfo
	}
	tbs, err := rewriteSequence(laid.RawTBSCertificate, replace)
	if err != nil {
		return nil, err
	}
	signed := tbs
	if hash != 0 {
		h := hash.New()
		h.Write(tbs)
		signed = h.Sum(nil)
	}
	sig, err := signerKey.Sign(rand.Reader, signed, hash)
	if err != nil {
		return nil, fmt.Errorf("signing by hand: %w", err)
	}
	return asn1.Marshal(struct {
		TBS       asn1.RawValue
		Algorithm algorithmIdentifier
		Signature asn1.BitString
	}{asn1.RawValue{FullBytes: tbs}, sigAlg, asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
}

// dsaSPKI encodes a DSA public key as a SubjectPublicKeyInfo (RFC 3279).
func dsaSPKI(k *dsa.PublicKey) ([]byte, error) {
	params, err := asn1.Marshal(struct{ P, Q, G *big.Int }{k.P, k.Q, k.G})
	if err != nil {
		return nil, err
	}
	y, err := asn1.Marshal(k.Y)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(struct {
		Algorithm algorithmIdentifier
		Key       asn1.BitString
	}{algorithmIdentifier{Algorithm: oidDSA, Parameters: asn1.RawValue{FullBytes: params}}, asn1.BitString{Bytes: y, BitLength: 8 * len(y)}})
}

// rewriteSequence replaces elements of a DER SEQUENCE by index.
func rewriteSequence(der []byte, replace map[int][]byte) ([]byte, error) {
	var outer asn1.RawValue
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		return nil, err
	}
	var elems [][]byte
	for rest := outer.Bytes; len(rest) > 0; {
		var e asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &e); err != nil {
			return nil, err
		}
		elems = append(elems, e.FullBytes)
	}
	for i, b := range replace {
		if i >= len(elems) {
			return nil, fmt.Errorf("no element %d in a sequence of %d", i, len(elems))
		}
		elems[i] = b
	}
	return asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: bytes.Join(elems, nil)})
}
