package testpki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	keystore "github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"
)

// This file encodes generated certificates and keys in the container formats
// certificate files come in: DER, the PEM key forms, OpenSSL's trusted
// certificate form, PKCS#12, Java keystores and kubeconfig files; and CRLs.

// CRL returns a DER CRL issued by ca with the given CRL number, valid from
// an hour ago for a day, listing serials revoked a minute ago.
func CRL(t testing.TB, ca *Cert, number int64, serials ...int64) []byte {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(24 * time.Hour)}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: now.Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// DER returns the certificates' DER encodings concatenated.
func DER(certs ...*Cert) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, c.Cert.Raw...)
	}
	return out
}

// Key encodings for KeyPEMAs.
const (
	KeyPKCS8 = "pkcs8" // "PRIVATE KEY"
	KeyPKCS1 = "pkcs1" // "RSA PRIVATE KEY", RSA keys only
	KeySEC1  = "sec1"  // "EC PRIVATE KEY", ECDSA keys only
)

// KeyPEMAs encodes a private key as a PEM block in the given form.
func KeyPEMAs(t testing.TB, key crypto.Signer, form string) []byte {
	t.Helper()
	var block pem.Block
	var err error
	switch form {
	case KeyPKCS8:
		block.Type = "PRIVATE KEY"
		block.Bytes, err = x509.MarshalPKCS8PrivateKey(key)
	case KeyPKCS1:
		rk, ok := key.(*rsa.PrivateKey)
		if !ok {
			t.Fatalf("KeyPEMAs: %T is not an RSA key", key)
		}
		block.Type, block.Bytes = "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)
	case KeySEC1:
		ek, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			t.Fatalf("KeyPEMAs: %T is not an ECDSA key", key)
		}
		block.Type = "EC PRIVATE KEY"
		block.Bytes, err = x509.MarshalECPrivateKey(ek)
	default:
		t.Fatalf("KeyPEMAs: unknown form %q", form)
	}
	if err != nil {
		t.Fatalf("KeyPEMAs %s: %v", form, err)
	}
	return pem.EncodeToMemory(&block)
}

// TrustedPEM encodes certificates in OpenSSL's "TRUSTED CERTIFICATE" form:
// the DER certificate followed by an X509_CERT_AUX sequence that marks it
// trusted for serverAuth and gives it an alias.
func TrustedPEM(t testing.TB, alias string, certs ...*Cert) []byte {
	t.Helper()
	aux := struct {
		Trust []asn1.ObjectIdentifier
		Alias string `asn1:"utf8,optional"`
	}{
		Trust: []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 1}}, // serverAuth
		Alias: alias,
	}
	auxDER, err := asn1.Marshal(aux)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, c := range certs {
		body := append(append([]byte{}, c.Cert.Raw...), auxDER...)
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "TRUSTED CERTIFICATE", Bytes: body})...)
	}
	return out
}

// PKCS12 encodes leaf, its key and chain as a PKCS#12 file with the modern
// encoder (AES-256, PBKDF2, SHA-256 MAC). An empty password gives a file
// protected by the empty password, as "openssl pkcs12 -passout pass:" does.
func PKCS12(t testing.TB, leaf *Cert, chain []*Cert, password string) []byte {
	t.Helper()
	cas := make([]*x509.Certificate, 0, len(chain))
	for _, c := range chain {
		cas = append(cas, c.Cert)
	}
	data, err := pkcs12.Modern.Encode(leaf.Key, leaf.Cert, cas, password)
	if err != nil {
		t.Fatalf("encoding PKCS#12: %v", err)
	}
	return data
}

// PKCS12Passwordless encodes leaf, its key and chain as a PKCS#12 file with
// neither encryption nor MAC (openssl pkcs12 -export -nomac -certpbe NONE
// -keypbe NONE).
func PKCS12Passwordless(t testing.TB, leaf *Cert, chain []*Cert) []byte {
	t.Helper()
	cas := make([]*x509.Certificate, 0, len(chain))
	for _, c := range chain {
		cas = append(cas, c.Cert)
	}
	data, err := pkcs12.Passwordless.Encode(leaf.Key, leaf.Cert, cas, "")
	if err != nil {
		t.Fatalf("encoding PKCS#12: %v", err)
	}
	return data
}

// PKCS12TrustStore encodes certificates (no key) as a Java-style PKCS#12
// trust store.
func PKCS12TrustStore(t testing.TB, certs []*Cert, password string) []byte {
	t.Helper()
	xs := make([]*x509.Certificate, 0, len(certs))
	for _, c := range certs {
		xs = append(xs, c.Cert)
	}
	data, err := pkcs12.Modern.EncodeTrustStore(xs, password)
	if err != nil {
		t.Fatalf("encoding PKCS#12 trust store: %v", err)
	}
	return data
}

