package files

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// kubeRef is one cluster or user of a kubeconfig written for these tests.
type kubeRef struct {
	user  bool
	name  string
	file  string // certificate-authority or client-certificate, as written
	data  []byte // embedded instead (or as well: data wins)
	key   string // client-key, as written
	extra string // more YAML under the cluster or user
}

func kubeconfigWithRefs(refs ...kubeRef) []byte {
	var clusters, users strings.Builder
	for _, r := range refs {
		field, b := "certificate-authority", &clusters
		if r.user {
			field, b = "client-certificate", &users
		}
		fmt.Fprintf(b, "- name: %s\n  %s:\n", r.name, map[bool]string{false: "cluster", true: "user"}[r.user])
		if !r.user {
			fmt.Fprintf(b, "    server: https://%s.example:6443\n", r.name)
		}
		if r.file != "" {
			fmt.Fprintf(b, "    %s: %q\n", field, r.file)
		}
		if r.data != nil {
			fmt.Fprintf(b, "    %s-data: %s\n", field, b64(r.data))
		}
		if r.key != "" {
			fmt.Fprintf(b, "    client-key: %q\n", r.key)
		}
		b.WriteString(r.extra)
	}
	return []byte("apiVersion: v1\nkind: Config\nclusters:\n" + clusters.String() + "users:\n" + users.String() + "contexts: []\n")
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestKubeconfigReferences reads a kubeconfig naming its certificates'
// files, absolutely and relative to its own directory, beside embedded
// ones: each cluster and user is its own place, and a reference that cannot
// be read fails its entry alone, with the class of the failure and never
// the content of what it pointed at.
func TestKubeconfigReferences(t *testing.T) {
	dir := t.TempDir()
	chain := testpki.NewChain(t, testpki.Options{CommonName: "client"})
	otherCA, embeddedCA := leafCert(t, "other-ca"), leafCert(t, "embedded-ca")
	caPath := write(t, dir, "pki/ca.crt", testpki.PEM(chain.Root))
	write(t, dir, "certs/other.crt", testpki.PEM(otherCA))
	write(t, dir, "certs/client.crt", testpki.PEM(chain.Leaf, chain.Intermediate))
	write(t, dir, "certs/client.key", testpki.KeyPEM(t, chain.Leaf.Key))
	// What a hostile kubeconfig could point at: never reported, never quoted.
	secret := "root:$6$SECRETHASH:19000:0:99999:7:::\n"
	write(t, dir, "etc/shadow", []byte(secret))
	write(t, dir, "kube/kubeconfig", kubeconfigWithRefs(
		kubeRef{name: "absolute", file: caPath},
		kubeRef{name: "relative", file: "../certs/other.crt"},
		kubeRef{name: "missing", file: "gone/ca.crt"},
		kubeRef{name: "shadow", file: "../etc/shadow"},
		kubeRef{name: "directory", file: "../certs"},
		kubeRef{name: "embedded-wins", file: "../certs/other.crt", data: testpki.PEM(embeddedCA)},
		kubeRef{user: true, name: "admin", file: "../certs/client.crt", key: "../certs/client.key"},
		kubeRef{user: true, name: "no-key-file", file: "../certs/client.crt", key: "../certs/none.key"},
	))
	var logs bytes.Buffer
	s := New(parseConfig(t, dir, 0, groupSpec{Paths: []string{"kube"}}), NewCache(), slog.New(slog.NewTextHandler(&logs, nil)))
	got := collect(t, s)
	const kc = "kube/kubeconfig"
	checkFindings(t, dir, got, []want{
		{target: kc, key: "cluster/absolute", certs: certs(chain.Root)},
		{target: kc, key: "cluster/relative", certs: certs(otherCA)},
		{target: kc, key: "cluster/missing", class: source.ClassNotFound},
		{target: kc, key: "cluster/shadow", class: source.ClassParse},
		{target: kc, key: "cluster/directory", class: source.ClassParse},
		{target: kc, key: "cluster/embedded-wins", certs: certs(embeddedCA)},
		{target: kc, key: "user/admin", certs: certs(chain.Leaf, chain.Intermediate), keys: pubs(chain.Leaf)},
		{target: kc, key: "user/no-key-file", certs: certs(chain.Leaf, chain.Intermediate)},
	})
	for _, f := range got {
		if f.Err == nil {
			continue
		}
		msg := f.Err.Error()
		if strings.Contains(msg, "SECRETHASH") {
			t.Errorf("%s: the error quotes the referenced file: %s", f.Key, msg)
		}
		// The error names the reference, so that the user can find it.
		if ref := map[string]string{"cluster/missing": "gone/ca.crt", "cluster/shadow": "../etc/shadow", "cluster/directory": "../certs"}[f.Key]; !strings.Contains(msg, ref) {
			t.Errorf("%s: error %q does not name the reference %q", f.Key, msg, ref)
		}
	}
	if strings.Contains(logs.String(), "SECRETHASH") {
		t.Errorf("the log quotes the referenced file:\n%s", logs.String())
	}
}

// TestKubeconfigReferenceChanges checks that the cached outcome of a
// kubeconfig follows the files it refers to: unchanged, nothing is read
// again; a referenced file replaced, removed or put back refreshes the
// place, though the kubeconfig itself never changed.
func TestKubeconfigReferenceChanges(t *testing.T) {
	dir := t.TempDir()
	first, second := leafCert(t, "first"), leafCert(t, "second")
	ca := leafCert(t, "ca")
	write(t, dir, "certs/ca.crt", testpki.PEM(ca))
	client := write(t, dir, "certs/client.crt", testpki.PEM(first))
	write(t, dir, "kube/dev.kubeconfig", kubeconfigWithRefs(
		kubeRef{name: "dev", file: "../certs/ca.crt"},
		kubeRef{user: true, name: "me", file: "../certs/client.crt"},
	))
	cfg := parseConfig(t, dir, 0, groupSpec{Paths: []string{"kube/dev.kubeconfig"}})
	cache := NewCache()
	const kc = "kube/dev.kubeconfig"
	replace := func(data []byte) { // as a certificate manager does: a new file renamed over the old
		t.Helper()
		tmp := write(t, dir, "certs/.client.crt.tmp", data)
		if err := os.Rename(tmp, client); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name   string
		change func()
		reads  int64 // kubeconfig parses the collection may make
		user   want
	}{
		{"first read", func() {}, 1, want{target: kc, key: "user/me", certs: certs(first)}},
		{"unchanged", func() {}, 0, want{target: kc, key: "user/me", certs: certs(first)}},
		{"client certificate replaced", func() { replace(testpki.PEM(second)) }, 1, want{target: kc, key: "user/me", certs: certs(second)}},
		{"unchanged again", func() {}, 0, want{target: kc, key: "user/me", certs: certs(second)}},
		{"client certificate removed", func() {
			if err := os.Remove(client); err != nil {
				t.Fatal(err)
			}
		}, 1, want{target: kc, key: "user/me", class: source.ClassNotFound}},
		{"still missing", func() {}, 0, want{target: kc, key: "user/me", class: source.ClassNotFound}},
		{"put back", func() { replace(testpki.PEM(first)) }, 1, want{target: kc, key: "user/me", certs: certs(first)}},
	}
	for _, st := range steps {
		st.change()
		parses := testParses.Load()
		// A new Source each time, as after a reload: the references live in
		// the cache, not in the Source.
		checkFindings(t, dir, collect(t, New(cfg, cache, discard())), []want{
			{target: kc, key: "cluster/dev", certs: certs(ca)},
			st.user,
		})
		if n := testParses.Load() - parses; n != st.reads {
			t.Errorf("%s: the kubeconfig was parsed %d times, want %d", st.name, n, st.reads)
		}
	}
}
