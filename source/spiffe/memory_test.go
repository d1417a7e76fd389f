package spiffe

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// BenchmarkSVIDs1000 measures what 1,000 SVIDs from one Workload API cost:
// the heap they hold once received (B/svid), and a scrape of them (ns/op).
//
//	go test -run='^$' -bench=SVIDs1000 -benchtime=20x ./source/spiffe/
func BenchmarkSVIDs1000(b *testing.B) {
	const n = 1000
	api := startWorkloadAPI(b)
	local := newTrustDomain(b, "example.org")
	resp := &workload.X509SVIDResponse{}
	for i := range n {
		resp.Svids = append(resp.Svids, local.svid(b, fmt.Sprintf("spiffe://example.org/ns/n%d/sa/workload", i), "",
			testpki.Options{NotAfter: time.Now().Add(time.Hour)}))
	}
	before := heapInUse()
	r := NewRunner(promslog.NewNopLogger())
	defer r.Stop()
	s := r.Apply(quickConfig(api.address()))
	api.contexts <- resp
	resp = nil
	deadline := time.Now().Add(30 * time.Second)
	for {
		res := s.Scrape(context.Background())
		if countKind(res, source.KindSPIFFESVID) == n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the %d SVIDs did not arrive", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	held := heapInUse() - before
	b.ResetTimer()
	for range b.N {
		if res := s.Scrape(context.Background()); countKind(res, source.KindSPIFFESVID) != n {
			b.Fatal("SVIDs lost")
		}
	}
	b.ReportMetric(float64(held)/n, "B/svid") // after ResetTimer, which drops reported metrics
}

func countKind(res source.Result, kind string) int {
	n := 0
	for _, f := range res.Findings {
		if f.Source == kind && f.Err == nil {
			n++
		}
	}
	return n
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
