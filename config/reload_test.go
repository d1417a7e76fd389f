package config

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestReloadKeepsOldConfigOnError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("endpoints:\n  - targets: [\"a.example:443\"]\n")
	reg := prometheus.NewRegistry()
	applied := make(chan *Config, 10)
	r, err := NewReloader(path, slog.New(slog.DiscardHandler), reg, func(c *Config) error { applied <- c; return nil })
	if err != nil {
		t.Fatal(err)
	}
	<-applied
	if v := testutil.ToFloat64(r.success); v != 1 {
		t.Fatalf("success = %v after first load", v)
	}
	firstTS := testutil.ToFloat64(r.successTime)

	// A broken file: the old config stays, the gauge drops to 0, the handler says 500.
	write("endpoints:\n  - targets: [\"no-port\"]\n")
	rec := httptest.NewRecorder()
	r.Handler(true).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/-/reload", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("reload of a broken file answered %d", rec.Code)
	}
	if v := testutil.ToFloat64(r.success); v != 0 {
		t.Errorf("success = %v after a failed reload", v)
	}
	if got := r.Current().Endpoints[0].Targets[0]; got != "a.example:443" {
		t.Errorf("running config changed to %q", got)
	}
	if len(applied) != 0 {
		t.Error("a broken config was applied")
	}

	// GET is refused.
	rec = httptest.NewRecorder()
	r.Handler(true).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/-/reload", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET answered %d", rec.Code)
	}

	// Fixed file via SIGHUP.
	time.Sleep(10 * time.Millisecond)
	write("endpoints:\n  - targets: [\"b.example:443\"]\n")
	ctx := t.Context()
	r.WatchSignals(ctx)
	time.Sleep(50 * time.Millisecond) // let signal.Notify take effect
	sighup(t)
	select {
	case c := <-applied:
		if got := c.Endpoints[0].Targets[0]; got != "b.example:443" {
			t.Errorf("applied %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SIGHUP did not reload")
	}
	// apply runs just before the gauges are set: wait for them.
	for deadline := time.Now().Add(5 * time.Second); testutil.ToFloat64(r.success) != 1 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if v := testutil.ToFloat64(r.success); v != 1 {
		t.Errorf("success = %v after a good reload", v)
	}
	if ts := testutil.ToFloat64(r.successTime); ts <= firstTS {
		t.Errorf("success timestamp did not advance: %v <= %v", ts, firstTS)
	}
}

func TestNewReloaderFailsOnInvalidFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte("bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewReloader(path, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), func(*Config) error { return nil }); err == nil {
		t.Fatal("expected an error")
	}
}

// TestReloadNeedsLifecycleFlag: without --web.enable-lifecycle, /-/reload
// answers 403 naming the flag, whatever the method, and reloads nothing.
func TestReloadNeedsLifecycleFlag(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte("endpoints:\n  - targets: [\"a.example:443\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	applied := 0
	r, err := NewReloader(path, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), func(*Config) error { applied++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodGet} {
		rec := httptest.NewRecorder()
		r.Handler(false).ServeHTTP(rec, httptest.NewRequest(method, "/-/reload", nil))
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "--web.enable-lifecycle") {
			t.Errorf("%s without the flag: %d %q, want 403 naming --web.enable-lifecycle", method, rec.Code, rec.Body)
		}
	}
	if applied != 1 {
		t.Errorf("configuration applied %d times, want once (at start)", applied)
	}
	rec := httptest.NewRecorder()
	r.Handler(true).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/-/reload", nil))
	if rec.Code != http.StatusOK || applied != 2 {
		t.Errorf("POST with the flag: %d, applied %d times", rec.Code, applied)
	}
}
