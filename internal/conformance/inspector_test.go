package conformance

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// TestCorpusShape checks the corpus itself: unique names, known reasons,
// rationales, and a size worth the name.
func TestCorpusShape(t *testing.T) {
	cases := Corpus(t)
	if len(cases) < 80 {
		t.Errorf("the corpus has %d cases, want 80 or more", len(cases))
	}
	known := map[string]bool{OK: true}
	for _, r := range Precedence {
		known[r] = true
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.Name] {
			t.Errorf("duplicate case name %q", c.Name)
		}
		seen[c.Name] = true
		if c.Why == "" || c.Family == "" || len(c.Place) == 0 {
			t.Errorf("%s: needs a family, a rationale and certificates", c.Name)
		}
		if !known[c.File] || (c.Endpoint != "" && !known[c.Endpoint]) {
			t.Errorf("%s: unknown reason %q / %q", c.Name, c.File, c.Endpoint)
		}
		if (c.Endpoint == "" || c.Endpoint != c.File) && c.EndpointWhy == "" {
			t.Errorf("%s: the endpoint's verdict (%q) differs from the file's (%q) or is missing, without EndpointWhy", c.Name, c.Endpoint, c.File)
		}
		for _, l := range c.LeafIndices() {
			if l < 0 || l >= len(c.Place) {
				t.Errorf("%s: leaf index %d out of range", c.Name, l)
			}
		}
	}
	families := map[string]int{}
	for _, c := range cases {
		families[c.Family]++
	}
	t.Logf("%d cases: %v", len(cases), families)

	// docs/conformance.md states the size and the families' counts.
	doc, err := os.ReadFile(docPath())
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("is a corpus of %d chain-verdict cases", len(cases)); !strings.Contains(string(doc), want) {
		t.Errorf("%s must say %q", docPath(), want)
	}
	for fam, n := range families {
		if want := fmt.Sprintf("| %s | %d |", fam, n); !strings.Contains(string(doc), want) {
			t.Errorf("%s: the families table must have %q", docPath(), want)
		}
	}
}

// inspectorHeading is the section of docs/conformance.md listing the cases
// where the inspector does not (yet) give the corpus's verdict.
const inspectorHeading = "Open disagreements between the corpus and the inspector"

// TestInspector judges every case directly, as a file and as an endpoint,
// and compares with the corpus: the reason, and ChainNotAfter where the
// case names the certificate it must come from.
func TestInspector(t *testing.T) {
	cases := Corpus(t)
	var mu sync.Mutex
	var found []disagreement
	var notes []string
	eachCase(t, cases, func(t *testing.T, c Case) {
		for _, mode := range []string{modeFile, modeEndpoint} {
			want := expected(c, mode)
			if want == "" {
				continue
			}
			v := judgeDirect(t, c, mode)
			mu.Lock()
			if string(v.Reason) != want {
				found = append(found, disagreement{Case: c.Name, Mode: mode, Want: want, Got: string(v.Reason)})
				notes = append(notes, fmt.Sprintf("%s (%s): want %s, got %s: %s", c.Name, mode, want, v.Reason, v.Detail))
			} else if na := c.ChainNotAfterIn(mode); na != nil && !v.ChainNotAfter.Equal(na.Cert.NotAfter) {
				t.Errorf("%s (%s): ChainNotAfter %s, want %s (%q)", c.Name, mode, v.ChainNotAfter, na.Cert.NotAfter, na.Cert.Subject.CommonName)
			}
			mu.Unlock()
		}
	})
	if len(notes) > 0 {
		t.Logf("the inspector differs from the corpus on %d verdicts:\n%s", len(notes), strings.Join(notes, "\n"))
	}
	checkDocumented(t, inspectorHeading, found)
}
