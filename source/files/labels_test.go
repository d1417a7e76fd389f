package files

import (
	"path/filepath"
	"testing"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
)

// TestTargetsAreAbsoluteWhateverTheWorkingDirectory loads one configuration
// with relative paths (a file, a directory, a glob, an exclude, a symlinked
// directory) through --config.file spelled three ways from three working
// directories: every file keeps the same target, its clean absolute path as
// walked (through the symlink, not to its target).
func TestTargetsAreAbsoluteWhateverTheWorkingDirectory(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := leafCert(t, "a"), leafCert(t, "b"), leafCert(t, "c")
	write(t, root, "srv/pki/a.crt", testpki.PEM(a))
	write(t, root, "srv/pki/dir/b.pem", testpki.PEM(b))
	write(t, root, "srv/pki/dir/skip.pem", testpki.PEM(b))
	write(t, root, "srv/pki/glob/c.crt", testpki.PEM(c))
	write(t, root, "elsewhere/real/d.pem", testpki.PEM(c))
	symlink(t, root, "../../elsewhere/real", "srv/pki/linked")
	write(t, root, "srv/conf/certwatch.yml", []byte(`files:
  - paths: [../pki/a.crt, ../pki/./dir/, ../pki/glob/*.crt, ../pki/linked]
    exclude: [../pki/dir/skip.pem]
`))
	wants := []want{
		{target: "srv/pki/a.crt", certs: certs(a)},
		{target: "srv/pki/dir/b.pem", certs: certs(b)},
		{target: "srv/pki/glob/c.crt", certs: certs(c)},
		{target: "srv/pki/linked/d.pem", certs: certs(c)},
	}
	for _, tc := range []struct{ cwd, configFile string }{
		{"srv", "conf/certwatch.yml"},
		{"srv/conf", "certwatch.yml"},
		{"srv/pki/dir", "../../conf/../conf/certwatch.yml"},
		{"elsewhere", filepath.Join(root, "srv/conf/certwatch.yml")},
	} {
		t.Run(tc.cwd+" "+tc.configFile, func(t *testing.T) {
			t.Chdir(filepath.Join(root, tc.cwd))
			cfg, err := config.Load(tc.configFile)
			if err != nil {
				t.Fatal(err)
			}
			got := collect(t, New(cfg, NewCache(), discard()))
			checkFindings(t, root, got, wants)
			for _, f := range got {
				if !filepath.IsAbs(f.Target) || filepath.Clean(f.Target) != f.Target {
					t.Errorf("target %q is not clean and absolute", f.Target)
				}
			}
		})
	}
}
