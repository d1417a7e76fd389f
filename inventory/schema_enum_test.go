package inventory

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/source"
)

// TestSchemaEnumsFollowTheCode: every "reason" and "error_class" enum of the
// JSON schema lists exactly the inspector's reasons and the sources' error
// classes (and null), so a new reason or class cannot make valid answers
// fail validation in users' pipelines.
func TestSchemaEnumsFollowTheCode(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("schema", "certificates-v1.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var reasons, classes []string
	for _, r := range inspect.Reasons {
		reasons = append(reasons, string(r))
	}
	for _, c := range source.Classes {
		classes = append(classes, string(c))
	}
	found := map[string]int{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, sub := range v {
				if obj, ok := sub.(map[string]any); ok && (k == "reason" || k == "error_class") {
					var got []string
					for _, e := range obj["enum"].([]any) {
						if e != nil {
							got = append(got, e.(string))
						}
					}
					want := reasons
					if k == "error_class" {
						want = classes
					}
					slices.Sort(got)
					want = slices.Sorted(slices.Values(want))
					if !slices.Equal(got, want) {
						t.Errorf("schema %s enum %v, want %v", k, got, want)
					}
					found[k]++
				}
				walk(sub)
			}
		case []any:
			for _, sub := range v {
				walk(sub)
			}
		}
	}
	walk(doc)
	if found["reason"] == 0 || found["error_class"] == 0 {
		t.Errorf("enums found: %v", found)
	}
}
