package dashboards

import "strconv"

const (
	day  = 86400
	week = 7 * day
)

func sourceVariable() obj {
	return variable("source", "Source", `label_values(certwatch_target_success{job=~"$job", instance=~"$instance"}, source)`, true)
}

// ---- overview: the dashboard a person on call opens first ----

func overview() dashboard {
	s := `{job=~"$job", instance=~"$instance", source=~"$source"}`
	// Certificates in service: a trust store's anchors (role="anchor") only
	// matter through the chains that rely on them, as in the alerts.
	notAfter := `certwatch_cert_not_after_timestamp_seconds{job=~"$job", instance=~"$instance", source=~"$source", role!="anchor"}`
	left := "(" + notAfter + " - time())"
	between := func(lo, hi int) string {
		return joined("count(", left, " > ", itoa(lo), " and ", left, " <= ", itoa(hi), ") or vector(0)")
	}
	targetLink := obj{"matcher": obj{"id": "byName", "options": "target"}, "properties": []obj{{"id": "links", "value": []obj{{
		"title": "Open this target",
		"url":   "/d/certwatch-target/certwatch-target?${datasource:queryparam}&var-job=${__data.fields.job}&var-instance=${__data.fields.instance}&var-source=${__data.fields.source}&var-target=${__data.fields.target}",
	}}}}}
	return dashboard{
		uid:         "certwatch-overview",
		title:       "Overview",
		description: "What expires when, what is broken, which targets certwatch cannot read, how SPIRE rotates SVIDs and trust bundles, what is revoked: CRLs, OCSP staples and the responders certwatch asks, and how cert-manager renews.",
		variables:   append(commonVariables(), sourceVariable()),
		links:       []obj{{"title": "certwatch", "type": "dashboards", "tags": []string{"certwatch"}, "asDropdown": true}},
		panels: append([]panel{
			stat("Certificates", "Certificates certwatch watches in service (not counting trust anchors).", "count("+notAfter+") or vector(0)", "none", 4, nil),
			stat("Expire within 7 days", "Certificates that expire within 7 days.", between(0, week), "none", 4, steps("green", 1, "red")),
			stat("Expire within 30 days", "Certificates that expire within 30 days.", between(0, 30*day), "none", 4, steps("green", 1, "orange")),
			stat("Expired", "Certificates past their not-after.", "count("+notAfter+" <= time()) or vector(0)", "none", 4, steps("green", 1, "red")),
			stat("Invalid chains", "Places whose chain does not verify.", `count(certwatch_chain_valid`+s+` == 0) or vector(0)`, "none", 4, steps("green", 1, "red")),
			stat("Failing targets", "Targets certwatch cannot read or probe.", `count(certwatch_target_success`+s+` == 0) or vector(0)`, "none", 4, steps("green", 1, "orange")),
			{
				kind: "table", title: "Soonest expiries", unit: "s", w: 24, h: 10,
				description: "The 100 certificates that expire first, with the verdict on their chain. Click a target for its detail.",
				queries: []query{{
					expr:    joined("bottomk(100, ", left, " + on (job, instance, source, target, key) group_left (reason) (0 * certwatch_chain_valid", s, "))"),
					instant: true, table: true,
				}},
				transformations: []obj{organize(
					map[string]string{"Value": "Time left", "subject_cn": "Subject", "issuer_cn": "Issuer", "reason": "Verdict", "key": "Key", "index": "Position", "role": "Role"},
					[]string{"source", "target", "key", "index", "role", "subject_cn", "issuer_cn", "Value", "reason"})},
				options:    obj{"showHeader": true, "sortBy": []obj{{"displayName": "Time left", "desc": false}}, "cellHeight": "sm"},
				thresholds: steps("red", 0, "orange", week, "yellow", 30*day, "green"),
				overrides: []obj{targetLink,
					{"matcher": obj{"id": "byName", "options": "Time left"}, "properties": []obj{{"id": "custom.cellOptions", "value": obj{"type": "color-background"}}}}},
			},
			{
				kind: "table", title: "Invalid chains", unit: "none", w: 12, h: 8,
				description: "Places whose chain does not verify, and why (see the runbook for each reason).",
				queries:     []query{{expr: "certwatch_chain_valid" + s + " == 0", instant: true, table: true}},
				transformations: []obj{organize(map[string]string{"reason": "Reason", "key": "Key"},
					[]string{"source", "target", "key", "reason"}, "Value")},
				overrides: []obj{targetLink},
			},
			{
				kind: "table", title: "Failing targets", unit: "none", w: 12, h: 8,
				description: "Targets certwatch cannot read or probe, with the error class.",
				queries: []query{{expr: joined("(certwatch_target_success", s, " == 0) * on (job, instance, source, target) group_left (class) max by (job, instance, source, target, class) (certwatch_target_error_info", s, ")"),
					instant: true, table: true}},
				transformations: []obj{organize(map[string]string{"class": "Error class"}, []string{"source", "target", "class"}, "Value")},
				overrides:       []obj{targetLink},
			},
			{
				kind: "bargauge", title: "Certificates by time to expiry", unit: "none", w: 12, h: 8,
				description: "How many certificates expire in each period from now.",
				queries: []query{
					{expr: "count(" + notAfter + " <= time()) or vector(0)", legend: "expired", instant: true},
					{expr: between(0, day), legend: "< 1 day", instant: true},
					{expr: between(day, week), legend: "1-7 days", instant: true},
					{expr: between(week, 30*day), legend: "7-30 days", instant: true},
					{expr: between(30*day, 90*day), legend: "30-90 days", instant: true},
					{expr: "count(" + left + " > " + itoa(90*day) + ") or vector(0)", legend: "> 90 days", instant: true},
				},
				options: obj{"orientation": "horizontal", "displayMode": "basic", "showUnfilled": true,
					"reduceOptions": obj{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}},
			},
			{
				kind: "timeseries", title: "Time until the next chain breaks", unit: "s", w: 12, h: 8,
				description: "The earliest chain expiry across all places, per source, over time: a drop is a renewal missed, a jump a renewal done.",
				queries:     []query{{expr: "min by (source) (certwatch_chain_not_after_timestamp_seconds" + s + " - time())", legend: "{{source}}"}},
			},
		}, append(append(spiffePanels(), revocationPanels(targetLink)...), certManagerPanels()...)...),
	}
}

