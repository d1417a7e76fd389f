package endpoint

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/certwatch/certwatch/shard"
)

func TestMemo(t *testing.T) {
	now := time.Unix(1000, 0)
	m := newMemo[int](3)
	m.now = func() time.Time { return now }
	m.sweepEvery = 10 * time.Second

	m.put("a", 1, now.Add(5*time.Second))
	m.put("b", 2, now.Add(time.Hour))
	if v, ok := m.get("a"); !ok || v != 1 {
		t.Fatalf("get a = %d, %t", v, ok)
	}
	now = now.Add(5 * time.Second)
	if _, ok := m.get("a"); ok || m.len() != 1 {
		t.Fatalf("an expired entry is returned or kept on read: len %d", m.len())
	}

	// Beyond max, the oldest written goes, whatever its expiry.
	m.put("c", 3, now.Add(time.Hour))
	m.put("d", 4, now.Add(time.Hour))
	m.put("b", 22, now.Add(time.Hour)) // rewritten: now the newest
	m.put("e", 5, now.Add(time.Hour))
	if _, ok := m.get("c"); ok || m.len() != 3 {
		t.Errorf("after 5 writes with max 3: c kept %t, len %d", ok, m.len())
	}
	for k, want := range map[string]int{"b": 22, "d": 4, "e": 5} {
		if v, ok := m.get(k); !ok || v != want {
			t.Errorf("get %s = %d, %t; want %d", k, v, ok, want)
		}
	}

	// Expired entries nobody reads go at the next sweep, on a write.
	m2 := newMemo[int](100)
	m2.now = func() time.Time { return now }
	m2.sweepEvery = time.Minute
	for i := range 50 {
		m2.put(fmt.Sprint(i), i, now.Add(time.Second))
	}
	now = now.Add(2 * time.Second)
	m2.put("x", 0, now.Add(time.Hour)) // within sweepEvery of the first write: no sweep yet
	if m2.len() != 51 {
		t.Errorf("len %d before the sweep is due, want 51", m2.len())
	}
	now = now.Add(time.Minute)
	m2.put("y", 0, now.Add(time.Hour))
	if m2.len() != 2 {
		t.Errorf("len %d after the sweep, want 2", m2.len())
	}
	m2.put("z", 0, now) // already expired: not kept
	if _, ok := m2.get("z"); ok {
		t.Error("an entry written already expired is kept")
	}
}

// loopbackRefused returns the i-th of many distinct targets that refuse
// connections at once without leaving the machine: port 1 on addresses of
// 127.0.0.0/8 (all of which are this host's).
func loopbackRefused(i int) string {
	return fmt.Sprintf("127.%d.%d.%d:1", 1+i/65536, i/256%256, i%256)
}

// TestRememberedResultsBounded: /probe callers choose targets; with
// min_probe_interval each result is remembered, but no more than
// maxRemembered of them, and each no longer than the interval.
func TestRememberedResultsBounded(t *testing.T) {
	p := proberFor(t, "modules:\n  default:\n    timeout: 5s\n    min_probe_interval: 1h\n", shard.Shard{})
	const targets, workers = 2 * maxRemembered, 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < targets; i += workers {
				f := p.Probe(context.Background(), loopbackRefused(i), "default")
				if f.Err == nil {
					t.Errorf("%s: probe succeeded", loopbackRefused(i))
					return
				}
			}
		}()
	}
	wg.Wait()
	p.mu.Lock()
	n := p.results.len()
	p.mu.Unlock()
	if n > maxRemembered {
		t.Errorf("%d results remembered after probing %d distinct targets, want at most %d", n, targets, maxRemembered)
	}
	// The newest are the ones kept.
	if _, ok := p.recent("default\x00"+loopbackRefused(targets-1), p.modules["default"]); !ok {
		t.Error("the last result probed is not remembered")
	}

	// Results expire with their module's interval, read or not.
	p = proberFor(t, "modules:\n  default:\n    timeout: 5s\n    min_probe_interval: 50ms\n", shard.Shard{})
	p.results.sweepEvery = 0 // sweep on every write
	for i := range 100 {
		_ = p.Probe(context.Background(), loopbackRefused(i), "default")
	}
	time.Sleep(100 * time.Millisecond)
	_ = p.Probe(context.Background(), loopbackRefused(100), "default")
	p.mu.Lock()
	n = p.results.len()
	p.mu.Unlock()
	if n != 1 {
		t.Errorf("%d results remembered after the others' interval passed, want 1", n)
	}
}
