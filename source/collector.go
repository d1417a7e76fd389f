package source

import "context"

// Collector is one configured source as a scrape sees it. The collector
// package runs a list of them, wired in main, and knows none by name.
type Collector interface {
	// Name is the value of the collector label of the exporter's own
	// metrics about this source.
	Name() string
	// Scrape returns what the source holds now. It returns by ctx's
	// deadline; what it could not finish by then it reports as it can
	// (a timeout, or its last outcome).
	Scrape(ctx context.Context) Result
}

// Result is one Scrape of a source.
type Result struct {
	Findings []Finding
	// Status is the source's own health (informers synced, files skipped,
	// streams connected): series about the source rather than a place.
	Status []Sample
}

// Sample is one series of a source's own health.
type Sample struct {
	Name, Help string
	Counter    bool // a counter; a gauge otherwise
	LabelNames []string
	Values     []string // one per label name
	Value      float64
}

// Readier is a Collector that needs time before its answers are complete
// (informers making their first list, streams their first message).
type Readier interface {
	Ready() bool
}

// Prober is a Collector that also answers /probe: one target on demand.
type Prober interface {
	Name() string // the collector label of its probes
	// AllowedContext reports whether target may be probed with the named
	// module, resolving the name within ctx if a rule needs its addresses.
	AllowedContext(ctx context.Context, target, module string) error
	// Probe probes one target AllowedContext admitted.
	Probe(ctx context.Context, target, module string) Finding
}
