//go:build linux

package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/certwatch/certwatch/internal/kubetest"
)

// The Kubernetes case of bench peers: certwatch and x509-certificate-exporter
// watching the same N kubernetes.io/tls Secrets on one real kube-apiserver
// and etcd (internal/kubetest), each a real process started fresh every
// round with a kubeconfig of its own ServiceAccount.
//
// Every request an exporter makes is counted by the API server itself: each
// exporter's ServiceAccount is the only subject of a FlowSchema of its own,
// and the API server's apiserver_flowcontrol_dispatched_requests_total
// counts the requests it dispatched per FlowSchema (LIST, WATCH, discovery,
// anything). The bench's own requests go as the admin (system:masters),
// which the built-in exempt FlowSchema takes, so they are never counted
// against an exporter.

const (
	kubePeersSecretsNS = "bench-peers"      // the Secrets
	kubePeersAuthNS    = "bench-peers-auth" // the exporters' ServiceAccounts
	// kubePeersQPS and kubePeersBurst are certwatch's client defaults
	// (--kube.qps, --kube.burst); x509-certificate-exporter gets the same
	// through its source's rateLimit (without one client-go's 5 and 10).
	kubePeersQPS   = 20
	kubePeersBurst = 40
)

// kubePeerFlow is the FlowSchema (and ServiceAccount) of one exporter.
func kubePeerFlow(exporter string) string { return "bench-peers-" + exporter }

// kubeAPICounts is what the API server has counted so far: requests
// dispatched per FlowSchema, and completed Secret requests per verb.
type kubeAPICounts struct {
	byFlow  map[string]float64
	secrets map[string]float64
}

// readKubeAPICounts reads the API server's own metrics as the admin.
func readKubeAPICounts(tb *benchTB, cluster *kubetest.Cluster) kubeAPICounts {
	code, body := cluster.Do(tb, http.MethodGet, "/metrics", nil)
	if code != http.StatusOK {
		fatalf("kube-apiserver /metrics: %d %s", code, lastLines(string(body), 3))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		fatalf("parsing the API server's metrics: %v", err)
	}
	c := kubeAPICounts{byFlow: map[string]float64{}, secrets: map[string]float64{}}
	for _, m := range families["apiserver_flowcontrol_dispatched_requests_total"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "flow_schema" {
				c.byFlow[lp.GetValue()] += m.GetCounter().GetValue()
			}
		}
	}
	for _, m := range families["apiserver_request_total"].GetMetric() {
		var resource, verb string
		for _, lp := range m.GetLabel() {
			switch lp.GetName() {
			case "resource":
				resource = lp.GetValue()
			case "verb":
				verb = lp.GetValue()
			}
		}
		if resource == "secrets" {
			c.secrets[verb] += m.GetCounter().GetValue()
		}
	}
	return c
}