// spiffePanels are the overview's rows about the SPIFFE source: the X.509
// SVIDs SPIRE agents serve (one certwatch per node in a DaemonSet, each
// watching its node's agent at the same socket path, so the instance tells
// them apart) and the trust bundles. They stay empty without that source.
func spiffePanels() []panel {
	s := "{" + sel + "}"
	svid := `{` + sel + `, source="spiffe_svid", role="leaf"}`
	bundle := `{` + sel + `, source="spiffe_bundle"}`
	showInstance := func(o obj) obj {
		o["options"].(obj)["excludeByName"].(obj)["instance"] = false
		return o
	}
	// A bundle is as good as its newest authority, in the view of the
	// certwatch instance that sees it worst.
	newest := func(expr string) string {
		return "min by (target, key) (max by (job, instance, target, key) (" + expr + "))"
	}
	return []panel{
		{kind: "row", title: "SPIFFE SVIDs"},
		{
			kind: "table", title: "SVIDs", unit: "s", w: 24, h: 8,
			description: "Each X.509 SVID a SPIRE agent serves certwatch, per node (instance) and SPIFFE ID: time until SPIRE should rotate it (half its lifetime; negative: overdue) and until it expires.",
			queries: []query{
				{expr: "certwatch_spiffe_svid_rotation_due_timestamp_seconds" + s + " - time()", instant: true, table: true},
				{expr: "max by (job, instance, target, key) (certwatch_cert_not_after_timestamp_seconds" + svid + ") - time()", instant: true, table: true},
			},
			transformations: []obj{
				{"id": "merge", "options": obj{}},
				showInstance(organize(map[string]string{"instance": "Instance", "target": "Workload API", "key": "SPIFFE ID", "Value #A": "Rotation due in", "Value #B": "Expires in"},
					[]string{"instance", "target", "key", "Value #A", "Value #B"})),
			},
			options: obj{"showHeader": true, "sortBy": []obj{{"displayName": "Rotation due in", "desc": false}}, "cellHeight": "sm"},
			overrides: []obj{{"matcher": obj{"id": "byName", "options": "Rotation due in"}, "properties": []obj{
				{"id": "custom.cellOptions", "value": obj{"type": "color-background"}},
				{"id": "thresholds", "value": obj{"mode": "absolute", "steps": steps("red", -300, "orange", 0, "green")}},
			}}},
		},
		{kind: "timeseries", title: "Time to rotation due", unit: "s", w: 12, h: 8,
			description: "A sawtooth when SPIRE rotates: down to about 0, then up by half the lifetime. A line going below 0 is a rotation missed (CertwatchSpiffeSVIDRotationOverdue).",
			queries:     []query{{expr: "certwatch_spiffe_svid_rotation_due_timestamp_seconds" + s + " - time()", legend: "{{instance}} {{key}}"}}},
		{kind: "timeseries", title: "SVID time left", unit: "s", w: 12, h: 8,
			description: "Time until each SVID expires; a healthy one never goes below half its lifetime.",
			queries:     []query{{expr: "certwatch_cert_not_after_timestamp_seconds" + svid + " - time()", legend: "{{instance}} {{key}}"}}},
		{kind: "timeseries", title: "Workload API up", unit: "none", w: 8, h: 8, mappings: []obj{{"type": "value", "options": obj{"0": obj{"text": "down", "color": "red"}, "1": obj{"text": "up", "color": "green"}}}},
			description: "1 while the X.509 context stream from the agent is established and has delivered a context.",
			queries:     []query{{expr: "certwatch_spiffe_workload_api_up" + s, legend: "{{instance}} {{target}}"}}},
		{kind: "timeseries", title: "Time since the last X.509 context", unit: "s", w: 8, h: 8,
			description: "SPIRE pushes a context only when an SVID or bundle changes, so this grows between rotations and drops at each one.",
			queries:     []query{{expr: "time() - certwatch_spiffe_workload_api_last_update_timestamp_seconds" + s, legend: "{{instance}} {{target}}"}}},
		{kind: "timeseries", title: "Workload API errors by class", unit: "none", w: 8, h: 8,
			description: "Stream failures over 5 minutes: not_found, permission, unreachable, timeout, no_identity (certwatch is not registered), stale.",
			queries:     []query{{expr: "sum by (target, class) (increase(certwatch_spiffe_workload_api_errors_total" + s + "[5m]))", legend: "{{target}} {{class}}"}}},

		{kind: "row", title: "SPIFFE trust bundles"},
		{
			kind: "table", title: "Trust bundles", unit: "s", w: 24, h: 7,
			description: "Per trust domain and where its bundle came from (an agent's socket or a bundle endpoint): how long its newest authority lasts, and the fraction of its lifetime left (CertwatchSpiffeTrustBundleExpiring under 20%). Old authorities near expiry are normal.",
			queries: []query{
				{expr: newest("certwatch_cert_not_after_timestamp_seconds" + bundle + " - time()"), instant: true, table: true},
				{expr: newest("(certwatch_cert_not_after_timestamp_seconds" + bundle + " - time()) / (certwatch_cert_not_after_timestamp_seconds" + bundle + " - certwatch_cert_not_before_timestamp_seconds" + bundle + ")"), instant: true, table: true},
				{expr: "max by (target, key) (count by (job, instance, target, key) (certwatch_cert_not_after_timestamp_seconds" + bundle + "))", instant: true, table: true},
			},
			transformations: []obj{
				{"id": "merge", "options": obj{}},
				organize(map[string]string{"target": "Trust domain", "key": "From", "Value #A": "Newest authority expires in", "Value #B": "Its lifetime left", "Value #C": "Authorities"},
					[]string{"target", "key", "Value #A", "Value #B", "Value #C"}),
			},
			options: obj{"showHeader": true, "sortBy": []obj{{"displayName": "Its lifetime left", "desc": false}}, "cellHeight": "sm"},
			overrides: []obj{
				{"matcher": obj{"id": "byName", "options": "Its lifetime left"}, "properties": []obj{
					{"id": "unit", "value": "percentunit"},
					{"id": "custom.cellOptions", "value": obj{"type": "color-background"}},
					{"id": "thresholds", "value": obj{"mode": "absolute", "steps": steps("red", 0.2, "orange", 0.5, "green")}},
				}},
				{"matcher": obj{"id": "byName", "options": "Authorities"}, "properties": []obj{{"id": "unit", "value": "none"}}},
			},
		},
		{kind: "timeseries", title: "Bundle endpoint refresh age", unit: "s", w: 8, h: 8,
			description: "Time since each bundle endpoint was last fetched, beside its refresh hint (0: none). CertwatchSpiffeBundleEndpointStale fires past three hints and at least 30 minutes.",
			queries: []query{
				{expr: "max by (target, key) (time() - certwatch_spiffe_bundle_last_refresh_timestamp_seconds" + s + ")", legend: "{{target}} age"},
				{expr: "max by (target, key) (certwatch_spiffe_bundle_refresh_hint_seconds" + s + ")", legend: "{{target}} hint"},
			}},
		{kind: "timeseries", title: "Bundle endpoint up", unit: "none", w: 8, h: 8, mappings: []obj{{"type": "value", "options": obj{"0": obj{"text": "failing", "color": "red"}, "1": obj{"text": "ok", "color": "green"}}}},
			description: "1 when the last fetch of the bundle endpoint succeeded, per certwatch instance.",
			queries:     []query{{expr: "certwatch_spiffe_bundle_endpoint_up" + s, legend: "{{instance}} {{target}}"}}},
		{kind: "timeseries", title: "Bundle sequence number", unit: "none", w: 8, h: 8,
			description: "The sequence number of the bundle last fetched: a step is a new bundle (a CA added or removed).",
			queries:     []query{{expr: "max by (target, key) (certwatch_spiffe_bundle_sequence_number" + s + ")", legend: "{{target}}"}}},
	}
}

