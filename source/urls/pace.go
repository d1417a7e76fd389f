package urls

import (
	"context"
	"sync"
	"time"
)

// pacer holds the fetches of every URL to global.revocation's bounds: at
// most concurrency in flight, and one request per host_interval to a host
// (a Vault mount's chain, issuers and CRL are one server). The bounds
// change on reload without stopping the fetchers.
type pacer struct {
	mu           sync.Mutex
	slots        chan struct{}
	hostInterval time.Duration
	next         map[string]time.Time // host:port → earliest start of its next request
}

func newPacer() *pacer {
	return &pacer{next: map[string]time.Time{}}
}

// set applies new bounds; concurrency < 1 means one at a time. Fetches in
// flight finish under the bounds they started with.
func (p *pacer) set(concurrency int, hostInterval time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	concurrency = max(concurrency, 1)
	if p.slots == nil || cap(p.slots) != concurrency {
		p.slots = make(chan struct{}, concurrency)
	}
	p.hostInterval = max(hostInterval, 0)
}

// wait returns when a request to hostport may start, with the function that
// gives its slot back; or ctx's error. The host's turn comes first, so that
// a fetch waiting for its host holds no slot another host could use.
func (p *pacer) wait(ctx context.Context, hostport string) (release func(), err error) {
	p.mu.Lock()
	now := time.Now()
	start := now
	if t := p.next[hostport]; t.After(start) {
		start = t
	}
	p.next[hostport] = start.Add(p.hostInterval)
	for h, t := range p.next { // forget hosts whose turn is past: they may have left the configuration
		if t.Before(now) {
			delete(p.next, h)
		}
	}
	slots := p.slots
	p.mu.Unlock()
	if d := start.Sub(now); d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
