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
// two, without the third, which later ends on its own without writing into
// the results (the race detector watches that).
func TestRunAllAnswersByTheDeadline(t *testing.T) {
	e := New(promslog.NewNopLogger(), inspect.NewInspector(nil), 0)
	release := make(chan struct{})
	stuckEnded := make(chan struct{})
	quick := source.Finding{Place: source.Place{Source: source.KindFile, Target: "/quick"}}
	late := source.Finding{Place: source.Place{Source: source.KindFile, Target: "/late"}}
	runs := []sourceRun{
		{"quick", func(context.Context) sourceResult {
			return sourceResult{findings: []source.Finding{quick}, skippedFiles: []int{3}}
		}},
		{"honours", func(ctx context.Context) sourceResult {
			<-ctx.Done()
			return sourceResult{findings: []source.Finding{late}}
		}},
		{"stuck", func(context.Context) sourceResult {
			defer close(stuckEnded)
			<-release
			return sourceResult{findings: []source.Finding{late}}
		}},
	}
	const timeout = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	results := e.runAll(ctx, runs)
	took := time.Since(start)
	if took > timeout+200*time.Millisecond {
		t.Errorf("runAll took %v with a %v deadline", took, timeout)
	}
	if len(results) != 3 {
		t.Fatalf("%d results, want 3", len(results))
	}
	if r := results[0]; r.name != "quick" || !r.ok || len(r.findings) != 1 || r.findings[0].Target != "/quick" || len(r.skippedFiles) != 1 || r.skippedFiles[0] != 3 {
		t.Errorf("quick source: %+v", r)
	}
	// It returned at its own, earlier, deadline with what it had: kept, but
	// marked as cut short.
	if r := results[1]; r.name != "honours" || r.ok || len(r.findings) != 1 {
		t.Errorf("source that honours its deadline: %+v", r)
	}
	if r := results[2]; r.name != "stuck" || r.ok || r.findings != nil {
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
	if results[2].findings != nil {
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