// revocationPanels are the overview's row about revocation: the places
// whose chain holds a revoked certificate, CRLs by time to their next
// update, OCSP stapling, the responders and CRL distribution points the
// background checker asks, and the urls source. Place series follow the
// source variable; the checker's and the urls source's health series carry
// no source. Tables of health series show each URL in the view of the
// certwatch instance that sees it worst. The row stays empty without
// revocation checks, CRLs or stapling endpoints.
func revocationPanels(targetLink obj) []panel {
	s := `{job=~"$job", instance=~"$instance", source=~"$source"}`
	place := func(matchers string) string {
		return `{job=~"$job", instance=~"$instance", source=~"$source", ` + matchers + `}`
	}
	h := "{" + sel + "}"
	staple := place(`method="ocsp_staple"`)
	valueMap := func(zero, one string) []obj {
		return []obj{{"type": "value", "options": obj{"0": obj{"text": zero, "color": "red"}, "1": obj{"text": one, "color": "green"}}}}
	}
	column := func(name string, props ...obj) obj {
		return obj{"matcher": obj{"id": "byName", "options": name}, "properties": props}
	}
	unit := func(u string) obj { return obj{"id": "unit", "value": u} }
	colored := func(st []obj) []obj {
		return []obj{
			{"id": "custom.cellOptions", "value": obj{"type": "color-background"}},
			{"id": "thresholds", "value": obj{"mode": "absolute", "steps": st}},
		}
	}
	return []panel{
		{kind: "row", title: "Revocation"},
		stat("Revoked places", "Places whose chain holds a certificate revoked by an answer whose signature verified (CertwatchCertificateRevoked).",
			"count(certwatch_chain_valid"+place(`reason="revoked"`)+" == 0) or vector(0)", "none", 4, steps("green", 1, "red")),
		stat("Stale CRLs", "CRLs past their next update, at any place or distribution point (CertwatchCRLStale).",
			"count(certwatch_crl_next_update_timestamp_seconds"+s+" < time()) or vector(0)", "none", 4, steps("green", 1, "red")),
		stat("CRLs due within 6 hours", "CRLs whose next update comes within 6 hours; CertwatchCRLExpiringSoon fires for those under 10% of their window too.",
			"count(certwatch_crl_next_update_timestamp_seconds"+s+" - time() < 6 * 3600 and certwatch_crl_next_update_timestamp_seconds"+s+" - time() > 0) or vector(0)", "none", 4, steps("green", 1, "orange")),
		stat("Endpoints stapling", "Share of the endpoints probed that stapled an OCSP response to their last handshake.",
			"sum(certwatch_ocsp_stapled"+s+") / count(certwatch_ocsp_stapled"+s+")", "percentunit", 4, nil),
		stat("Unusable staples", "Endpoints that staple an OCSP response that does not parse, is badly signed, or whose issuer certwatch does not know.",
			"count(certwatch_ocsp_staple_error_info"+s+" == 1) or vector(0)", "none", 4, steps("green", 1, "orange")),
		stat("Failing responders", "OCSP responders and CRL distribution points whose last fetch failed.",
			"count(certwatch_revocation_fetch_success"+h+" == 0) or vector(0)", "none", 4, steps("green", 1, "orange")),
		{
			kind: "table", title: "Revoked certificates", unit: "none", w: 24, h: 8,
			description: "Each revoked certificate at a place, per method that says so (ocsp_staple: the response the endpoint staples; ocsp, crl: the background checks), with the RFC 5280 reason and the revocation date. Click a target for its detail.",
			queries: []query{
				{expr: "certwatch_cert_revocation_info" + place(`status="revoked"`), instant: true, table: true},
				{expr: "certwatch_cert_revoked_timestamp_seconds" + s + " * 1000", instant: true, table: true},
			},
			transformations: []obj{
				{"id": "merge", "options": obj{}},
				organize(map[string]string{"key": "Key", "index": "Position", "method": "Method", "reason": "Reason", "Value #B": "Revoked on"},
					[]string{"source", "target", "key", "index", "method", "reason", "Value #B"}, "Value #A", "status"),
			},
			options:   obj{"showHeader": true, "sortBy": []obj{{"displayName": "Revoked on", "desc": true}}, "cellHeight": "sm"},
			overrides: []obj{targetLink, column("Revoked on", unit("dateTimeAsIso"))},
		},
		{
			kind: "table", title: "CRLs by time to next update", unit: "s", w: 24, h: 9,
			description: "Every CRL certwatch reads (files, Kubernetes keys, the urls source) or fetches for active checks (source crl_distribution_point, target = its URL), soonest next update first: negative is stale (CertwatchCRLStale), under 6 hours is due (CertwatchCRLExpiringSoon).",
			queries: []query{
				{expr: "certwatch_crl_next_update_timestamp_seconds" + s + " - time()", instant: true, table: true},
				{expr: "certwatch_crl_info" + s, instant: true, table: true},
				{expr: "time() - certwatch_crl_this_update_timestamp_seconds" + s, instant: true, table: true},
				{expr: "certwatch_crl_revoked_certificates" + s, instant: true, table: true},
				{expr: "certwatch_crl_number" + s, instant: true, table: true},
			},
			transformations: []obj{
				{"id": "merge", "options": obj{}},
				organize(map[string]string{"key": "Key", "index": "Position", "issuer_cn": "Issuer", "Value #A": "Next update in", "Value #C": "Age",
					"Value #D": "Entries", "Value #E": "CRL number", "delta": "Delta", "signature_algorithm": "Signature"},
					[]string{"source", "target", "key", "index", "issuer_cn", "Value #A", "Value #C", "Value #D", "Value #E", "delta", "signature_algorithm"},
					"Value #B", "issuer", "fingerprint_sha256"),
			},
			options: obj{"showHeader": true, "sortBy": []obj{{"displayName": "Next update in", "desc": false}}, "cellHeight": "sm"},
			overrides: []obj{targetLink,
				column("Next update in", colored(steps("red", 0, "orange", 6*3600, "green"))...),
				column("Entries", unit("none")), column("CRL number", unit("none"))},
		},
		{
			kind: "table", title: "OCSP staples", unit: "s", w: 12, h: 8,
			description: "Per endpoint: whether it stapled an OCSP response, when that response reaches its next update (CertwatchOCSPStapleExpiring under a day and a quarter of its validity), and why it could not be used.",
			queries: []query{
				{expr: "max by (job, instance, source, target) (certwatch_ocsp_stapled" + s + ")", instant: true, table: true},
				{expr: "min by (job, instance, source, target) (certwatch_cert_revocation_next_update_timestamp_seconds" + staple + " - time())", instant: true, table: true},
				{expr: "max by (job, instance, source, target, class) (certwatch_ocsp_staple_error_info" + s + ")", instant: true, table: true},
			},
			transformations: []obj{
				{"id": "merge", "options": obj{}},
				organize(map[string]string{"Value #A": "Stapled", "Value #B": "Staple expires in", "class": "Error"},
					[]string{"source", "target", "Value #A", "Value #B", "class"}, "Value #C"),
			},
			options: obj{"showHeader": true, "sortBy": []obj{{"displayName": "Staple expires in", "desc": false}}, "cellHeight": "sm"},
			overrides: []obj{targetLink,
				column("Stapled", unit("none"), obj{"id": "mappings", "value": valueMap("no", "yes")}),
				column("Staple expires in", colored(steps("red", 0, "orange", day, "green"))...)},
		},
		{kind: "timeseries", title: "Stapling coverage", unit: "percentunit", w: 12, h: 8,
			description: "Share of the endpoints probed that staple an OCSP response, per source: a drop is servers that stopped stapling (a responder they cannot reach, a restart without a cached response).",
			queries:     []query{{expr: "sum by (source) (certwatch_ocsp_stapled" + s + ") / count by (source) (certwatch_ocsp_stapled" + s + ")", legend: "{{source}}"}}},
		{
			kind: "table", title: "Responders and CRL distribution points", unit: "s", w: 16, h: 8,
			description: "Each OCSP responder and CRL distribution point the background checker asks: whether its last fetch succeeded, the time since it last answered, and its failures in the last hour (CertwatchRevocationResponderFailing after 15 minutes of failures).",
			queries: []query{
				{expr: "min by (method, url) (certwatch_revocation_fetch_success" + h + ")", instant: true, table: true},
				{expr: "max by (method, url) (time() - (certwatch_revocation_fetch_last_success_timestamp_seconds" + h + " > 0))", instant: true, table: true},
				{expr: "sum by (method, url) (increase(certwatch_revocation_fetch_errors_total" + h + "[1h]))", instant: true, table: true},
			},
			transformations: []obj{
				{"id": "merge", "options": obj{}},
				organize(map[string]string{"method": "Method", "url": "URL", "Value #A": "Last fetch", "Value #B": "Since last answer", "Value #C": "Failures (1h)"},
					[]string{"method", "url", "Value #A", "Value #B", "Value #C"}),
			},
			options: obj{"showHeader": true, "sortBy": []obj{{"displayName": "Since last answer", "desc": true}}, "cellHeight": "sm"},
			overrides: []obj{
				column("Last fetch", unit("none"), obj{"id": "mappings", "value": valueMap("failed", "ok")}),
				column("Failures (1h)", unit("none"), obj{"id": "decimals", "value": 0}),
			},
		},
		{kind: "timeseries", title: "Revocation fetch failures by class", unit: "none", w: 8, h: 8,
			description: "Failed OCSP and CRL fetches over 5 minutes: timeout, refused, dns, http (an answer that is not 200), denied (the outbound rules refuse the URL), bad_signature, too_large, parse.",
			queries:     []query{{expr: "sum by (method, class) (increase(certwatch_revocation_fetch_errors_total" + h + "[5m]))", legend: "{{method}} {{class}}"}}},
		{
			kind: "table", title: "urls source", unit: "s", w: 16, h: 8,
			description: "Each URL the urls source fetches (a CA's chain, a PKI mount's CA and CRL): whether the last fetch worked, the time since the last success, and its failures in the last hour (CertwatchTargetFailing after 15 minutes of failures).",
			queries: []query{
				{expr: `min by (target) (certwatch_target_success{job=~"$job", instance=~"$instance", source="url"})`, instant: true, table: true},
				{expr: "max by (target) (time() - certwatch_url_last_success_timestamp_seconds" + h + ")", instant: true, table: true},
				{expr: "sum by (target) (increase(certwatch_url_fetch_errors_total" + h + "[1h]))", instant: true, table: true},
			},
			transformations: []obj{
				{"id": "merge", "options": obj{}},
				organize(map[string]string{"target": "URL", "Value #A": "Last fetch", "Value #B": "Since last success", "Value #C": "Failures (1h)"},
					[]string{"target", "Value #A", "Value #B", "Value #C"}),
			},
			options: obj{"showHeader": true, "sortBy": []obj{{"displayName": "Since last success", "desc": true}}, "cellHeight": "sm"},
			overrides: []obj{
				column("Last fetch", unit("none"), obj{"id": "mappings", "value": valueMap("failed", "ok")}),
				column("Failures (1h)", unit("none"), obj{"id": "decimals", "value": 0}),
			},
		},
		{kind: "timeseries", title: "urls source failures by class", unit: "none", w: 8, h: 8,
			description: "Failed fetches of the urls source over 5 minutes, by class (http, denied, timeout, parse, ...).",
			queries:     []query{{expr: "sum by (class) (increase(certwatch_url_fetch_errors_total" + h + "[5m]))", legend: "{{class}}"}}},
	}
}

