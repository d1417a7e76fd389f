package collector

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/source"
)

// TestRunAllAnswersByTheDeadline runs a source that returns at once, one
// that honours its deadline, and one that ignores it (as a source stuck in a
// system call would): runAll returns by the scrape deadline with the first
// two, without the third (which has no earlier result to fall back on),
// which later ends on its own without writing into the results (the race
// detector watches that).
func TestRunAllAnswersByTheDeadline(t *testing.T) {
	e := New(promslog.NewNopLogger(), inspect.NewInspector(nil), 0)
	release := make(chan struct{})
	stuckEnded := make(chan struct{})
	quick := source.Finding{Place: source.Place{Source: source.KindFile, Target: "/quick"}}
	late := source.Finding{Place: source.Place{Source: source.KindFile, Target: "/late"}}
	status := []source.Sample{{Name: "quick_status", Value: 3}}
	runs := []source.Collector{
		funcSource{"quick", func(context.Context) source.Result {
			return source.Result{Findings: []source.Finding{quick}, Status: status}
		}},
		funcSource{"honours", func(ctx context.Context) source.Result {
			<-ctx.Done()
			return source.Result{Findings: []source.Finding{late}}
		}},
		funcSource{"stuck", func(context.Context) source.Result {
			defer close(stuckEnded)
			<-release
			return source.Result{Findings: []source.Finding{late}}
		}},
	}
	const timeout = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	results := e.runAll(ctx, runs, &lastResults{})
	took := time.Since(start)
	if took > timeout+200*time.Millisecond {
		t.Errorf("runAll took %v with a %v deadline", took, timeout)
	}
	if len(results) != 3 {
		t.Fatalf("%d results, want 3", len(results))
	}
	if r := results[0]; r.name != "quick" || !r.ok || len(r.Findings) != 1 || r.Findings[0].Target != "/quick" || len(r.Status) != 1 || r.Status[0].Value != 3 {
		t.Errorf("quick source: %+v", r)
	}
	// It returned at its own, earlier, deadline with what it had: kept, but
	// marked as cut short.
	if r := results[1]; r.name != "honours" || r.ok || len(r.Findings) != 1 {
		t.Errorf("source that honours its deadline: %+v", r)
	}
	if r := results[2]; r.name != "stuck" || r.ok || r.Findings != nil {
		t.Errorf("stuck source: %+v, want no findings and ok false", r)
	}
	close(release)
	select {
	case <-stuckEnded:
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck source did not end once released")
	}
	// Reading the results after the stuck source ended: it wrote nothing
	// into them.
	if results[2].Findings != nil {
		t.Errorf("the stuck source wrote into the answer: %+v", results[2])
	}
}

func TestSourceMargin(t *testing.T) {
	for _, tc := range []struct{ left, want time.Duration }{
		{50 * time.Millisecond, 10 * time.Millisecond},
		{time.Second, 100 * time.Millisecond},
		{5 * time.Second, 500 * time.Millisecond},
		{30 * time.Second, time.Second},
	} {
		if got := sourceMargin(tc.left); got != tc.want {
			t.Errorf("sourceMargin(%v) = %v, want %v", tc.left, got, tc.want)
		}
	}
}

// TestRunAllServesTheLastResultOfALateSource: a source that misses the
// deadline keeps its places in the answer, with what its last complete
// collection said, rather than having every series marked stale.
func TestRunAllServesTheLastResultOfALateSource(t *testing.T) {
	e := New(promslog.NewNopLogger(), inspect.NewInspector(nil), 0)
	var last lastResults
	first := source.Finding{Place: source.Place{Source: source.KindFile, Target: "/first"}}
	second := source.Finding{Place: source.Place{Source: source.KindFile, Target: "/second"}}
	hang := make(chan struct{})
	defer close(hang)
	collect := func(stuck bool, f source.Finding) []sourceResult {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return e.runAll(ctx, []source.Collector{funcSource{"files", func(context.Context) source.Result {
			if stuck {
				<-hang
			}
			return source.Result{Findings: []source.Finding{f}, Status: []source.Sample{{Name: "files_status", Value: 7}}}
		}}}, &last)
	}
	if r := collect(false, first)[0]; !r.ok || r.Findings[0].Target != "/first" {
		t.Fatalf("complete collection: %+v", r)
	}
	r := collect(true, second)[0]
	if r.ok || len(r.Findings) != 1 || r.Findings[0].Target != "/first" || len(r.Status) != 1 || r.Status[0].Value != 7 {
		t.Fatalf("late collection: %+v, want the last complete result (/first), marked not ok", r)
	}
}

// funcSource is a source made of a function, for runAll's tests.
type funcSource struct {
	name   string
	scrape func(context.Context) source.Result
}

func (f funcSource) Name() string                             { return f.name }
func (f funcSource) Scrape(ctx context.Context) source.Result { return f.scrape(ctx) }
