package collector

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/kubernetes"
)

// Metric names and help texts. They are an API: dashboards, alerts and users
// depend on them; README.md documents each one.
const (
	nameCertNotAfter   = "certwatch_cert_not_after_timestamp_seconds"
	nameCertNotBefore  = "certwatch_cert_not_before_timestamp_seconds"
	nameCertInfo       = "certwatch_cert_info"
	nameChainValid     = "certwatch_chain_valid"
	nameChainNotAfter  = "certwatch_chain_not_after_timestamp_seconds"
	nameTargetSuccess  = "certwatch_target_success"
	nameTargetError    = "certwatch_target_error_info"
	nameTLSVersion     = "certwatch_tls_version_info"
	nameHandshake      = "certwatch_tls_handshake_duration_seconds"
	nameCollectorTime  = "certwatch_collector_duration_seconds"
	nameCollectorOK    = "certwatch_collector_success"
	nameKubeSynced     = "certwatch_kubernetes_informer_synced"
	nameKubeWatchErrs  = "certwatch_kubernetes_watch_errors_total"
	helpKubeSynced     = "Whether the Kubernetes informer has completed its first list (1) or not yet (0); namespace is empty for cluster-wide informers."
	helpKubeWatchErrs  = "List and watch failures of the Kubernetes informer, by error class (permission for RBAC denials)."
	helpCertNotAfter   = "Unix time after which the certificate is no longer valid."
	helpCertNotBefore  = "Unix time before which the certificate is not yet valid."
	helpCertInfo       = "Attributes of the certificate that change across renewals (value is always 1)."
	helpChainValid     = "Whether the chain at this place verified (1) or not (0); reason says why not, ok when valid."
	helpChainNotAfter  = "Earliest not-after of the chain the place relies on: the moment it breaks."
	helpTargetSuccess  = "Whether the target could be read or probed (1) or not (0)."
	helpTargetError    = "Why the target could not be read or probed (value is always 1, present only on failure)."
	helpTLSVersion     = "TLS version and cipher suite negotiated with the endpoint (value is always 1)."
	helpHandshake      = "Duration of the TLS handshake with the endpoint, in seconds."
	helpCollectorTime  = "Duration of the collector's part of this scrape, in seconds."
	helpCollectorOK    = "Whether the collector finished within the scrape (1) or failed or was cut short (0)."
	maxLabelValueBytes = 1024
)

var (
	targetLabels = []string{"source", "target"}
	placeLabels  = []string{"source", "target", "key"}
	certLabels   = []string{"source", "target", "key", "index", "subject_cn", "issuer_cn"}
	infoLabels   = []string{"serial", "fingerprint_sha256", "subject", "issuer", "dns_names", "ip_addresses",
		"uris", "email_addresses", "key_algorithm", "key_bits", "signature_algorithm", "is_ca", "self_signed"}
)

// emitter writes the metrics of one scrape.
type emitter struct {
	e  *Exporter
	ch chan<- prometheus.Metric
}

func (e *Exporter) newEmitter(ch chan<- prometheus.Metric) *emitter { return &emitter{e: e, ch: ch} }

func (em *emitter) gauge(name, help string, fixed []string, values []string, extra map[string]string, v float64) {
	names := fixed
	if len(extra) > 0 {
		keys := sortedKeys(extra)
		names = append(append(make([]string, 0, len(fixed)+len(keys)), fixed...), keys...)
		values = append(make([]string, 0, len(names)), values...)
		for _, k := range keys {
			values = append(values, extra[k])
		}
	}
	for i, v := range values {
		if !utf8.ValidString(v) { // names in a hostile certificate can be any bytes
			values[i] = strings.ToValidUTF8(v, "\uFFFD")
		}
	}
	m, err := prometheus.NewConstMetric(em.e.descs.get(name, help, names), prometheus.GaugeValue, v, values...)
	if err != nil {
		em.e.logger.Error("Dropping a series that cannot be built", "metric", name, "err", err)
		return
	}
	em.ch <- m
}

func (em *emitter) collectorStatus(name string, ok bool, took time.Duration) {
	em.gauge(nameCollectorTime, helpCollectorTime, []string{"collector"}, []string{name}, nil, took.Seconds())
	em.gauge(nameCollectorOK, helpCollectorOK, []string{"collector"}, []string{name}, nil, boolValue(ok))
}

