package inventory

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/certwatch/certwatch/collector"
	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// staticSnapshots serves one snapshot, as an exporter does between scrapes.
type staticSnapshots struct{ s *collector.Snapshot }

func (s staticSnapshots) Snapshot() *collector.Snapshot               { return s.s }
func (s staticSnapshots) Refresh(context.Context) *collector.Snapshot { return s.s }

// distinctCerts is how many real certificates the synthetic snapshots are
// made of: generating 100,000 would take minutes, and the inventory's cost
// does not depend on certificates being distinct.
const distinctCerts = 300

// syntheticSnapshot is n places, each a leaf and the intermediate, over a
// few hundred real generated certificates: 1 % failed, 2 % expired, the
// rest valid; three teams.
func syntheticSnapshot(b *testing.B, n int) *collector.Snapshot {
	b.Helper()
	chain := testpki.NewChain(b, testpki.Options{})
	key := testpki.NewKey(b, "")
	var leaves []*x509.Certificate
	for i := range distinctCerts {
		name := fmt.Sprintf("svc-%03d.example", i)
		leaves = append(leaves, testpki.New(b, chain.Intermediate, testpki.Options{CommonName: name, DNSNames: []string{name, "www." + name},
			Key: key, NotAfter: time.Now().Add(time.Duration(1+i) * 24 * time.Hour)}).Cert)
	}
	teams := []map[string]string{{"team": "payments"}, {"team": "platform"}, {"team": "edge"}}
	roles := []inspect.Role{inspect.RoleLeaf, inspect.RoleIntermediate}
	s := &collector.Snapshot{At: time.Now(), Places: make([]collector.Judged, n)}
	for i := range n {
		f := &source.Finding{Place: source.Place{Source: source.KindFile, Target: fmt.Sprintf("/etc/pki/%03d/cert-%06d.pem", i%997, i), Labels: teams[i%3]}}
		s.Places[i].Finding = f
		switch {
		case i%100 == 0:
			f.Err = source.Errorf(source.ClassParse, "PEM block 1: truncated or malformed PEM block")
			continue
		case i%50 == 1:
			s.Places[i].Verdict.Reason = inspect.ReasonExpired
		default:
			s.Places[i].Verdict.Reason = inspect.ReasonOK
		}
		leaf := leaves[i%distinctCerts]
		f.Certs = []*x509.Certificate{leaf, chain.Intermediate.Cert}
		s.Places[i].Verdict.Roles = roles
		s.Places[i].Verdict.ChainNotAfter = leaf.NotAfter
	}
	return s
}

// benchQueries are what the benchmarks ask: the first page as it opens,
// a filtered one, and one sorted by another column.
var benchQueries = []struct{ name, query string }{
	{"first", ""},
	{"filtered", "q=svc-01&label.team=payments&reason=ok"},
	{"sorted", "sort=subject_cn&order=desc&page=3"},
}

func benchmarkPath(b *testing.B, path string) {
	for _, n := range []int{10_000, 100_000} {
		snap := syntheticSnapshot(b, n)
		h := New(staticSnapshots{snap}, promslog.NewNopLogger(), Options{})
		mux := http.NewServeMux()
		h.Register(mux)
		for _, q := range benchQueries {
			b.Run(fmt.Sprintf("places=%d/%s", n, q.name), func(b *testing.B) {
				target := path + "?" + q.query
				if rec := httpGet(mux, target); rec.Code != http.StatusOK { // builds the index
					b.Fatalf("%s: %d", target, rec.Code)
				}
				times := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for range b.N {
					start := time.Now()
					httpGet(mux, target)
					times = append(times, time.Since(start))
				}
				b.StopTimer()
				slices.Sort(times)
				b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
			})
		}
		b.Run(fmt.Sprintf("places=%d/index", n), func(b *testing.B) {
			for range b.N {
				buildIndex(snap)
			}
		})
	}
}

// BenchmarkPage renders /certificates (100 rows) from the cached index.
func BenchmarkPage(b *testing.B) { benchmarkPath(b, PagePath) }

// BenchmarkAPI answers /api/v1/certificates (100 items) from the cached
// index.
func BenchmarkAPI(b *testing.B) { benchmarkPath(b, APIPath) }
