package conformance

import (
	"bufio"
	"crypto"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// Modes a case is judged in.
const (
	modeFile     = "file"
	modeEndpoint = "endpoint"
)

// expected returns the corpus's reason for a case in a mode ("" when the
// case is not run in that mode).
func expected(c Case, mode string) string {
	if mode == modeEndpoint {
		return c.Endpoint
	}
	return c.File
}

// params builds the verification settings a source builds for the case:
// the CA file through the shared loader, the server name for endpoints.
func params(t testing.TB, c Case, mode string) source.VerifyParams {
	t.Helper()
	p := source.VerifyParams{RootsID: "system"}
	if c.CA != nil {
		ca, err := source.ParseCA(testpki.PEM(c.CA...))
		if err != nil {
			t.Fatalf("%s: CA file: %v", c.Name, err)
		}
		p = ca.VerifyParams()
	}
	if mode == modeEndpoint {
		p.DNSName, p.ServerAuth = c.Server(), true
	}
	return p
}

func publics(keys []crypto.Signer) []crypto.PublicKey {
	var out []crypto.PublicKey
	for _, k := range keys {
		out = append(out, k.Public())
	}
	return out
}

// judgeDirect judges a case with a fresh inspector, as a source would hand
// it over: a file with its stored keys, an endpoint without.
func judgeDirect(t testing.TB, c Case, mode string) inspect.Verdict {
	t.Helper()
	var keys []crypto.PublicKey
	if mode == modeFile {
		keys = publics(c.Keys)
	}
	return inspect.NewInspector(nil).Judge(testpki.Certs(c.Place...), keys, params(t, c, mode))
}

// eachCase runs fn for every case as a parallel subtest named after it,
// and returns when all have finished.
func eachCase(t *testing.T, cases []Case, fn func(t *testing.T, c Case)) {
	t.Helper()
	t.Run("cases", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.Name, func(t *testing.T) {
				t.Parallel()
				fn(t, c)
			})
		}
	})
}

// disagreement is one verdict on which two judges differ.
type disagreement struct {
	Case, Mode, Want, Got string
}

func (d disagreement) key() string { return d.Case + " " + d.Mode }

// docPath is the conformance document the tests keep honest.
func docPath() string { return filepath.Join("..", "..", "docs", "conformance.md") }

// docTable reads the rows of the markdown table under the given heading
// (## level) of docs/conformance.md: the first four cells of each row,
// with backquotes dropped.
func docTable(t testing.TB, heading string) map[string]disagreement {
	t.Helper()
	f, err := os.Open(docPath())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]disagreement{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "## ") {
			in = strings.TrimPrefix(line, "## ") == heading
			continue
		}
		if !in || !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|--") || strings.HasPrefix(line, "| Case") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 4 {
			t.Fatalf("%s: short row under %q: %s", docPath(), heading, line)
		}
		clean := func(s string) string { return strings.Trim(strings.TrimSpace(s), "`") }
		d := disagreement{Case: clean(cells[0]), Mode: clean(cells[1]), Want: clean(cells[2]), Got: clean(cells[3])}
		rows[d.key()] = d
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// checkDocumented fails unless the disagreements found are exactly the
// rows of the document's table (same case, mode and both reasons).
func checkDocumented(t *testing.T, heading string, found []disagreement) {
	t.Helper()
	listed := docTable(t, heading)
	sort.Slice(found, func(i, j int) bool { return found[i].key() < found[j].key() })
	seen := map[string]bool{}
	for _, d := range found {
		seen[d.key()] = true
		l, ok := listed[d.key()]
		switch {
		case !ok:
			t.Errorf("undocumented disagreement under %q in %s: | `%s` | %s | `%s` | `%s` |", heading, docPath(), d.Case, d.Mode, d.Want, d.Got)
		case l != d:
			t.Errorf("%s lists %s as %s vs %s, but it is now %s vs %s", docPath(), d.key(), l.Want, l.Got, d.Want, d.Got)
		}
	}
	for k := range listed {
		if !seen[k] {
			t.Errorf("%s lists %q under %q, but they now agree: drop the row", docPath(), k, heading)
		}
	}
}

func caseNames(cases []Case) map[string]bool {
	m := map[string]bool{}
	for _, c := range cases {
		m[c.Name] = true
	}
	return m
}

func describeCerts(certs []*x509.Certificate) string {
	var names []string
	for _, c := range certs {
		names = append(names, fmt.Sprintf("%q", c.Subject.CommonName))
	}
	return strings.Join(names, ", ")
}