// kubePeerIdentity makes the exporter's ServiceAccount (bound to
// cluster-admin, as an admin kubeconfig would be) and a FlowSchema matching
// it alone, ahead of every built-in schema but the exempt one and the
// probes', and sending its requests to the exempt priority level (never
// queued, as the admin's). It waits until the API server counts a request
// of that account under the schema: the counts are proven attributable
// before they are used.
func kubePeerIdentity(tb *benchTB, cluster *kubetest.Cluster, exporter string) {
	flow := kubePeerFlow(exporter)
	token := cluster.ServiceAccountToken(tb, kubePeersAuthNS, flow)
	for _, o := range []struct {
		path string
		obj  map[string]any
	}{{"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
		"metadata": map[string]any{"name": flow},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
		"subjects": []map[string]any{{"kind": "ServiceAccount", "name": flow, "namespace": kubePeersAuthNS}},
	}}, {"/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas", map[string]any{
		"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
		"metadata": map[string]any{"name": flow},
		"spec": map[string]any{
			"matchingPrecedence":         50,
			"priorityLevelConfiguration": map[string]any{"name": "exempt"},
			"rules": []map[string]any{{
				"subjects": []map[string]any{{"kind": "ServiceAccount",
					"serviceAccount": map[string]any{"namespace": kubePeersAuthNS, "name": flow}}},
				"resourceRules": []map[string]any{{"verbs": []string{"*"}, "apiGroups": []string{"*"}, "resources": []string{"*"},
					"clusterScope": true, "namespaces": []string{"*"}}},
				"nonResourceRules": []map[string]any{{"verbs": []string{"*"}, "nonResourceURLs": []string{"*"}}},
			}},
		},
	}}} {
		if code, body := cluster.Do(tb, http.MethodPost, o.path, o.obj); code != http.StatusCreated && code != http.StatusConflict {
			fatalf("creating %s for %s: %d %s", o.path, exporter, code, body)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		before := readKubeAPICounts(tb, cluster)
		code, body := cluster.DoAs(tb, token, http.MethodGet, "/api/v1/namespaces/"+kubePeersSecretsNS+"/secrets?limit=1", nil)
		if code != http.StatusOK {
			fatalf("%s's ServiceAccount cannot list Secrets: %d %s", exporter, code, lastLines(string(body), 3))
		}
		if after := readKubeAPICounts(tb, cluster); after.byFlow[flow]-before.byFlow[flow] == 1 {
			return
		}
		if time.Now().After(deadline) {
			fatalf("the API server does not count %s's requests under FlowSchema %s: the request counts would prove nothing", exporter, flow)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// peersKube runs the Kubernetes case with n Secrets.
func peersKube(fig *Figure, c *common, n, scrapes, workers int, bin string, peers map[string]string) {
	cs := fmt.Sprintf("Kubernetes N=%d Secrets", n)
	if os.Getenv(kubetest.SkipEnv) == "1" {
		fig.comment("%s: left out (%s=1)", cs, kubetest.SkipEnv)
		return
	}
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(kubetest.BinDir(), b)); err != nil {
			fig.comment("%s: left out: no %s in %s (scripts/kube-tools.sh builds it)", cs, b, kubetest.BinDir())
			return
		}
	}
	x := peers[peerX509.name]
	if x == "" {
		fig.comment("%s: no peer to compare with", cs)
		return
	}

	tb := newTB()
	defer tb.close() // the cluster goes when the case is done
	logf("peers: starting kube-apiserver %s and etcd (binaries from %s)", kubetest.KubeVersion, kubetest.BinDir())
	cluster := kubetest.Start(tb)
	start := time.Now()
	data := issueKubeSecrets(tb, loadOrCreatePKI(tb, filepath.Join(c.cache, "pki")), n)
	createKubeSecrets(tb, cluster, kubePeersSecretsNS, data, 0, workers)
	data = nil
	created := time.Since(start)
	for _, e := range []string{"certwatch", peerX509.name} {
		kubePeerIdentity(tb, cluster, e)
	}
	certs := kubeCertsPerSecret * n
	work := tb.TempDir()

	// before holds the API server's counts read just before each exporter's
	// process starts (the exporters run one at a time).
	before := map[string]kubeAPICounts{}
	kubeconfig := func(exporter string) string {
		return cluster.Kubeconfig(tb, cluster.ServiceAccountToken(tb, kubePeersAuthNS, kubePeerFlow(exporter)))
	}

	cwCfg := filepath.Join(work, "certwatch.yml")
	writeFile(cwCfg, "kubernetes:\n  secrets: {}\n")
	x509Cfg := filepath.Join(work, "x509.yaml")
	cases := []peerCase{{
		name: "certwatch",
		start: func() *peerProcess {
			kc := kubeconfig("certwatch")
			before["certwatch"] = readKubeAPICounts(tb, cluster)
			return startPeer("certwatch", bin, func(addr string) []string {
				return []string{"--config.file=" + cwCfg, "--web.listen-address=" + addr, "--log.level=warn",
					"--kubeconfig=" + kc, fmt.Sprintf("--kube.qps=%d", kubePeersQPS), fmt.Sprintf("--kube.burst=%d", kubePeersBurst)}
			})
		},
		readyPath: "/-/ready",
		answer:    countedAnswer("certwatch", "certwatch_cert_info", certs),
	}, {
		name: peerX509.name,
		start: func() *peerProcess {
			kc := kubeconfig(peerX509.name)
			before[peerX509.name] = readKubeAPICounts(tb, cluster)
			return startPeer(peerX509.name, x, func(addr string) []string {
				// Its chart's default Secret rule (kubernetes.io/tls, tls.crt)
				// plus ca.crt, which certwatch reads too; the type becomes a
				// server-side field selector, as certwatch's does.
				writeFile(x509Cfg, fmt.Sprintf(`server:
  listen: %q
log:
  level: warn
sources:
  - kind: kubernetes
    name: bench
    kubeconfig: %q
    rateLimit:
      qps: %d
      burst: %d
    secrets:
      types:
        - type: kubernetes.io/tls
          keyPatterns: ['^tls\.crt$', '^ca\.crt$']
          format: pem
`, addr, kc, kubePeersQPS, kubePeersBurst))
				return []string{"--config=" + x509Cfg}
			})
		},
		readyPath: "/readyz",
		answer:    countedAnswer("x509-certificate-exporter", "x509_cert_not_after", certs),
	}}

	logf("peers: %d Secrets (%d certificates), %d rounds", n, certs, c.runs)
	lists := map[string][]float64{} // LISTs of Secrets from start to ready, per round
	runs, timeouts := peerRounds(c.runs, cases, coldLimit, func(r int, pc peerCase, p *peerProcess, cold time.Duration, e peerAnswer) peerRun {
		ready := readKubeAPICounts(tb, cluster)
		rssReady := float64(procStatus(p.pid(), "VmRSS")) / (1 << 20)
		flow := kubePeerFlow(pc.name)
		b := before[pc.name]
		lists[pc.name] = append(lists[pc.name], ready.secrets["LIST"]-b.secrets["LIST"])
		if pc.name == "certwatch" {
			checkKubeVerdicts(e, n)
		}

		pc.answer(p) // one warm-up answer: caches filled, as after any first scrape
		warm0 := readKubeAPICounts(tb, cluster)
		var walls []float64
		cpu0 := procCPU(p.pid())
		for range scrapes {
			ok, _, wall := pc.answer(p)
			if !ok {
				fatalf("%s: a warm answer was incomplete", pc.name)
			}
			walls = append(walls, ms(wall))
		}
		cpu := procCPU(p.pid()) - cpu0
		warm1 := readKubeAPICounts(tb, cluster)
		run := peerRun{cold: cold.Seconds(), warm: median(walls), cpu: ms(cpu) / float64(scrapes),
			rss: float64(procStatus(p.pid(), "VmRSS")) / (1 << 20), peak: float64(procStatus(p.pid(), "VmHWM")) / (1 << 20),
			rssReady: rssReady, series: e.own, listen: ms(p.listen),
			apiStart:  ready.byFlow[flow] - b.byFlow[flow],
			apiScrape: (warm1.byFlow[flow] - warm0.byFlow[flow]) / float64(scrapes)}
		p.stop()
		logf("  %s round %d %s: ready in %.2f s (%.0f API requests, %.0f LISTs of Secrets), RSS %.0f MiB at ready, %.0f MiB after %d scrapes (peak %.0f), "+
			"warm scrape %.0f ms, %.0f ms CPU/scrape, %.1f API requests/scrape, %d series",
			cs, r+1, pc.name, run.cold, run.apiStart, lists[pc.name][r], run.rssReady, run.rss, scrapes, run.peak, run.warm, run.cpu, run.apiScrape, run.series)
		return run
	})

	fig.comment("%s: kube-apiserver %s + etcd from internal/kubetest on loopback; %d kubernetes.io/tls Secrets in one namespace "+
		"(tls.crt leaf+intermediate, tls.key, ca.crt root, cert-manager annotation; %d certificates) created once in %.0f s; "+
		"each exporter watches them cluster-wide with its own ServiceAccount (cluster-admin) and client limits QPS %d, burst %d",
		cs, kubetest.KubeVersion, n, certs, created.Seconds(), kubePeersQPS, kubePeersBurst)
	fig.comment("%s: ready = process start until /metrics reports every certificate (certwatch: /-/ready, then certwatch_cert_info; "+
		"x509-certificate-exporter: /readyz, then x509_cert_not_after); API requests are counted by the API server "+
		"(apiserver_flowcontrol_dispatched_requests_total of a FlowSchema per exporter's ServiceAccount: every request, watches included)", cs)
	fig.comment("%s: only certwatch verifies chains (tls.crt against the Secret's ca.crt, every chain ok); x509-certificate-exporter "+
		"reads tls.crt and ca.crt (its default rule has tls.crt alone) and reports x509_cert_not_after and x509_cert_expired per certificate; "+
		"it lists in pages of 50 (its default listPageSize), then watches; certwatch's informer has the initial state streamed in its one watch "+
		"(client-go's WatchList, which this API server serves)", cs)

	measures := []peerMeasure{
		{name: "process start until listening", unit: "ms", get: func(r peerRun) float64 { return r.listen }},
		{name: "time to ready (first complete /metrics)", unit: "s", get: func(r peerRun) float64 { return r.cold },
			target: "certwatch faster (ratio > 1)", pass: peerRatioAbove1, bound: true},
		{name: "RSS at ready", unit: "MiB", get: func(r peerRun) float64 { return r.rssReady },
			target: "certwatch lower (ratio > 1)", pass: peerRatioAbove1},
		{name: "RSS after warm scrapes", unit: "MiB", get: func(r peerRun) float64 { return r.rss },
			target: "certwatch lower (ratio > 1)", pass: peerRatioAbove1},
		{name: "peak RSS (VmHWM)", unit: "MiB", get: func(r peerRun) float64 { return r.peak }},
		{name: "warm scrape wall time", unit: "ms", get: func(r peerRun) float64 { return r.warm }},
		{name: "CPU per warm scrape", unit: "ms", get: func(r peerRun) float64 { return r.cpu }},
		{name: "API requests, start to ready", unit: "", get: func(r peerRun) float64 { return r.apiStart }},
		{name: "API requests per warm scrape", unit: "", get: func(r peerRun) float64 { return r.apiScrape },
			own: "0", ownPass: func(v float64) bool { return v == 0 }},
	}
	addPeerMeasures(fig, cs, cases, runs, timeouts, measures)
	for _, pc := range cases {
		if ls := lists[pc.name]; len(ls) > 0 {
			fig.comment("%s: %s made %.0f LIST requests of Secrets from start to ready (median; apiserver_request_total)", cs, pc.name, median(ls))
		}
	}
	addPeerSeries(fig, cs, n, "Secret", cases, runs, false)
}

// checkKubeVerdicts checks certwatch's first complete answer: every
// tls.crt chain verified ok against its Secret's ca.crt.
func checkKubeVerdicts(e peerAnswer, n int) {
	ok := 0
	for _, l := range e.lines {
		if strings.HasPrefix(l, "certwatch_chain_valid{") && strings.Contains(l, `key="tls.crt"`) &&
			strings.Contains(l, `reason="ok"`) && strings.HasSuffix(l, " 1") {
			ok++
		}
	}
	if ok != n {
		fatalf("certwatch: %d tls.crt chains verified ok, expected %d", ok, n)
	}
}
