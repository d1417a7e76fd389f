//go:build linux

package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// runReport prints one Markdown table of every figure in the results
// folder, with the conditions of the run, ready for README.md.
func runReport(args []string) {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	results := fs.String("results", "", "folder the figures wrote into")
	parseFlags(fs, args)
	var figs []*Figure
	for _, name := range []string{"files", "endpoints", "exposition", "kube", "growth", "soak"} {
		data, err := os.ReadFile(filepath.Join(*results, name+".json"))
		if err != nil {
			continue
		}
		var f Figure
		if err := json.Unmarshal(data, &f); err != nil {
			fatalf("%s: %v", name, err)
		}
		figs = append(figs, &f)
	}
	if len(figs) == 0 {
		fatalf("no figures in %s", *results)
	}
	first := figs[0]
	var total float64
	runs := map[int]bool{}
	for _, f := range figs {
		total += f.Seconds
		if f.Name != "growth" {
			runs[f.Runs] = true
		}
	}
	var runList []string
	for r := range runs {
		runList = append(runList, fmt.Sprint(r))
	}
	fmt.Printf("Measured %s on %s (%d cores, %s, Linux %s), %s; every figure is the median of %s runs unless it says otherwise; "+
		"floors are measured in the same run, interleaved with the exporter's runs. The figures took %.0f s.\n\n",
		first.Started.Format("2006-01-02"), cpuModel(), first.CPUs, first.Go, kernel(), mode(figs), strings.Join(runList, "/"), total)
	fmt.Println("| figure | case | measure | median | floor (median) | ratio | target | result |")
	fmt.Println("|---|---|---|---:|---|---:|---|---|")
	pass, fail := 0, 0
	for _, f := range figs {
		for _, r := range f.Rows {
			floor, ratio, target, result := "", "", "", ""
			if r.FloorName != "" {
				floor = fmt.Sprintf("%s: %s", r.FloorName, fmtValue(r.Floor, r.Unit))
				ratio = fmt.Sprintf("%.2f", r.Ratio)
			}
			if r.Pass != nil {
				target, result = r.Target, passFail(*r.Pass)
				if *r.Pass {
					pass++
				} else {
					fail++
					result = "**FAIL**"
				}
			}
			name := r.Name
			if r.Note != "" {
				name += " (" + r.Note + ")"
			}
			fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", f.Name, r.Case, mdEscape(name), fmtValue(r.Value, r.Unit),
				mdEscape(floor), ratio, mdEscape(target), result)
		}
	}
	fmt.Printf("\n%d targets met, %d missed.\n\nConditions:\n\n", pass, fail)
	for _, f := range figs {
		for _, c := range f.Comments {
			fmt.Printf("* %s: %s\n", f.Name, c)
		}
	}
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func mode(figs []*Figure) string {
	for _, f := range figs {
		for _, r := range f.Rows {
			if f.Name == "files" && r.Case == "N=100000" {
				return "full run"
			}
		}
	}
	return "quick run"
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

func kernel() string {
	data, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(data))
}
