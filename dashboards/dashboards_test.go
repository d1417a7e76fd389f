package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/certwatch/certwatch/internal/testtools"
)

// TestCommittedFilesAreGenerated fails when the JSON files drift from the
// code; run `go run ./dashboards/gen` from the repository root to fix.
func TestCommittedFilesAreGenerated(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(name)
		if err != nil {
			t.Errorf("%s: %v (run go run ./dashboards/gen)", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the generator's output: run go run ./dashboards/gen", name)
		}
	}
	onDisk, _ := filepath.Glob("*.json")
	if len(onDisk) != len(files) {
		t.Errorf("%d JSON files on disk, the generator makes %d", len(onDisk), len(files))
	}
}

type dashboardJSON struct {
	UID        string   `json:"uid"`
	Title      string   `json:"title"`
	Tags       []string `json:"tags"`
	Editable   bool     `json:"editable"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasourceRef  `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panelJSON `json:"panels"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panelJSON struct {
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Datasource  *datasourceRef `json:"datasource"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []struct {
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
}

func loadAll(t *testing.T) map[string]dashboardJSON {
	t.Helper()
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]dashboardJSON{}
	for name, data := range files {
		var d dashboardJSON
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = d
	}
	return out
}

func TestConventions(t *testing.T) {
	uids := map[string]bool{}
	for name, d := range loadAll(t) {
		if want := strings.TrimSuffix(name, ".json"); d.UID != want {
			t.Errorf("%s: uid %q, want the stable %q", name, d.UID, want)
		}
		uids[d.UID] = true
		if !strings.HasPrefix(d.Title, "certwatch / ") {
			t.Errorf("%s: title %q lacks the prefix", name, d.Title)
		}
		if len(d.Tags) == 0 || d.Tags[0] != "certwatch" {
			t.Errorf("%s: tags %v", name, d.Tags)
		}
		if d.Editable {
			t.Errorf("%s: editable", name)
		}
		vars := map[string]string{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v.Type
			if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${datasource}") {
				t.Errorf("%s: variable %s does not use the datasource variable", name, v.Name)
			}
		}
		if vars["datasource"] != "datasource" || vars["job"] != "query" || vars["instance"] != "query" {
			t.Errorf("%s: variables %v lack datasource/job/instance", name, vars)
		}
		panels := 0
		for _, p := range d.Panels {
			if p.Type == "row" {
				continue
			}
			panels++
			where := fmt.Sprintf("%s: panel %q", name, p.Title)
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("%s does not use the datasource variable", where)
			}
			if p.FieldConfig.Defaults.Unit == "" {
				t.Errorf("%s has no unit", where)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s has no query", where)
			}
			for _, q := range p.Targets {
				if q.Datasource == nil || q.Datasource.UID != "${datasource}" {
					t.Errorf("%s: a query does not use the datasource variable", where)
				}
				if strings.Contains(q.Expr, "certwatch_") && !strings.Contains(q.Expr, `instance=~"$instance"`) {
					t.Errorf("%s: query %q ignores the instance variable", where, q.Expr)
				}
			}
		}
		if panels < 4 {
			t.Errorf("%s: only %d panels", name, panels)
		}
	}
	for _, want := range []string{"certwatch-overview", "certwatch-target", "certwatch-exporter"} {
		if !uids[want] {
			t.Errorf("dashboard %s missing", want)
		}
	}
}

// queries returns every query with its variables expanded.
func queries(t *testing.T) []string {
	t.Helper()
	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, q := range qs {
		out = append(out, ExpandVariables(q.Expr))
	}
	return out
}

// TestQueriesParse parses every query with Prometheus' own parser, through
// promtool: each becomes a recording rule in a temporary rule file.
func TestQueriesParse(t *testing.T) {
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard-queries\n    rules:\n")
	for i, q := range queries(t) {
		if strings.Contains(q, "$") {
			t.Errorf("query keeps an unexpanded variable: %s", q)
		}
		fmt.Fprintf(&b, "      - record: dashboard:query%d\n        expr: %q\n", i, q)
	}
	path := filepath.Join(t.TempDir(), "queries.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testtools.Find(t, "promtool"), "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("a dashboard query does not parse: %v\n%s", err, out)
	}
}

// TestMetricNamesExist fails on a metric certwatch does not expose.
func TestMetricNamesExist(t *testing.T) {
	exposed := map[string]bool{
		// Exposed by client_golang's process and Go collectors, which certwatch registers.
		"process_resident_memory_bytes": true, "go_goroutines": true,
		// Added by Prometheus to every scrape.
		"up": true, "scrape_duration_seconds": true,
		"certwatch_build_info": true,
	}
	literal := regexp.MustCompile(`"(certwatch_[a-z_]+)"`)
	for _, glob := range []string{"../collector/*.go", "../config/*.go", "../source/*/*.go", "../revocation/*.go"} {
		files, _ := filepath.Glob(glob)
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range literal.FindAllStringSubmatch(string(src), -1) {
				exposed[m[1]] = true
			}
		}
	}
	name := regexp.MustCompile(`\b([a-z_]+)\s*\{`)
	for _, q := range queries(t) {
		for _, m := range name.FindAllStringSubmatch(q, -1) {
			if !exposed[m[1]] {
				t.Errorf("query uses %s, which certwatch does not expose: %s", m[1], q)
			}
		}
	}
}
