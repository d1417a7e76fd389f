package files

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/internal/testtools"
)

// TestFileReachedByTwoGroups: a directory walked by the first group and a
// glob of the second reach the same files. Each is reported once, under the
// first group (its labels), and one warning names both groups, however many
// files and scrapes.
func TestFileReachedByTwoGroups(t *testing.T) {
	dir := t.TempDir()
	a, b, c := leafCert(t, "a"), leafCert(t, "b"), leafCert(t, "c")
	write(t, dir, "shared/a.pem", testpki.PEM(a))
	write(t, dir, "shared/sub/b.pem", testpki.PEM(b))
	write(t, dir, "own/c.pem", testpki.PEM(c))
	var logs testtools.SyncBuffer
	cfg := parseConfig(t, dir, 0,
		groupSpec{Paths: []string{"shared"}, Labels: map[string]string{"team": "first"}},
		groupSpec{Paths: []string{"own", "shared/**/*.pem"}, Labels: map[string]string{"team": "second"}})
	s := New(cfg, NewCache(), slog.New(slog.NewTextHandler(&logs, nil)))
	wants := []want{
		{target: "shared/a.pem", certs: certs(a)},
		{target: "shared/sub/b.pem", certs: certs(b)},
		{target: "own/c.pem", certs: certs(c)},
	}
	for range 2 {
		got := collect(t, s)
		checkFindings(t, dir, got, wants)
		for i, f := range got {
			team := map[bool]string{true: "first", false: "second"}[i < 2]
			if f.Labels["team"] != team {
				t.Errorf("%s: team %q, want %q", f.Target, f.Labels["team"], team)
			}
		}
	}
	var warnings []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "two file groups") {
			warnings = append(warnings, l)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "first_group=0") || !strings.Contains(warnings[0], "second_group=1") ||
		!strings.Contains(warnings[0], "level=WARN") {
		t.Errorf("want one warning naming groups 0 and 1, got:\n%s", strings.Join(warnings, "\n"))
	}
}
