//go:build linux

// Command bench is certwatch's performance harness. It measures the exporter
// against physical floors measured in the same run (reading and parsing the
// same files, stat-ing them, a bare verified TLS handshake against the same
// servers) and prints medians, ratios and PASS/FAIL against the targets.
//
// Run everything with scripts/bench.sh; bench/README.md explains each figure.
// Subcommands:
//
//	bench files      -sizes 1000,10000,100000   files source: cold, warm, 1% changed, memory
//	bench endpoints  -sizes 100,1000            TLS farm: /metrics wall time, CPU per probe, /probe load
//	bench exposition -certs 10000               bytes and encoding time per series, by format
//	bench kube       -secrets 10000             real kube-apiserver: sync time, memory per Secret, scrape
//	bench growth     -scrapes 1000              hostile mix: heap and goroutines stay flat
//	bench soak       -scrapes 1000              hostile servers/files/Secrets: answers in time, process flat
//	bench peers      -files 1000,10000          certwatch beside x509-certificate-exporter, ssl_exporter, blackbox_exporter
//	bench report     -results DIR               the summary table of every figure run
//
// Each figure writes DIR/<figure>.json; report turns them into one table.
// The package is a command: the product never imports it.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

func usage() {
	fmt.Fprintln(os.Stderr, `usage: bench SUBCOMMAND [flags]

figures:     files, endpoints, exposition, kube, growth, soak
comparison:  peers (certwatch beside the exporters users run today)
summary:     report
internal:    files-one, kube-one, farm, tlsfloor (started by the figures)

Run "bench SUBCOMMAND -h" for the flags of one. scripts/bench.sh runs them all.`)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	commands := map[string]func([]string){
		"files":      runFiles,
		"files-one":  runFilesOne,
		"endpoints":  runEndpoints,
		"farm":       runFarm,
		"tlsfloor":   runTLSFloor,
		"exposition": runExposition,
		"kube":       runKube,
		"kube-one":   runKubeOne,
		"growth":     runGrowth,
		"soak":       runSoak,
		"report":     runReport,
		"dump":       runDump,
		"zoo":        runZoo,
		"peers":      runPeers,
	}
	run, ok := commands[cmd]
	if !ok {
		usage()
	}
	run(args)
}

// common are the flags every figure takes.
type common struct {
	runs    int
	results string // folder for <figure>.json; "" writes nothing
	cache   string // folder for generated data kept between runs
	profile string // folder for CPU/heap profiles; "" takes none
}

func (c *common) register(fs *flag.FlagSet) {
	fs.IntVar(&c.runs, "runs", 5, "repetitions of every timed measurement; medians are reported")
	fs.StringVar(&c.results, "results", "", "folder to write <figure>.json into, for bench report")
	fs.StringVar(&c.cache, "cache", defaultCacheDir(), "folder for generated certificates kept between runs")
	fs.StringVar(&c.profile, "profile", "", "folder to write pprof profiles of the exporter into")
}

func defaultCacheDir() string {
	if d := os.Getenv("CERTWATCH_BENCH_CACHE"); d != "" {
		return d
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "certwatch", "bench")
}

func parseFlags(fs *flag.FlagSet, args []string) {
	if err := fs.Parse(args); err != nil {
		os.Exit(2)
	}
}

func parseSizes(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			fatalf("bad size %q", f)
		}
		out = append(out, n)
	}
	return out
}

// Row is one reported figure: the median of the samples, and when the figure
// has a floor, the floor's median in the same run and the ratio.
type Row struct {
	Figure       string    `json:"figure"`
	Case         string    `json:"case"`
	Name         string    `json:"name"`
	Unit         string    `json:"unit"`
	Value        float64   `json:"value"`
	Samples      []float64 `json:"samples,omitempty"`
	FloorName    string    `json:"floor_name,omitempty"`
	Floor        float64   `json:"floor,omitempty"`
	FloorSamples []float64 `json:"floor_samples,omitempty"`
	Ratio        float64   `json:"ratio,omitempty"`
	Target       string    `json:"target,omitempty"`
	Pass         *bool     `json:"pass,omitempty"`
	Note         string    `json:"note,omitempty"`
}

// Figure collects the rows of one figure and the conditions it ran under.
type Figure struct {
	Name     string    `json:"name"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Runs     int       `json:"runs"`
	Go       string    `json:"go"`
	CPUs     int       `json:"cpus"`
	Rows     []Row     `json:"rows"`
	Comments []string  `json:"comments,omitempty"`
}

func newFigure(name string, runs int) *Figure {
	return &Figure{Name: name, Started: time.Now(), Runs: runs, Go: runtime.Version(), CPUs: runtime.NumCPU()}
}

func (f *Figure) add(r Row) {
	r.Figure = f.Name
	f.Rows = append(f.Rows, r)
	printRow(os.Stdout, r)
}

func (f *Figure) comment(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	f.Comments = append(f.Comments, s)
	fmt.Println("   # " + s)
}

// save writes the figure to dir/<name>.json.
func (f *Figure) save(dir string) {
	f.Seconds = time.Since(f.Started).Seconds()
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fatalf("%v", err)
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		fatalf("%v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, f.Name+".json"), data, 0o644); err != nil {
		fatalf("%v", err)
	}
}

// measured makes a row from samples, with an optional floor and a ratio
// target ("" for none): pass when median/floor <= maxRatio.
func measured(c, name, unit string, samples []float64) Row {
	return Row{Case: c, Name: name, Unit: unit, Value: median(samples), Samples: samples}
}

func (r Row) withFloor(name string, samples []float64) Row {
	r.FloorName, r.FloorSamples, r.Floor = name, samples, median(samples)
	if r.Floor > 0 {
		r.Ratio = r.Value / r.Floor
	}
	return r
}

func (r Row) ratioTarget(maxRatio float64) Row {
	r.Target = fmt.Sprintf("ratio ≤ %.1f", maxRatio)
	ok := r.Ratio > 0 && r.Ratio <= maxRatio
	r.Pass = &ok
	return r
}

func (r Row) target(desc string, ok bool) Row {
	r.Target = desc
	r.Pass = &ok
	return r
}

func (r Row) note(format string, args ...any) Row {
	s := fmt.Sprintf(format, args...)
	if r.Note != "" {
		r.Note += "; "
	}
	r.Note += s
	return r
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	runCleanups()
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// cleanups run at exit, also on fatal errors (child processes, clusters).
var cleanups []func()

func atExit(f func()) { cleanups = append(cleanups, f) }

func runCleanups() {
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

func printRow(w *os.File, r Row) {
	line := fmt.Sprintf("%-11s %-14s %-46s %12s", r.Figure, r.Case, r.Name, fmtValue(r.Value, r.Unit))
	if r.FloorName != "" {
		line += fmt.Sprintf("  floor %12s  ratio %6.2f", fmtValue(r.Floor, r.Unit), r.Ratio)
	}
	if r.Pass != nil {
		line += fmt.Sprintf("  [%s: %s]", r.Target, passFail(*r.Pass))
	}
	if r.Note != "" {
		line += "  (" + r.Note + ")"
	}
	fmt.Fprintln(w, line)
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func fmtValue(v float64, unit string) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case v == 0:
		return "0 " + unit
	case math.Abs(v) >= 1000:
		return fmt.Sprintf("%.0f %s", v, unit)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.1f %s", v, unit)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.2f %s", v, unit)
	default:
		return fmt.Sprintf("%.3f %s", v, unit)
	}
}
