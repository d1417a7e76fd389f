//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/certwatch/certwatch/internal/childproc"
	"github.com/certwatch/certwatch/internal/kubetest"
	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/shard"
	kubesrc "github.com/certwatch/certwatch/source/kubernetes"
)

// Figure 4: the Kubernetes source against a real kube-apiserver and etcd
// (internal/kubetest): N kubernetes.io/tls Secrets in each of two
// namespaces, identical but for the size of a junk key (4 KiB and 64 KiB).
// One child process per namespace starts the source, waits for sync,
// measures the live heap it holds and scrapes, R times.
func runKube(args []string) {
	fs := flag.NewFlagSet("kube", flag.ExitOnError)
	var c common
	c.register(fs)
	n := fs.Int("secrets", 10000, "Secrets per namespace")
	parallel := fs.Int("create-concurrency", 16, "concurrent create requests")
	everyKind := fs.Bool("every-kind", false, "also watch CertificateSigningRequests, select the namespace by a namespace_selector and expose a label and an annotation (the Secrets' figures with those informers on)")
	parseFlags(fs, args)

	tb := newTB()
	fig := newFigure("kube", c.runs)
	logf("starting kube-apiserver %s and etcd (binaries from %s)", kubetest.KubeVersion, kubetest.BinDir())
	cluster := kubetest.Start(tb)
	kubeconfig := cluster.AdminKubeconfig(tb)
	p := loadOrCreatePKI(tb, filepath.Join(c.cache, "pki"))

	// Every Secret: tls.crt (leaf + intermediate), tls.key, ca.crt (root),
	// a cert-manager annotation, and junk.bin of the namespace's size.
	start := time.Now()
	data := issueKubeSecrets(tb, p, *n)
	sizes := []struct {
		ns   string
		junk int
	}{{"bench-4k", 4 << 10}, {"bench-64k", 64 << 10}}
	for _, sz := range sizes {
		createKubeSecrets(tb, cluster, sz.ns, data, sz.junk, *parallel)
	}
	fig.comment("kube-apiserver %s + etcd from internal/kubetest on loopback; %d kubernetes.io/tls Secrets per namespace "+
		"(tls.crt leaf+intermediate, tls.key, ca.crt root, cert-manager annotation) created in %.0f s", kubetest.KubeVersion, *n, time.Since(start).Seconds())
	fig.comment("in process, one child per namespace: kubernetes.New + Start with client-go (QPS 20, burst 40 as the flag defaults), " +
		"held memory = live heap after GC with the source synced and scraped, minus the heap before it")
	if *everyKind {
		fig.comment("-every-kind: CertificateSigningRequests and Namespaces watched too, the namespace chosen by a namespace_selector, " +
			"one label and one annotation exposed; cert-manager auto (its API not served here)")
	}

	held := map[string]float64{}
	for _, sz := range sizes {
		out := filepath.Join(os.TempDir(), fmt.Sprintf("certwatch-bench-kube-%s-%d.json", sz.ns, os.Getpid()))
		cmd := exec.Command(self(), "kube-one", "-kubeconfig", kubeconfig, "-ns", sz.ns, "-n", strconv.Itoa(*n),
			"-junk", strconv.Itoa(sz.junk), "-runs", strconv.Itoa(c.runs), "-out", out, "-profile", c.profile,
			"-every-kind="+strconv.FormatBool(*everyKind))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := childproc.Start(cmd); err != nil {
			fatalf("%v", err)
		}
		if err := cmd.Wait(); err != nil {
			fatalf("kube-one %s: %v", sz.ns, err)
		}
		var part Figure
		raw, err := os.ReadFile(out)
		if err != nil || json.Unmarshal(raw, &part) != nil {
			fatalf("kube-one %s wrote no result", sz.ns)
		}
		_ = os.Remove(out)
		for _, r := range part.Rows {
			if r.Name == "memory held per Secret (heap after GC)" {
				held[sz.ns] = r.Value
			}
		}
		fig.Rows = append(fig.Rows, part.Rows...)
	}
	ratio := held["bench-64k"] / held["bench-4k"]
	fig.add(Row{Case: fmt.Sprintf("N=%d", *n), Name: "held memory, 64 KiB vs 4 KiB of junk per Secret", Unit: "×",
		Value: ratio}.target("≤ 1.10 (payload 16× larger)", ratio <= 1.10).
		note("%.2f vs %.2f KiB per Secret", held["bench-64k"], held["bench-4k"]))
	fig.save(c.results)
}

