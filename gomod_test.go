package main

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestGoLineIsTheLowestPossible keeps go.mod's go line at the highest go
// line among the dependencies, which is the lowest Go that can build
// certwatch at all: anything higher makes every slightly older toolchain
// download another one (or refuse, with GOTOOLCHAIN=local) for nothing.
func TestGoLineIsTheLowestPossible(t *testing.T) {
	data, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	ours := string(m[1])
	if regexp.MustCompile(`(?m)^toolchain `).Match(data) {
		t.Error("go.mod has a toolchain line: nothing needs a newer toolchain than the go line")
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{if not .Main}}{{.GoVersion}} {{.Path}}{{end}}", "all")
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m all: %v", err)
	}
	highest, from := "0", ""
	for _, line := range strings.Split(string(out), "\n") {
		version, module, ok := strings.Cut(line, " ")
		if ok && version != "" && compareGoVersions(version, highest) > 0 {
			highest, from = version, module
		}
	}
	if ours != highest {
		t.Errorf("go.mod says go %s; the dependencies need go %s (%s, among others): use that", ours, highest, from)
	}
}

// compareGoVersions compares release versions such as 1.26 and 1.26.0
// (a missing part counts as 0).
func compareGoVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}
