package spiffe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// TestBundleEndpointWeb fetches a bundle from an https_web endpoint (a real
// TLS server with a Web PKI chain of the test's own CA): the authorities,
// refresh hint and sequence number are reported; when the endpoint stops
// answering, the last bundle stays reported with the failure's class; a
// redirect and an oversized answer are refused.
func TestBundleEndpointWeb(t *testing.T) {
	chain := testpki.NewChain(t, testpki.Options{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, testpki.PEM(chain.Root), 0o600); err != nil {
		t.Fatal(err)
	}
	partner := newTrustDomain(t, "partner.test")
	b := spiffebundle.FromX509Authorities(spiffeid.RequireTrustDomainFromString("partner.test"), []*x509.Certificate{partner.ca.Cert})
	b.SetRefreshHint(90 * time.Second)
	b.SetSequenceNumber(7)
	jwks, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var mode atomic.Value // "ok", "redirect", "huge"
	mode.Store("ok")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load() {
		case "redirect":
			http.Redirect(w, r, "https://elsewhere.example/bundle", http.StatusFound)
		case "huge":
			w.Write([]byte(`{"keys":[`))
			w.Write([]byte(strings.Repeat(" ", maxBundleBytes)))
		default:
			w.Write(jwks)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(chain.Leaf, chain.Intermediate)}}
	srv.StartTLS()
	defer srv.Close()

	cfg := config.BundleEndpoint{TrustDomain: "partner.test", URL: srv.URL + "/bundle", Profile: config.ProfileHTTPSWeb,
		CAFile: caFile, RefreshInterval: config.Duration(time.Minute)}
	fetch := func(t *testing.T) source.Result {
		t.Helper()
		f := newFetcher(cfg, promslog.NewNopLogger())
		bundle, err := f.fetch(context.Background(), nil)
		f.record(bundle, err)
		s := &Source{fetchers: []fetched{{cfg: cfg, f: f}}}
		return s.Scrape(context.Background())
	}

	res := fetch(t)
	if len(res.Findings) != 1 {
		t.Fatalf("findings: %s", describe(res))
	}
	got := res.Findings[0]
	if got.Err != nil || got.Source != source.KindSPIFFEBundle || got.Target != "partner.test" || got.Key != cfg.URL ||
		len(got.Certs) != 1 || !got.Certs[0].Equal(partner.ca.Cert) {
		t.Fatalf("bundle place: %+v err %v", got.Place, got.Err)
	}
	for name, want := range map[string]float64{nameBundleUp: 1, nameBundleHint: 90, nameBundleSerial: 7} {
		if v, ok := sample(res, name, "partner.test", cfg.URL); !ok || v != want {
			t.Errorf("%s = %v, %v; want %v", name, v, ok, want)
		}
	}
	if _, ok := sample(res, nameBundleFetch, "partner.test", cfg.URL); !ok {
		t.Errorf("no %s", nameBundleFetch)
	}

	for _, tc := range []struct {
		mode string
		want source.Class
	}{
		{"redirect", source.ClassUnknown},
		{"huge", source.ClassTooLarge},
	} {
		mode.Store(tc.mode)
		res := fetch(t)
		if f := res.Findings[0]; source.ClassOf(f.Err) != tc.want {
			t.Errorf("%s: class %q (%v), want %q", tc.mode, source.ClassOf(f.Err), f.Err, tc.want)
		}
		if v, _ := sample(res, nameBundleUp, "partner.test", cfg.URL); v != 0 {
			t.Errorf("%s: up = %v", tc.mode, v)
		}
	}

	// A fetcher that had a bundle keeps reporting it when the endpoint
	// goes away, with the failure's class.
	mode.Store("ok")
	f := newFetcher(cfg, promslog.NewNopLogger())
	bundle, err := f.fetch(context.Background(), nil)
	f.record(bundle, err)
	srv.Close()
	bundle, err = f.fetch(context.Background(), nil)
	f.record(bundle, err)
	s := &Source{fetchers: []fetched{{cfg: cfg, f: f}}}
	res = s.Scrape(context.Background())
	if got := res.Findings[0]; len(got.Certs) != 1 || source.ClassOf(got.Err) != source.ClassRefused {
		t.Errorf("after the endpoint stopped: %d certificates, class %q (%v)", len(got.Certs), source.ClassOf(got.Err), got.Err)
	}
	if v, _ := sample(res, nameBundleUp, "partner.test", cfg.URL); v != 0 {
		t.Errorf("up = %v after the endpoint stopped", v)
	}
}
