package collector

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// TestSnapshot checks that every way of collecting publishes the same
// judged snapshot: Refresh before any scrape, a scrape in a text format
// (the rendered-place cache) and one in protobuf (the registry).
func TestSnapshot(t *testing.T) {
	dir := t.TempDir()
	testpki.WriteFile(t, dir, "good.pem", testpki.PEM(testpki.New(t, nil, testpki.Options{CommonName: "good"})))
	testpki.WriteFile(t, dir, "old.pem", testpki.PEM(testpki.New(t, nil, testpki.Options{CommonName: "old",
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})))
	testpki.WriteFile(t, dir, "junk.pem", []byte("-----BEGIN CERTIFICATE-----\nnot base64\n"))
	e := newTestExporter(t, dir, "files:\n  - paths: ['*.pem']\n", nil)
	if e.Snapshot() != nil {
		t.Fatal("a snapshot before anything was collected")
	}
	check := func(how string, s *Snapshot) {
		t.Helper()
		if s == nil || s != e.Snapshot() {
			t.Fatalf("%s: snapshot %p not published (have %p)", how, s, e.Snapshot())
		}
		got := map[string]string{}
		for _, p := range s.Places {
			what := string(p.Verdict.Reason)
			if !p.Judged() {
				what = "error:" + string(source.ClassOf(p.Err))
			}
			got[filepath.Base(p.Target)] = what
		}
		want := map[string]string{"good.pem": "ok", "old.pem": "expired", "junk.pem": "error:parse"}
		if len(got) != len(want) || len(s.Places) != len(want) {
			t.Errorf("%s: places %v, want %v", how, got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s is %q, want %q", how, k, got[k], v)
			}
		}
		if len(s.Collectors) != 2 || s.Collectors[1].Name != source.KindFile || !s.Collectors[1].OK {
			t.Errorf("%s: collectors %+v", how, s.Collectors)
		}
	}
	check("refresh", e.Refresh(context.Background()))
	h := e.MetricsHandler(prometheus.NewRegistry())
	for _, format := range []expfmt.Format{expfmt.NewFormat(expfmt.TypeTextPlain), expfmt.NewFormat(expfmt.TypeProtoDelim)} {
		before := e.Snapshot()
		get(t, h, string(format), "")
		if e.Snapshot() == before {
			t.Fatalf("%s: the scrape published no snapshot", format)
		}
		check(string(format), e.Snapshot())
	}
}
