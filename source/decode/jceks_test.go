package decode

import (
	"bytes"
	"crypto"
	"encoding/asn1"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// jceksFixture is one keystore made by keytool (a JVM start per step, so
// made once for the tests of this file): a private key entry holding an
// ECDSA leaf and its intermediate, an RSA private key entry, a trusted root
// and a secret key.
type jceksFixture struct {
	chain *testpki.Chain
	rsa   *testpki.Cert
	data  []byte
}

var (
	jceksOnce sync.Once
	jceksFix  jceksFixture
)

const jceksPassword = "changeit"

func jceksKeystore(t *testing.T) jceksFixture {
	t.Helper()
	jceksOnce.Do(func() {
		chain := testpki.NewChain(t, testpki.Options{CommonName: "server"})
		rsaLeaf := testpki.New(t, chain.Intermediate, testpki.Options{CommonName: "rsa", KeyType: "rsa2048"})
		data := testpki.JCEKS(t, jceksPassword, []testpki.JKSEntry{
			{Alias: "server", Key: chain.Leaf.Key, Chain: certs(chain.Leaf, chain.Intermediate)},
			{Alias: "rsa", Key: rsaLeaf.Key, Chain: certs(rsaLeaf)},
			{Alias: "root", Chain: certs(chain.Root)},
		}, "secret")
		jceksFix = jceksFixture{chain: chain, rsa: rsaLeaf, data: data}
	})
	if jceksFix.data == nil {
		t.Fatal("making the JCEKS keystore failed in an earlier test")
	}
	return jceksFix
}

func TestParseJCEKS(t *testing.T) {
	fx := jceksKeystore(t)
	type want struct {
		certs []*testpki.Cert
		keys  int
	}
	all := map[string]want{
		"root":   {certs(fx.chain.Root), 0},
		"rsa":    {certs(fx.rsa), 1},
		"server": {certs(fx.chain.Leaf, fx.chain.Intermediate), 1},
	}
	cases := []struct {
		name     string
		password []byte // nil: no password_file
		class    source.Class
		keys     bool
	}{
		{"right password", []byte(jceksPassword), "", true},
		{"none configured", nil, "", false},
		{"empty password configured", []byte{}, source.ClassWrongPassword, false},
		{"wrong password", []byte("Changeit"), source.ClassWrongPassword, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			buf := bytes.Clone(fx.data)
			entries, err := parse(buf, tc.password)
			clear(buf) // as load does: the certificates must not share it
			if err != nil {
				t.Fatal(err)
			}
			var aliases []string
			for _, e := range entries {
				aliases = append(aliases, e.key)
			}
			// Sorted, and the secret key is not an entry.
			if got := strings.Join(aliases, ","); got != "root,rsa,server" {
				t.Fatalf("aliases %s, want root,rsa,server", got)
			}
			for _, e := range entries {
				w := all[e.key]
				if c := source.ClassOf(e.err); e.err != nil && c != tc.class || e.err == nil && tc.class != "" {
					t.Errorf("%s: error %v (class %q), want class %q", e.key, e.err, c, tc.class)
				}
				if tc.class != "" && !strings.Contains(e.err.Error(), "integrity") {
					t.Errorf("%s: error %q does not name the integrity check", e.key, e.err)
				}
				if len(e.certs) != len(w.certs) {
					t.Fatalf("%s: %d certificates, want %d", e.key, len(e.certs), len(w.certs))
				}
				for i, c := range e.certs {
					if !bytes.Equal(c.Raw, w.certs[i].Cert.Raw) {
						t.Errorf("%s: certificate %d differs", e.key, i)
					}
				}
				wantKeys := 0
				if tc.keys {
					wantKeys = w.keys
				}
				if len(e.keyPublics) != wantKeys {
					t.Fatalf("%s: %d keys, want %d", e.key, len(e.keyPublics), wantKeys)
				}
				if wantKeys == 1 {
					pub, ok := e.keyPublics[0].(interface{ Equal(x crypto.PublicKey) bool })
					if !ok || !pub.Equal(w.certs[0].Cert.PublicKey) {
						t.Errorf("%s: the decrypted key is not the leaf's", e.key)
					}
				}
			}
		})
	}
	if !TakesPassword(fx.data) {
		t.Error("TakesPassword is false for a JCEKS keystore")
	}
}

