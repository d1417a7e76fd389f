package config

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reloader owns the running configuration. It reloads the file on SIGHUP
// and, with --web.enable-lifecycle, on POST /-/reload; a file that does not
// load leaves the running configuration in place and is reported by the
// certwatch_config_last_reload_successful gauge.
type Reloader struct {
	path   string
	logger *slog.Logger
	apply  func(*Config) error

	mu          sync.Mutex // serialises reloads
	current     *Config
	success     prometheus.Gauge
	successTime prometheus.Gauge
}

// NewReloader loads the file once (an error here is fatal to the caller) and
// calls apply with it, then with every later configuration that loads. An
// apply error (a source that cannot start) counts as a failed load: the
// previous configuration stays.
func NewReloader(path string, logger *slog.Logger, reg prometheus.Registerer, apply func(*Config) error) (*Reloader, error) {
	r := &Reloader{
		path:   path,
		logger: logger,
		apply:  apply,
		success: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "certwatch_config_last_reload_successful",
			Help: "Whether the last configuration load succeeded (1) or failed and the previous configuration is still in use (0).",
		}),
		successTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "certwatch_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration load.",
		}),
	}
	if err := r.load(true); err != nil {
		return nil, err // there is no previous configuration to keep: the caller says it cannot start
	}
	reg.MustRegister(r.success, r.successTime)
	return r, nil
}

// Current returns the running configuration.
func (r *Reloader) Current() *Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current
}

// Reload loads the file and applies it when valid.
func (r *Reloader) Reload() error { return r.load(false) }

// load loads and applies the file. At start-up (first) a failure is only
// returned; later it is logged, and the previous configuration stays.
func (r *Reloader) load(first bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg, err := Load(r.path)
	if err != nil {
		r.success.Set(0)
		if !first {
			r.logger.Error("Configuration not loaded; keeping the previous one", "file", r.path, "err", err)
		}
		return err
	}
	if err := r.apply(cfg); err != nil {
		r.success.Set(0)
		if !first {
			r.logger.Error("Configuration not applied; keeping the previous one", "file", r.path, "err", err)
		}
		return fmt.Errorf("applying %s: %w", r.path, err)
	}
	r.current = cfg
	r.success.Set(1)
	r.successTime.Set(float64(time.Now().UnixNano()) / 1e9)
	r.logger.Info("Configuration loaded", "file", r.path, "modules", len(cfg.Modules),
		"endpoint_groups", len(cfg.Endpoints), "file_groups", len(cfg.Files))
	return nil
}

// WatchSignals reloads on every SIGHUP until ctx ends.
func (r *Reloader) WatchSignals(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = r.Reload() // logged and reported by Reload
			}
		}
	}()
}

// LifecycleFlag is the command-line flag that enables POST /-/reload.
const LifecycleFlag = "web.enable-lifecycle"

// Handler serves POST /-/reload: 200 when the new file is in use, 500 with
// the error when the previous configuration was kept. Unless enabled
// (--web.enable-lifecycle) it answers every request 403 and reloads
// nothing: anyone who can reach the port could otherwise make certwatch
// reread its files at will. SIGHUP reloads either way.
func (r *Reloader) Handler(enabled bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !enabled {
			http.Error(w, "the lifecycle endpoints are disabled: start certwatch with --"+LifecycleFlag+" to reload by POST /-/reload, or send it SIGHUP", http.StatusForbidden)
			return
		}
		if req.Method != http.MethodPost && req.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "this endpoint requires a POST or PUT request", http.StatusMethodNotAllowed)
			return
		}
		if err := r.Reload(); err != nil {
			http.Error(w, "failed to reload config: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("OK\n"))
	})
}
