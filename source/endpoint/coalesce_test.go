package endpoint

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/shard"
)

// countingServer is a TLS server that counts connections and answers
// slowly, so that concurrent probes overlap.
func countingServer(t *testing.T, delay time.Duration) (string, *atomic.Int64) {
	t.Helper()
	chain := testpki.NewChain(t, testpki.Options{})
	cert := testpki.TLSCertificate(chain.Leaf, chain.Intermediate)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				time.Sleep(delay)
				_ = tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}}).Handshake()
			}()
		}
	}()
	return l.Addr().String(), &n
}

func proberFor(t *testing.T, yaml string, sh shard.Shard) *Prober {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Shard = sh
	return New(cfg, slog.New(slog.DiscardHandler))
}

func TestConcurrentProbesShareOneConnection(t *testing.T) {
	addr, conns := countingServer(t, 300*time.Millisecond)
	p := proberFor(t, fmt.Sprintf("endpoints:\n  - targets: [%q]\n", addr), shard.Shard{})
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if f := p.Probe(ctx, addr, "default"); f.Err != nil || len(f.Certs) != 2 {
				t.Errorf("probe: %v, %d certs", f.Err, len(f.Certs))
			}
		}()
	}
	wg.Wait()
	if n := conns.Load(); n != 1 {
		t.Errorf("10 concurrent probes made %d connections, want 1", n)
	}
}

func TestMinProbeInterval(t *testing.T) {
	for _, tc := range []struct {
		interval string
		want     int64
	}{{"0s", 3}, {"1h", 1}} {
		t.Run(tc.interval, func(t *testing.T) {
			addr, conns := countingServer(t, 0)
			p := proberFor(t, fmt.Sprintf("modules:\n  default:\n    min_probe_interval: %s\nendpoints:\n  - targets: [%q]\n", tc.interval, addr), shard.Shard{})
			for range 3 {
				if f := p.Probe(context.Background(), addr, "default"); f.Err != nil {
					t.Fatal(f.Err)
				}
			}
			if n := conns.Load(); n != tc.want {
				t.Errorf("3 sequential probes made %d connections, want %d", n, tc.want)
			}
		})
	}
}

func TestLastWaiterGivingUpCancelsTheProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 1)
		for {
			if _, err := c.Read(buf); err != nil {
				close(closed) // certwatch hung up
				return
			}
		}
	}()
	defer l.Close()
	addr := l.Addr().String()
	p := proberFor(t, fmt.Sprintf("modules:\n  default:\n    timeout: 60s\nendpoints:\n  - targets: [%q]\n", addr), shard.Shard{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_ = p.Probe(ctx, addr, "default")
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the probe kept its connection after its only scrape gave up")
	}
}

func TestShardsPartitionEndpoints(t *testing.T) {
	var targets string
	for i := range 50 {
		targets += fmt.Sprintf("%q, ", fmt.Sprintf("host%d.example:443", i))
	}
	yaml := "endpoints:\n  - targets: [" + targets + "]\n"
	seen := map[string]int{}
	for i := range 3 {
		p := proberFor(t, yaml, shard.Shard{Index: i, Total: 3})
		if len(p.endpoints) == 0 || len(p.endpoints) == 50 {
			t.Errorf("shard %d owns %d of 50 targets", i, len(p.endpoints))
		}
		for _, e := range p.endpoints {
			seen[e.target]++
		}
		// /probe may still reach every configured target on every shard.
		if err := p.Allowed("host0.example:443", "default"); err != nil {
			t.Errorf("shard %d refuses /probe of a configured target: %v", i, err)
		}
	}
	if len(seen) != 50 {
		t.Errorf("the shards cover %d of 50 targets", len(seen))
	}
	for target, n := range seen {
		if n != 1 {
			t.Errorf("%s owned by %d shards", target, n)
		}
	}
}
