package inventory

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/source"
)

//go:embed templates/*.html static/style.css
var assets embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"thousands": thousands,
}).ParseFS(assets, "templates/*.html"))

func serveStyle(w http.ResponseWriter, r *http.Request) {
	css, _ := assets.ReadFile("static/style.css")
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=3600")
	_, _ = w.Write(css)
}

// render executes a template into a buffer first, so that a failure is a
// clean 500 rather than half a page.
func (h *Handler) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		h.logger.Error("Rendering the inventory", "template", name, "err", err)
		http.Error(w, "rendering failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// thousands writes n with thin separators: 100,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// human writes a duration the way people read expiry: days, hours, minutes.
func human(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d >= 48*time.Hour:
		return strconv.Itoa(int(d/(24*time.Hour))) + " d"
	case d >= 2*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h"
	}
	return strconv.Itoa(int(d/time.Minute)) + " min"
}

func dateTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// Views for the templates. Everything in them is plain text that
// html/template escapes; URLs are built with url.Values.

type link struct {
	Text, URL string
	Active    bool
	N         int
}

type column struct {
	Label, URL string
	Sorted     string // "", "asc", "desc"
	Class      string
}

type rowView struct {
	Source, Target, Key string
	SubjectCN, IssuerCN string
	SANs                []string
	MoreSANs            int
	Subject             string // shown when there is no CN
	NotAfterDate        string
	NotAfterTime        string
	TimeLeft            string
	ChainNotAfter       string
	ChainEarlier        bool // the chain breaks before the leaf expires
	Urgency             string
	LifetimePct         int
	HasDates            bool
	Reason, Detail      string
	ErrClass, ErrMsg    string
	Labels              []link
	DetailURL           string
}

type listView struct {
	Title        string
	StyleURL     string
	NoSnapshot   bool
	SnapshotTime string
	SnapshotAge  string
	Collectors   []CollectorStatus
	Total        int
	Matched      int
	From, To     int
	Reasons      []link
	Classes      []link
	Q            *Query
	Err          string
	Sources      []string
	AllReasons   []string
	AllClasses   []string
	LabelFields  []LabelFilter // a field per extra label name, with its filter value
	PageSizes    []int
	Columns      []column
	Rows         []rowView
	Page, Pages  int
	PrevURL      string
	NextURL      string
	FirstURL     string
	LastURL      string
	ResetURL     string
	CSVURL       string
	JSONURL      string
}

const maxSANsShown = 3

// urgency classes a place for colour: expired or broken, soon (14 days),
// attention (30 days), fine.
func urgency(r *row, now time.Time) string {
	switch {
	case r.errClass != "" && !r.judged():
		return "err"
	case r.reason != string(inspect.ReasonOK):
		return "bad"
	case r.notAfter.Sub(now) < 14*24*time.Hour:
		return "bad"
	case r.notAfter.Sub(now) < 30*24*time.Hour:
		return "warn"
	}
	return "good"
}

