package collector

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/source"
)

// Snapshot is what the last scrape found and judged: every place with its
// verdict, and every target that failed. The inventory pages and the check
// command read it; they never collect on their own. A Snapshot is never
// modified once published.
type Snapshot struct {
	At     time.Time
	Places []Judged
	// Collectors says how each source did in that scrape, in the order the
	// sources are configured.
	Collectors []CollectorState
}

// Judged is one place of a Snapshot. Finding.Certs is empty for a place
// that could not be read (Finding.Err says why); Verdict is then the zero
// verdict.
type Judged struct {
	*source.Finding // shared with the scrape that found it: read only
	Verdict         inspect.Verdict
}

// Judged reports whether the place had certificates to judge.
func (j *Judged) Judged() bool { return len(j.Certs) > 0 }

// CollectorState is how one source did in the scrape of a Snapshot.
type CollectorState struct {
	Name string
	OK   bool // complete by the deadline
	Took time.Duration
}

// snapshotBuilder gathers a Snapshot during one scrape. Places are added as
// they are judged; the duplicates the emitters skip are never added.
type snapshotBuilder struct {
	mu     sync.Mutex
	places []Judged
}

func (b *snapshotBuilder) judged(f *source.Finding, v inspect.Verdict) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.places = append(b.places, Judged{Finding: f, Verdict: v})
	b.mu.Unlock()
}

// failed adds a finding without certificates: an error the target reported.
func (b *snapshotBuilder) failed(f *source.Finding) {
	if b == nil || f.Err == nil {
		return
	}
	b.mu.Lock()
	b.places = append(b.places, Judged{Finding: f})
	b.mu.Unlock()
}

// publish makes the gathered places the exporter's snapshot.
func (b *snapshotBuilder) publish(e *Exporter, at time.Time, results []sourceResult) *Snapshot {
	s := &Snapshot{At: at, Places: slices.Clip(b.places)}
	for _, r := range results {
		s.Collectors = append(s.Collectors, CollectorState{Name: r.name, OK: r.ok, Took: r.took})
	}
	// Concurrent scrapes publish in any order: keep the one that started
	// last.
	for {
		old := e.snapshot.Load()
		if old != nil && old.At.After(at) {
			return s
		}
		if e.snapshot.CompareAndSwap(old, s) {
			return s
		}
	}
}

// Snapshot returns what the last scrape found and judged, or nil before the
// first scrape.
func (e *Exporter) Snapshot() *Snapshot { return e.snapshot.Load() }

// Refresh runs every source once within ctx, judges what they found and
// publishes the result as the snapshot, without serving metrics: for the
// check command, and for pages asked for before any scrape.
func (e *Exporter) Refresh(ctx context.Context) *Snapshot {
	at := time.Now()
	sources := e.sources.Load()
	if sources == nil {
		return nil
	}
	results := e.runSources(ctx, sources)
	b := &snapshotBuilder{}
	type placeKey struct{ source, target, key string }
	for _, r := range results {
		seen := map[placeKey]bool{}
		var places []*source.Finding
		for i := range r.Findings {
			f := &r.Findings[i]
			if len(f.Certs) == 0 {
				b.failed(f)
				continue
			}
			if k := (placeKey{f.Source, f.Target, f.Key}); !seen[k] {
				seen[k] = true
				places = append(places, f)
			}
		}
		chains := chainsOf(places)
		for i, v := range e.inspector.JudgeAll(chains) {
			b.judged(places[i], e.inspector.Revoke(chains[i], v))
		}
	}
	return b.publish(e, at, results)
}
