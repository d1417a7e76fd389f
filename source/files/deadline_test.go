package files

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// gate blocks the paths it holds until released, as a hung network mount
// would block open(2) or getdents(2).
type gate struct {
	hold    func(path string) bool
	release chan struct{}
	mu      sync.Mutex
	entered map[string]int
}

func newGate(hold func(path string) bool) *gate {
	return &gate{hold: hold, release: make(chan struct{}), entered: map[string]int{}}
}

func (g *gate) wait(path string) {
	if !g.hold(path) {
		return
	}
	g.mu.Lock()
	g.entered[filepath.Base(path)]++
	g.mu.Unlock()
	<-g.release
}

func (g *gate) count(name string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.entered[name]
}

// scrapeWithin runs CollectCounted with a deadline and fails when it takes
// longer than the deadline and a margin.
func scrapeWithin(t *testing.T, s *Source, timeout time.Duration) []source.Finding {
	t.Helper()
	const margin = 700 * time.Millisecond // generous: -race on a loaded 2-core machine
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	got, _ := s.CollectCounted(ctx)
	if took := time.Since(start); took > timeout+margin {
		t.Fatalf("the scrape took %v with a %v deadline", took, timeout)
	}
	return got
}

// waitGoroutines waits for the goroutine count to come back to at most n.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hungDeadline is the scrape timeout of the tests with hung reads and
// walks: long enough for the files that do not hang to be read on a loaded
// machine, far shorter than the hang (which lasts until released).
const hungDeadline = time.Second

// TestHungReadsDoNotHoldTheScrape: five of ten files hang when opened. The
// scrape answers by its deadline with the five others read and the hung
// ones as timeouts; the next scrape does not open them again (each hang
// holds one goroutine, not one per scrape); once they are released the next
// scrape is complete, and every goroutine has ended. A hung file read
// before is served from the cache with its last outcome.
func TestHungReadsDoNotHoldTheScrape(t *testing.T) {
	dir := t.TempDir()
	var wants, hung []want
	leaves := map[string]*testpki.Cert{}
	for i := range 10 {
		name := fmt.Sprintf("d/%02d.pem", i)
		c := leafCert(t, fmt.Sprintf("c%02d", i))
		leaves[name] = c
		write(t, dir, name, testpki.PEM(c))
		wants = append(wants, want{target: name, certs: certs(c)})
		if i < 5 {
			hung = append(hung, want{target: name, certs: certs(c)})
		} else {
			hung = append(hung, want{target: name, class: source.ClassTimeout})
		}
	}
	baseline := runtime.NumGoroutine()
	s, _ := newSource(t, dir, groupSpec{Paths: []string{"d"}})
	g := newGate(func(p string) bool { return filepath.Base(p) >= "05.pem" })
	s.beforeOpen = g.wait

	checkFindings(t, dir, scrapeWithin(t, s, hungDeadline), hung)
	checkFindings(t, dir, scrapeWithin(t, s, hungDeadline), hung)
	for i := 5; i < 10; i++ {
		if n := g.count(fmt.Sprintf("%02d.pem", i)); n != 1 {
			t.Errorf("%02d.pem was opened %d times over two scrapes while hung, want 1", i, n)
		}
	}
	close(g.release)
	checkFindings(t, dir, collect(t, s), wants)
	waitGoroutines(t, baseline)

	// The file changes and hangs again: its last outcome is served.
	renewed := leafCert(t, "renewed")
	write(t, dir, "d/07.pem", testpki.PEM(renewed))
	bump(t, filepath.Join(dir, "d/07.pem"))
	g2 := newGate(func(p string) bool { return filepath.Base(p) == "07.pem" })
	s.beforeOpen = g2.wait
	checkFindings(t, dir, scrapeWithin(t, s, hungDeadline), wants)
	close(g2.release)
	wants[7] = want{target: "d/07.pem", certs: certs(renewed)}
	checkFindings(t, dir, collect(t, s), wants)
	waitGoroutines(t, baseline)
}

