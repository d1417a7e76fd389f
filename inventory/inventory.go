// Package inventory serves the certificate inventory: every place the last
// scrape judged or failed to read, as HTML pages (/certificates, one page
// per place, PEM downloads), as JSON (/api/v1/certificates and
// /api/v1/certificates/place, schema in schema/) and as CSV
// (/certificates.csv).
//
// It owns nothing but presentation. It reads the exporter's published
// snapshot and never collects: only when no snapshot exists yet (nothing
// was scraped since start) does a request run one refresh, the same
// collection a scrape would. Rows are indexed once per snapshot; each
// request filters that index, sorts what matched and renders one page.
//
// Certificate names are attacker-controlled: every page is rendered with
// html/template and served with a Content-Security-Policy that allows no
// script, the CSV guards against spreadsheet formula injection, and no
// private key is ever part of a snapshot (places only say a key is stored
// with them).
package inventory

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/certwatch/certwatch/collector"
)

// Snapshots is where the inventory reads what was found:
// *collector.Exporter.
type Snapshots interface {
	// Snapshot returns the last published snapshot, nil before the first.
	Snapshot() *collector.Snapshot
	// Refresh collects once and publishes the result.
	Refresh(ctx context.Context) *collector.Snapshot
}

// Options shape the inventory.
type Options struct {
	// Disabled answers every inventory path with 404 (--web.disable-inventory).
	Disabled bool
	// DefaultModule is the module the "probe now" form of an endpoint
	// proposes: a snapshot does not say which module probed it.
	DefaultModule string
	// Now is the clock for time left and lifetime used (time.Now when nil).
	Now func() time.Time
}

// Handler serves the inventory's pages, API and CSV.
type Handler struct {
	src    Snapshots
	logger *slog.Logger
	opts   Options

	refreshMu sync.Mutex // one refresh at a time when there is no snapshot
	buildMu   sync.Mutex // one index build per snapshot
	current   atomic.Pointer[index]
}

// Paths the inventory serves, for Register and the landing page.
const (
	PagePath       = "/certificates"
	PlacePath      = "/certificates/place"
	PEMPath        = "/certificates/pem"
	StylePath      = "/certificates/style.css"
	CSVPath        = "/certificates.csv"
	APIPath        = "/api/v1/certificates"
	APIPlacePath   = "/api/v1/certificates/place"
	probePath      = "/probe"
	fallbackModule = "default"
)

// New returns the inventory of src's snapshots.
func New(src Snapshots, logger *slog.Logger, opts Options) *Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DefaultModule == "" {
		opts.DefaultModule = fallbackModule
	}
	return &Handler{src: src, logger: logger, opts: opts}
}

// Register adds the inventory's paths to mux. With Options.Disabled they
// answer 404, like paths that do not exist.
func (h *Handler) Register(mux *http.ServeMux) {
	for path, f := range map[string]http.HandlerFunc{
		PagePath:       h.servePage,
		PagePath + "/": h.serveSub,
		CSVPath:        h.serveCSV,
		APIPath:        h.serveAPI,
		APIPlacePath:   h.serveAPIPlace,
	} {
		mux.Handle(path, h.guard(f))
	}
}

// guard answers 404 when the inventory is disabled, allows GET and HEAD
// only, and sets the headers every inventory answer carries.
func (h *Handler) guard(f http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.opts.Disabled {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "only GET and HEAD", http.StatusMethodNotAllowed)
			return
		}
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		f(w, r)
	})
}

func (h *Handler) serveSub(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case PlacePath:
		h.servePlace(w, r)
	case PEMPath:
		h.servePEM(w, r)
	case StylePath:
		serveStyle(w, r)
	default:
		http.NotFound(w, r)
	}
}

// snapshotIndex returns the index of the current snapshot, refreshing once
// when nothing was collected yet, or nil when there is still nothing.
func (h *Handler) snapshotIndex(ctx context.Context) *index {
	s := h.src.Snapshot()
	if s == nil {
		h.refreshMu.Lock()
		if s = h.src.Snapshot(); s == nil { // nobody refreshed while we waited
			s = h.src.Refresh(ctx)
		}
		h.refreshMu.Unlock()
		if s == nil {
			return nil
		}
	}
	if ix := h.current.Load(); ix != nil && ix.snap == s {
		return ix
	}
	h.buildMu.Lock()
	defer h.buildMu.Unlock()
	if ix := h.current.Load(); ix != nil && ix.snap == s {
		return ix
	}
	ix := buildIndex(s)
	// Keep the newest: a slow request must not put an older index back.
	if old := h.current.Load(); old == nil || !old.snap.At.After(s.At) {
		h.current.Store(ix)
	}
	return ix
}

// LandingLinks are the landing page's links to the inventory: none when it
// is disabled.
func (h *Handler) LandingLinks() []web.LandingLinks {
	if h.opts.Disabled {
		return nil
	}
	return []web.LandingLinks{{Address: PagePath, Text: "Inventory"}}
}
