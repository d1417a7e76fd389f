package files

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// ---- helpers shared by the package's tests ----

// groupSpec is one entry of the configuration's files list; paths are
// relative to the test directory, as a configuration file's would be.
type groupSpec struct {
	Paths        []string          `yaml:"paths"`
	Exclude      []string          `yaml:"exclude,omitempty"`
	PasswordFile string            `yaml:"password_file,omitempty"`
	CAFile       string            `yaml:"ca_file,omitempty"`
	Labels       map[string]string `yaml:"labels,omitempty"`
}

// parseConfig renders groups as a configuration file and parses it the way
// certwatch does, resolving relative paths against dir.
func parseConfig(t *testing.T, dir string, maxFileSize int64, groups ...groupSpec) *config.Config {
	t.Helper()
	doc := map[string]any{"files": groups}
	if maxFileSize > 0 {
		doc["global"] = map[string]any{"max_file_size": maxFileSize}
	}
	y, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(y, dir)
	if err != nil {
		t.Fatalf("config.Parse:\n%s\n%v", y, err)
	}
	return cfg
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newSource builds a Source over dir with a fresh cache.
func newSource(t *testing.T, dir string, groups ...groupSpec) (*Source, *Cache) {
	t.Helper()
	cache := NewCache()
	return New(parseConfig(t, dir, 0, groups...), cache, discard()), cache
}

// collect runs Collect, failing the test instead of hanging on it.
func collect(t *testing.T, s *Source) []source.Finding {
	t.Helper()
	ch := make(chan []source.Finding, 1)
	go func() { ch <- s.Collect(context.Background()) }()
	select {
	case f := <-ch:
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("Collect did not return within 10s")
		return nil
	}
}

// readOne brings one file's cached outcome up to date and returns its
// findings, as a pass and a snapshot would for a file of the first group.
func readOne(s *Source, path string, explicit bool) []source.Finding {
	g := &s.groups[0]
	s.refresh(path, g)
	c, ok := s.cache.outcome(path, g.optsKey)
	if !ok {
		return nil
	}
	f, _ := s.findings(g, path, c, explicit)
	return f
}

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// want is what one finding must be. target is relative to the test directory.
type want struct {
	target string
	key    string
	certs  []*testpki.Cert
	keys   []crypto.PublicKey
	class  source.Class // "" when Err must be nil
}

func describe(fs []source.Finding) string {
	var b strings.Builder
	for i, f := range fs {
		fmt.Fprintf(&b, "  [%d] target=%s key=%q certs=%d keys=%d class=%q err=%v\n",
			i, f.Target, f.Key, len(f.Certs), len(f.KeyPublics), source.ClassOf(f.Err), f.Err)
	}
	return b.String()
}

func prefix(b []byte) []byte { return b[:min(len(b), 12)] }

type pubEqualer interface{ Equal(crypto.PublicKey) bool }

// checkFindings asserts the findings one by one, in order: place, class,
// certificates (by their DER, so a zeroed or swapped certificate fails) and
// key public halves.
func checkFindings(t *testing.T, dir string, got []source.Finding, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("got %d findings, want %d:\n%s", len(got), len(wants), describe(got))
	}
	for i, w := range wants {
		f := got[i]
		target := filepath.Join(dir, w.target)
		if f.Source != source.KindFile || f.Target != target || f.Key != w.key {
			t.Errorf("finding %d is %s %s key %q, want %s %s key %q", i, f.Source, f.Target, f.Key, source.KindFile, target, w.key)
		}
		if c := source.ClassOf(f.Err); c != w.class {
			t.Errorf("finding %d (%s %q): class %q (err %v), want %q", i, w.target, w.key, c, f.Err, w.class)
		}
		if len(f.Certs) != len(w.certs) {
			t.Errorf("finding %d (%s %q): %d certificates, want %d", i, w.target, w.key, len(f.Certs), len(w.certs))
		} else {
			for j, c := range w.certs {
				if !bytes.Equal(f.Certs[j].Raw, c.Cert.Raw) {
					t.Errorf("finding %d (%s %q): certificate %d is %q with DER %x..., want %q with DER %x...",
						i, w.target, w.key, j, f.Certs[j].Subject.CommonName, prefix(f.Certs[j].Raw), c.Cert.Subject.CommonName, prefix(c.Cert.Raw))
				}
			}
		}
		if len(f.KeyPublics) != len(w.keys) {
			t.Errorf("finding %d (%s %q): %d key public halves, want %d", i, w.target, w.key, len(f.KeyPublics), len(w.keys))
		} else {
			for j, k := range w.keys {
				if eq, ok := k.(pubEqualer); !ok || !eq.Equal(f.KeyPublics[j]) {
					t.Errorf("finding %d (%s %q): key %d does not match", i, w.target, w.key, j)
				}
			}
		}
	}
}

func pubs(certs ...*testpki.Cert) []crypto.PublicKey {
	var out []crypto.PublicKey
	for _, c := range certs {
		out = append(out, c.Key.Public())
	}
	return out
}

