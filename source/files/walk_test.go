package files

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// tree writes empty-content files (discovery does not read them) and
// returns the directory.
func tree(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		write(t, dir, n, []byte("x"))
	}
	return dir
}

func symlink(t *testing.T, dir, target, name string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// discovered runs discover with paths and excludes relative to dir, failing
// rather than hanging, and returns the files (a "!" suffix marks an explicit
// one) and problems ("path: class") relative to dir.
func discovered(t *testing.T, dir string, paths, excludes []string) (files, problems []string) {
	t.Helper()
	abs := func(ps []string) []string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = filepath.Join(dir, p)
		}
		return out
	}
	type result struct {
		found    []foundFile
		problems []problem
	}
	ch := make(chan result, 1)
	go func() {
		f, p := discover(abs(paths), abs(excludes))
		ch <- result{f, p}
	}()
	var r result
	select {
	case r = <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("discover did not return within 10s")
	}
	rel := func(p string) string {
		r, err := filepath.Rel(dir, p)
		if err != nil {
			t.Fatal(err)
		}
		return filepath.ToSlash(r)
	}
	files, problems = []string{}, []string{}
	for _, f := range r.found {
		s := rel(f.path)
		if f.explicit {
			s += "!"
		}
		files = append(files, s)
	}
	for _, p := range r.problems {
		problems = append(problems, rel(p.path)+": "+string(source.ClassOf(p.err)))
	}
	return files, problems
}

