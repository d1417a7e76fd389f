package dashboards

// certManagerPanels are the overview's row about cert-manager
// (kubernetes.cert_manager): counts of what its alerts watch, every
// Certificate with its readiness, renewal and expiry, the Secrets that
// disagree with their Certificate, the requests that failed and the
// issuers. The series carry no source label, so the source variable does
// not apply. The row stays empty without cert-manager.
func certManagerPanels() []panel {
	s := "{" + sel + "}"
	byCertificate := "on (job, instance, cluster, kube_namespace, certmanager_certificate) group_left (secret, issuer_kind, issuer_name, ready_status, ready_reason) certwatch_certmanager_certificate_info" + s
	byIssuer := "on (job, instance, cluster, kube_namespace, issuer_name, issuer_kind) group_left (issuer_type, ready_reason) certwatch_certmanager_issuer_info" + s
	mismatch := `certwatch_certmanager_certificate_secret_mismatch{` + sel + `, problem!="secret_not_watched"}`
	return []panel{
		{kind: "row", title: "cert-manager"},
		stat("Certificates not Ready", "cert-manager Certificates whose Ready condition is not True (CertwatchCertManagerCertificateNotReady after 30 minutes).",
			"count(certwatch_certmanager_certificate_ready"+s+" == 0) or vector(0)", "none", 6, steps("green", 1, "orange")),
		stat("Renewals overdue", "Certificates past their renewal time by more than renewal_grace and not renewed (CertwatchCertManagerRenewalOverdue).",
			"count(certwatch_certmanager_certificate_renewal_overdue"+s+" == 1) or vector(0)", "none", 6, steps("green", 1, "red")),
		stat("Secrets that disagree", "Certificates whose Secret is missing, unreadable, older than the status says or lacks a name of the spec (CertwatchCertManagerSecretMismatch).",
			"count(count by (job, instance, cluster, kube_namespace, certmanager_certificate) ("+mismatch+")) or vector(0)", "none", 6, steps("green", 1, "orange")),
		stat("Issuers not Ready", "Issuers and ClusterIssuers whose Ready condition is not True (CertwatchCertManagerIssuerNotReady after 15 minutes).",
			"count(certwatch_certmanager_issuer_ready"+s+" == 0) or vector(0)", "none", 6, steps("green", 1, "red")),
		{
			kind: "table", title: "cert-manager Certificates", unit: "s", w: 24, h: 9,
			description: "Every Certificate: Ready and its reason, time until cert-manager renews it (negative: overdue), time until the certificate it last issued expires, and failed issuances in a row.",
			queries: []query{
				{expr: "certwatch_certmanager_certificate_ready" + s + " * " + byCertificate, instant: true, table: true},
				{expr: "(certwatch_certmanager_certificate_renewal_timestamp_seconds" + s + " - time()) * " + byCertificate, instant: true, table: true},
				{expr: "(certwatch_certmanager_certificate_not_after_timestamp_seconds" + s + " - time()) * " + byCertificate, instant: true, table: true},
				{expr: "certwatch_certmanager_certificate_failed_issuance_attempts" + s + " * " + byCertificate, instant: true, table: true},
			},
			transformations: []obj{
				{"id": "merge", "options": obj{}},
				organize(map[string]string{"kube_namespace": "Namespace", "certmanager_certificate": "Certificate", "secret": "Secret",
					"issuer_kind": "Issuer kind", "issuer_name": "Issuer", "ready_reason": "Ready reason",
					"Value #A": "Ready", "Value #B": "Renewal in", "Value #C": "Expires in", "Value #D": "Failed issuances"},
					[]string{"kube_namespace", "certmanager_certificate", "Value #A", "ready_reason", "Value #B", "Value #C", "Value #D", "secret", "issuer_kind", "issuer_name"},
					"ready_status"),
			},
			options: obj{"showHeader": true, "sortBy": []obj{{"displayName": "Renewal in", "desc": false}}, "cellHeight": "sm"},
			overrides: []obj{
				{"matcher": obj{"id": "byName", "options": "Ready"}, "properties": []obj{
					{"id": "unit", "value": "none"},
					{"id": "mappings", "value": []obj{{"type": "value", "options": obj{"0": obj{"text": "not Ready", "color": "red"}, "1": obj{"text": "Ready", "color": "green"}}}}},
					{"id": "custom.cellOptions", "value": obj{"type": "color-background"}},
				}},
				{"matcher": obj{"id": "byName", "options": "Renewal in"}, "properties": []obj{
					{"id": "custom.cellOptions", "value": obj{"type": "color-background"}},
					{"id": "thresholds", "value": obj{"mode": "absolute", "steps": steps("red", 0, "green")}},
				}},
				{"matcher": obj{"id": "byName", "options": "Failed issuances"}, "properties": []obj{{"id": "unit", "value": "none"}}},
			},
		},
		{
			kind: "table", title: "Secrets that disagree with their Certificate", unit: "none", w: 12, h: 8,
			description: "Each way a Certificate's Secret disagrees with it: secret_missing, secret_unreadable, older_certificate (an older certificate was written over the one issued), names_not_covered. Secrets outside kubernetes.secrets are not listed.",
			queries:     []query{{expr: mismatch, instant: true, table: true}},
			transformations: []obj{organize(map[string]string{"kube_namespace": "Namespace", "certmanager_certificate": "Certificate", "problem": "Problem"},
				[]string{"kube_namespace", "certmanager_certificate", "problem"}, "Value")},
		},
		{
			kind: "table", title: "Newest requests that failed", unit: "none", w: 12, h: 8,
			description: "Certificates whose newest CertificateRequest failed, was denied or is invalid, with its name (kubectl describe certificaterequest) and reason.",
			queries:     []query{{expr: `certwatch_certmanager_certificate_request_info{` + sel + `, state=~"failed|denied|invalid"}`, instant: true, table: true}},
			transformations: []obj{organize(map[string]string{"kube_namespace": "Namespace", "certmanager_certificate": "Certificate", "request": "Request", "state": "State", "reason": "Reason"},
				[]string{"kube_namespace", "certmanager_certificate", "request", "state", "reason"}, "Value")},
		},
		{
			kind: "table", title: "Issuers", unit: "s", w: 24, h: 7,
			description: "Every Issuer and ClusterIssuer: Ready, its reason, and how long it has been in that state.",
			queries: []query{
				{expr: "certwatch_certmanager_issuer_ready" + s + " * " + byIssuer, instant: true, table: true},
				{expr: "(time() - certwatch_certmanager_issuer_ready_transition_timestamp_seconds" + s + ") * " + byIssuer, instant: true, table: true},
			},
			transformations: []obj{
				{"id": "merge", "options": obj{}},
				organize(map[string]string{"kube_namespace": "Namespace", "issuer_name": "Issuer", "issuer_kind": "Kind", "issuer_type": "Type",
					"ready_reason": "Ready reason", "Value #A": "Ready", "Value #B": "For"},
					[]string{"issuer_kind", "kube_namespace", "issuer_name", "issuer_type", "Value #A", "ready_reason", "Value #B"}),
			},
			options: obj{"showHeader": true, "sortBy": []obj{{"displayName": "Ready", "desc": false}}, "cellHeight": "sm"},
			overrides: []obj{
				{"matcher": obj{"id": "byName", "options": "Ready"}, "properties": []obj{
					{"id": "unit", "value": "none"},
					{"id": "mappings", "value": []obj{{"type": "value", "options": obj{"0": obj{"text": "not Ready", "color": "red"}, "1": obj{"text": "Ready", "color": "green"}}}}},
					{"id": "custom.cellOptions", "value": obj{"type": "color-background"}},
				}},
			},
		},
	}
}