func certs(cs ...*testpki.Cert) []*testpki.Cert { return cs }

func leafCert(t *testing.T, cn string) *testpki.Cert {
	t.Helper()
	return testpki.New(t, nil, testpki.Options{CommonName: cn, DNSNames: []string{cn + ".example"}})
}

// manyCerts returns n self-signed certificates with distinct names.
func manyCerts(t *testing.T, n int) []*testpki.Cert {
	t.Helper()
	out := make([]*testpki.Cert, n)
	for i := range out {
		out[i] = leafCert(t, fmt.Sprintf("bundle-%02d", i))
	}
	return out
}

func pemBlock(typ string, body []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: body})
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// junk returns n reproducible pseudo-random bytes.
func junk(seed uint64, n int) []byte {
	r := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// fileCase is one file layout and the findings Collect must report for it.
type fileCase struct {
	name  string
	files map[string][]byte // written under the test directory
	group groupSpec         // Paths default to every file in files
	want  []want
}

func runFileCases(t *testing.T, cases []fileCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var names []string
			for name, data := range tc.files {
				write(t, dir, name, data)
				if name != tc.group.PasswordFile && name != tc.group.CAFile {
					names = append(names, name)
				}
			}
			g := tc.group
			if g.Paths == nil {
				g.Paths = names
			}
			s, _ := newSource(t, dir, g)
			checkFindings(t, dir, collect(t, s), tc.want)
		})
	}
}

// ---- formats ----

