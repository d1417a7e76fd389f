//go:build linux

package main

import (
	"crypto/rand"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/certwatch/certwatch/internal/testpki"
)

// zoo writes a folder of every kind of file certwatch meets, good and bad:
// expired, not yet valid, weak, mismatched, incomplete and foreign chains,
// DER, trusted PEM, PKCS#12 (good, passwordless, malformed), JKS,
// kubeconfig, junk, empty, key-only, corrupt bundles, a non-UTF-8 file
// name, a huge SAN list, a file over max_file_size. The growth figure
// scrapes it 1,000 times; "bench dump" over it checks that a performance
// change left every answer identical.
//
// It returns the roots file and the password file it wrote.
func writeZoo(tb *benchTB, dir string, p *benchPKI) (rootsFile, passwordFile string) {
	must := func(err error) {
		if err != nil {
			fatalf("zoo: %v", err)
		}
	}
	must(os.MkdirAll(dir, 0o755))
	write := func(name string, data []byte) { testpki.WriteFile(tb, dir, name, data) }
	now := time.Now()
	leaf := func(name string, o testpki.Options) (*testpki.Cert, *testpki.Cert) {
		issuer := p.ecInts[0]
		o.CommonName, o.Serial = name, randomSerial()
		if o.DNSNames == nil {
			o.DNSNames = []string{name}
		}
		if o.Key == nil && o.KeyType == "" {
			o.Key = p.ecKeys[len(name)%len(p.ecKeys)]
		}
		return testpki.New(tb, issuer, o), issuer
	}

	l, i := leaf("good.zoo.example", testpki.Options{})
	write("good.pem", testpki.PEM(l, i))
	write("root.crt", testpki.PEM(p.ecRoot))
	write("bundle.pem", testpki.PEM(p.ecRoot, p.rsaRoot, p.ecInts[0], p.rsaInts[0]))
	l, i = leaf("expired.zoo.example", testpki.Options{NotBefore: now.Add(-400 * 24 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
	write("expired.pem", testpki.PEM(l, i))
	l, i = leaf("notyet.zoo.example", testpki.Options{NotBefore: now.Add(24 * time.Hour), NotAfter: now.Add(100 * 24 * time.Hour)})
	write("notyet.pem", testpki.PEM(l, i))
	self := testpki.New(tb, nil, testpki.Options{CommonName: "selfsigned.zoo.example", DNSNames: []string{"selfsigned.zoo.example"}, Serial: randomSerial()})
	write("selfsigned.pem", testpki.PEM(self))
	l, i = leaf("weak.zoo.example", testpki.Options{KeyType: "rsa1024"})
	write("weak-rsa1024.pem", testpki.PEM(l, i))
	sha1 := testpki.New(tb, p.rsaInts[0], testpki.Options{CommonName: "sha1.zoo.example", Key: p.rsaKeys[0], SigAlg: x509.SHA1WithRSA, Serial: randomSerial()})
	write("sha1.pem", testpki.PEM(sha1, p.rsaInts[0]))
	l, i = leaf("mismatch.zoo.example", testpki.Options{})
	write("mismatch.pem", append(testpki.PEM(l, i), testpki.KeyPEM(tb, p.ecKeys[7])...))
	l, _ = leaf("incomplete.zoo.example", testpki.Options{})
	write("incomplete.pem", testpki.PEM(l))
	foreign := testpki.NewChain(tb, testpki.Options{CommonName: "foreign.zoo.example"})
	write("foreign.pem", testpki.PEM(foreign.Leaf, foreign.Intermediate))
	l, i = leaf("der.zoo.example", testpki.Options{})
	write("chain.der", testpki.DER(l, i))
	write("trusted.pem", testpki.TrustedPEM(tb, "zoo root", p.ecRoot))
	l, i = leaf("p12.zoo.example", testpki.Options{KeyType: "ecdsa"})
	p12 := testpki.PKCS12(tb, l, []*testpki.Cert{i}, "zoo-secret")
	write("store.p12", p12)
	write("broken.p12", p12[:len(p12)*2/3]) // malformed: truncated
	l, i = leaf("nopass.zoo.example", testpki.Options{KeyType: "ecdsa"})
	write("nopass.pfx", testpki.PKCS12Passwordless(tb, l, []*testpki.Cert{i}))
	l, i = leaf("jks.zoo.example", testpki.Options{KeyType: "ecdsa"})
	write("store.jks", testpki.JKS(tb, "zoo-secret", testpki.JKSEntry{Alias: "web", Chain: []*testpki.Cert{l, i}, Key: l.Key},
		testpki.JKSEntry{Alias: "ca", Chain: []*testpki.Cert{p.ecRoot}}))
	l, _ = leaf("kube-user", testpki.Options{KeyType: "ecdsa"})
	write("admin.conf", testpki.Kubeconfig(tb, []testpki.KubeCluster{{Name: "prod", CA: []*testpki.Cert{p.ecRoot}}},
		[]testpki.KubeUser{{Name: "admin", Certs: []*testpki.Cert{l, p.ecInts[0]}, Key: l.Key}}))
	junk := make([]byte, 4096)
	_, _ = rand.Read(junk)
	write("junk.bin", junk)
	write("empty.pem", nil)
	write("key-only.key", testpki.KeyPEM(tb, p.ecKeys[3]))
	l, i = leaf("corrupt.zoo.example", testpki.Options{})
	write("corrupt-bundle.pem", append(testpki.PEM(l, i), []byte("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")...))
	l, i = leaf("latin1.zoo.example", testpki.Options{})
	write("caf\xe9-latin1.pem", testpki.PEM(l, i)) // a file name that is not UTF-8
	var sans []string
	for n := range 200 {
		sans = append(sans, fmt.Sprintf("host-%03d.many-sans.zoo.example", n))
	}
	l, i = leaf("many-sans.zoo.example", testpki.Options{DNSNames: sans, IPs: []net.IP{net.IPv4(10, 1, 2, 3), net.ParseIP("2001:db8::1")},
		URIs: []string{"spiffe://zoo.example/ns/web/sa/frontend"}, Emails: []string{"ops@zoo.example"}})
	write("many-sans.pem", testpki.PEM(l, i))
	write("too-large.pem", append(testpki.PEM(l), make([]byte, 5<<20)...))

	rootsFile = filepath.Join(dir, "..", "zoo-roots.pem")
	must(os.WriteFile(rootsFile, testpki.PEM(p.ecRoot, p.rsaRoot), 0o644))
	passwordFile = filepath.Join(dir, "..", "zoo-password")
	must(os.WriteFile(passwordFile, []byte("zoo-secret\n"), 0o600))
	return rootsFile, passwordFile
}

// runZoo writes the zoo and a configuration over it (plus, with -tree N,
// the first N files of the tree with extra labels), for "bench dump".
func runZoo(args []string) {
	fs := flag.NewFlagSet("zoo", flag.ExitOnError)
	var c common
	c.register(fs)
	dir := fs.String("dir", "", "folder to write the zoo and zoo.yml into")
	treeFiles := fs.Int("tree", 1000, "files of the tree to add (0 for none)")
	parseFlags(fs, args)
	if *dir == "" {
		fatalf("-dir is required")
	}
	tb := newTB()
	t := openTree(tb, c.cache)
	roots, password := writeZoo(tb, filepath.Join(*dir, "zoo"), t.pki)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "files:\n  - paths: [%q, %q]\n    ca_file: %q\n    password_file: %q\n    labels: {team: zoo}\n",
		filepath.Join(*dir, "zoo"), filepath.Join(*dir, "missing.pem"), roots, password)
	if *treeFiles > 0 {
		t.ensure(tb, *treeFiles)
		fmt.Fprintf(&cfg, "  - ca_file: %q\n    labels: {team: payments, env: prod}\n    paths:\n", t.rootsFile())
		for _, d := range t.dirs(*treeFiles) {
			fmt.Fprintf(&cfg, "      - %q\n", d)
		}
	}
	if err := os.WriteFile(filepath.Join(*dir, "zoo.yml"), []byte(cfg.String()), 0o644); err != nil {
		fatalf("%v", err)
	}
	fmt.Println(filepath.Join(*dir, "zoo.yml"))
}
