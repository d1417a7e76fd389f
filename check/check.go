// Package check is the `certwatch check` command: collect once, judge, print
// what was found as a table or as the inventory API's JSON, and exit with a
// status a CI pipeline or a cron job can act on. It reads the collector's
// judged snapshot, as the inventory pages do; it never judges on its own.
package check

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/certwatch/certwatch/collector"
	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/inventory"
)

// Exit statuses.
const (
	ExitOK      = 0 // every place valid and outside --expiring-within
	ExitProblem = 1 // a place failed, is not valid, or expires within --expiring-within
	ExitUsage   = 2 // a usage or configuration error
)

// Formats of the report.
const (
	FormatTable = "table"
	FormatJSON  = "json"
)

// Options shape one check.
type Options struct {
	// ExpiringWithin makes a place whose chain breaks within it a problem.
	ExpiringWithin time.Duration
	Format         string
	// Timeout bounds the collection.
	Timeout time.Duration
	// Progress is where progress goes when collecting takes over a second.
	Progress io.Writer
	// Settled, when set, reports whether what the first collection asked
	// for in the background (revocation checks) has come in; the places are
	// then judged again, within Timeout.
	Settled func() bool
}

// ConfigFromArgs builds a configuration from command-line places: each
// host:port is an endpoint probed with the default module, anything else a
// file path (shell globs expanded by the shell; patterns the shell left are
// expanded here). Relative paths are relative to the working directory.
func ConfigFromArgs(args []string) (*config.Config, error) {
	var targets, paths []string
	for _, a := range args {
		if isEndpoint(a) {
			targets = append(targets, a)
			continue
		}
		abs, err := filepath.Abs(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a, err)
		}
		paths = append(paths, abs)
	}
	doc := map[string]any{}
	if len(targets) > 0 {
		doc["endpoints"] = []map[string]any{{"targets": targets}}
	}
	if len(paths) > 0 {
		doc["files"] = []map[string]any{{"paths": paths}}
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	return config.Parse(data, wd)
}

// isEndpoint reports whether a command-line place is host:port rather than
// a file: it has a numeric port and names no existing file.
func isEndpoint(a string) bool {
	if _, err := os.Stat(a); err == nil {
		return false
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" || strings.ContainsAny(host, "/\\") {
		return false
	}
	_, err = strconv.ParseUint(port, 10, 16)
	return err == nil
}

// Ready is what Run waits for before collecting: sources that need time
// to start (Kubernetes informers, SPIFFE streams).
type Ready func() bool

// Run waits (within the timeout) for the sources to be ready, collects
// once through e, prints the report to out and returns the exit status.
func Run(ctx context.Context, e *collector.Exporter, ready Ready, opts Options, out io.Writer) int {
	if opts.Format != FormatTable && opts.Format != FormatJSON {
		fmt.Fprintf(opts.Progress, "certwatch check: unknown format %q (want table or json)\n", opts.Format)
		return ExitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	start := time.Now()
	done := make(chan struct{})
	go progress(opts.Progress, start, done)
	for ready != nil && !ready() && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	snap := e.Refresh(ctx)
	if snap != nil && opts.Settled != nil {
		for !opts.Settled() && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
		if again := e.Refresh(ctx); again != nil {
			snap = again
		}
	}
	close(done)
	if snap == nil {
		fmt.Fprintln(opts.Progress, "certwatch check: nothing configured")
		return ExitUsage
	}
	now := time.Now()
	list := inventory.Items(snap, now)
	status := ExitOK
	problems := 0
	for _, it := range list.Items {
		if problem(it, now, opts.ExpiringWithin) != "" {
			status = ExitProblem
			problems++
		}
	}
	var err error
	if opts.Format == FormatJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		err = enc.Encode(list)
	} else {
		err = writeTable(out, list.Items, now, opts.ExpiringWithin)
	}
	if err != nil {
		fmt.Fprintf(opts.Progress, "certwatch check: writing the report: %v\n", err)
		return ExitUsage
	}
	if time.Since(start) > time.Second || status != ExitOK {
		fmt.Fprintf(opts.Progress, "certwatch check: %d places, %d with problems, collected in %.1fs\n",
			len(list.Items), problems, time.Since(start).Seconds())
	}
	return status
}

// progress says what is happening when collecting takes over a second.
func progress(w io.Writer, start time.Time, done <-chan struct{}) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			fmt.Fprintf(w, "certwatch check: collecting (%.0fs)...\n", time.Since(start).Seconds())
			t.Reset(5 * time.Second)
		}
	}
}

// problem says why a place fails the check, or "".
func problem(it inventory.Item, now time.Time, within time.Duration) string {
	switch {
	case it.ErrorClass != nil:
		return "error: " + *it.ErrorClass
	case it.Reason != nil && *it.Reason != "ok":
		return *it.Reason
	}
	if within > 0 && it.ChainNotAfter != nil {
		if t, err := time.Parse(time.RFC3339, *it.ChainNotAfter); err == nil && t.Sub(now) < within {
			return "expiring"
		}
	}
	return ""
}

func writeTable(out io.Writer, items []inventory.Item, now time.Time, within time.Duration) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tSOURCE\tTARGET\tKEY\tSUBJECT\tNOT AFTER\tLEFT\tDETAIL")
	for _, it := range items {
		status, detail := "OK", ""
		if p := problem(it, now, within); p != "" {
			status, detail = "FAIL", p
			if p == "expiring" {
				status = "EXPIRING"
			}
		}
		if it.Error != nil {
			detail += ": " + *it.Error
		} else if it.ReasonDetail != "" {
			detail += ": " + it.ReasonDetail
		}
		notAfter, left := "-", "-"
		if it.ChainNotAfter != nil {
			notAfter = *it.ChainNotAfter
			if t, err := time.Parse(time.RFC3339, *it.ChainNotAfter); err == nil {
				left = humanDuration(t.Sub(now))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", status, it.Source, cell(it.Target), cell(it.Key), cell(it.SubjectCN),
			notAfter, left, cell(detail))
	}
	return tw.Flush()
}

// cell keeps a value on one line and of a readable length; certificate
// names are chosen by whoever issued them.
func cell(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\t' {
			return ' '
		}
		return r
	}, s)
	if s == "" {
		return "-"
	}
	if r := []rune(s); len(r) > 80 {
		return string(r[:79]) + "…"
	}
	return s
}

// humanDuration is a duration in days and hours, negative once past.
func humanDuration(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%s%dd", sign, d/(24*time.Hour))
	case d >= time.Hour:
		return fmt.Sprintf("%s%dh", sign, d/time.Hour)
	default:
		return fmt.Sprintf("%s%dm", sign, d/time.Minute)
	}
}