func TestCollectFormats(t *testing.T) {
	chain := testpki.NewChain(t, testpki.Options{})
	root, inter, leaf := chain.Root, chain.Intermediate, chain.Leaf
	bundle := manyCerts(t, 50)
	other := leafCert(t, "other")
	rsaKey := testpki.NewKey(t, "rsa2048")
	ecKey := testpki.NewKey(t, "ecdsa384")
	ecParams, err := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7})
	if err != nil {
		t.Fatal(err)
	}
	encryptedKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00112233445566778899AABBCCDDEEFF"},
		Bytes:   junk(7, 128)})
	pw := []byte("s3cret\n")

	cases := []fileCase{
		{name: "pem single certificate",
			files: map[string][]byte{"leaf.pem": testpki.PEM(leaf)},
			want:  []want{{target: "leaf.pem", certs: certs(leaf)}}},
		{name: "pem bundle of 50 in file order",
			files: map[string][]byte{"bundle.pem": testpki.PEM(bundle...)},
			want:  []want{{target: "bundle.pem", certs: bundle}}},
		{name: "pem certificates mixed with keys, parameters and text",
			files: map[string][]byte{"mixed.pem": join(
				[]byte("Bag Attributes\n    friendlyName: server\nsubject=/CN=localhost\n"),
				testpki.PEM(leaf),
				testpki.KeyPEMAs(t, leaf.Key, testpki.KeyPKCS8),
				pemBlock("EC PARAMETERS", ecParams),
				[]byte("\nsome commentary between blocks\n\n"),
				testpki.PEM(inter),
				testpki.KeyPEMAs(t, rsaKey, testpki.KeyPKCS1),
				encryptedKey,
				pemBlock("CERTIFICATE REQUEST", junk(8, 64)),
				testpki.KeyPEMAs(t, ecKey, testpki.KeySEC1),
				pemBlock("X509 CERTIFICATE", root.Cert.Raw),
				[]byte("trailing text\n"),
			)},
			want: []want{{target: "mixed.pem", certs: certs(leaf, inter, root),
				keys: []crypto.PublicKey{leaf.Key.Public(), rsaKey.Public(), ecKey.Public()}}}},
		{name: "pem leaf and matching key",
			files: map[string][]byte{"pair.pem": join(testpki.KeyPEM(t, leaf.Key), testpki.PEM(leaf, inter))},
			want:  []want{{target: "pair.pem", certs: certs(leaf, inter), keys: pubs(leaf)}}},
		{name: "pem trusted certificate form",
			files: map[string][]byte{"trusted.pem": testpki.TrustedPEM(t, "my root", root, inter)},
			want:  []want{{target: "trusted.pem", certs: certs(root, inter)}}},
		{name: "pem key only named explicitly",
			files: map[string][]byte{"key.pem": testpki.KeyPEM(t, leaf.Key)},
			want:  []want{{target: "key.pem", class: source.ClassParse}}},
		{name: "pem key only found by a walk is skipped",
			files: map[string][]byte{"d/key.pem": testpki.KeyPEM(t, leaf.Key), "d/leaf.pem": testpki.PEM(leaf)},
			group: groupSpec{Paths: []string{"d"}},
			want:  []want{{target: "d/leaf.pem", certs: certs(leaf)}}},
		{name: "der single certificate",
			files: map[string][]byte{"leaf.der": testpki.DER(leaf)},
			want:  []want{{target: "leaf.der", certs: certs(leaf)}}},
		{name: "der concatenated certificates",
			files: map[string][]byte{"chain.cer": testpki.DER(leaf, inter, root)},
			want:  []want{{target: "chain.cer", certs: certs(leaf, inter, root)}}},
		{name: "pkcs12 with password_file",
			files: map[string][]byte{"leaf.p12": testpki.PKCS12(t, leaf, certs(inter, root), "s3cret"), "pw": pw},
			group: groupSpec{PasswordFile: "pw"},
			want:  []want{{target: "leaf.p12", certs: certs(leaf, inter, root), keys: pubs(leaf)}}},
		{name: "pkcs12 password_file with CRLF",
			files: map[string][]byte{"leaf.p12": testpki.PKCS12(t, leaf, nil, "s3cret"), "pw": []byte("s3cret\r\nignored second line\n")},
			group: groupSpec{PasswordFile: "pw"},
			want:  []want{{target: "leaf.p12", certs: certs(leaf), keys: pubs(leaf)}}},
		{name: "pkcs12 without encryption or mac",
			files: map[string][]byte{"leaf.p12": testpki.PKCS12Passwordless(t, leaf, certs(inter))},
			want:  []want{{target: "leaf.p12", certs: certs(leaf, inter), keys: pubs(leaf)}}},
		{name: "pkcs12 empty password without password_file",
			files: map[string][]byte{"leaf.pfx": testpki.PKCS12(t, leaf, certs(inter), "")},
			want:  []want{{target: "leaf.pfx", certs: certs(leaf, inter), keys: pubs(leaf)}}},
		{name: "pkcs12 wrong password",
			files: map[string][]byte{"leaf.p12": testpki.PKCS12(t, leaf, nil, "right"), "pw": []byte("wrong\n")},
			group: groupSpec{PasswordFile: "pw"},
			want:  []want{{target: "leaf.p12", class: source.ClassWrongPassword}}},
		{name: "pkcs12 needs a password but none configured",
			files: map[string][]byte{"leaf.p12": testpki.PKCS12(t, leaf, nil, "right")},
			want:  []want{{target: "leaf.p12", class: source.ClassWrongPassword}}},
		{name: "pkcs12 trust store without key",
			files: map[string][]byte{"trust.p12": testpki.PKCS12TrustStore(t, certs(root, inter, other), "")},
			want:  []want{{target: "trust.p12", certs: certs(root, inter, other)}}},
		{name: "pkcs12 trust store with password",
			files: map[string][]byte{"trust.p12": testpki.PKCS12TrustStore(t, certs(root), "changeit"), "pw": []byte("changeit")},
			group: groupSpec{PasswordFile: "pw"},
			want:  []want{{target: "trust.p12", certs: certs(root)}}},
		{name: "jks key entry and trusted entries with password",
			files: map[string][]byte{"store.jks": testpki.JKS(t, "changeit",
				testpki.JKSEntry{Alias: "server", Key: leaf.Key, Chain: certs(leaf, inter)},
				testpki.JKSEntry{Alias: "root-ca", Chain: certs(root)},
				testpki.JKSEntry{Alias: "other", Chain: certs(other)}), "pw": []byte("changeit\n")},
			group: groupSpec{PasswordFile: "pw"},
			want: []want{
				{target: "store.jks", key: "other", certs: certs(other)},
				{target: "store.jks", key: "root-ca", certs: certs(root)},
				{target: "store.jks", key: "server", certs: certs(leaf, inter), keys: pubs(leaf)},
			}},
		{name: "jks wrong password still reports certificates",
			files: map[string][]byte{"store.jks": testpki.JKS(t, "changeit",
				testpki.JKSEntry{Alias: "server", Key: leaf.Key, Chain: certs(leaf, inter)},
				testpki.JKSEntry{Alias: "root-ca", Chain: certs(root)}), "pw": []byte("nope")},
			group: groupSpec{PasswordFile: "pw"},
			want: []want{
				{target: "store.jks", key: "root-ca", certs: certs(root), class: source.ClassWrongPassword},
				{target: "store.jks", key: "server", certs: certs(leaf, inter), class: source.ClassWrongPassword},
			}},
		{name: "jks without password configured",
			files: map[string][]byte{"store.jks": testpki.JKS(t, "changeit",
				testpki.JKSEntry{Alias: "server", Key: leaf.Key, Chain: certs(leaf, inter)},
				testpki.JKSEntry{Alias: "root-ca", Chain: certs(root)})},
			want: []want{
				{target: "store.jks", key: "root-ca", certs: certs(root)},
				{target: "store.jks", key: "server", certs: certs(leaf, inter)},
			}},
		{name: "jks aliases with capitals",
			files: map[string][]byte{"store.jks": testpki.JKS(t, "changeit",
				testpki.JKSEntry{Alias: "MyServer", Key: leaf.Key, Chain: certs(leaf)},
				testpki.JKSEntry{Alias: "RootCA", Chain: certs(root)}), "pw": []byte("changeit")},
			group: groupSpec{PasswordFile: "pw"},
			want: []want{
				{target: "store.jks", key: "MyServer", certs: certs(leaf), keys: pubs(leaf)},
				{target: "store.jks", key: "RootCA", certs: certs(root)},
			}},
		{name: "kubeconfig clusters and users",
			files: map[string][]byte{"kubeconfig": testpki.Kubeconfig(t,
				[]testpki.KubeCluster{{Name: "prod", CA: certs(root)}, {Name: "staging", CA: certs(inter, root)}},
				[]testpki.KubeUser{{Name: "admin", Certs: certs(leaf, inter), Key: leaf.Key}, {Name: "ci", Certs: certs(other)}})},
			want: []want{
				{target: "kubeconfig", key: "cluster/prod", certs: certs(root)},
				{target: "kubeconfig", key: "cluster/staging", certs: certs(inter, root)},
				{target: "kubeconfig", key: "user/admin", certs: certs(leaf, inter), keys: pubs(leaf)},
				{target: "kubeconfig", key: "user/ci", certs: certs(other)},
			}},
	}
	runFileCases(t, cases)
}

