//go:build linux

package main

import (
	"bytes"
	"flag"
	"os"
	"regexp"
	"time"
)

// runDump prints what an in-process exporter answers for a configuration,
// minus the lines that differ from run to run (durations, Go and process
// metrics). Comparing the dumps of two builds checks that a performance
// change left the answer identical.
func runDump(args []string) {
	fs := flag.NewFlagSet("dump", flag.ExitOnError)
	configFile := fs.String("config", "", "certwatch configuration file")
	accept := fs.String("accept", acceptText, "Accept header")
	scrapes := fs.Int("scrapes", 2, "scrapes before the one printed (caches warm)")
	parseFlags(fs, args)
	data, err := os.ReadFile(*configFile)
	if err != nil {
		fatalf("%v", err)
	}
	x := newInProcess(parseConfig(string(data)), nil)
	for range *scrapes {
		scrape(x.handler, "/metrics", *accept, time.Minute, false)
	}
	res := scrape(x.handler, "/metrics", *accept, time.Minute, true)
	volatile := regexp.MustCompile(`^(go_|process_|certwatch_collector_duration_seconds|certwatch_tls_handshake_duration_seconds|# (HELP|TYPE) (go|process)_)`)
	for _, line := range bytes.SplitAfter(res.body, []byte("\n")) {
		if !volatile.Match(line) {
			os.Stdout.Write(line)
		}
	}
}