// kubernetesStatus emits the health of every Kubernetes informer.
func (em *emitter) kubernetesStatus(statuses []kubernetes.Status) {
	for _, st := range statuses {
		em.gauge(nameKubeSynced, helpKubeSynced, []string{"resource", "namespace"}, []string{st.Resource, st.Namespace}, nil, boolValue(st.Synced))
		for _, class := range source.Classes {
			n, ok := st.WatchErrors[class]
			if !ok && class != source.ClassPermission {
				continue // permission is always present, so "RBAC denied" alerts have a series to match
			}
			m, err := prometheus.NewConstMetric(em.e.descs.get(nameKubeWatchErrs, helpKubeWatchErrs, []string{"resource", "namespace", "class"}),
				prometheus.CounterValue, n, st.Resource, st.Namespace, string(class))
			if err == nil {
				em.ch <- m
			}
		}
	}
}

// findings emits the metrics of every place. A target with several keys
// (keystore aliases, kubeconfig users) gets one success series, failed when
// any key failed.
func (em *emitter) findings(findings []source.Finding) {
	type targetState struct {
		place source.Place
		err   error
	}
	var order []string
	targets := map[string]*targetState{}
	seen := map[string]bool{}
	for _, f := range findings {
		tk := f.Source + "\x00" + f.Target
		ts, ok := targets[tk]
		if !ok {
			ts = &targetState{place: f.Place}
			targets[tk] = ts
			order = append(order, tk)
		}
		if f.Err != nil && ts.err == nil {
			ts.err = f.Err
		}
		pk := tk + "\x00" + f.Key
		if seen[pk] || len(f.Certs) == 0 {
			continue // a duplicate place would make the scrape invalid
		}
		seen[pk] = true
		em.place(f)
	}
	for _, tk := range order {
		ts := targets[tk]
		values := []string{ts.place.Source, ts.place.Target}
		em.gauge(nameTargetSuccess, helpTargetSuccess, targetLabels, values, ts.place.Labels, boolValue(ts.err == nil))
		if ts.err != nil {
			em.gauge(nameTargetError, helpTargetError, append(targetLabels[:2:2], "class"),
				append(values, string(source.ClassOf(ts.err))), ts.place.Labels, 1)
		}
	}
}

func (em *emitter) place(f source.Finding) {
	verdict := em.e.inspector.Judge(f.Certs, f.KeyPublics, f.Verify)
	if !verdict.Valid() {
		em.e.logger.Debug("Chain not valid", "kind", f.Source, "target", f.Target, "key", f.Key,
			"reason", verdict.Reason, "detail", verdict.Detail)
	}
	pv := []string{f.Source, f.Target, f.Key}
	em.gauge(nameChainValid, helpChainValid, append(placeLabels[:3:3], "reason"),
		append(pv, string(verdict.Reason)), f.Labels, boolValue(verdict.Valid()))
	em.gauge(nameChainNotAfter, helpChainNotAfter, placeLabels, pv, f.Labels, unixSeconds(verdict.ChainNotAfter))
	for i, c := range f.Certs {
		facts := inspect.FactsOf(c)
		cv := []string{f.Source, f.Target, f.Key, strconv.Itoa(i), facts.SubjectCN, facts.IssuerCN}
		em.gauge(nameCertNotAfter, helpCertNotAfter, certLabels, cv, f.Labels, unixSeconds(facts.NotAfter))
		em.gauge(nameCertNotBefore, helpCertNotBefore, certLabels, cv, f.Labels, unixSeconds(facts.NotBefore))
		info := append(cv, facts.Serial, facts.FingerprintSHA256, limit(facts.Subject), limit(facts.Issuer),
			joinLimited(facts.DNSNames), joinLimited(facts.IPAddresses), joinLimited(facts.URIs),
			joinLimited(facts.EmailAddresses), facts.KeyAlgorithm, strconv.Itoa(facts.KeyBits),
			facts.SignatureAlgorithm, strconv.FormatBool(facts.IsCA), strconv.FormatBool(facts.SelfSigned))
		em.gauge(nameCertInfo, helpCertInfo, append(certLabels[:6:6], infoLabels...), info, f.Labels, 1)
	}
	if f.TLS != nil {
		tv := []string{f.Source, f.Target}
		em.gauge(nameTLSVersion, helpTLSVersion, append(targetLabels[:2:2], "version", "cipher"),
			append(tv, f.TLS.Version, f.TLS.CipherSuite), f.Labels, 1)
		em.gauge(nameHandshake, helpHandshake, targetLabels, tv, f.Labels, f.TLS.HandshakeDuration.Seconds())
	}
}

func unixSeconds(t time.Time) float64 { return float64(t.Unix()) }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// joinLimited joins values with commas and bounds the result: a certificate
// with hundreds of SANs must not make a series of many kilobytes.
func joinLimited(values []string) string { return limit(strings.Join(values, ",")) }

func limit(s string) string {
	if len(s) <= maxLabelValueBytes {
		return s
	}
	cut := maxLabelValueBytes
	for cut > 0 && s[cut]&0xc0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return s[:cut] + "..."
}