// ---- bad input ----

func TestCollectBadInput(t *testing.T) {
	c1, c2, c3 := leafCert(t, "one"), leafCert(t, "two"), leafCert(t, "three")
	full := testpki.PEM(c2)
	truncated := full[:len(full)/2] // no END line
	garbage := []byte("-----BEGIN CERTIFICATE-----\nThis is !!! not @@@ base64 at all ###\n-----END CERTIFICATE-----\n")
	badDER := pemBlock("CERTIFICATE", junk(3, 300))
	p12 := testpki.PKCS12(t, c1, nil, "")
	jks := testpki.JKS(t, "changeit", testpki.JKSEntry{Alias: "a", Chain: certs(c1)})
	startsWithSequence := append([]byte{0x30, 0x82, 0x01, 0x00}, junk(4, 256)...)
	hugeCount := binary.BigEndian.AppendUint32(nil, 0xfeedfeed)
	hugeCount = binary.BigEndian.AppendUint32(hugeCount, 2)
	hugeCount = binary.BigEndian.AppendUint32(hugeCount, 0xffffffff)
	// 43 bytes that made keystore-go allocate 160 GB: a fatal error that
	// killed the whole exporter.
	hugeChain := testpki.JKSHeader(2, 1).U32(1).U16(1).Raw('a').U64(0).U32(1).Raw(0).U32(0xffffffff)

	cases := []fileCase{
		{name: "malformed pem",
			files: map[string][]byte{"bad.pem": garbage},
			want:  []want{{target: "bad.pem", class: source.ClassParse}}},
		{name: "truncated pem",
			files: map[string][]byte{"trunc.pem": truncated},
			want:  []want{{target: "trunc.pem", class: source.ClassParse}}},
		{name: "good certificate then truncated one",
			files: map[string][]byte{"trunc.pem": join(testpki.PEM(c1), truncated)},
			want:  []want{{target: "trunc.pem", certs: certs(c1), class: source.ClassParse}}},
		{name: "bundle with a block that is not base64",
			files: map[string][]byte{"bundle.pem": join(testpki.PEM(c1), garbage, testpki.PEM(c3))},
			want:  []want{{target: "bundle.pem", certs: certs(c1, c3), class: source.ClassParse}}},
		{name: "bundle with a block that is not a certificate",
			files: map[string][]byte{"bundle.pem": join(testpki.PEM(c1), badDER, testpki.PEM(c3))},
			want:  []want{{target: "bundle.pem", certs: certs(c1, c3), class: source.ClassParse}}},
		{name: "bundle whose corrupt block comes first",
			files: map[string][]byte{"bundle.pem": join(garbage, testpki.PEM(c1, c2))},
			want:  []want{{target: "bundle.pem", certs: certs(c1, c2), class: source.ClassParse}}},
		{name: "empty file",
			files: map[string][]byte{"empty.pem": nil},
			want:  []want{{target: "empty.pem", class: source.ClassParse}}},
		{name: "whitespace only",
			files: map[string][]byte{"blank.pem": []byte(" \n\t\r\n")},
			want:  []want{{target: "blank.pem", class: source.ClassParse}}},
		{name: "random bytes",
			files: map[string][]byte{"junk.bin": junk(1, 4096)},
			want:  []want{{target: "junk.bin", class: source.ClassParse}}},
		{name: "random bytes after a DER sequence header",
			files: map[string][]byte{"junk.der": startsWithSequence},
			want:  []want{{target: "junk.der", class: source.ClassParse}}},
		{name: "plain text",
			files: map[string][]byte{"notes.txt": []byte("just some notes\nnothing to see\n")},
			want:  []want{{target: "notes.txt", class: source.ClassParse}}},
		{name: "truncated der",
			files: map[string][]byte{"trunc.der": c1.Cert.Raw[:len(c1.Cert.Raw)/2]},
			want:  []want{{target: "trunc.der", class: source.ClassParse}}},
		{name: "truncated pkcs12",
			files: map[string][]byte{"trunc.p12": p12[:len(p12)/2]},
			want:  []want{{target: "trunc.p12", class: source.ClassParse}}},
		{name: "truncated jks",
			files: map[string][]byte{"trunc.jks": jks[:len(jks)-30]},
			want:  []want{{target: "trunc.jks", class: source.ClassParse}}},
		{name: "jks declaring four billion entries",
			files: map[string][]byte{"huge.jks": hugeCount},
			want:  []want{{target: "huge.jks", class: source.ClassParse}}},
		{name: "jks key entry declaring four billion certificates",
			files: map[string][]byte{"huge.jks": hugeChain},
			want:  []want{{target: "huge.jks", class: source.ClassParse}}},
		{name: "certificate request only",
			files: map[string][]byte{"req.csr": pemBlock("CERTIFICATE REQUEST", junk(5, 100))},
			want:  []want{{target: "req.csr", class: source.ClassParse}}},
		{name: "kubeconfig that is not yaml",
			files: map[string][]byte{"kubeconfig": []byte("kind: Config\nclusters: [ {name: x\n  : : :\n")},
			want:  []want{{target: "kubeconfig", class: source.ClassParse}}},
		{name: "kubeconfig referring to a missing file", // kubeconfig_test.go has the rest
			files: map[string][]byte{"kubeconfig": []byte("kind: Config\nclusters:\n- name: x\n  cluster:\n    certificate-authority: missing/ca.pem\n")},
			want:  []want{{target: "kubeconfig", key: "cluster/x", class: source.ClassNotFound}}},
		{name: "kubeconfig with bad base64 in one cluster",
			files: map[string][]byte{"kubeconfig": []byte("kind: Config\nclusters:\n- name: bad\n  cluster:\n    certificate-authority-data: '%%%not base64'\n" +
				"- name: good\n  cluster:\n    certificate-authority-data: " + base64.StdEncoding.EncodeToString(testpki.PEM(c1)) + "\n")},
			want: []want{
				{target: "kubeconfig", key: "cluster/bad", class: source.ClassParse},
				{target: "kubeconfig", key: "cluster/good", certs: certs(c1)},
			}},
		{name: "kubeconfig user whose data is not a certificate",
			files: map[string][]byte{"kubeconfig": []byte("kind: Config\nclusters: []\nusers:\n- name: u\n  user:\n    client-certificate-data: " +
				base64.StdEncoding.EncodeToString([]byte("hello")) + "\n")},
			want: []want{{target: "kubeconfig", key: "user/u", class: source.ClassParse}}},
		{name: "empty file found by a walk is reported",
			files: map[string][]byte{"d/empty.pem": nil, "d/ok.pem": testpki.PEM(c1)},
			group: groupSpec{Paths: []string{"d"}},
			want: []want{
				{target: "d/empty.pem", class: source.ClassParse},
				{target: "d/ok.pem", certs: certs(c1)},
			}},
	}
	runFileCases(t, cases)
}

