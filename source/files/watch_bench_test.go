//go:build linux

package files

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
)

// BenchmarkWarmCollect is a warm scrape of the files source (nothing
// changed) over 2,000 files in 20 directories, polling and watching:
// polling stats every file, watching only waits for its event barrier.
// stats/op counts the files stat'ed per scrape.
//
//	go test -run '^$' -bench BenchmarkWarmCollect -count=5 ./source/files
func BenchmarkWarmCollect(b *testing.B) {
	dir := b.TempDir()
	data := testpki.PEM(testpki.New(b, nil, testpki.Options{CommonName: "bench"}))
	var cfgText strings.Builder
	cfgText.WriteString("files:\n  - paths:\n")
	for d := range 20 {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", d))
		fmt.Fprintf(&cfgText, "      - %q\n", sub)
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 100 {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("%03d.pem", f)), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, mode := range []string{"poll", "inotify"} {
		b.Run(mode, func(b *testing.B) {
			cfg, err := config.Parse([]byte("global:\n  files_watch: "+mode+"\n"+cfgText.String()), dir)
			if err != nil {
				b.Fatal(err)
			}
			cache := NewWatchingCache()
			defer cache.Stop()
			s := New(cfg, cache, discard())
			if got := len(s.Collect(context.Background())); got != 2000 {
				b.Fatalf("%d findings, want 2000", got)
			}
			stats := testStats.Load()
			b.ResetTimer()
			for range b.N {
				s.Collect(context.Background())
			}
			b.StopTimer()
			b.ReportMetric(float64(testStats.Load()-stats)/float64(b.N), "stats/op")
		})
	}
}
