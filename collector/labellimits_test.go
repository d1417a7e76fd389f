package collector

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/internal/testpki"
)

// TestHostileNamesMakeBoundedLines serves a certificate whose common name
// (and issuer's) is 1 MiB and which carries 2,000 DNS names. Both
// exposition paths (the registry's protobuf and the cached text) must say
// the same thing, with subject_cn and issuer_cn cut to inspect.MaxNameBytes
// and every cert_info value to inspect.MaxInfoBytes, so no line comes near
// the megabytes the names would otherwise take.
func TestHostileNamesMakeBoundedLines(t *testing.T) {
	dir := t.TempDir()
	huge := strings.Repeat("名", 1<<20/3) // about 1 MiB of three-byte characters
	ca := testpki.New(t, nil, testpki.Options{CommonName: huge, IsCA: true})
	var names []string
	for i := range 2000 {
		names = append(names, fmt.Sprintf("host-%04d.example.org", i))
	}
	leaf := testpki.New(t, ca, testpki.Options{CommonName: huge, DNSNames: names})
	testpki.WriteFile(t, dir, "hostile.pem", testpki.PEM(leaf, ca))
	e := newTestExporter(t, dir, "global:\n  max_file_size: 16MiB\nfiles:\n  - paths: [hostile.pem]\n", nil)
	h := e.MetricsHandler(prometheus.NewRegistry())

	protoFormat := expfmt.NewFormat(expfmt.TypeProtoDelim)
	for scrape := 1; scrape <= 2; scrape++ { // the second from the cache
		_, pb := get(t, h, string(protoFormat), "")
		families := decode(t, pb, protoFormat)
		_, text := get(t, h, "text/plain;version=0.0.4", "")
		if got, want := samples(decode(t, text, expfmt.NewFormat(expfmt.TypeTextPlain))), samples(families); !slices.Equal(got, want) {
			t.Fatalf("scrape %d: text and protobuf differ:\n%s", scrape, diff(want, got))
		}
		// Each label is within its limit; a line holds a few of them.
		for _, line := range strings.Split(string(text), "\n") {
			if len(line) > 16<<10 {
				t.Fatalf("scrape %d: a line of %d bytes: %.200s...", scrape, len(line), line)
			}
		}
		mf := families[nameCertInfo]
		if mf == nil || len(mf.GetMetric()) != 2 {
			t.Fatalf("scrape %d: want two cert_info series, got %v; target errors: %v", scrape, mf, families[nameTargetError])
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				limit := inspect.MaxInfoBytes
				if lp.GetName() == "subject_cn" || lp.GetName() == "issuer_cn" {
					limit = inspect.MaxNameBytes
				}
				if v := lp.GetValue(); len(v) > limit {
					t.Errorf("scrape %d: %s is %d bytes, over %d", scrape, lp.GetName(), len(v), limit)
				}
				switch lp.GetName() {
				case "subject_cn", "issuer_cn", "subject", "issuer":
					if !strings.HasSuffix(lp.GetValue(), inspect.CutMark) {
						t.Errorf("scrape %d: %s is not marked as cut: ...%s", scrape, lp.GetName(), lp.GetValue()[max(0, len(lp.GetValue())-20):])
					}
				}
			}
		}
	}
}