// TestTooLargeIsNotRead proves the size cap is checked before the file is
// opened: the file is never opened nor parsed, at the cap it is read.
func TestTooLargeIsNotRead(t *testing.T) {
	dir := t.TempDir()
	c := leafCert(t, "big")
	data := testpki.PEM(c)
	write(t, dir, "big.pem", append(bytes.Repeat([]byte("# padding\n"), 100), data...))
	write(t, dir, "exact.pem", data)
	limit := int64(len(data))
	s := New(parseConfig(t, dir, limit, groupSpec{Paths: []string{"big.pem", "exact.pem"}}), NewCache(), discard())

	loads, parses := testLoads.Load(), testParses.Load()
	got := collect(t, s)
	checkFindings(t, dir, got, []want{
		{target: "big.pem", class: source.ClassTooLarge},
		{target: "exact.pem", certs: certs(c)},
	})
	if n := testLoads.Load() - loads; n != 1 {
		t.Errorf("%d files opened, want 1 (only exact.pem)", n)
	}
	if n := testParses.Load() - parses; n != 1 {
		t.Errorf("%d files parsed, want 1 (only exact.pem)", n)
	}
	if !strings.Contains(got[0].Err.Error(), "max_file_size") {
		t.Errorf("too_large error does not name the setting: %v", got[0].Err)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// ---- files that change under the source ----

// TestVanishedFile covers a file that disappears between discovery and
// reading, and between the stat and the open.
func TestVanishedFile(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "gone.pem", testpki.PEM(leafCert(t, "gone")))
	s, _ := newSource(t, dir, groupSpec{Paths: []string{"."}})
	found, problems := discover([]string{dir}, nil)
	if len(problems) != 0 || len(found) != 1 || found[0].path != p {
		t.Fatalf("discover = %+v, %+v", found, problems)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	got := readOne(s, found[0].path, true)
	checkFindings(t, dir, got, []want{{target: "gone.pem", class: source.ClassNotFound}})

	_, _, err := s.load(p, 10, nil) // stat said it was there; the open finds nothing
	if c := source.ClassOf(err); c != source.ClassNotFound {
		t.Errorf("load of a vanished file: class %q (%v), want not_found", c, err)
	}
}

// ---- groups, labels, verification ----

func TestGroupsLabelsAndVerify(t *testing.T) {
	dir := t.TempDir()
	chain := testpki.NewChain(t, testpki.Options{})
	a, b, c := leafCert(t, "a"), leafCert(t, "b"), leafCert(t, "c")
	write(t, dir, "ca.pem", testpki.PEM(chain.Root))
	write(t, dir, "g1/b.pem", testpki.PEM(b))
	write(t, dir, "g1/a.pem", testpki.PEM(a))
	write(t, dir, "g1/z/chain.pem", testpki.PEM(chain.Leaf, chain.Intermediate))
	write(t, dir, "g2/c.pem", testpki.PEM(c))
	write(t, dir, "g2/junk.pem", []byte("junk"))
	ca, err := source.LoadCAFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}

	g1 := groupSpec{Paths: []string{"g1", "g2/c.pem"}, CAFile: "ca.pem", Labels: map[string]string{"team": "pki", "env": "prod"}}
	g2 := groupSpec{Paths: []string{"g2", "g1/a.pem", "missing.pem"}, Labels: map[string]string{"team": "web"}}
	s, _ := newSource(t, dir, g1, g2)
	got := collect(t, s)
	// Group order, then path order within a group; a path listed by two
	// groups is reported once, by the first; discovery problems come first.
	checkFindings(t, dir, got, []want{
		{target: "missing.pem", class: source.ClassNotFound},
		{target: "g1/a.pem", certs: certs(a)},
		{target: "g1/b.pem", certs: certs(b)},
		{target: "g1/z/chain.pem", certs: certs(chain.Leaf, chain.Intermediate)},
		{target: "g2/c.pem", certs: certs(c)},
		{target: "g2/junk.pem", class: source.ClassParse},
	})
	if t.Failed() {
		return
	}
	for i, f := range got {
		first := i >= 1 && i <= 4
		wantTeam := map[bool]string{true: "pki", false: "web"}[first]
		if f.Labels["team"] != wantTeam {
			t.Errorf("%s: labels %v, want team=%s", f.Target, f.Labels, wantTeam)
		}
		if first {
			if f.Labels["env"] != "prod" || f.Verify.Roots == nil || f.Verify.RootsID != ca.ID {
				t.Errorf("%s: labels %v, roots %v, roots id %q; want env=prod and the ca_file's pool and hash", f.Target, f.Labels, f.Verify.Roots, f.Verify.RootsID)
			}
		} else if f.Verify.Roots != nil || f.Verify.RootsID != "system" {
			t.Errorf("%s: roots %v id %q, want the system roots", f.Target, f.Verify.Roots, f.Verify.RootsID)
		}
	}
	// The pool really holds the CA file's root.
	f := got[3]
	opts := x509.VerifyOptions{Roots: f.Verify.Roots, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	opts.Intermediates.AddCert(f.Certs[1])
	if _, err := f.Certs[0].Verify(opts); err != nil {
		t.Errorf("leaf does not verify against the ca_file roots: %v", err)
	}

	again := collect(t, s)
	if describe(again) != describe(got) {
		t.Errorf("second collection differs:\n%s\nvs\n%s", describe(again), describe(got))
	}
}

func TestUnreadableGroupFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "pw", []byte("x"))
	write(t, dir, "leaf.pem", testpki.PEM(leafCert(t, "x")))
	cfg := parseConfig(t, dir, 0, groupSpec{Paths: []string{"leaf.pem"}, PasswordFile: "pw", Labels: map[string]string{"team": "a"}})
	if err := os.Remove(filepath.Join(dir, "pw")); err != nil { // gone between validation and New
		t.Fatal(err)
	}
	got := collect(t, New(cfg, NewCache(), discard()))
	checkFindings(t, dir, got, []want{{target: "leaf.pem", class: source.ClassConfig}})
	if got[0].Labels["team"] != "a" {
		t.Errorf("labels %v", got[0].Labels)
	}
}

