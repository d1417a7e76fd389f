package inventory

import (
	"encoding/csv"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/certwatch/certwatch/inspect"
)

// listOf is the answer holding one page of the rows that matched.
func listOf(ix *index, q *Query, matched int, page []*row, now time.Time) List {
	l := List{Page: q.Page, PageSize: q.PageSize, Reasons: map[string]int{}, ErrorClasses: map[string]int{},
		Collectors: []CollectorStatus{}, Items: []Item{}}
	if ix == nil {
		return l
	}
	l.SnapshotTime, l.Total, l.Matched = rfc3339(ix.snap.At), len(ix.rows), matched
	for _, c := range ix.reasonCounts() {
		l.Reasons[c.Name] = c.N
	}
	for _, c := range ix.classCounts() {
		l.ErrorClasses[c.Name] = c.N
	}
	for _, c := range ix.snap.Collectors {
		l.Collectors = append(l.Collectors, CollectorStatus{Name: c.Name, OK: c.OK, TookSeconds: c.Took.Seconds()})
	}
	for _, r := range page {
		l.Items = append(l.Items, r.item(now))
	}
	return l
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true) // the answer is safe to embed even if a client mis-sniffs it
	_ = enc.Encode(v)
}

type apiError struct {
	Error string `json:"error"`
}

func (h *Handler) serveAPI(w http.ResponseWriter, r *http.Request) {
	q, err := ParseQuery(r.URL.Query())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	ix := h.snapshotIndex(r.Context())
	now := h.opts.Now()
	var matched int
	var page []*row
	if ix != nil {
		matched, page = ix.matchPage(&q, now)
	}
	writeJSON(w, http.StatusOK, listOf(ix, &q, matched, page, now))
}

// placeOf finds the place a request names, answering 404 itself when there
// is none.
func (h *Handler) placeOf(w http.ResponseWriter, r *http.Request, asJSON bool) (*index, *row) {
	v := r.URL.Query()
	ix := h.snapshotIndex(r.Context())
	var p *row
	if ix != nil {
		p = ix.place(v.Get("source"), v.Get("target"), v.Get("key"))
	}
	if p == nil {
		msg := "no such place in the last scrape (source, target and key name one)"
		if asJSON {
			writeJSON(w, http.StatusNotFound, apiError{msg})
		} else {
			http.Error(w, msg, http.StatusNotFound)
		}
	}
	return ix, p
}

func (h *Handler) serveAPIPlace(w http.ResponseWriter, r *http.Request) {
	ix, p := h.placeOf(w, r, true)
	if p == nil {
		return
	}
	writeJSON(w, http.StatusOK, p.place(ix.snap.At, h.opts.DefaultModule))
}

// servePEM answers one certificate of a place as a PEM file. Only
// certificates: snapshots hold no private key.
func (h *Handler) servePEM(w http.ResponseWriter, r *http.Request) {
	_, p := h.placeOf(w, r, false)
	if p == nil {
		return
	}
	i, err := strconv.Atoi(r.URL.Query().Get("index"))
	c := p.certAt(i)
	if err != nil || c == nil {
		http.Error(w, "index names no certificate of this place", http.StatusNotFound)
		return
	}
	// The name is made of hex digits only: nothing from the certificate.
	name := "certificate-" + inspect.FactsOf(c).FingerprintSHA256[:16] + ".pem"
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	_ = pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// CSV: formula guard. Spreadsheets run a cell that starts with = + - @ (or
// a tab or carriage return, which some strip first) as a formula; names in
// certificates are chosen by whoever made them. Such text cells get a
// leading apostrophe, which spreadsheets show as text and hide. Numbers
// certwatch writes itself (time left may be negative) are left as they are.
func guardCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// csvColumns are the CSV's columns before the label columns.
var csvColumns = []string{"source", "target", "key", "subject_cn", "issuer_cn", "sans", "not_before", "not_after",
	"chain_not_after", "time_left_seconds", "lifetime_used", "reason", "reason_detail", "error_class", "error",
	"certificates", "fingerprint_sha256"}

func (h *Handler) serveCSV(w http.ResponseWriter, r *http.Request) {
	q, err := ParseQuery(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ix := h.snapshotIndex(r.Context())
	now := h.opts.Now()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8; header=present")
	w.Header().Set("Content-Disposition", `attachment; filename="certificates.csv"`)
	cw := csv.NewWriter(w)
	cw.UseCRLF = true // RFC 4180
	var labelNames []string
	if ix != nil {
		labelNames = ix.labelNames
	}
	header := append([]string(nil), csvColumns...)
	for _, l := range labelNames {
		header = append(header, labelPrefix+l)
	}
	_ = cw.Write(header)
	if ix == nil {
		cw.Flush()
		return
	}
	rec := make([]string, len(header))
	for _, rw := range ix.match(&q, now) {
		it := rw.item(now)
		rec = rec[:0]
		rec = append(rec, guardCell(it.Source), guardCell(it.Target), guardCell(it.Key), guardCell(it.SubjectCN),
			guardCell(it.IssuerCN), guardCell(strings.Join(it.SANs, ", ")), deref(it.NotBefore), deref(it.NotAfter),
			deref(it.ChainNotAfter), "", "", deref(it.Reason), guardCell(it.ReasonDetail), deref(it.ErrorClass),
			guardCell(deref(it.Error)), strconv.Itoa(it.Certificates), it.FingerprintSHA256)
		if it.TimeLeftSeconds != nil {
			rec[9] = strconv.FormatInt(*it.TimeLeftSeconds, 10)
		}
		if it.LifetimeUsed != nil {
			rec[10] = strconv.FormatFloat(*it.LifetimeUsed, 'f', -1, 64)
		}
		for _, l := range labelNames {
			rec = append(rec, guardCell(rw.labels[l]))
		}
		if err := cw.Write(rec); err != nil {
			return // the client went away
		}
	}
	cw.Flush()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