// TestParseJCEKSSecretKeysOnly: a keystore of secret keys holds no
// certificate, which a walk skips like a key file.
func TestParseJCEKSSecretKeysOnly(t *testing.T) {
	data := testpki.JCEKS(t, jceksPassword, nil, "one", "two")
	for _, pw := range [][]byte{nil, []byte(jceksPassword)} {
		if entries, err := parse(data, pw); !errors.Is(err, ErrNoCertificates) || entries != nil {
			t.Errorf("password %q: %+v, %v; want no certificate found", pw, entries, err)
		}
	}
	if _, err := parse(data, []byte("wrong!")); source.ClassOf(err) != source.ClassWrongPassword {
		t.Errorf("wrong password: %v, want wrong_password", err)
	}
}

// jceksHeader starts a JCEKS keystore: magic, version and entry count.
func jceksHeader(version, count uint32) testpki.JKSBytes {
	return testpki.JKSBytes(nil).U32(0xcececece).U32(version).U32(count)
}

// TestParseJCEKSHostile feeds keystores whose lengths, counts and
// serialized secret keys promise far more than the file holds, or loop: each
// must be refused cheaply, as a parse error.
func TestParseJCEKSHostile(t *testing.T) {
	fx := jceksKeystore(t)
	secret := func() testpki.JKSBytes { return jceksHeader(2, 1).U32(3).U16(1).Raw('s').U64(0) }
	stream := func() testpki.JKSBytes { return secret().U16(0xaced).U16(5) }
	digest := make([]byte, 20)
	cases := []struct {
		name string
		data []byte
	}{
		{"four billion entries", jceksHeader(2, 0xffffffff)},
		{"four billion certificates in a key entry", jceksHeader(2, 1).U32(1).U16(1).Raw('a').U64(0).U32(1).Raw(0).U32(0xffffffff)},
		{"four gigabyte certificate", jceksHeader(2, 1).U32(2).U16(1).Raw('a').U64(0).U16(0).U32(0xfffffff0)},
		{"version 1", jceksHeader(1, 0).Raw(digest...)},
		{"unknown tag", jceksHeader(2, 1).U32(4).U16(1).Raw('a').U64(0).Raw(digest...)},
		{"secret key without a stream", secret().Raw(digest...)},
		{"secret key stream cut short", stream().Raw(0x73)},
		{"huge long string", stream().Raw(0x7c).U64(1 << 62).Raw(digest...)},
		{"huge byte array", stream().Raw(0x75, 0x72).U16(2).Raw('[', 'B').U64(0).Raw(0x02).U16(0).Raw(0x78, 0x70).U32(0xffffffff).Raw(digest...)},
		{"huge long array", stream().Raw(0x75, 0x72).U16(2).Raw('[', 'J').U64(0).Raw(0x02).U16(0).Raw(0x78, 0x70).U32(0x7fffffff).Raw(digest...)},
		{"huge object array", stream().Raw(0x75, 0x72).U16(2).Raw('[', 'L').U64(0).Raw(0x02).U16(0).Raw(0x78, 0x70).U32(0xffffffff).Raw(digest...)},
		{"65535 fields", stream().Raw(0x73, 0x72).U16(1).Raw('X').U64(0).Raw(0x02).U16(0xffff).Raw(digest...)},
		{"four billion proxy interfaces", stream().Raw(0x73, 0x7d).U32(0xffffffff).Raw(digest...)},
		{"unknown reference", stream().Raw(0x71).U32(0x7e0005).Raw(digest...)},
		{"reference to itself as a class", stream().Raw(0x73, 0x71).U32(0x7e0000).Raw(digest...)},
		{"nested arrays", nestedArrays(stream(), 200).Raw(digest...)},
		{"exception", stream().Raw(0x7b).Raw(digest...)},
		{"externalizable without block data", stream().Raw(0x73, 0x72).U16(1).Raw('X').U64(0).Raw(0x04).U16(0).Raw(0x78, 0x70).Raw(digest...)},
		{"good keystore cut short", fx.data[:len(fx.data)-1]},
		{"magic only", testpki.JKSBytes(nil).U32(0xcececece)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			entries, err := parse(tc.data, []byte(jceksPassword))
			runtime.ReadMemStats(&after)
			if err == nil || source.ClassOf(err) != source.ClassParse || errors.Is(err, ErrNoCertificates) {
				t.Errorf("parse = %+v, %v; want a parse error", entries, err)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
				t.Errorf("parsing %d bytes allocated %d bytes", len(tc.data), grew)
			}
		})
	}
	// A deep class hierarchy referenced by many objects is refused, not
	// walked once per object.
	deep := stream().Raw(0x73)
	for range maxJavaHierarchy + 1 {
		deep = deep.Raw(0x72).U16(1).Raw('X').U64(0).Raw(0x02).U16(0).Raw(0x78)
	}
	if _, err := parse(deep.Raw(0x70).Raw(digest...), nil); err == nil {
		t.Error("a class hierarchy deeper than the cap was accepted")
	}
}

