package decode

import (
	"crypto/sha256"
	"runtime"
	"testing"
	"time"

	"github.com/certwatch/certwatch/internal/testpki"
)

// TestIdenticalCertificatesAreShared checks that the same certificate read
// from different containers is one parsed object, and that the table lets
// it go once nothing holds it.
func TestIdenticalCertificatesAreShared(t *testing.T) {
	chain := testpki.NewChain(t, testpki.Options{})
	leaf, inter := chain.Leaf, chain.Intermediate
	inputs := map[string][]byte{
		"pem":    testpki.PEM(leaf, inter),
		"der":    testpki.DER(leaf, inter),
		"pkcs12": testpki.PKCS12(t, leaf, certs(inter), ""),
		"jks":    testpki.JKS(t, "pw", testpki.JKSEntry{Alias: "a", Key: leaf.Key, Chain: certs(leaf, inter)}),
	}
	var first []Entry
	for name, data := range inputs {
		entries, err := Decode(data, []byte("pw"))
		if name == "pkcs12" {
			entries, err = Decode(data, nil)
		}
		if err != nil || len(entries) != 1 || len(entries[0].Certs) != 2 {
			t.Fatalf("%s: %d entries, err %v", name, len(entries), err)
		}
		if first == nil {
			first = entries
			continue
		}
		for i, c := range entries[0].Certs {
			if c != first[0].Certs[i] {
				t.Errorf("%s: certificate %d is a second parsed object for the same DER", name, i)
			}
		}
	}

	fp := sha256.Sum256(leaf.Cert.Raw)
	if certificates.Get(fp) == nil {
		t.Fatal("the leaf is not in the table while held")
	}
	runtime.KeepAlive(first)
	first = nil
	deadline := time.Now().Add(5 * time.Second)
	for certificates.Get(fp) != nil || certificates.Holds(fp) {
		if time.Now().After(deadline) {
			t.Fatal("the table still holds the leaf after it was dropped")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