// ---- the cache ----

func TestCacheUnchangedFileNotReread(t *testing.T) {
	dir := t.TempDir()
	a, b := leafCert(t, "a"), leafCert(t, "b")
	write(t, dir, "d/a.pem", testpki.PEM(a))
	write(t, dir, "d/b.der", testpki.DER(b))
	write(t, dir, "d/junk.pem", []byte("junk"))
	write(t, dir, "d/key.pem", testpki.KeyPEM(t, a.Key))
	g := groupSpec{Paths: []string{"d"}}
	cfg := parseConfig(t, dir, 0, g)
	cache := NewCache()
	wants := []want{
		{target: "d/a.pem", certs: certs(a)},
		{target: "d/b.der", certs: certs(b)},
		{target: "d/junk.pem", class: source.ClassParse},
	}

	parses := testParses.Load()
	checkFindings(t, dir, collect(t, New(cfg, cache, discard())), wants)
	if n := testParses.Load() - parses; n != 4 {
		t.Fatalf("first collection parsed %d files, want 4", n)
	}
	if cache.Len() != 4 {
		t.Errorf("Cache.Len = %d, want 4", cache.Len())
	}
	loads, parses := testLoads.Load(), testParses.Load()
	s := New(cfg, cache, discard())
	checkFindings(t, dir, collect(t, s), wants)
	// A new Source over the same cache (a reload) reuses it too.
	checkFindings(t, dir, collect(t, New(parseConfig(t, dir, 0, g), cache, discard())), wants)
	if n := testLoads.Load() - loads; n != 0 {
		t.Errorf("unchanged files were opened %d times", n)
	}
	if n := testParses.Load() - parses; n != 0 {
		t.Errorf("unchanged files were parsed %d times", n)
	}
	// The key file was skipped by the walk; named explicitly with the same
	// cache it must be reported, not remembered as nothing.
	s2 := New(parseConfig(t, dir, 0, groupSpec{Paths: []string{"d/key.pem"}}), cache, discard())
	checkFindings(t, dir, collect(t, s2), []want{{target: "d/key.pem", class: source.ClassParse}})
}

