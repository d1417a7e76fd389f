package decode

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// TestParseCertificatesOutliveTheBuffer checks that no parsed certificate
// points into the buffer it was parsed from: load wipes that buffer (it may
// hold keys) as soon as parse returns, and a certificate sharing it would be
// left with a zeroed DER (wrong fingerprint, unverifiable signature).
func TestParseCertificatesOutliveTheBuffer(t *testing.T) {
	chain := testpki.NewChain(t, testpki.Options{})
	leaf, inter, root := chain.Leaf, chain.Intermediate, chain.Root
	cases := []struct {
		name string
		data []byte
		want []*testpki.Cert
	}{
		{"pem", join(testpki.PEM(leaf, inter), testpki.KeyPEM(t, leaf.Key)), certs(leaf, inter)},
		{"trusted pem", testpki.TrustedPEM(t, "x", root), certs(root)},
		{"der", testpki.DER(leaf, inter, root), certs(leaf, inter, root)},
		{"pkcs12 without encryption", testpki.PKCS12Passwordless(t, leaf, certs(inter)), certs(leaf, inter)},
		{"pkcs12 encrypted", testpki.PKCS12(t, leaf, certs(inter), ""), certs(leaf, inter)},
		{"pkcs12 trust store", testpki.PKCS12TrustStore(t, certs(root, inter), ""), certs(root, inter)},
		{"jks", testpki.JKS(t, "pw", testpki.JKSEntry{Alias: "a", Chain: certs(root)}), certs(root)},
		{"kubeconfig", testpki.Kubeconfig(t, []testpki.KubeCluster{{Name: "c", CA: certs(root)}}, nil), certs(root)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			buf := bytes.Clone(tc.data)
			entries, err := parse(buf, nil)
			clear(buf)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || len(entries[0].certs) != len(tc.want) {
				t.Fatalf("got %d entries (%+v), want one of %d certificates", len(entries), entries, len(tc.want))
			}
			for i, c := range entries[0].certs {
				if !bytes.Equal(c.Raw, tc.want[i].Cert.Raw) || !bytes.Equal(c.RawTBSCertificate, tc.want[i].Cert.RawTBSCertificate) {
					t.Errorf("certificate %d: DER changed when the input buffer was wiped", i)
				}
			}
		})
	}
}

// TestParsePEMNamesTheBadBlock checks that a malformed block anywhere in a
// bundle is reported (pem.Decode alone skips it silently) by its position.
func TestParsePEMNamesTheBadBlock(t *testing.T) {
	c1, c2 := leafCert(t, "one"), leafCert(t, "two")
	bad := []byte("-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n")
	cases := []struct {
		name    string
		data    []byte
		certs   int
		wantErr string // "" for none
	}{
		{"clean", join(testpki.PEM(c1), testpki.PEM(c2)), 2, ""},
		{"bad first", join(bad, testpki.PEM(c1, c2)), 2, "PEM block 1: truncated or malformed"},
		{"bad middle", join(testpki.PEM(c1), bad, testpki.PEM(c2)), 2, "PEM block 2: truncated or malformed"},
		{"bad last", join(testpki.PEM(c1, c2), bad), 2, "PEM block 3: truncated or malformed"},
		{"two bad", join(bad, testpki.PEM(c1), bad), 1, "PEM block 1: truncated or malformed PEM block; PEM block 3: truncated"},
		{"undecodable certificate", join(testpki.PEM(c1), pemBlock("CERTIFICATE", []byte{0x30, 0x03, 1, 2, 3})), 1, "PEM block 2: certificate: x509:"},
		{"begin without end", []byte("-----BEGIN CERTIFICATE-----\nMIIB\n"), 0, "PEM block 1: truncated"},
		{"begin in running text", []byte("see -----BEGIN CERTIFICATE----- for details"), 0, "PEM block 1: truncated"},
		{"type line only", join(testpki.PEM(c1), []byte("-----BEGIN ")), 1, "PEM block 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := parsePEM(tc.data, MaxCertificates())
			if len(e.certs) != tc.certs {
				t.Errorf("%d certificates, want %d", len(e.certs), tc.certs)
			}
			if tc.wantErr == "" {
				if err != nil || e.err != nil {
					t.Errorf("unexpected error %v / %v", err, e.err)
				}
				return
			}
			if e.err == nil || !strings.Contains(e.err.Error(), tc.wantErr) || source.ClassOf(e.err) != source.ClassParse {
				t.Errorf("entry error %v, want class parse containing %q", e.err, tc.wantErr)
			}
			if (err != nil) != (tc.certs == 0) {
				t.Errorf("returned error %v; want one exactly when no certificate was read", err)
			}
		})
	}
}