// JKSEntry is one alias of a Java keystore: a private key entry when Key is
// set (Chain is then the leaf first), a trusted certificate entry otherwise
// (Chain holds exactly one certificate).
type JKSEntry struct {
	Alias string
	Key   crypto.Signer
	Chain []*Cert
}

// JKS encodes a Java keystore (JKS format, version 2). Private keys are
// protected with the store password, as keytool does by default. Aliases are
// stored exactly as given, case included.
func JKS(t testing.TB, password string, entries ...JKSEntry) []byte {
	t.Helper()
	ks := keystore.New(keystore.WithCaseExactAliases())
	created := time.Now()
	for _, e := range entries {
		var chain []keystore.Certificate
		for _, c := range e.Chain {
			chain = append(chain, keystore.Certificate{Type: "X509", Content: c.Cert.Raw})
		}
		if e.Key != nil {
			der, err := x509.MarshalPKCS8PrivateKey(e.Key)
			if err != nil {
				t.Fatal(err)
			}
			pke := keystore.PrivateKeyEntry{CreationTime: created, PrivateKey: der, CertificateChain: chain}
			if err := ks.SetPrivateKeyEntry(e.Alias, pke, []byte(password)); err != nil {
				t.Fatalf("JKS alias %q: %v", e.Alias, err)
			}
			continue
		}
		if len(chain) != 1 {
			t.Fatalf("JKS trusted entry %q wants exactly one certificate, got %d", e.Alias, len(chain))
		}
		tce := keystore.TrustedCertificateEntry{CreationTime: created, Certificate: chain[0]}
		if err := ks.SetTrustedCertificateEntry(e.Alias, tce); err != nil {
			t.Fatalf("JKS alias %q: %v", e.Alias, err)
		}
	}
	var buf bytes.Buffer
	if err := ks.Store(&buf, []byte(password)); err != nil {
		t.Fatalf("storing JKS: %v", err)
	}
	return buf.Bytes()
}

// KubeCluster is a kubeconfig cluster whose CA bundle is embedded.
type KubeCluster struct {
	Name string
	CA   []*Cert
}

// KubeUser is a kubeconfig user with an embedded client certificate (leaf
// first, then any chain) and, when Key is set, its private key.
type KubeUser struct {
	Name  string
	Certs []*Cert
	Key   crypto.Signer
}

// Kubeconfig renders a kubeconfig file embedding the clusters' CA data and
// the users' client certificates and keys, base64 as kubectl writes them.
func Kubeconfig(t testing.TB, clusters []KubeCluster, users []KubeUser) []byte {
	t.Helper()
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	var sb strings.Builder
	sb.WriteString("apiVersion: v1\nkind: Config\nclusters:\n")
	for _, c := range clusters {
		fmt.Fprintf(&sb, "- name: %s\n  cluster:\n    server: https://%s.example:6443\n    certificate-authority-data: %s\n",
			c.Name, c.Name, b64(PEM(c.CA...)))
	}
	sb.WriteString("users:\n")
	for _, u := range users {
		fmt.Fprintf(&sb, "- name: %s\n  user:\n    client-certificate-data: %s\n", u.Name, b64(PEM(u.Certs...)))
		if u.Key != nil {
			fmt.Fprintf(&sb, "    client-key-data: %s\n", b64(KeyPEM(t, u.Key)))
		}
	}
	sb.WriteString("contexts: []\ncurrent-context: \"\"\n")
	return []byte(sb.String())
}

// JKSBytes builds a Java keystore byte by byte, for hostile length and count
// fields no library would write.
type JKSBytes []byte

// JKSHeader starts a keystore: magic, version and entry count.
func JKSHeader(version, count uint32) JKSBytes {
	return JKSBytes(nil).U32(0xfeedfeed).U32(version).U32(count)
}

// U16 appends a big-endian uint16.
func (b JKSBytes) U16(v uint16) JKSBytes { return binary.BigEndian.AppendUint16(b, v) }

// U32 appends a big-endian uint32.
func (b JKSBytes) U32(v uint32) JKSBytes { return binary.BigEndian.AppendUint32(b, v) }

// U64 appends a big-endian uint64.
func (b JKSBytes) U64(v uint64) JKSBytes { return binary.BigEndian.AppendUint64(b, v) }

// Raw appends bytes as they are.
func (b JKSBytes) Raw(p ...byte) JKSBytes { return append(b, p...) }
