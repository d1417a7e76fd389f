package files

import (
	"testing"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// TestCollectJCEKS walks a directory holding JCEKS keystores made by
// keytool: one alias per place, the password file handled as for JKS, and a
// keystore of secret keys alone skipped like a key file.
func TestCollectJCEKS(t *testing.T) {
	dir := t.TempDir()
	chain := testpki.NewChain(t, testpki.Options{CommonName: "app"})
	const pw = "storepass"
	write(t, dir, "d/app.jceks", testpki.JCEKS(t, pw, []testpki.JKSEntry{
		{Alias: "app", Key: chain.Leaf.Key, Chain: certs(chain.Leaf, chain.Intermediate)},
		{Alias: "ca", Chain: certs(chain.Root)},
	}, "hmac"))
	write(t, dir, "d/secrets.jceks", testpki.JCEKS(t, pw, nil, "only-secret"))
	write(t, dir, "right.txt", []byte(pw+"\n"))
	write(t, dir, "wrong.txt", []byte("not-the-password\n"))
	app := func(class source.Class, keys bool) []want {
		w := []want{
			{target: "d/app.jceks", key: "app", certs: certs(chain.Leaf, chain.Intermediate), class: class},
			{target: "d/app.jceks", key: "ca", certs: certs(chain.Root), class: class},
		}
		if keys {
			w[0].keys = pubs(chain.Leaf)
		}
		return w
	}
	cases := []struct {
		name     string
		password string
		want     []want
		skipped  int
	}{
		{"right password", "right.txt", app("", true), 1},
		{"no password file", "", app("", false), 1},
		// The password is wrong for the secret keys' keystore too, which
		// is then worth saying, as for JKS.
		{"wrong password", "wrong.txt", append(app(source.ClassWrongPassword, false),
			want{target: "d/secrets.jceks", class: source.ClassWrongPassword}), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newSource(t, dir, groupSpec{Paths: []string{"d"}, PasswordFile: tc.password})
			got, skipped := s.CollectCounted(t.Context())
			checkFindings(t, dir, got, tc.want)
			if skipped[0] != tc.skipped {
				t.Errorf("skipped %d files, want %d (the keystore of secret keys)", skipped[0], tc.skipped)
			}
		})
	}
}
