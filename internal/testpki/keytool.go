package testpki

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// This file makes keystores with Java's own keytool, for the formats no Go
// library writes (JCEKS): what the tests read is then what users' Java
// tooling writes. keytool comes with a Java runtime (Debian package
// openjdk-17-jre-headless, installed by .ci/install-test-deps.sh).

// Keytool returns the path of keytool, failing the test when it is missing.
func Keytool(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("keytool")
	if err != nil {
		t.Fatalf("keytool not found (install a Java runtime: apt-get install openjdk-17-jre-headless, or run .ci/install-test-deps.sh): %v", err)
	}
	return path
}

// JCEKS makes a JCEKS keystore with keytool, protected by password (keytool
// wants six characters at least). entries are as for JKS: a private key
// entry when Key is set (its key protected by the store password, as keytool
// does by default), a trusted certificate entry otherwise. secretKeys adds
// one AES secret key entry per alias. keytool stores aliases in lower case.
func JCEKS(t testing.TB, password string, entries []JKSEntry, secretKeys ...string) []byte {
	t.Helper()
	data := KeytoolKeystore(t, "JCEKS", password, entries, secretKeys...)
	if !bytes.HasPrefix(data, []byte{0xce, 0xce, 0xce, 0xce}) {
		t.Fatalf("keytool wrote no JCEKS keystore (starts % x)", data[:min(4, len(data))])
	}
	return data
}

// KeytoolKeystore is JCEKS for any keystore type keytool writes ("JKS",
// "JCEKS"; secret keys need JCEKS).
func KeytoolKeystore(t testing.TB, storeType, password string, entries []JKSEntry, secretKeys ...string) []byte {
	t.Helper()
	keytool := Keytool(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	run := func(args ...string) string {
		t.Helper()
		args = append(args, "-noprompt", "-keystore", store, "-storetype", storeType, "-storepass", password)
		out, err := exec.Command(keytool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("keytool %s: %v\n%s", strings.Join(args[:2], " "), err, out)
		}
		return string(out)
	}
	for _, e := range entries {
		if e.Key == nil {
			if len(e.Chain) != 1 {
				t.Fatalf("JCEKS trusted entry %q wants exactly one certificate, got %d", e.Alias, len(e.Chain))
			}
			cert := WriteFile(t, dir, "trusted.pem", PEM(e.Chain[0]))
			run("-importcert", "-alias", e.Alias, "-file", cert)
			continue
		}
		// A key enters a keystore through another keystore: PKCS#12.
		p12 := WriteFile(t, dir, "key.p12", PKCS12(t, e.Chain[0], e.Chain[1:], password))
		run("-importkeystore", "-srckeystore", p12, "-srcstoretype", "PKCS12", "-srcstorepass", password,
			"-deststoretype", storeType, "-destkeystore", store, "-deststorepass", password, "-destkeypass", password)
		// The PKCS#12 alias is whatever the encoder named it: rename it.
		src := p12Alias(t, keytool, p12, password)
		if src != strings.ToLower(e.Alias) {
			run("-changealias", "-alias", src, "-destalias", e.Alias, "-keypass", password)
		}
	}
	for _, alias := range secretKeys {
		run("-genseckey", "-alias", alias, "-keyalg", "AES", "-keysize", "128", "-keypass", password)
	}
	if len(entries) == 0 && len(secretKeys) == 0 {
		t.Fatal("keytool cannot make an empty keystore")
	}
	data, err := os.ReadFile(store)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

var aliasLine = regexp.MustCompile(`(?m)^Alias name: (.*)$`)

// p12Alias returns the alias keytool gives the one entry of a PKCS#12 file.
func p12Alias(t testing.TB, keytool, p12, password string) string {
	t.Helper()
	out, err := exec.Command(keytool, "-list", "-v", "-keystore", p12, "-storetype", "PKCS12", "-storepass", password).CombinedOutput()
	if err != nil {
		t.Fatalf("keytool -list: %v\n%s", err, out)
	}
	m := aliasLine.FindAllStringSubmatch(string(out), -1)
	if len(m) != 1 {
		t.Fatalf("keytool -list: want one alias in the PKCS#12 file, got %d\n%s", len(m), out)
	}
	return strings.TrimSpace(m[0][1])
}