func TestCacheModifiedAndDeletedFiles(t *testing.T) {
	dir := t.TempDir()
	old, renewed, keep := leafCert(t, "old"), leafCert(t, "renewed"), leafCert(t, "keep")
	p := write(t, dir, "d/cert.pem", testpki.PEM(old))
	write(t, dir, "d/keep.pem", testpki.PEM(keep))
	explicit := write(t, dir, "explicit.pem", testpki.PEM(keep))
	s, cache := newSource(t, dir, groupSpec{Paths: []string{"d", "explicit.pem"}})
	checkFindings(t, dir, collect(t, s), []want{
		{target: "d/cert.pem", certs: certs(old)},
		{target: "d/keep.pem", certs: certs(keep)},
		{target: "explicit.pem", certs: certs(keep)},
	})

	// New content and a new modification time: re-parsed.
	if err := os.WriteFile(p, testpki.PEM(renewed), 0o644); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, future, future); err != nil {
		t.Fatal(err)
	}
	parses := testParses.Load()
	checkFindings(t, dir, collect(t, s), []want{
		{target: "d/cert.pem", certs: certs(renewed)},
		{target: "d/keep.pem", certs: certs(keep)},
		{target: "explicit.pem", certs: certs(keep)},
	})
	if n := testParses.Load() - parses; n != 1 {
		t.Errorf("%d files re-parsed after one changed, want 1", n)
	}

	// Deleted: gone from the findings and from the cache (walked), or
	// reported not_found (named) and still gone from the cache.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(explicit); err != nil {
		t.Fatal(err)
	}
	checkFindings(t, dir, collect(t, s), []want{
		{target: "explicit.pem", class: source.ClassNotFound},
		{target: "d/keep.pem", certs: certs(keep)},
	})
	if n := cache.Len(); n != 1 {
		t.Errorf("Cache.Len = %d after deleting two of three files, want 1", n)
	}
}

func TestCachePasswordChangeInvalidates(t *testing.T) {
	dir := t.TempDir()
	leaf := leafCert(t, "p12")
	write(t, dir, "leaf.p12", testpki.PKCS12(t, leaf, nil, "one"))
	pwFile := write(t, dir, "pw", []byte("one\n"))
	g := groupSpec{Paths: []string{"leaf.p12"}, PasswordFile: "pw"}
	cache := NewCache()
	run := func(pw string, w want) {
		t.Helper()
		if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		parses := testParses.Load()
		// The password is read when the Source is built (on every reload).
		checkFindings(t, dir, collect(t, New(parseConfig(t, dir, 0, g), cache, discard())), []want{w})
		if n := testParses.Load() - parses; n != 1 {
			t.Errorf("password %q: parsed %d times, want 1", pw, n)
		}
	}
	ok := want{target: "leaf.p12", certs: certs(leaf), keys: pubs(leaf)}
	run("one", ok)
	run("two", want{target: "leaf.p12", class: source.ClassWrongPassword})
	run("one", ok)
}

// ---- deadlines ----

// canceledCtx is done only as far as Err is concerned: Collect feeds every
// job, then sees the deadline, as when it passes during the last read.
type canceledCtx struct{ context.Context }

func (canceledCtx) Done() <-chan struct{} { return nil }
func (canceledCtx) Err() error            { return context.DeadlineExceeded }

