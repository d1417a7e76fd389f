package decode

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// FuzzParse feeds arbitrary bytes to parse, with and without a password.
// Beyond not panicking (nor exhausting memory), it checks what load relies
// on: every error carries a file class, success means at least one entry,
// and the certificates survive the input buffer being wiped.
//
//	go test -run='^$' -fuzz=FuzzParse -fuzztime=20s ./source/files/
func FuzzParse(f *testing.F) {
	chain := testpki.NewChain(f, testpki.Options{})
	leaf, inter, root := chain.Leaf, chain.Intermediate, chain.Root
	pw := []byte("changeit")
	crlDER := newCRL(f, root, 3, 1, 2, 0x7fffffff)
	seeds := [][]byte{
		pemBlock("X509 CRL", crlDER),
		crlDER,
		join(testpki.PEM(leaf), pemBlock("X509 CRL", newCRL(f, inter, 4))),
		testpki.PEM(leaf, inter, root),
		join(testpki.PEM(leaf), testpki.KeyPEM(f, leaf.Key), []byte("text\n"), testpki.PEM(inter)),
		testpki.KeyPEMAs(f, leaf.Key, testpki.KeySEC1),
		testpki.TrustedPEM(f, "root", root),
		testpki.DER(leaf),
		testpki.DER(leaf, inter),
		testpki.PKCS12(f, leaf, certs(inter), string(pw)),
		testpki.PKCS12(f, leaf, nil, ""),
		testpki.PKCS12Passwordless(f, leaf, certs(inter)),
		testpki.PKCS12TrustStore(f, certs(root), ""),
		testpki.JKS(f, string(pw),
			testpki.JKSEntry{Alias: "server", Key: leaf.Key, Chain: certs(leaf, inter)},
			testpki.JKSEntry{Alias: "Root", Chain: certs(root)}),
		testpki.Kubeconfig(f, []testpki.KubeCluster{{Name: "c", CA: certs(root)}},
			[]testpki.KubeUser{{Name: "u", Certs: certs(leaf), Key: leaf.Key}}),
		[]byte("-----BEGIN CERTIFICATE-----\nMIIB\n"),
		{0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 1},
		{0x30, 0x80},
		{},
		// crypto/x509 refuses it; the partial parse keeps its dates.
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: malformSignature(f, leaf.Cert.Raw)}),
	}
	for _, s := range seeds {
		f.Add(s, pw, true)
		f.Add(s, []byte(nil), false)
	}
	f.Fuzz(checkParse)
}

// FuzzJCEKS is FuzzParse from JCEKS keystores made by keytool: trusted and
// private key entries and a sealed secret key, whose Java serialization
// stream is the part no other format has.
//
//	go test -run='^$' -fuzz=FuzzJCEKS -fuzztime=20s ./source/decode/
func FuzzJCEKS(f *testing.F) {
	seeds := [][]byte{{0xce, 0xce, 0xce, 0xce, 0, 0, 0, 2, 0, 0, 0, 1}}
	// A fuzzing worker runs what its coordinator sends and ignores the
	// seeds it would add, and workers are restarted often: making keystores
	// there (half a dozen JVM starts) would stall the run for seconds each
	// time.
	if !inFuzzWorker() {
		chain := testpki.NewChain(f, testpki.Options{})
		full := testpki.JCEKS(f, "changeit", []testpki.JKSEntry{
			{Alias: "server", Key: chain.Leaf.Key, Chain: certs(chain.Leaf, chain.Intermediate)},
			{Alias: "root", Chain: certs(chain.Root)},
		}, "secret")
		seeds = append(seeds, full, testpki.JCEKS(f, "changeit", nil, "aes"))
	}
	// Not the store's password: with the right one every run that keeps
	// the data whole derives the keys (200,000 MD5 rounds each, slow under
	// coverage instrumentation), while no mutation of the data ever
	// passes the integrity check that guards that derivation.
	for _, s := range seeds {
		f.Add(s, []byte("not it"), true)
		f.Add(s, []byte(nil), false)
	}
	f.Fuzz(checkParse)
}

// inFuzzWorker says whether this process is a fuzzing worker (the testing
// package starts them with -test.fuzzworker).
func inFuzzWorker() bool {
	fl := flag.Lookup("test.fuzzworker")
	return fl != nil && fl.Value.String() == "true"
}

// checkParse is the property both fuzz targets check.
func checkParse(t *testing.T, data, password []byte, withPassword bool) {
	{
		if !withPassword {
			password = nil
		} else if password == nil {
			password = []byte{}
		}
		buf := bytes.Clone(data)
		entries, err := parse(buf, password)
		clear(buf) // as load does
		// The same input parsed and never wiped: what every certificate
		// must still hold after the wipe.
		want, _ := parse(bytes.Clone(data), password)
		checkClass := func(what string, err error) {
			if c := source.ClassOf(err); c != source.ClassParse && c != source.ClassWrongPassword {
				t.Fatalf("%s: error %q has class %q", what, err, c)
			}
		}
		if err != nil {
			checkClass("parse", err)
			if entries != nil {
				t.Fatalf("parse returned entries with error %v", err)
			}
			return
		}
		if len(entries) == 0 {
			t.Fatal("parse returned neither entries nor an error")
		}
		if len(want) != len(entries) {
			t.Fatalf("parse gave %d entries, then %d for the same input", len(entries), len(want))
		}
		for n, e := range entries {
			// A kubeconfig entry naming a file, which parse does not
			// read, is the one entry error of another class.
			if e.err != nil && source.ClassOf(e.err) != source.ClassConfig {
				checkClass("entry "+e.key, e.err)
			}
			if len(want[n].certs) != len(e.certs) {
				t.Fatalf("entry %q: %d certificates, then %d for the same input", e.key, len(e.certs), len(want[n].certs))
			}
			for i, c := range e.certs {
				if c == nil {
					t.Fatalf("entry %q: certificate %d is nil", e.key, i)
				}
				if !bytes.Equal(c.Raw, want[n].certs[i].Raw) {
					t.Fatalf("entry %q: certificate %d changed once the input was wiped", e.key, i)
				}
				// A certificate crypto/x509 refused is kept from a partial
				// parse, marked as such; any other must still parse.
				if source.ParseFailure(c) != nil {
					continue
				}
				if _, err := x509.ParseCertificate(c.Raw); err != nil {
					t.Fatalf("entry %q: certificate %d no longer parses once the input is wiped: %v", e.key, i, err)
				}
			}
		}
	}
}

// malformSignature returns a copy of der whose signature BIT STRING claims
// eight unused bits, which crypto/x509 refuses as a malformed signature.
func malformSignature(f *testing.F, der []byte) []byte {
	f.Helper()
	in := cryptobyte.String(der)
	var cert, sig cryptobyte.String
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) ||
		!cert.SkipASN1(cbasn1.SEQUENCE) || !cert.SkipASN1(cbasn1.SEQUENCE) ||
		!cert.ReadASN1(&sig, cbasn1.BIT_STRING) || len(sig) == 0 {
		f.Fatal("not a certificate")
	}
	// The signature is the last field: its first octet counts unused bits.
	out := bytes.Clone(der)
	out[len(der)-len(sig)] = 8
	return out
}