// kubeTLSSecret is the payload of one kubernetes.io/tls Secret, base64 as
// the API takes it: tls.crt (leaf + intermediate), tls.key, ca.crt (root).
type kubeTLSSecret struct{ crt, key, ca string }

// kubeCertsPerSecret is what each Secret holds: the leaf and intermediate
// in tls.crt, the root in ca.crt.
const kubeCertsPerSecret = 3

// issueKubeSecrets issues the certificates of n Secrets from the bench PKI
// (ECDSA leaves, app-NNNNN.bench.svc).
func issueKubeSecrets(tb *benchTB, p *benchPKI, n int) []kubeTLSSecret {
	logf("issuing %d certificates", n)
	data := make([]kubeTLSSecret, n)
	parallelDo(n, 2, func(i int) {
		leaf, issuer := p.leaf(tb, i, false, fmt.Sprintf("app-%05d.bench.svc", i), nil)
		data[i] = kubeTLSSecret{
			crt: base64.StdEncoding.EncodeToString(testpki.PEM(leaf, issuer)),
			key: base64.StdEncoding.EncodeToString(testpki.KeyPEM(tb, leaf.Key)),
			ca:  base64.StdEncoding.EncodeToString(testpki.PEM(p.ecRoot)),
		}
	})
	return data
}

// createKubeSecrets creates the namespace and one kubernetes.io/tls Secret
// per payload in it, tls-NNNNN with a cert-manager annotation, plus a
// junk.bin key of junk random bytes when junk > 0, with workers requests in
// flight.
func createKubeSecrets(tb *benchTB, cluster *kubetest.Cluster, ns string, data []kubeTLSSecret, junk, workers int) {
	cluster.EnsureNamespace(tb, ns)
	logf("creating %d Secrets with %d KiB of junk in %s", len(data), junk>>10, ns)
	var created atomic.Int64
	parallelDo(len(data), workers, func(i int) {
		name := fmt.Sprintf("tls-%05d", i)
		values := map[string]string{"tls.crt": data[i].crt, "tls.key": data[i].key, "ca.crt": data[i].ca}
		if junk > 0 {
			b := make([]byte, junk)
			_, _ = rand.Read(b)
			values["junk.bin"] = base64.StdEncoding.EncodeToString(b)
		}
		body := map[string]any{
			"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
			"metadata": map[string]any{"name": name, "annotations": map[string]string{"cert-manager.io/certificate-name": name}},
			"data":     values,
		}
		code, resp := cluster.Do(tb, http.MethodPost, "/api/v1/namespaces/"+ns+"/secrets", body)
		if code != http.StatusCreated {
			fatalf("creating %s/%s: %d %s", ns, name, code, resp)
		}
		if c := created.Add(1); c%2000 == 0 {
			logf("  %d/%d", c, len(data))
		}
	})
}

func parallelDo(n, workers int, f func(i int)) { parallel(n, workers, func(_, i int) { f(i) }) }

