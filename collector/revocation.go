package collector

import (
	"encoding/hex"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/revocation"
	"github.com/certwatch/certwatch/source"
)

// The series about revocation and CRLs. Few places carry them, and their
// values change without the place's certificates changing (a responder
// revokes, a staple is renewed), so both exposition paths build them at
// each scrape and send them through the registry, like sources' own
// health series, rather than through the rendered-place cache.
const (
	nameRevocationInfo   = "certwatch_cert_revocation_info"
	nameRevokedAt        = "certwatch_cert_revoked_timestamp_seconds"
	nameRevocationThis   = "certwatch_cert_revocation_this_update_timestamp_seconds"
	nameRevocationNext   = "certwatch_cert_revocation_next_update_timestamp_seconds"
	nameOCSPStapled      = "certwatch_ocsp_stapled"
	nameStapleError      = "certwatch_ocsp_staple_error_info"
	nameCRLThisUpdate    = "certwatch_crl_this_update_timestamp_seconds"
	nameCRLNextUpdate    = "certwatch_crl_next_update_timestamp_seconds"
	nameCRLEntries       = "certwatch_crl_revoked_certificates"
	nameCRLNumber        = "certwatch_crl_number"
	nameCRLInfo          = "certwatch_crl_info"
	helpRevocationInfo   = "What a revocation check says of the certificate (value is always 1): status good, revoked or unknown, and the RFC 5280 reason when revoked."
	helpRevokedAt        = "Unix time at which the certificate was revoked, as the answer of this method says."
	helpRevocationThis   = "Unix time at which the revocation answer about the certificate was produced (its this update)."
	helpRevocationNext   = "Unix time after which the revocation answer about the certificate is out of date (its next update)."
	helpOCSPStapled      = "Whether the endpoint stapled an OCSP response to its handshake (1) or not (0)."
	helpStapleError      = "Why the OCSP response the endpoint stapled could not be used (value is always 1, present only then)."
	helpCRLThisUpdate    = "Unix time at which the CRL was issued (its this update)."
	helpCRLNextUpdate    = "Unix time by which the CRL's issuer promises a newer one; past it the CRL is stale."
	helpCRLEntries       = "Number of revoked certificates the CRL lists."
	helpCRLNumber        = "The CRL's number (it grows with each CRL its issuer publishes)."
	helpCRLInfo          = "Attributes of the CRL (value is always 1)."
	maxCRLInfoLabelBytes = inspect.MaxInfoBytes
)

var (
	revocationLabels = []string{"source", "target", "key", "index", "method"}
	crlLabels        = []string{"source", "target", "key", "index", "issuer_cn"}
)

// placeSamples appends the revocation series of a judged place, and the
// series of the CRLs found there.
func placeSamples(out []source.Sample, f *source.Finding, v inspect.Verdict) []source.Sample {
	if f.TLS != nil && f.Source == source.KindEndpoint {
		out = appendSample(out, f, nameOCSPStapled, helpOCSPStapled, targetLabels, []string{f.Source, f.Target}, boolValue(len(f.Staple()) > 0))
	}
	if rf := v.Revocation(); rf != nil {
		if rf.StapleErr != nil {
			out = appendSample(out, f, nameStapleError, helpStapleError, []string{"source", "target", "class"},
				[]string{f.Source, f.Target, string(source.ClassOf(rf.StapleErr))}, 1)
		}
		for _, ca := range rf.Certs {
			for _, a := range oneAnswerPerMethod(ca.Answers) {
				values := []string{f.Source, f.Target, f.Key, strconv.Itoa(ca.Index), string(a.Method)}
				info := append(slices.Clip(values), string(a.Status), a.Reason.String())
				out = appendSample(out, f, nameRevocationInfo, helpRevocationInfo, append(revocationLabels[:5:5], "status", "reason"), info, 1)
				if a.Status == revocation.StatusRevoked && !a.RevokedAt.IsZero() {
					out = appendSample(out, f, nameRevokedAt, helpRevokedAt, revocationLabels, values, unixSeconds(a.RevokedAt))
				}
				if !a.ThisUpdate.IsZero() {
					out = appendSample(out, f, nameRevocationThis, helpRevocationThis, revocationLabels, values, unixSeconds(a.ThisUpdate))
				}
				if !a.NextUpdate.IsZero() {
					out = appendSample(out, f, nameRevocationNext, helpRevocationNext, revocationLabels, values, unixSeconds(a.NextUpdate))
				}
			}
		}
	}
	return crlSamples(out, f)
}

// crlSamples appends the series of the CRLs found at a place.
func crlSamples(out []source.Sample, f *source.Finding) []source.Sample {
	for i, c := range f.CRLs {
		values := []string{f.Source, f.Target, f.Key, strconv.Itoa(i), cut(c.IssuerCN, inspect.MaxNameBytes)}
		out = appendSample(out, f, nameCRLThisUpdate, helpCRLThisUpdate, crlLabels, values, unixSeconds(c.ThisUpdate))
		if !c.NextUpdate.IsZero() {
			out = appendSample(out, f, nameCRLNextUpdate, helpCRLNextUpdate, crlLabels, values, unixSeconds(c.NextUpdate))
		}
		out = appendSample(out, f, nameCRLEntries, helpCRLEntries, crlLabels, values, float64(c.Entries))
		if c.Number != nil {
			n, _ := c.Number.Float64()
			out = appendSample(out, f, nameCRLNumber, helpCRLNumber, crlLabels, values, n)
		}
		info := append(slices.Clip(values), cut(c.Issuer, maxCRLInfoLabelBytes), hex.EncodeToString(c.Fingerprint[:]),
			c.SignatureAlgorithm, strconv.FormatBool(c.Delta))
		out = appendSample(out, f, nameCRLInfo, helpCRLInfo,
			append(crlLabels[:5:5], "issuer", "fingerprint_sha256", "signature_algorithm", "delta"), info, 1)
	}
	return out
}

// oneAnswerPerMethod keeps one answer of each method (two CRL distribution
// points can both answer): a revoked one if any, else the first.
func oneAnswerPerMethod(answers []revocation.Answer) []revocation.Answer {
	if len(answers) < 2 {
		return answers
	}
	var out []revocation.Answer
	for _, a := range answers {
		k := slices.IndexFunc(out, func(b revocation.Answer) bool { return b.Method == a.Method })
		switch {
		case k < 0:
			out = append(out, a)
		case a.Status == revocation.StatusRevoked && out[k].Status != revocation.StatusRevoked:
			out[k] = a
		}
	}
	return out
}

// appendSample appends one series of a place, with the place's extra labels.
func appendSample(out []source.Sample, f *source.Finding, name, help string, fixed, values []string, v float64) []source.Sample {
	names := fixed
	if len(f.Labels) > 0 {
		keys := sortedKeys(f.Labels)
		names = append(slices.Clip(fixed), keys...)
		values = slices.Clip(values)
		for _, k := range keys {
			values = append(values, f.Labels[k])
		}
	}
	return append(out, source.Sample{Name: name, Help: help, LabelNames: names, Values: values, Value: v})
}

// cut shortens s to at most n bytes, on a character boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