func TestParsePasswords(t *testing.T) {
	leaf := leafCert(t, "pw")
	noPW := testpki.PKCS12(t, leaf, nil, "")
	withPW := testpki.PKCS12(t, leaf, nil, "secret")
	jks := testpki.JKS(t, "secret", testpki.JKSEntry{Alias: "k", Key: leaf.Key, Chain: certs(leaf)})
	cases := []struct {
		name     string
		data     []byte
		password []byte // nil: no password_file
		class    source.Class
		keys     int
		errHas   string
	}{
		{"pkcs12 empty password, none configured", noPW, nil, "", 1, ""},
		{"pkcs12 empty password configured empty", noPW, []byte{}, "", 1, ""},
		{"pkcs12 right password", withPW, []byte("secret"), "", 1, ""},
		{"pkcs12 password needed, none configured", withPW, nil, source.ClassWrongPassword, 0, "no password_file"},
		{"pkcs12 password needed, empty configured", withPW, []byte{}, source.ClassWrongPassword, 0, "does not decrypt"},
		{"pkcs12 wrong password", withPW, []byte("Secret"), source.ClassWrongPassword, 0, "does not decrypt"},
		{"jks right password", jks, []byte("secret"), "", 1, ""},
		{"jks none configured", jks, nil, "", 0, ""},
		{"jks empty password configured", jks, []byte{}, source.ClassWrongPassword, 0, "integrity"},
		{"jks wrong password", jks, []byte("nope"), source.ClassWrongPassword, 0, "integrity"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			entries, err := parse(bytes.Clone(tc.data), tc.password)
			if tc.class != "" && err != nil { // PKCS#12: nothing readable
				if source.ClassOf(err) != tc.class || !strings.Contains(err.Error(), tc.errHas) {
					t.Errorf("error %v (class %q), want class %q containing %q", err, source.ClassOf(err), tc.class, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if len(entries) != 1 || len(entries[0].certs) != 1 || !bytes.Equal(entries[0].certs[0].Raw, leaf.Cert.Raw) {
				t.Fatalf("entries %+v, want the leaf", entries)
			}
			e := entries[0]
			if c := source.ClassOf(e.err); c != tc.class || (tc.errHas != "" && !strings.Contains(e.err.Error(), tc.errHas)) {
				t.Errorf("entry error %v (class %q), want class %q containing %q", e.err, c, tc.class, tc.errHas)
			}
			if len(e.keyPublics) != tc.keys {
				t.Errorf("%d keys, want %d", len(e.keyPublics), tc.keys)
			}
		})
	}
}

// TestParseJKSHostileLengths feeds keystores whose length and count fields
// promise far more than the file holds. A reader that allocates what they
// say (four billion certificates in a 43-byte file) dies of a fatal
// out-of-memory, not a panic; parse must refuse them cheaply.
func TestParseJKSHostileLengths(t *testing.T) {
	leaf := leafCert(t, "jks")
	good := testpki.JKS(t, "pw", testpki.JKSEntry{Alias: "k", Key: leaf.Key, Chain: certs(leaf)})
	keyEntry := func() testpki.JKSBytes { return testpki.JKSHeader(2, 1).U32(1).U16(1).Raw('a').U64(0) }
	cases := []struct {
		name string
		data []byte
	}{
		{"four billion certificates in a key entry", keyEntry().U32(1).Raw(0).U32(0xffffffff)},
		{"four gigabyte key", keyEntry().U32(0xfffffff0).Raw(1, 2, 3)},
		{"four gigabyte certificate", keyEntry().U32(1).Raw(0).U32(1).U16(4).Raw('X', '5', '0', '9').U32(0xfffffff0)},
		{"huge certificate type", testpki.JKSHeader(2, 1).U32(2).U16(1).Raw('a').U64(0).U16(0xffff)},
		{"huge trusted certificate", testpki.JKSHeader(2, 1).U32(2).U16(1).Raw('a').U64(0).U16(0).U32(0xffffffff)},
		{"huge alias", testpki.JKSHeader(2, 1).U32(2).U16(0xffff).Raw('a')},
		{"four billion entries", testpki.JKSHeader(2, 0xffffffff)},
		{"version 1 huge certificate", testpki.JKSHeader(1, 1).U32(2).U16(1).Raw('a').U64(0).U32(0xfffffff0)},
		{"unknown version", testpki.JKSHeader(7, 0).Raw(make([]byte, 20)...)},
		{"unknown tag", testpki.JKSHeader(2, 1).U32(9).U16(1).Raw('a').U64(0).Raw(make([]byte, 20)...)},
		{"no digest", testpki.JKSHeader(2, 0)},
		{"magic only", testpki.JKSBytes(nil).U32(0xfeedfeed)},
		{"good keystore cut short", good[:len(good)-1]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			entries, err := parse(tc.data, nil)
			runtime.ReadMemStats(&after)
			if err == nil || source.ClassOf(err) != source.ClassParse {
				t.Errorf("parse = %+v, %v; want a parse error", entries, err)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
				t.Errorf("parsing %d bytes allocated %d bytes", len(tc.data), grew)
			}
		})
	}
	if _, err := walkKeystore(good, false, nil); err != nil {
		t.Errorf("a keystore written by keystore-go is not well formed: %v", err)
	}
	// An empty keystore is well formed and holds no certificate.
	empty := testpki.JKS(t, "pw")
	if _, err := parse(empty, []byte("pw")); !errors.Is(err, ErrNoCertificates) {
		t.Errorf("empty keystore: %v, want no certificate found", err)
	}
}

func TestParseKubeconfigEdges(t *testing.T) {
	c := leafCert(t, "k")
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	cases := []struct {
		name  string
		yaml  string
		keys  []string
		certs []int
		class []source.Class
	}{
		{name: "user without key",
			yaml: "kind: Config\nusers:\n- name: u\n  user:\n    client-certificate-data: " + b64(testpki.PEM(c)) + "\n",
			keys: []string{"user/u"}, certs: []int{1}, class: []source.Class{""}},
		// Content with no place on a filesystem cannot resolve a file
		// reference: the entry says so (kubeconfig_test.go has the files).
		{name: "cluster without data is skipped, user with a file path is a config error",
			yaml: "kind: Config\nclusters:\n- name: a\n  cluster:\n    server: https://a\n- name: b\n  cluster:\n    certificate-authority-data: " + b64(testpki.PEM(c)) +
				"\nusers:\n- name: u\n  user:\n    client-certificate: /x.crt\n",
			keys: []string{"cluster/b", "user/u"}, certs: []int{1, 0}, class: []source.Class{"", source.ClassConfig}},
		{name: "data with surrounding whitespace",
			yaml: "kind: Config\nclusters:\n- name: a\n  cluster:\n    certificate-authority-data: \"  " + b64(testpki.PEM(c)) + "\\n\"\n",
			keys: []string{"cluster/a"}, certs: []int{1}, class: []source.Class{""}},
		{name: "undecodable key data is ignored",
			yaml: "kind: Config\nusers:\n- name: u\n  user:\n    client-certificate-data: " + b64(testpki.PEM(c)) + "\n    client-key-data: '***'\n",
			keys: []string{"user/u"}, certs: []int{1}, class: []source.Class{""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			entries, err := parse([]byte(tc.yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != len(tc.keys) {
				t.Fatalf("%d entries, want %d: %+v", len(entries), len(tc.keys), entries)
			}
			for i, e := range entries {
				if e.key != tc.keys[i] || len(e.certs) != tc.certs[i] || source.ClassOf(e.err) != tc.class[i] {
					t.Errorf("entry %d: key %q, %d certs, err %v; want %q, %d, class %q", i, e.key, len(e.certs), e.err, tc.keys[i], tc.certs[i], tc.class[i])
				}
			}
		})
	}
}

func TestYAMLErrorWithoutContent(t *testing.T) {
	cases := map[string]string{
		"yaml: unmarshal errors:\n  line 2: cannot unmarshal !!str `LS0tLS1CRUdJTi...` into []struct": "yaml: unmarshal errors:\n  line 2: cannot unmarshal !!str (value omitted)",
		"yaml: line 3: did not find expected key":                                                     "yaml: line 3: did not find expected key",
	}
	for in, want := range cases {
		if got := yamlErrorWithoutContent(errors.New(in)); got != want {
			t.Errorf("yamlErrorWithoutContent(%q) = %q, want %q", in, got, want)
		}
	}
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func certs(cs ...*testpki.Cert) []*testpki.Cert { return cs }

func leafCert(t *testing.T, cn string) *testpki.Cert {
	t.Helper()
	return testpki.New(t, nil, testpki.Options{CommonName: cn, DNSNames: []string{cn + ".example"}})
}

func pemBlock(typ string, body []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: body})
}

// TestTakesPassword checks that only the formats Decode opens with a
// password are said to take one.
func TestTakesPassword(t *testing.T) {
	chain := testpki.NewChain(t, testpki.Options{})
	cases := []struct {
		name string
		data []byte
		want bool
	}{
		{"pkcs12", testpki.PKCS12(t, chain.Leaf, nil, "pw"), true},
		{"jks", testpki.JKS(t, "pw", testpki.JKSEntry{Alias: "a", Chain: certs(chain.Root)}), true},
		{"pem", testpki.PEM(chain.Leaf), false},
		{"der", testpki.DER(chain.Leaf, chain.Intermediate), false},
		{"kubeconfig", testpki.Kubeconfig(t, []testpki.KubeCluster{{Name: "c", CA: certs(chain.Root)}}, nil), false},
		{"empty", nil, false},
	}
	for _, tc := range cases {
		if got := TakesPassword(tc.data); got != tc.want {
			t.Errorf("%s: TakesPassword = %v, want %v", tc.name, got, tc.want)
		}
	}
}