// ---- target: one target's chain and probe history ----

func target() dashboard {
	t := `{job=~"$job", instance=~"$instance", source=~"$source", target="$target"}`
	targetVar := variable("target", "Target", `label_values(certwatch_target_success{job=~"$job", instance=~"$instance", source=~"$source"}, target)`, false)
	okMap := []obj{{"type": "value", "options": obj{"0": obj{"text": "FAILING", "color": "red"}, "1": obj{"text": "OK", "color": "green"}}}}
	dateCol := func(name string) obj {
		return obj{"matcher": obj{"id": "byName", "options": name}, "properties": []obj{{"id": "unit", "value": "dateTimeAsIso"}}}
	}
	return dashboard{
		uid:         "certwatch-target",
		title:       "Target",
		description: "One endpoint or file: its chain with each certificate's dates and attributes, its verdict, and its probe history.",
		variables:   append(commonVariables(), sourceVariable(), targetVar),
		links:       []obj{{"title": "certwatch", "type": "dashboards", "tags": []string{"certwatch"}, "asDropdown": true}},
		panels: []panel{
			{kind: "stat", title: "Read or probed", unit: "none", w: 4, h: 4, mappings: okMap,
				description: "Whether certwatch could read or probe the target at the last scrape.",
				queries:     []query{{expr: "certwatch_target_success" + t, instant: true}},
				thresholds:  steps("red", 1, "green"),
				options:     obj{"reduceOptions": obj{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}, "colorMode": "background", "graphMode": "none", "textMode": "value"}},
			{kind: "stat", title: "Error class", unit: "none", w: 4, h: 4,
				description: "Why the target failed; empty when it did not.",
				queries:     []query{{expr: "certwatch_target_error_info" + t, legend: "{{class}}", instant: true}},
				options:     obj{"reduceOptions": obj{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}, "colorMode": "none", "graphMode": "none", "textMode": "name"}},
			{kind: "stat", title: "Chain verdict", unit: "none", w: 6, h: 4,
				description: "The verdict on each chain at the target (one per keystore alias or kubeconfig entry).",
				queries:     []query{{expr: "certwatch_chain_valid" + t, legend: "{{key}} {{reason}}", instant: true}},
				thresholds:  steps("red", 1, "green"),
				options:     obj{"reduceOptions": obj{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}, "colorMode": "background", "graphMode": "none", "textMode": "name"}},
			stat("Chain breaks in", "Time until the earliest expiry in the chain the target relies on.",
				"min(certwatch_chain_not_after_timestamp_seconds"+t+") - time()", "s", 5, steps("red", week, "orange", 30*day, "green")),
			{kind: "stat", title: "TLS version", unit: "none", w: 5, h: 4,
				description: "TLS version and cipher suite negotiated with the endpoint.",
				queries:     []query{{expr: "certwatch_tls_version_info" + t, legend: "{{version}} {{cipher}}", instant: true}},
				options:     obj{"reduceOptions": obj{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}, "colorMode": "none", "graphMode": "none", "textMode": "name"}},
			{
				kind: "table", title: "Chain", unit: "none", w: 24, h: 9,
				description: "Each certificate as presented (endpoints) or stored (files), with its role: leaf, intermediate, root, or anchor (a bundle of trust anchors).",
				queries: []query{
					{expr: "certwatch_cert_info" + t, instant: true, table: true},
					{expr: "certwatch_cert_not_before_timestamp_seconds" + t + " * 1000", instant: true, table: true},
					{expr: "certwatch_cert_not_after_timestamp_seconds" + t + " * 1000", instant: true, table: true},
					{expr: "certwatch_cert_not_after_timestamp_seconds" + t + " - time()", instant: true, table: true},
				},
				transformations: []obj{
					{"id": "merge", "options": obj{}},
					organize(map[string]string{"Value #B": "Not before", "Value #C": "Not after", "Value #D": "Time left",
						"subject": "Subject", "issuer": "Issuer", "serial": "Serial", "dns_names": "DNS names", "uris": "URIs",
						"key_algorithm": "Key", "key_bits": "Bits", "signature_algorithm": "Signature", "is_ca": "CA", "index": "Position", "role": "Role"},
						[]string{"key", "index", "role", "subject", "issuer", "Value #B", "Value #C", "Value #D", "dns_names", "ip_addresses", "uris",
							"key_algorithm", "key_bits", "signature_algorithm", "is_ca", "self_signed", "serial", "fingerprint_sha256"},
						"Value #A", "source", "target", "subject_cn", "issuer_cn", "email_addresses"),
				},
				options: obj{"showHeader": true, "sortBy": []obj{{"displayName": "Position", "desc": false}}, "cellHeight": "sm"},
				overrides: []obj{dateCol("Not before"), dateCol("Not after"),
					{"matcher": obj{"id": "byName", "options": "Time left"}, "properties": []obj{{"id": "unit", "value": "s"}}}},
			},
			{kind: "timeseries", title: "Read or probed over time", unit: "none", w: 8, h: 8,
				description: "1 when the scrape could read or probe the target.",
				queries:     []query{{expr: "certwatch_target_success" + t, legend: "{{target}}"}}},
			{kind: "timeseries", title: "TLS handshake duration", unit: "s", w: 8, h: 8,
				description: "Duration of the TLS handshake (after TCP connect and STARTTLS).",
				queries:     []query{{expr: "certwatch_tls_handshake_duration_seconds" + t, legend: "{{target}}"}}},
			{kind: "timeseries", title: "Time to expiry per certificate", unit: "s", w: 8, h: 8,
				description: "A renewal shows as a jump up.",
				queries:     []query{{expr: "certwatch_cert_not_after_timestamp_seconds" + t + " - time()", legend: "{{key}} #{{index}} {{role}} {{subject_cn}}"}}},
		},
	}
}

