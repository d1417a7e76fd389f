package main

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/certwatch/certwatch/internal/spiretest"
)

// TestSPIFFEAgainstSPIRE runs the binary against real SPIRE servers and
// agents: SVIDs and bundles appear with their dates and verdicts, a
// short-lived SVID is rotated and the new dates replace the old, a
// federated trust domain's bundle arrives through the Workload API and from
// its bundle endpoint, an agent that stops gives its class and stale data,
// one that restarts recovers, and an agent with no entry for certwatch
// gives no_identity.
func TestSPIFFEAgainstSPIRE(t *testing.T) {
	a := spiretest.StartServer(t, spiretest.ServerOptions{TrustDomain: "a.test", BundleEndpoint: true})
	b := spiretest.StartServer(t, spiretest.ServerOptions{TrustDomain: "b.test", BundleEndpoint: true})
	a.Federate(t, b)
	agent := spiretest.StartAgent(t, a)
	const shortTTL = 20 * time.Second
	const short, long = "spiffe://a.test/certwatch", "spiffe://a.test/certwatch-web"
	a.CreateEntry(t, spiretest.Entry{SPIFFEID: short, ParentID: agent.ID(), Selectors: []string{spiretest.UIDSelector()},
		X509SVIDTTL: shortTTL, FederatesWith: []string{"b.test"}})
	a.CreateEntry(t, spiretest.Entry{SPIFFEID: long, ParentID: agent.ID(), Selectors: []string{spiretest.UIDSelector()},
		X509SVIDTTL: time.Hour, Hint: "web"})
	a.WaitBundleFetched(t, b)
	// An agent of b.test, where nothing is registered for certwatch.
	lonely := spiretest.StartAgent(t, b)

	dir := t.TempDir()
	bootstrap := filepath.Join(dir, "b-bundle.pem")
	writeFile(t, bootstrap, b.BundlePEM(t))
	cfg := filepath.Join(dir, "config.yml")
	writeFile(t, cfg, fmt.Appendf(nil, `spiffe:
  workload_api:
    - address: %s
      stale_after: 2s
      labels: {node: n1}
    - address: %s
  bundle_endpoints:
    - trust_domain: b.test
      url: %s
      endpoint_spiffe_id: %s
      bundle_file: %s
      refresh_interval: 30s
`, agent.Addr(), lonely.Addr(), b.BundleEndpointURL(), b.BundleEndpointID(), bootstrap))
	p := startExporter(t, buildBinary(t), cfg)

	leaf := map[string]string{"source": "spiffe_svid", "target": agent.Addr(), "key": short, "role": "leaf"}
	wl := map[string]string{"target": agent.Addr()}
	mfs := waitForMetrics(t, p, "the SVIDs", func(mfs map[string]*dto.MetricFamily) bool {
		return len(find(mfs, "certwatch_cert_not_after_timestamp_seconds", leaf)) == 1 &&
			len(find(mfs, "certwatch_cert_not_after_timestamp_seconds", map[string]string{"key": long + "#web", "role": "leaf"})) == 1 &&
			len(find(mfs, "certwatch_spiffe_bundle_last_refresh_timestamp_seconds", nil)) == 1 &&
			// the lonely agent has answered too (before its first answer
			// it is reported as still connecting)
			len(find(mfs, "certwatch_spiffe_workload_api_errors_total", map[string]string{"target": lonely.Addr()})) > 0
	})
	for _, key := range []string{short, long + "#web"} {
		if m := one(t, mfs, "certwatch_chain_valid", map[string]string{"source": "spiffe_svid", "key": key}); m.GetGauge().GetValue() != 1 {
			t.Errorf("%s: chain_valid reason %q", key, label(m, "reason"))
		}
	}
	if m := one(t, mfs, "certwatch_target_success", map[string]string{"source": "spiffe_svid", "target": agent.Addr()}); m.GetGauge().GetValue() != 1 || label(m, "node") != "n1" {
		t.Errorf("target_success %v, node %q", m.GetGauge().GetValue(), label(m, "node"))
	}
	// The local bundle, and b.test's through the Workload API (federated
	// with the short entry) and from its bundle endpoint.
	for _, where := range []map[string]string{
		{"target": "a.test", "key": agent.Addr()},
		{"target": "b.test", "key": agent.Addr()},
		{"target": "b.test", "key": b.BundleEndpointURL()},
	} {
		where["source"] = "spiffe_bundle"
		got := find(mfs, "certwatch_cert_not_after_timestamp_seconds", where)
		if len(got) == 0 || label(got[0], "role") != "anchor" {
			t.Errorf("bundle %v: %d authorities", where, len(got))
		}
		if m := one(t, mfs, "certwatch_chain_valid", where); m.GetGauge().GetValue() != 1 {
			t.Errorf("bundle %v: reason %q", where, label(m, "reason"))
		}
	}
	endpoint := map[string]string{"target": "b.test", "key": b.BundleEndpointURL()}
	if v := one(t, mfs, "certwatch_spiffe_bundle_endpoint_up", endpoint).GetGauge().GetValue(); v != 1 {
		t.Errorf("bundle_endpoint_up %v", v)
	}
	one(t, mfs, "certwatch_spiffe_bundle_refresh_hint_seconds", endpoint)
	one(t, mfs, "certwatch_spiffe_bundle_sequence_number", endpoint)
	if v := one(t, mfs, "certwatch_spiffe_workload_api_up", wl).GetGauge().GetValue(); v != 1 {
		t.Errorf("workload_api_up %v", v)
	}
	one(t, mfs, "certwatch_spiffe_workload_api_last_update_timestamp_seconds", wl)
	// No registration entry on b.test's agent.
	if m := one(t, mfs, "certwatch_target_error_info", map[string]string{"source": "spiffe_svid", "target": lonely.Addr()}); label(m, "class") != "no_identity" {
		t.Errorf("agent without an entry: class %q", label(m, "class"))
	}
	one(t, mfs, "certwatch_spiffe_workload_api_errors_total", map[string]string{"target": lonely.Addr(), "class": "no_identity"})

	// Rotation: SPIRE renews the 20 s SVID at about half its lifetime; the
	// new dates replace the old ones at the next scrape.
	notBefore := one(t, mfs, "certwatch_cert_not_before_timestamp_seconds", leaf).GetGauge().GetValue()
	notAfter := one(t, mfs, "certwatch_cert_not_after_timestamp_seconds", leaf).GetGauge().GetValue()
	due := one(t, mfs, "certwatch_spiffe_svid_rotation_due_timestamp_seconds", map[string]string{"target": agent.Addr(), "key": short}).GetGauge().GetValue()
	if want := notBefore + (notAfter-notBefore)/2; due < want-1 || due > want+1 {
		t.Errorf("rotation due %v, want %v", due, want)
	}
	var seen time.Time
	mfs = waitForMetrics(t, p, "the rotated SVID", func(mfs map[string]*dto.MetricFamily) bool {
		got := find(mfs, "certwatch_cert_not_after_timestamp_seconds", leaf)
		seen = time.Now()
		return len(got) == 1 && got[0].GetGauge().GetValue() > notAfter
	})
	newNotBefore := one(t, mfs, "certwatch_cert_not_before_timestamp_seconds", leaf).GetGauge().GetValue()
	life := notAfter - notBefore
	elapsed := float64(seen.Unix()) - notBefore
	t.Logf("rotation timeline: SVID not_before %s, not_after %s (lifetime %.0fs); the new SVID (not_before %s) reached /metrics at %s, %.0f%% into the old one's lifetime",
		unixTime(notBefore), unixTime(notAfter), life, unixTime(newNotBefore), seen.UTC().Format(time.RFC3339), 100*elapsed/life)
	if elapsed/life > 0.8 {
		t.Errorf("the rotation reached /metrics %.0f%% into the SVID's lifetime", 100*elapsed/life)
	}

	// The agent stops: up drops, its class is counted, and past
	// stale_after the last SVIDs are still reported, marked stale.
	agent.Stop(t)
	mfs = waitForMetrics(t, p, "stale SVIDs", func(mfs map[string]*dto.MetricFamily) bool {
		return len(find(mfs, "certwatch_target_error_info", map[string]string{"source": "spiffe_svid", "target": agent.Addr(), "class": "stale"})) == 1
	})
	if v := one(t, mfs, "certwatch_spiffe_workload_api_up", wl).GetGauge().GetValue(); v != 0 {
		t.Errorf("workload_api_up %v with the agent stopped", v)
	}
	if len(find(mfs, "certwatch_cert_not_after_timestamp_seconds", leaf)) != 1 {
		t.Error("the stale SVID's dates are gone")
	}
	failures := 0.0
	for _, m := range find(mfs, "certwatch_spiffe_workload_api_errors_total", wl) {
		failures += m.GetCounter().GetValue()
		t.Logf("with the agent stopped: errors_total{class=%q} %v", label(m, "class"), m.GetCounter().GetValue())
	}
	if failures == 0 {
		t.Error("no stream failure counted")
	}

	// It restarts: the stream comes back and the data is current again.
	agent.Start(t)
	waitForMetrics(t, p, "recovery", func(mfs map[string]*dto.MetricFamily) bool {
		up := find(mfs, "certwatch_spiffe_workload_api_up", wl)
		ok := find(mfs, "certwatch_target_success", map[string]string{"source": "spiffe_svid", "target": agent.Addr()})
		return len(up) == 1 && up[0].GetGauge().GetValue() == 1 && len(ok) == 1 && ok[0].GetGauge().GetValue() == 1
	})
}

func unixTime(v float64) string { return time.Unix(int64(v), 0).UTC().Format(time.RFC3339) }