func sameList(t *testing.T, what string, got, want []string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

var layout = []string{
	"a.pem", "b.crt", "notes.txt",
	"sub/c.pem", "sub/d.crt",
	"sub/deeper/e.pem", "sub/deeper/f.key",
	"sub/deeper/deepest/g.pem",
	"other/h.crt",
	".hidden/i.pem",
}

func TestDiscoverPathsAndGlobs(t *testing.T) {
	dir := tree(t, layout...)
	cases := []struct {
		name     string
		paths    []string
		excludes []string
		want     []string
		problems []string
	}{
		{name: "directory walked recursively, sorted",
			paths: []string{"."},
			want: []string{".hidden/i.pem", "a.pem", "b.crt", "notes.txt", "other/h.crt", "sub/c.pem", "sub/d.crt",
				"sub/deeper/deepest/g.pem", "sub/deeper/e.pem", "sub/deeper/f.key"}},
		{name: "subdirectory",
			paths: []string{"sub/deeper"},
			want:  []string{"sub/deeper/deepest/g.pem", "sub/deeper/e.pem", "sub/deeper/f.key"}},
		{name: "explicit files are marked and sorted",
			paths: []string{"sub/c.pem", "a.pem"},
			want:  []string{"a.pem!", "sub/c.pem!"}},
		{name: "star does not descend",
			paths: []string{"*.crt"},
			want:  []string{"b.crt"}},
		{name: "star one level down",
			paths: []string{"*/*.crt"},
			want:  []string{"other/h.crt", "sub/d.crt"}},
		{name: "double star at every depth",
			paths: []string{"**/*.pem"},
			want:  []string{".hidden/i.pem", "a.pem", "sub/c.pem", "sub/deeper/deepest/g.pem", "sub/deeper/e.pem"}},
		{name: "double star below a directory",
			paths: []string{"sub/**/*.pem"},
			want:  []string{"sub/c.pem", "sub/deeper/deepest/g.pem", "sub/deeper/e.pem"}},
		{name: "double star in the middle",
			paths: []string{"sub/**/deepest/*.pem"},
			want:  []string{"sub/deeper/deepest/g.pem"}},
		{name: "alternatives and single character",
			paths: []string{"{other,sub}/*.crt", "?.pem"},
			want:  []string{"a.pem", "other/h.crt", "sub/d.crt"}},
		{name: "glob over a missing directory matches nothing",
			paths: []string{"missing/**/*.pem", "nope*.pem"},
			want:  nil},
		{name: "missing explicit path",
			paths:    []string{"missing.pem", "a.pem"},
			want:     []string{"a.pem!"},
			problems: []string{"missing.pem: not_found"}},
		{name: "file listed twice",
			paths: []string{"a.pem", "*.pem", "."},
			want: []string{".hidden/i.pem", "a.pem!", "b.crt", "notes.txt", "other/h.crt", "sub/c.pem", "sub/d.crt",
				"sub/deeper/deepest/g.pem", "sub/deeper/e.pem", "sub/deeper/f.key"}},
		{name: "exclude by extension",
			paths: []string{"sub"}, excludes: []string{"**/*.key", "**/*.crt"},
			want: []string{"sub/c.pem", "sub/deeper/deepest/g.pem", "sub/deeper/e.pem"}},
		{name: "exclude a directory",
			paths: []string{"."}, excludes: []string{"sub/deeper", ".hidden"},
			want: []string{"a.pem", "b.crt", "notes.txt", "other/h.crt", "sub/c.pem", "sub/d.crt"}},
		{name: "exclude a subtree",
			paths: []string{"**/*.pem"}, excludes: []string{"sub/**"},
			want: []string{".hidden/i.pem", "a.pem"}},
		{name: "exclude an explicit path and a missing one",
			paths: []string{"a.pem", "b.crt", "gone.pem"}, excludes: []string{"a.pem", "gone.pem"},
			want: []string{"b.crt!"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files, problems := discovered(t, dir, tc.paths, tc.excludes)
			sameList(t, "files", files, tc.want)
			sameList(t, "problems", problems, tc.problems)
		})
	}
}

func TestDiscoverSymlinks(t *testing.T) {
	cases := []struct {
		name     string
		files    []string
		links    [][2]string // name -> target
		paths    []string
		excludes []string
		want     []string
		problems []string
	}{
		{name: "symlink loop named explicitly",
			links:    [][2]string{{"a", "b"}, {"b", "a"}},
			paths:    []string{"a"},
			problems: []string{"a: symlink_loop"}},
		{name: "symlink loop found by a walk",
			files:    []string{"d/ok.pem"},
			links:    [][2]string{{"d/a", "b"}, {"d/b", "a"}, {"d/self", "self"}},
			paths:    []string{"d"},
			want:     []string{"d/ok.pem"},
			problems: []string{"d/a: symlink_loop", "d/b: symlink_loop", "d/self: symlink_loop"}},
		{name: "symlink loop not matching the glob is ignored",
			files: []string{"d/ok.pem"},
			links: [][2]string{{"d/a", "b"}, {"d/b", "a"}},
			paths: []string{"d/*.pem"},
			want:  []string{"d/ok.pem"}},
		{name: "symlink loop excluded",
			files:    []string{"d/ok.pem"},
			links:    [][2]string{{"d/a", "b"}, {"d/b", "a"}},
			paths:    []string{"d"},
			excludes: []string{"d/a"},
			want:     []string{"d/ok.pem"},
			problems: []string{"d/b: symlink_loop"}},
		{name: "directory cycles are cut",
			files: []string{"d/a.pem", "d/sub/b.pem", "d/sub/deep/c.pem"},
			links: [][2]string{{"d/sub/loop", ".."}, {"d/self", "."}, {"d/sub/deep/up", "../.."}, {"d/sub/deep/abs", "ABS:d"}},
			paths: []string{"d"},
			want:  []string{"d/a.pem", "d/sub/b.pem", "d/sub/deep/c.pem"}},
		{name: "directory cycle under a double star",
			files: []string{"d/a.pem", "d/sub/b.pem"},
			links: [][2]string{{"d/sub/loop", ".."}},
			paths: []string{"d/**/*.pem"},
			want:  []string{"d/a.pem", "d/sub/b.pem"}},
		{name: "dangling symlink found by a walk",
			files:    []string{"d/ok.pem"},
			links:    [][2]string{{"d/dangling.pem", "nowhere.pem"}},
			paths:    []string{"d"},
			want:     []string{"d/ok.pem"},
			problems: []string{"d/dangling.pem: not_found"}},
		{name: "dangling symlink matching a glob",
			files:    []string{"d/ok.pem"},
			links:    [][2]string{{"d/dangling.pem", "nowhere.pem"}, {"d/dangling.txt", "nowhere.txt"}},
			paths:    []string{"d/*.pem"},
			want:     []string{"d/ok.pem"},
			problems: []string{"d/dangling.pem: not_found"}},
		{name: "dangling symlink named explicitly",
			links:    [][2]string{{"dangling.pem", "nowhere.pem"}},
			paths:    []string{"dangling.pem"},
			problems: []string{"dangling.pem: not_found"}},
		{name: "symlinked files and directories are followed",
			files: []string{"real/x.pem", "outside/y.pem"},
			links: [][2]string{{"d/x-link.pem", "../real/x.pem"}, {"d/ext", "../outside"}},
			paths: []string{"d"},
			want:  []string{"d/ext/y.pem", "d/x-link.pem"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := tree(t, tc.files...)
			for _, l := range tc.links {
				target := l[1]
				if rest, ok := strings.CutPrefix(target, "ABS:"); ok {
					target = filepath.Join(dir, rest)
				}
				symlink(t, dir, target, l[0])
			}
			files, problems := discovered(t, dir, tc.paths, tc.excludes)
			sameList(t, "files", files, tc.want)
			sameList(t, "problems", problems, tc.problems)
		})
	}
}

// TestCollectSymlinks checks the classes end to end, and that a directory
// cycle yields each certificate once.
func TestCollectSymlinks(t *testing.T) {
	dir := t.TempDir()
	a, b := leafCert(t, "a"), leafCert(t, "b")
	write(t, dir, "d/a.pem", testpki.PEM(a))
	write(t, dir, "d/sub/b.pem", testpki.PEM(b))
	symlink(t, dir, "..", "d/sub/loop")
	symlink(t, dir, ".", "d/self")
	symlink(t, dir, "y", "d/x")
	symlink(t, dir, "x", "d/y")
	symlink(t, dir, "nowhere.pem", "d/dangling.pem")
	symlink(t, dir, "loop2", "loop1")
	symlink(t, dir, "loop1", "loop2")
	s, _ := newSource(t, dir, groupSpec{Paths: []string{"d", "loop1", "missing.pem"}})
	checkFindings(t, dir, collect(t, s), []want{
		{target: "d/dangling.pem", class: source.ClassNotFound},
		{target: "d/x", class: source.ClassSymlinkLoop},
		{target: "d/y", class: source.ClassSymlinkLoop},
		{target: "loop1", class: source.ClassSymlinkLoop},
		{target: "missing.pem", class: source.ClassNotFound},
		{target: "d/a.pem", certs: certs(a)},
		{target: "d/sub/b.pem", certs: certs(b)},
	})
}

func TestGlobBase(t *testing.T) {
	cases := []struct {
		pattern string
		base    string
		depth   int
	}{
		{"/etc/ssl/*.pem", "/etc/ssl", 0},
		{"/etc/ssl/*/*.pem", "/etc/ssl", 1},
		{"/etc/**/*.pem", "/etc", -1},
		{"/etc/ssl/**", "/etc/ssl", -1},
		{"/*/x.pem", "/", 1},
		{"/etc/ssl/cert?.pem", "/etc/ssl", 0},
		{"/etc/{a,b}/c/*.pem", "/etc", 2},
	}
	for _, tc := range cases {
		base, depth := globBase(tc.pattern)
		if base != tc.base || depth != tc.depth {
			t.Errorf("globBase(%q) = %q, %d; want %q, %d", tc.pattern, base, depth, tc.base, tc.depth)
		}
	}
}

// TestWalkTreeReachedTwiceOnce: a directory reachable by several symlink
// routes is walked once, so hostile link layouts cannot multiply the walk.
func TestWalkTreeReachedTwiceOnce(t *testing.T) {
	dir := t.TempDir()
	pem := testpki.PEM(testpki.New(t, nil, testpki.Options{CommonName: "once"}))
	testpki.WriteFile(t, dir, "real/x.pem", pem)
	// Ten levels, each with two links to the next: 2^10 routes to the bottom.
	prev := filepath.Join(dir, "real")
	for i := range 10 {
		level := filepath.Join(dir, fmt.Sprintf("level%d", i))
		if err := os.MkdirAll(level, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"a", "b"} {
			if err := os.Symlink(prev, filepath.Join(level, name)); err != nil {
				t.Fatal(err)
			}
		}
		prev = level
	}
	found, problems := discover([]string{prev}, nil)
	if len(problems) != 0 || len(found) != 1 {
		t.Fatalf("found %d files (%v), problems %v; want the one file once", len(found), found, problems)
	}
}