// ---- exporter: certwatch's own health ----

func exporter() dashboard {
	s := `{job=~"$job", instance=~"$instance"}`
	okMap := []obj{{"type": "value", "options": obj{"0": obj{"text": "FAILED", "color": "red"}, "1": obj{"text": "OK", "color": "green"}}}}
	return dashboard{
		uid:         "certwatch-exporter",
		title:       "Exporter",
		description: "certwatch's own health: collectors, configuration reloads, resources.",
		variables:   commonVariables(),
		links:       []obj{{"title": "certwatch", "type": "dashboards", "tags": []string{"certwatch"}, "asDropdown": true}},
		panels: []panel{
			{kind: "stat", title: "Up", unit: "none", w: 4, h: 4, mappings: okMap, thresholds: steps("red", 1, "green"),
				description: "Whether Prometheus can scrape certwatch.",
				queries:     []query{{expr: "up" + s, legend: "{{instance}}", instant: true}},
				options:     obj{"reduceOptions": obj{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}, "colorMode": "background", "graphMode": "none", "textMode": "value"}},
			{kind: "stat", title: "Last reload", unit: "none", w: 4, h: 4, mappings: okMap, thresholds: steps("red", 1, "green"),
				description: "Whether the last configuration load succeeded.",
				queries:     []query{{expr: "certwatch_config_last_reload_successful" + s, legend: "{{instance}}", instant: true}},
				options:     obj{"reduceOptions": obj{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}, "colorMode": "background", "graphMode": "none", "textMode": "value"}},
			stat("Configuration loaded", "When the running configuration was loaded.", "max(certwatch_config_last_reload_success_timestamp_seconds"+s+") * 1000", "dateTimeFromNow", 6, nil),
			{kind: "stat", title: "Version", unit: "none", w: 10, h: 4,
				description: "certwatch version and revision.",
				queries:     []query{{expr: "certwatch_build_info" + s, legend: "{{version}} ({{revision}})", instant: true}},
				options:     obj{"reduceOptions": obj{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}, "colorMode": "none", "graphMode": "none", "textMode": "name"}},
			{kind: "timeseries", title: "Collector duration", unit: "s", w: 12, h: 8,
				description: "Time each collector took per scrape; compare with the scrape timeout.",
				queries:     []query{{expr: "certwatch_collector_duration_seconds" + s, legend: "{{instance}} {{collector}}"}}},
			{kind: "timeseries", title: "Collector success", unit: "none", w: 12, h: 8,
				description: "0 when a collector failed or was cut short by the scrape deadline.",
				queries:     []query{{expr: "certwatch_collector_success" + s, legend: "{{instance}} {{collector}}"}}},
			{kind: "timeseries", title: "Failing targets by error class", unit: "none", w: 12, h: 8,
				description: "Targets certwatch cannot read, by why.",
				queries:     []query{{expr: "count by (class) (certwatch_target_error_info" + s + ")", legend: "{{class}}"}}},
			{kind: "timeseries", title: "Scrape duration and size", unit: "s", w: 12, h: 8,
				description: "How long Prometheus' scrape of certwatch took.",
				queries:     []query{{expr: "scrape_duration_seconds" + s, legend: "{{instance}}"}}},
			stat("Kubernetes informers not synced", "Kubernetes resources certwatch has not been able to list (0 when the Kubernetes source is off or healthy).",
				"count(certwatch_kubernetes_informer_synced"+s+" == 0) or vector(0)", "none", 6, steps("green", 1, "red")),
			{kind: "timeseries", title: "Kubernetes watch errors", unit: "none", w: 18, h: 8,
				description: "List and watch failures per resource and class over 5 minutes; permission means RBAC denies certwatch.",
				queries:     []query{{expr: "sum by (resource, class) (increase(certwatch_kubernetes_watch_errors_total" + s + "[5m])) or vector(0)", legend: "{{resource}} {{class}}"}}},
			{kind: "timeseries", title: "Resident memory", unit: "bytes", w: 12, h: 8,
				description: "certwatch's resident memory.",
				queries:     []query{{expr: "process_resident_memory_bytes" + s, legend: "{{instance}}"}}},
			{kind: "timeseries", title: "Goroutines", unit: "none", w: 12, h: 8,
				description: "Flat in a healthy exporter; growth means leaked probes.",
				queries:     []query{{expr: "go_goroutines" + s, legend: "{{instance}}"}}},
			{kind: "timeseries", title: "Files skipped by walks", unit: "none", w: 24, h: 8,
				description: "Files that directory walks and globs found but skipped (no certificate inside, a name that claims none: .cnf, .srl, README...), by file group (its index in the files list). A jump means a directory filled with something else.",
				queries:     []query{{expr: "max by (group) (certwatch_file_skipped_files" + s + ")", legend: "group {{group}}"}}},
			{kind: "timeseries", title: "File paths watched and polled", unit: "none", w: 12, h: 8,
				description: "Configured file paths whose changes come from inotify events (inotify) or from a stat of every file at every scrape (poll: files_watch poll, a network filesystem, watches exhausted). Polled paths cost a stat per file per scrape.",
				queries:     []query{{expr: "sum by (mode) (certwatch_files_watch_paths" + s + ")", legend: "{{mode}}"}}},
			{kind: "timeseries", title: "File watch fallbacks", unit: "none", w: 12, h: 8,
				description: "Fallbacks from inotify events to polling over 1 hour, by reason: watch_limit (raise fs.inotify.max_user_watches), network_filesystem, watch_error, queue_overflow (events lost: every file checked once).",
				queries:     []query{{expr: "sum by (reason) (increase(certwatch_files_watch_fallbacks_total" + s + "[1h])) or vector(0)", legend: "{{reason}}"}}},
		},
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