func TestCollectDeadline(t *testing.T) {
	dir := t.TempDir()
	c := leafCert(t, "c")
	write(t, dir, "d/key.pem", testpki.KeyPEM(t, c.Key))
	write(t, dir, "d/cert.pem", testpki.PEM(c))
	s, _ := newSource(t, dir, groupSpec{Paths: []string{"d"}})

	// Every file was read: a key file that yields no finding is not a timeout.
	got := s.Collect(canceledCtx{context.Background()})
	checkFindings(t, dir, got, []want{{target: "d/cert.pem", certs: certs(c)}})

	// A deadline already passed, on an empty cache: nothing was walked yet,
	// so the directory itself is the timeout. Once a pass has completed, a
	// scrape whose deadline has passed is answered from the cache.
	for i := range 20 {
		write(t, dir, fmt.Sprintf("many/%02d.pem", i), testpki.PEM(c))
	}
	s, _ = newSource(t, dir, groupSpec{Paths: []string{"many"}})
	listing := make(chan struct{}) // holds the walk until the first answer is in
	s.beforeList = func(string) { <-listing }
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	checkFindings(t, dir, s.Collect(ctx), []want{{target: "many", class: source.ClassTimeout}})
	close(listing)
	collect(t, s)
	got = s.Collect(ctx)
	if len(got) != 20 {
		t.Fatalf("got %d findings, want 20:\n%s", len(got), describe(got))
	}
	for _, f := range got {
		if f.Err != nil || len(f.Certs) != 1 {
			t.Errorf("%s: %v with %d certificates, want the cached certificate", f.Target, f.Err, len(f.Certs))
		}
	}
}

// ---- secrets ----

// TestPrivateKeysNeverLeak feeds malformed key and certificate blocks and
// checks that no error repeats the block's content.
func TestPrivateKeysNeverLeak(t *testing.T) {
	c := leafCert(t, "leak")
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		t.Fatal(err)
	}
	keyB64 := base64.StdEncoding.EncodeToString(keyDER)
	// A valid key whose base64 is broken by one character in the middle.
	brokenKey := "-----BEGIN PRIVATE KEY-----\n" + keyB64[:40] + "!" + keyB64[40:] + "\n-----END PRIVATE KEY-----\n"
	words := "zebra quokka narwhal axolotl secretword"
	wordsBody := func(typ string) string {
		return "-----BEGIN " + typ + "-----\n" + words + "\n" + words + "\n-----END " + typ + "-----\n"
	}
	keyPEMB64 := base64.StdEncoding.EncodeToString(testpki.KeyPEM(t, c.Key))

	files := map[string]string{
		"broken-key.pem":        string(testpki.PEM(c)) + brokenKey,
		"broken-key-only.pem":   brokenKey,
		"key-as-cert.pem":       string(pemBlock("CERTIFICATE", keyDER)),
		"key-as-trusted.pem":    string(pemBlock("TRUSTED CERTIFICATE", keyDER)),
		"words-cert.pem":        wordsBody("CERTIFICATE"),
		"words-key.pem":         string(testpki.PEM(c)) + wordsBody("PRIVATE KEY"),
		"words-trunc.pem":       "-----BEGIN PRIVATE KEY-----\n" + words + "\n",
		"key-as-der.der":        string(keyDER),
		"kube-key-as-cert.yaml": "kind: Config\nclusters: []\nusers:\n- name: u\n  user:\n    client-certificate-data: " + keyPEMB64 + "\n    client-key-data: '" + keyB64 + "!!'\n",
		"kube-type-error.yaml":  "kind: Config\nclusters: " + keyPEMB64 + "\n",
		"kube-user-error.yaml":  "kind: Config\nclusters: []\nusers:\n- name: u\n  user: " + keyPEMB64 + "\n",
		"kube-words.yaml":       "kind: Config\nclusters:\n- name: x\n  cluster:\n    certificate-authority-data: " + base64.StdEncoding.EncodeToString([]byte(wordsBody("CERTIFICATE"))) + "\n",
	}
	dir := t.TempDir()
	var paths []string
	for name, data := range files {
		write(t, dir, name, []byte(data))
		paths = append(paths, name)
	}
	s, _ := newSource(t, dir, groupSpec{Paths: paths})
	got := collect(t, s)

	// Secrets: every 12-character window of the key's base64 (as a single
	// line and as PEM's 64-column lines), and the words of the bodies.
	var secrets []string
	for _, b64 := range []string{keyB64, keyPEMB64} {
		for i := 0; i+12 <= len(b64); i += 4 {
			secrets = append(secrets, b64[i:i+12])
		}
	}
	secrets = append(secrets, strings.Fields(words)...)
	secrets = append(secrets, "quokka narwhal")

	errs := 0
	for _, f := range got {
		if f.Err == nil {
			continue
		}
		errs++
		if cl := source.ClassOf(f.Err); cl != source.ClassParse {
			t.Errorf("%s %q: class %q, want parse", f.Target, f.Key, cl)
		}
		msg := f.Err.Error()
		for _, s := range secrets {
			if strings.Contains(msg, s) {
				t.Errorf("%s %q: error repeats %q from the file: %s", f.Target, f.Key, s, msg)
				break
			}
		}
	}
	// Every file is malformed somewhere and must say so.
	if errs != len(files) {
		t.Errorf("only %d errors for %d malformed files:\n%s", errs, len(files), describe(got))
	}
}
