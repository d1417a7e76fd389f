package files

import (
	"bytes"
	"encoding/base64"
	"slices"
	"testing"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// TestWalkSkipsFilesThatAreNoCertificates: the usual company of
// certificates in a directory (OpenSSL configuration, serial and password
// files, a README, a key, an nginx .conf, a large log) is skipped and
// counted per group, where files that claim a certificate by name or hold a
// certificate container are reported, broken or not, and so is any file
// named explicitly.
func TestWalkSkipsFilesThatAreNoCertificates(t *testing.T) {
	dir := t.TempDir()
	a, b := leafCert(t, "a"), leafCert(t, "b")
	kube := []byte("apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    certificate-authority-data: " +
		base64.StdEncoding.EncodeToString(testpki.PEM(b)) + "\n")
	write(t, dir, "pki/a.crt", testpki.PEM(a))
	write(t, dir, "pki/openssl.cnf", []byte("[ req ]\ndistinguished_name = dn\n"))
	write(t, dir, "pki/serial.srl", []byte("1000\n"))
	write(t, dir, "pki/ca.pass", []byte("hunter2\n"))
	write(t, dir, "pki/README", []byte("Certificates for the web tier.\n"))
	write(t, dir, "pki/a.key", testpki.KeyPEM(t, a.Key))
	write(t, dir, "pki/nginx.conf", []byte("server { listen 443 ssl; }\n"))
	write(t, dir, "pki/audit.log", bytes.Repeat([]byte("x"), 5000)) // over the size cap: not even read
	write(t, dir, "pki/admin.conf", kube)                           // a kubeconfig under .conf
	write(t, dir, "pki/bundle.txt", testpki.PEM(b))                 // a container whatever its name
	write(t, dir, "pki/broken.pem", []byte("junk"))                 // claims a certificate: an error
	write(t, dir, "pki/huge.crt", bytes.Repeat([]byte("x"), 5000))  // claims one: too_large
	write(t, dir, "pki/broken.der", []byte{0x30, 0x03, 0x02, 0x01}) // claims one
	write(t, dir, "other/notes.md", []byte("# notes\n"))
	write(t, dir, "other/c.pem", testpki.PEM(b))
	write(t, dir, "lone/README", []byte("Certificates for the web tier.\n"))
	write(t, dir, "lone/serial.srl", []byte("1000\n"))

	cfg := parseConfig(t, dir, 4000,
		groupSpec{Paths: []string{"pki"}},
		groupSpec{Paths: []string{"other/*", "lone/README", "lone/serial.srl"}})
	s := New(cfg, NewCache(), discard())
	for range 2 { // the second time from the cache
		got, skipped := s.CollectCounted(t.Context())
		checkFindings(t, dir, got, []want{
			{target: "pki/a.crt", certs: certs(a)},
			{target: "pki/admin.conf", key: "cluster/prod", certs: certs(b)},
			{target: "pki/broken.der", class: source.ClassParse},
			{target: "pki/broken.pem", class: source.ClassParse},
			{target: "pki/bundle.txt", certs: certs(b)},
			{target: "pki/huge.crt", class: source.ClassTooLarge},
			{target: "lone/README", class: source.ClassParse},
			{target: "lone/serial.srl", class: source.ClassParse},
			{target: "other/c.pem", certs: certs(b)},
		})
		// Group 0: openssl.cnf, serial.srl, ca.pass, README, a.key,
		// nginx.conf, audit.log. Group 1: notes.md (its README and serial.srl
		// are named, so reported).
		if want := []int{7, 1}; !slices.Equal(skipped, want) {
			t.Errorf("skipped %v, want %v", skipped, want)
		}
	}
}