func runKubeOne(args []string) {
	fs := flag.NewFlagSet("kube-one", flag.ExitOnError)
	var c common
	c.register(fs)
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig")
	ns := fs.String("ns", "", "namespace")
	n := fs.Int("n", 0, "Secrets expected")
	junk := fs.Int("junk", 0, "junk bytes per Secret (for the report)")
	out := fs.String("out", "", "where to write the figure")
	everyKind := fs.Bool("every-kind", false, "see kube -every-kind")
	parseFlags(fs, args)

	restCfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fatalf("%v", err)
	}
	restCfg.QPS, restCfg.Burst, restCfg.UserAgent = 20, 40, "certwatch" // as kubeclient.RESTConfig with the flag defaults
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		fatalf("%v", err)
	}
	dyn, err := dynamic.NewForConfig(restCfg)
	if err != nil {
		fatalf("%v", err)
	}
	cfg := parseConfig(fmt.Sprintf("kubernetes:\n  secrets:\n    namespaces: [%q]\n", *ns))
	if *everyKind {
		// The API server labels every namespace with its name.
		cfg = parseConfig(fmt.Sprintf("kubernetes:\n  secrets:\n    namespaces: [%[1]q]\n    namespace_selector: kubernetes.io/metadata.name=%[1]s\n"+
			"  csrs: true\n  expose_labels: [team]\n  expose_annotations: [cert-manager.io/certificate-name]\n", *ns))
	}
	const certsPerSecret = kubeCertsPerSecret
	cs := fmt.Sprintf("%s, %d KiB junk", *ns, *junk>>10)
	fig := newFigure("kube", c.runs)

	var syncs, perSecret, perCert, coldScrape, warmScrape, rss, requests []float64
	for r := range c.runs {
		before := heapAfterGC()
		src, err := kubesrc.New(*cfg.Kubernetes, shard.Shard{}, client, dyn, benchLogger())
		if err != nil {
			fatalf("%v", err)
		}
		start := time.Now()
		src.Start()
		for !src.Synced() || src.Objects() < *n {
			if time.Since(start) > 5*time.Minute {
				fatalf("not synced after 5 minutes: %d of %d objects", src.Objects(), *n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		syncs = append(syncs, time.Since(start).Seconds())
		x := newInProcess(cfg, src)
		res := scrape(x.handler, "/metrics", acceptText, time.Minute, true)
		checkStatus(res)
		e := parseText(res.body)
		if got := e.series["certwatch_cert_info"]; got != certsPerSecret**n {
			fatalf("%d certificates reported, expected %d (%v)", got, certsPerSecret**n, e.values)
		}
		res.body = nil
		coldScrape = append(coldScrape, ms(res.total))
		var warm []float64
		before10 := apiRequests(client)
		for range 10 {
			warm = append(warm, ms(scrape(x.handler, "/metrics", acceptText, time.Minute, false).total))
		}
		requests = append(requests, (apiRequests(client)-before10)/10)
		warmScrape = append(warmScrape, median(warm))
		after := heapAfterGC()
		debug.FreeOSMemory() // what stays resident, without pages freed but not yet returned
		rss = append(rss, float64(procStatus(os.Getpid(), "VmRSS"))/(1<<20))
		perSecret = append(perSecret, float64(int64(after)-int64(before))/float64(*n)/1024)
		perCert = append(perCert, float64(int64(after)-int64(before))/float64(certsPerSecret**n)/1024)
		if r == 0 {
			heapProfile(c.profile, "kube-"+*ns+"-heap")
		}
		logf("  %s run %d: synced in %.2f s, %.2f KiB per Secret, first scrape %.0f ms, steady %.0f ms",
			cs, r+1, syncs[r], perSecret[r], coldScrape[r], warmScrape[r])
		src.Stop()
		runtimeKeepAlive(x)
	}
	fig.add(measured(cs, "time from start to ready (informers synced, every Secret parsed)", "s", syncs))
	fig.add(measured(cs, "memory held per Secret (heap after GC)", "KiB", perSecret).
		note("informer cache, parsed certificates, verdicts; %d certificates per Secret", certsPerSecret))
	fig.add(measured(cs, "memory held per certificate (heap after GC)", "KiB", perCert).target("< 4 KiB", median(perCert) < 4))
	fig.add(measured(cs, "/metrics, first scrape", "ms", coldScrape).note("every chain verified"))
	fig.add(measured(cs, "/metrics, steady", "ms", warmScrape))
	fig.add(measured(cs, "process resident memory (VmRSS), synced and scraped", "MiB", rss).
		note("the whole process (Go runtime, client-go, caches), after debug.FreeOSMemory; peak VmHWM %.0f MiB, during the initial list",
			float64(procStatus(os.Getpid(), "VmHWM"))/(1<<20)))
	fig.add(measured(cs, "API requests per /metrics scrape", "", requests).
		target("0", median(requests) == 0).note("apiserver_request_total for secrets, before and after 10 scrapes"))
	data, _ := json.Marshal(fig)
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		fatalf("%v", err)
	}
}

// apiRequests sums the API server's apiserver_request_total for Secrets,
// every verb: what the scrapes between two readings cost the API server.
func apiRequests(client kubernetes.Interface) float64 {
	body, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		fatalf("reading the API server's metrics: %v", err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		fatalf("parsing the API server's metrics: %v", err)
	}
	total := 0.0
	for _, m := range families["apiserver_request_total"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "resource" && lp.GetValue() == "secrets" {
				total += m.GetCounter().GetValue()
			}
		}
	}
	if total == 0 {
		fatalf("apiserver_request_total counts no Secret request: the figure would prove nothing")
	}
	return total
}
