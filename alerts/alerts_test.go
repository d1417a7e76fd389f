// Package alerts holds certwatch's Prometheus alert rules, their promtool
// unit tests and an example Alertmanager configuration; this test runs the
// real promtool and amtool over them.
package alerts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certwatch/certwatch/internal/testtools"
)

func TestRulesCheck(t *testing.T) {
	out, err := exec.Command(testtools.Find(t, "promtool"), "check", "rules", "certwatch.rules.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

// testFiles lists the promtool unit test files, one per theme
// (tests/*.test.yml).
func testFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("tests/*.test.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("only %d promtool test files in tests/", len(files))
	}
	return files
}

// TestRulesUnitTests runs the promtool unit tests: every alert fires for its
// fixture with the expected labels and annotations, and not for healthy ones.
func TestRulesUnitTests(t *testing.T) {
	args := append([]string{"test", "rules"}, testFiles(t)...)
	out, err := exec.Command(testtools.Find(t, "promtool"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// TestEveryAlertIsTested keeps the unit tests and the rules in step.
func TestEveryAlertIsTested(t *testing.T) {
	rules, err := os.ReadFile("certwatch.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var tests []byte
	for _, f := range testFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tests = append(tests, b...)
	}
	runbook, err := os.ReadFile("../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(rules), "\n") {
		name, ok := strings.CutPrefix(strings.TrimSpace(line), "- alert: ")
		if !ok {
			continue
		}
		n++
		if !strings.Contains(string(tests), "alertname: "+name+"\n") {
			t.Errorf("alert %s has no promtool unit test", name)
		}
		if !strings.Contains(string(runbook), "## "+name+"\n") {
			t.Errorf("alert %s has no runbook section", name)
		}
	}
	if n < 10 {
		t.Errorf("only %d alerts found", n)
	}
}

func TestAlertmanagerExample(t *testing.T) {
	out, err := exec.Command(testtools.Find(t, "amtool"), "check-config", "alertmanager.example.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
}