func (r *row) view(now time.Time) rowView {
	v := rowView{Subject: r.subject, Source: r.source, Target: r.target, Key: r.key, SubjectCN: r.subjectCN, IssuerCN: r.issuerCN,
		Reason: r.reason, Detail: r.detail, ErrClass: r.errClass, ErrMsg: r.errMsg, DetailURL: r.detailURL(),
		Urgency: urgency(r, now)}
	v.SANs = r.sans
	if len(v.SANs) > maxSANsShown {
		v.SANs, v.MoreSANs = v.SANs[:maxSANsShown], len(r.sans)-maxSANsShown
	}
	if r.judged() {
		v.HasDates = true
		v.NotAfterDate, v.NotAfterTime = r.notAfter.UTC().Format("2006-01-02"), r.notAfter.UTC().Format("15:04 UTC")
		left := r.notAfter.Sub(now)
		if left < 0 {
			v.TimeLeft = "expired " + human(left) + " ago"
		} else {
			v.TimeLeft = human(left)
		}
		if !r.chainNotAfter.IsZero() && r.chainNotAfter.Before(r.notAfter) {
			v.ChainEarlier, v.ChainNotAfter = true, dateTime(r.chainNotAfter)
		}
		u, _ := lifetimeUsed(r, now)
		v.LifetimePct = int(math.Round(100 * math.Max(0, math.Min(1, u))))
	}
	for _, k := range sortedKeys(r.labels) {
		v.Labels = append(v.Labels, link{Text: k + "=" + r.labels[k]})
	}
	return v
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ { // few keys: insertion sort
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// listColumns are the table's columns: header text, sort column, CSS class.
var listColumns = []struct{ label, sort, class string }{
	{"Place", "target", "c-place"},
	{"Subject", "subject_cn", "c-subject"},
	{"Issuer", "issuer_cn", "c-issuer"},
	{"SANs", "sans", "c-sans"},
	{"Expires", "not_after", "c-date"},
	{"Time left", "time_left", "c-left"},
	{"Used", "lifetime_used", "c-life"},
	{"Verdict", "reason", "c-reason"},
	{"Error", "error_class", "c-error"},
}

func (h *Handler) servePage(w http.ResponseWriter, r *http.Request) {
	status := http.StatusOK
	q, err := ParseQuery(r.URL.Query())
	v := listView{Title: "Certificate inventory", StyleURL: StylePath, Q: &q, PageSizes: []int{50, 100, 250, 1000}}
	if err != nil {
		status, v.Err = http.StatusBadRequest, err.Error()
	}
	if !slices.Contains(v.PageSizes, q.PageSize) {
		v.PageSizes = append(v.PageSizes, q.PageSize)
		slices.Sort(v.PageSizes)
	}
	for _, re := range inspect.Reasons {
		v.AllReasons = append(v.AllReasons, string(re))
	}
	v.AllClasses = append(v.AllClasses, ClassAny, ClassNone)
	for _, c := range source.Classes {
		v.AllClasses = append(v.AllClasses, string(c))
	}
	ix := h.snapshotIndex(r.Context())
	now := h.opts.Now()
	if ix == nil {
		v.NoSnapshot = true
		h.render(w, status, "list.html", v)
		return
	}
	v.SnapshotTime, v.SnapshotAge = dateTime(ix.snap.At), human(now.Sub(ix.snap.At))
	for _, c := range ix.snap.Collectors {
		v.Collectors = append(v.Collectors, CollectorStatus{Name: c.Name, OK: c.OK, TookSeconds: c.Took.Seconds()})
	}
	v.Total, v.Sources = len(ix.rows), ix.sources
	for _, c := range ix.reasonCounts() {
		v.Reasons = append(v.Reasons, link{Text: c.Name, N: c.N, URL: "?" + q.With("reason", c.Name, "page", "").Encode(), Active: q.Reason == c.Name})
	}
	for _, c := range ix.classCounts() {
		v.Classes = append(v.Classes, link{Text: c.Name, N: c.N, URL: "?" + q.With("error_class", c.Name, "page", "").Encode(), Active: q.ErrorClass == c.Name})
	}
	for i, name := range ix.labelNames {
		if i == 8 { // more label names than fit the form: label.NAME still works in the URL
			break
		}
		v.LabelFields = append(v.LabelFields, LabelFilter{Name: name, Value: q.Label(name)})
	}
	for _, c := range listColumns {
		col := column{Label: c.label, Class: c.class}
		order := ""
		if q.Sort == c.sort {
			col.Sorted = "asc"
			if q.Desc {
				col.Sorted = "desc"
			} else {
				order = "desc" // a second click reverses
			}
		}
		col.URL = "?" + q.With("sort", c.sort, "order", order, "page", "").Encode()
		v.Columns = append(v.Columns, col)
	}
	if err != nil {
		h.render(w, status, "list.html", v)
		return
	}
	matched, page := ix.matchPage(&q, now)
	v.Matched = matched
	v.Pages = max(1, (matched+q.PageSize-1)/q.PageSize)
	v.Page = q.Page
	if len(page) > 0 {
		v.From, v.To = (q.Page-1)*q.PageSize+1, (q.Page-1)*q.PageSize+len(page)
	}
	for _, rw := range page {
		v.Rows = append(v.Rows, rw.view(now))
	}
	pageURL := func(n int) string { return "?" + q.With("page", strconv.Itoa(n)).Encode() }
	if q.Page > 1 {
		v.PrevURL, v.FirstURL = pageURL(min(q.Page-1, v.Pages)), pageURL(1)
	}
	if q.Page < v.Pages {
		v.NextURL, v.LastURL = pageURL(q.Page+1), pageURL(v.Pages)
	}
	v.ResetURL = PagePath
	all := q.With("page", "", "page_size", "")
	v.CSVURL = CSVPath + "?" + all.Encode()
	v.JSONURL = APIPath + "?" + q.Values().Encode()
	h.render(w, status, "list.html", v)
}

type placeView struct {
	Title      string
	StyleURL   string
	BackURL    string
	Snapshot   string
	P          Place
	Urgency    string
	Expires    string
	TimeLeft   string
	ChainUntil string
	Handshake  string
	Module     string
	ProbeURL   string
	Certs      []certView
}

type certView struct {
	Certificate
	NotBeforeText, NotAfterText string
	Expired                     bool
	IsLeaf                      bool
	PathLen                     string
}

func (h *Handler) servePlace(w http.ResponseWriter, r *http.Request) {
	ix, p := h.placeOf(w, r, false)
	if p == nil {
		return
	}
	now := h.opts.Now()
	pl := p.place(ix.snap.At, h.opts.DefaultModule)
	v := placeView{Title: p.target, StyleURL: StylePath, BackURL: PagePath, Snapshot: dateTime(ix.snap.At), P: pl, Urgency: urgency(p, now),
		Module: h.opts.DefaultModule}
	if pl.ProbeURL != nil {
		v.ProbeURL = probePath
	}
	if p.judged() {
		v.Expires = dateTime(p.notAfter)
		if left := p.notAfter.Sub(now); left < 0 {
			v.TimeLeft = "expired " + human(left) + " ago"
		} else {
			v.TimeLeft = "in " + human(left)
		}
		v.ChainUntil = dateTime(p.chainNotAfter)
	}
	if pl.TLS != nil {
		v.Handshake = fmt.Sprintf("%.1f ms", pl.TLS.HandshakeDurationSeconds*1000)
	}
	for i, c := range pl.Certificates {
		cv := certView{Certificate: c, IsLeaf: i == p.leaf}
		cert := p.j.Certs[i]
		cv.NotBeforeText, cv.NotAfterText = dateTime(cert.NotBefore), dateTime(cert.NotAfter)
		cv.Expired = now.After(cert.NotAfter)
		switch {
		case !c.IsCA:
		case c.MaxPathLen != nil:
			cv.PathLen = strconv.Itoa(*c.MaxPathLen)
		default:
			cv.PathLen = "unlimited"
		}
		v.Certs = append(v.Certs, cv)
	}
	h.render(w, http.StatusOK, "place.html", v)
}
