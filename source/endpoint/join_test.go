package endpoint

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/certwatch/certwatch/shard"
)

// TestJoinAfterAbandonStartsAFreshProbe: scrape A gives up on a slow probe
// (the last waiter, so the probe is cancelled); scrape B asks for the same
// target right after. B must get a probe of its own and its real result, not
// A's cancellation as a timeout. Without removing the cancelled call from
// p.calls at once, B joined it in most tries.
func TestJoinAfterAbandonStartsAFreshProbe(t *testing.T) {
	const servers, triesEach = 6, 50 // 300 tries in all
	var wg sync.WaitGroup
	failures := make(chan error, servers*triesEach)
	for range servers {
		addr, _ := countingServer(t, 15*time.Millisecond)
		p := proberFor(t, fmt.Sprintf("modules:\n  default:\n    timeout: 10s\nendpoints:\n  - targets: [%q]\n", addr), shard.Shard{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range triesEach {
				ctxA, cancelA := context.WithTimeout(context.Background(), 2*time.Millisecond)
				_ = p.Probe(ctxA, addr, "default")
				cancelA()
				ctxB, cancelB := context.WithTimeout(context.Background(), 10*time.Second)
				f := p.Probe(ctxB, addr, "default")
				cancelB()
				if f.Err != nil {
					failures <- f.Err
				} else if len(f.Certs) != 2 {
					failures <- fmt.Errorf("%d certificates, want 2", len(f.Certs))
				}
			}
		}()
	}
	wg.Wait()
	close(failures)
	var errs []error
	for err := range failures {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		t.Errorf("%d of %d scrapes that came right after an abandoned probe failed; first: %v", len(errs), servers*triesEach, errs[0])
	}
}