// nestedArrays wraps n levels of single-element object arrays.
func nestedArrays(b testpki.JKSBytes, n int) testpki.JKSBytes {
	for range n {
		b = b.Raw(0x75, 0x72).U16(3).Raw('[', '[', 'L').U64(0).Raw(0x02).U16(0).Raw(0x78, 0x70).U32(1)
	}
	return b.Raw(0x70)
}

// TestSkipJavaObjectReadsWhatJavaWrites: a hand-written stream in the shape
// of a sealed key (a class with a superclass, byte arrays, strings, a
// reference back to a string) is consumed exactly.
func TestSkipJavaObjectReadsWhatJavaWrites(t *testing.T) {
	s := testpki.JKSBytes(nil).U16(0xaced).U16(5).
		Raw(0x73, 0x72).U16(3).Raw('S', 'u', 'b').U64(1).Raw(0x02).U16(1).
		Raw('I').U16(1).Raw('n').
		Raw(0x78). // no class annotation
		Raw(0x72).U16(5).Raw('S', 'u', 'p', 'e', 'r').U64(2).Raw(0x02).U16(3).
		Raw('[').U16(1).Raw('a').Raw(0x74).U16(2).Raw('[', 'B').
		Raw('L').U16(1).Raw('s').Raw(0x74).U16(18).Raw([]byte("Ljava/lang/String;")...).
		Raw('L').U16(1).Raw('t').Raw(0x71).U32(0x7e0003).
		Raw(0x78, 0x70). // end of annotation, no superclass
		// The instance: Super's fields, then Sub's.
		Raw(0x75, 0x72).U16(2).Raw('[', 'B').U64(3).Raw(0x02).U16(0).Raw(0x78, 0x70).U32(3).Raw(1, 2, 3).
		Raw(0x74).U16(3).Raw('A', 'E', 'S').
		Raw(0x71).U32(0x7e0007). // the string "AES" again
		U32(42)
	r := jksReader{b: append(s, 0xee)}
	skipJavaObject(&r)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.b) != 1 || r.b[0] != 0xee {
		t.Fatalf("%d bytes left after the object, want the one after it", len(r.b))
	}
}

