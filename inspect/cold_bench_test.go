package inspect_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/internal/testpki"
)

// BenchmarkJudgeColdShared judges, with no verdict cached, 1,000 places that
// each hold a distinct leaf and the same intermediate, as a tree of
// certificates issued by one CA does: the cost of a first scrape.
func BenchmarkJudgeColdShared(b *testing.B) {
	root := testpki.New(b, nil, testpki.Options{CommonName: "bench root", IsCA: true, NotAfter: time.Now().Add(3650 * 24 * time.Hour)})
	inter := testpki.New(b, root, testpki.Options{CommonName: "bench intermediate", IsCA: true})
	const n = 1000
	chains := make([]inspect.Chain, n)
	params := fileParams(root)
	for i := range chains {
		leaf := testpki.New(b, inter, testpki.Options{CommonName: "leaf " + strconv.Itoa(i), DNSNames: []string{"leaf" + strconv.Itoa(i) + ".example"}})
		chains[i] = inspect.Chain{Certs: testpki.Certs(leaf, inter), Verify: params}
	}
	for b.Loop() {
		for _, v := range inspect.NewInspector(nil).JudgeAll(chains) {
			if v.Reason != inspect.ReasonOK {
				b.Fatalf("%s: %s", v.Reason, v.Detail)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/place")
}
