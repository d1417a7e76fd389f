//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/certwatch/certwatch/internal/testpki"
)

// TestFilesWatchEndToEnd runs the real binary over a certificate directory:
// with the default files_watch (auto) the group's path is watched and its
// watches counted, every fallback reason is exposed, a certificate replaced
// by rename is reported by the next scrape, and a reload to poll drops the
// watches.
func TestFilesWatchEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	writeFile(t, filepath.Join(certs, "a.pem"), testpki.PEM(testpki.New(t, nil, testpki.Options{CommonName: "before"})))
	configPath := filepath.Join(dir, "config.yml")
	writeFile(t, configPath, []byte("files:\n  - paths: [certs]\n"))
	p := startExporter(t, bin, configPath)

	gauge := func(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
		t.Helper()
		m := one(t, mfs, name, labels)
		if m.Counter != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	mfs := p.scrape(t, "/metrics")
	if v := gauge(mfs, "certwatch_files_watch_paths", map[string]string{"group": "0", "mode": "inotify"}); v != 1 {
		t.Errorf("paths watched with inotify: %v, want 1", v)
	}
	if v := gauge(mfs, "certwatch_files_watch_paths", map[string]string{"group": "0", "mode": "poll"}); v != 0 {
		t.Errorf("paths polled: %v, want 0", v)
	}
	// The directory, and the one above it (its creation or removal is seen).
	if v := gauge(mfs, "certwatch_files_watches", nil); v != 2 {
		t.Errorf("certwatch_files_watches %v, want 2", v)
	}
	for _, reason := range []string{"watch_limit", "queue_overflow", "network_filesystem", "watch_error"} {
		if v := gauge(mfs, "certwatch_files_watch_fallbacks_total", map[string]string{"reason": reason}); v != 0 {
			t.Errorf("fallbacks %s: %v, want 0", reason, v)
		}
	}
	one(t, mfs, "certwatch_cert_info", map[string]string{"subject_cn": "before"})

	// Replaced by rename, as deployment tools do: the next scrape has it.
	tmp := filepath.Join(certs, ".a.pem.tmp")
	writeFile(t, tmp, testpki.PEM(testpki.New(t, nil, testpki.Options{CommonName: "after"})))
	if err := os.Rename(tmp, filepath.Join(certs, "a.pem")); err != nil {
		t.Fatal(err)
	}
	mfs = p.scrape(t, "/metrics")
	one(t, mfs, "certwatch_cert_info", map[string]string{"subject_cn": "after"})
	if n := len(find(mfs, "certwatch_cert_info", map[string]string{"subject_cn": "before"})); n != 0 {
		t.Errorf("the replaced certificate is still reported")
	}

	// A reload to poll lets go of every watch.
	writeFile(t, configPath, []byte("global:\n  files_watch: poll\nfiles:\n  - paths: [certs]\n"))
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mfs = p.scrape(t, "/metrics")
		if gauge(mfs, "certwatch_files_watch_paths", map[string]string{"group": "0", "mode": "poll"}) == 1 &&
			gauge(mfs, "certwatch_files_watches", nil) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a reload to poll: %s", fmt.Sprint(find(mfs, "certwatch_files_watches", nil)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	one(t, mfs, "certwatch_cert_info", map[string]string{"subject_cn": "after"})
}