// TestHungWalkDoesNotHoldTheScrape: one group's directory hangs when
// listed. The other group's files are answered by the deadline, the hung
// path is a timeout, and once released the next scrape completes it. When
// the listing hangs again, the last complete walk is used.
func TestHungWalkDoesNotHoldTheScrape(t *testing.T) {
	dir := t.TempDir()
	a, b := leafCert(t, "a"), leafCert(t, "b")
	write(t, dir, "fast/a.pem", testpki.PEM(a))
	write(t, dir, "slow/sub/b.pem", testpki.PEM(b))
	baseline := runtime.NumGoroutine()
	s, _ := newSource(t, dir, groupSpec{Paths: []string{"fast"}}, groupSpec{Paths: []string{"slow"}})
	g := newGate(func(p string) bool { return strings.HasSuffix(p, "sub") })
	s.beforeList = g.wait

	checkFindings(t, dir, scrapeWithin(t, s, hungDeadline), []want{
		{target: "slow", class: source.ClassTimeout},
		{target: "fast/a.pem", certs: certs(a)},
	})
	scrapeWithin(t, s, hungDeadline)
	if n := g.count("sub"); n != 1 {
		t.Errorf("the hung directory was listed %d times over two scrapes, want 1", n)
	}
	close(g.release)
	complete := []want{{target: "fast/a.pem", certs: certs(a)}, {target: "slow/sub/b.pem", certs: certs(b)}}
	checkFindings(t, dir, collect(t, s), complete)

	g2 := newGate(func(p string) bool { return strings.HasSuffix(p, "sub") })
	s.beforeList = g2.wait
	checkFindings(t, dir, scrapeWithin(t, s, hungDeadline), complete)
	close(g2.release)
	waitGoroutines(t, baseline)
}

// TestWarmFirstScrapeOfALargeTree: 2,000 files that take 10ms each to open
// (over a second of reading with sixteen at a time) and a 300ms deadline.
// The first scrape after Warm answers in time with what is ready, never
// more read files than exist; the scrapes that follow complete the rest,
// and no file is read twice.
func TestWarmFirstScrapeOfALargeTree(t *testing.T) {
	dir := t.TempDir()
	pemData := testpki.PEM(leafCert(t, "many"))
	const n = 2000
	for i := range n {
		write(t, dir, fmt.Sprintf("d/%02d/%04d.pem", i%50, i), pemData)
	}
	s, _ := newSource(t, dir, groupSpec{Paths: []string{"d"}})
	s.beforeOpen = func(string) { time.Sleep(10 * time.Millisecond) }
	loads := testLoads.Load()
	s.Warm()
	readCount := func(got []source.Finding) (read, timedOut int) {
		for _, f := range got {
			switch {
			case f.Err == nil && len(f.Certs) == 1:
				read++
			case source.ClassOf(f.Err) == source.ClassTimeout:
				timedOut++
			default:
				t.Fatalf("%s: unexpected %v", f.Target, f.Err)
			}
		}
		return read, timedOut
	}
	got := scrapeWithin(t, s, 300*time.Millisecond)
	read, timedOut := readCount(got)
	t.Logf("first scrape: %d read, %d timed out", read, timedOut)
	if len(got) > n || (len(got) != n && !(len(got) == 1 && timedOut == 1)) {
		t.Fatalf("first scrape: %d findings, want %d (or the one unwalked directory)", len(got), n)
	}
	if timedOut == 0 {
		t.Fatalf("the first scrape read all %d files in 300ms: the test is not slow enough to prove anything", n)
	}
	for i := 0; ; i++ {
		got := scrapeWithin(t, s, 300*time.Millisecond)
		if read, _ := readCount(got); read == n {
			break
		}
		if i > 100 {
			t.Fatal("the scrapes never completed the tree")
		}
	}
	if opened := testLoads.Load() - loads; opened != n {
		t.Errorf("%d files opened, want each of the %d once", opened, n)
	}
}

// bump moves a file's modification time an hour ahead, so that a rewrite
// within the clock's resolution still changes its identity.
func bump(t *testing.T, path string) {
	t.Helper()
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
}