// TestParseKeytoolJKS reads a JKS keystore written by keytool itself (the
// other tests' JKS come from keystore-go): Java's key protection opens with
// the store password, and a wrong one fails the integrity check.
func TestParseKeytoolJKS(t *testing.T) {
	chain := testpki.NewChain(t, testpki.Options{CommonName: "jks"})
	data := testpki.KeytoolKeystore(t, "JKS", jceksPassword, []testpki.JKSEntry{
		{Alias: "server", Key: chain.Leaf.Key, Chain: certs(chain.Leaf, chain.Intermediate)},
		{Alias: "root", Chain: certs(chain.Root)},
	})
	cases := []struct {
		name     string
		password []byte
		keys     int
		class    source.Class
	}{
		{"right password", []byte(jceksPassword), 1, ""},
		{"none configured", nil, 0, ""},
		{"wrong password", []byte("wrong-one"), 0, source.ClassWrongPassword},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			entries, err := parse(bytes.Clone(data), tc.password)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 2 || entries[0].key != "root" || entries[1].key != "server" {
				t.Fatalf("entries %+v, want root and server", entries)
			}
			server := entries[1]
			if len(server.certs) != 2 || !bytes.Equal(server.certs[0].Raw, chain.Leaf.Cert.Raw) {
				t.Errorf("server: %d certificates, want the leaf and its intermediate", len(server.certs))
			}
			if len(server.keyPublics) != tc.keys || source.ClassOf(server.err) != tc.class {
				t.Errorf("server: %d keys, error %v; want %d keys, class %q", len(server.keyPublics), server.err, tc.keys, tc.class)
			}
			if tc.keys == 1 && !server.keyPublics[0].(interface{ Equal(crypto.PublicKey) bool }).Equal(chain.Leaf.Cert.PublicKey) {
				t.Error("server: the opened key is not the leaf's")
			}
		})
	}
}

// BenchmarkParseJCEKS measures a keytool keystore (two key entries, a
// trusted certificate, a secret key) read without a password, and with one,
// when the integrity check and the opening of both keys (Java's 200,000
// MD5 rounds each) are added.
func BenchmarkParseJCEKS(b *testing.B) {
	chain := testpki.NewChain(b, testpki.Options{CommonName: "bench"})
	rsaLeaf := testpki.New(b, chain.Intermediate, testpki.Options{CommonName: "rsa", KeyType: "rsa2048"})
	data := testpki.JCEKS(b, jceksPassword, []testpki.JKSEntry{
		{Alias: "server", Key: chain.Leaf.Key, Chain: certs(chain.Leaf, chain.Intermediate)},
		{Alias: "rsa", Key: rsaLeaf.Key, Chain: certs(rsaLeaf)},
		{Alias: "root", Chain: certs(chain.Root)},
	}, "secret")
	for _, pw := range []struct {
		name     string
		password []byte
		keys     int
	}{{"no password", nil, 0}, {"password", []byte(jceksPassword), 2}} {
		b.Run(pw.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				entries, err := parse(data, pw.password)
				if err != nil || len(entries) != 3 {
					b.Fatalf("%d entries, %v", len(entries), err)
				}
			}
			if pw.keys > 0 { // what a changed keystore costs per private key
				b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*pw.keys), "ms/key")
			}
		})
	}
}

// TestJCEKSKeyIterationBudget: a key asking for more key derivation than a
// keystore's budget is not opened (its certificates are unaffected), and
// the budget is shared by the keystore's keys.
func TestJCEKSKeyIterationBudget(t *testing.T) {
	params, err := asn1.Marshal(pbeParameters{Salt: []byte("12345678"), Iterations: maxJCEKSIterations + 1})
	if err != nil {
		t.Fatal(err)
	}
	info := encryptedPrivateKeyInfo{Data: make([]byte, 64)}
	info.Algorithm.Algorithm = oidPBEWithMD5AndTripleDES
	info.Algorithm.Parameters = asn1.RawValue{FullBytes: params}
	budget := maxJCEKSIterations
	if pub := jceksKeyPublic(info, []byte("pw"), &budget); pub != nil || budget != maxJCEKSIterations {
		t.Errorf("a key over the budget was derived (budget left %d)", budget)
	}
	budget = 10
	params, _ = asn1.Marshal(pbeParameters{Salt: []byte("12345678"), Iterations: 11})
	info.Algorithm.Parameters = asn1.RawValue{FullBytes: params}
	if jceksKeyPublic(info, []byte("pw"), &budget); budget != 10 {
		t.Errorf("a key over what is left of the budget was derived (budget left %d)", budget)
	}
}
