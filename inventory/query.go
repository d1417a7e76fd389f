package inventory

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/source"
)

// Page sizes: the pages show DefaultPageSize rows unless asked for more;
// no answer holds more than MaxPageSize (the CSV is not paged).
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Special values of the error_class parameter.
const (
	ClassAny  = "any"  // any place with an error
	ClassNone = "none" // places read without error
)

const labelPrefix = "label."

// Columns are the names the sort parameter takes (and label.NAME for an
// extra label). time_left sorts as not_after.
var Columns = []string{"source", "target", "key", "subject_cn", "issuer_cn", "sans", "not_before", "not_after",
	"chain_not_after", "time_left", "lifetime_used", "reason", "error_class"}

// LabelFilter selects places whose extra label Name has Value.
type LabelFilter struct{ Name, Value string }

// Query is what the pages, the API and the CSV select and how they order
// it, parsed from the same URL parameters:
//
//	q                 text contained in target, key, subject CN, issuer CN or a SAN (case-insensitive)
//	source            endpoint, file, ...
//	reason            a verdict reason (ok, expired, ...)
//	error_class       an error class, "any" or "none"
//	expiring_within   the leaf expires within this (Go duration such as 72h, or days such as 30d); expired leaves included
//	label.NAME        an extra label's value, e.g. label.team=payments
//	sort              a column (see Columns, or label.NAME); default not_after
//	order             asc (default) or desc
//	page              1-based page number
//	page_size         rows per page, at most MaxPageSize
type Query struct {
	Text           string
	Source         string
	Reason         string
	ErrorClass     string
	ExpiringWithin time.Duration
	HasExpiring    bool
	expiringRaw    string
	Labels         []LabelFilter // sorted by name
	Sort           string
	Desc           bool
	Page           int
	PageSize       int
}

// ParseQuery reads a Query from URL parameters. Unknown parameters are
// ignored; malformed values of known ones are an error.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{
		Text:       strings.TrimSpace(v.Get("q")),
		Source:     v.Get("source"),
		Reason:     v.Get("reason"),
		ErrorClass: v.Get("error_class"),
		Sort:       v.Get("sort"),
		Page:       1,
		PageSize:   DefaultPageSize,
	}
	if q.Reason != "" && !slices.Contains(inspect.Reasons, inspect.Reason(q.Reason)) {
		return q, fmt.Errorf("reason %q is not one of %s", q.Reason, joinNames(inspect.Reasons))
	}
	if c := q.ErrorClass; c != "" && c != ClassAny && c != ClassNone && !slices.Contains(source.Classes, source.Class(c)) {
		return q, fmt.Errorf("error_class %q is not %q, %q or one of %s", c, ClassAny, ClassNone, joinNames(source.Classes))
	}
	if s := strings.TrimSpace(v.Get("expiring_within")); s != "" {
		d, err := ParseWithin(s)
		if err != nil {
			return q, err
		}
		q.ExpiringWithin, q.HasExpiring, q.expiringRaw = d, true, s
	}
	for name, values := range v {
		if l, ok := strings.CutPrefix(name, labelPrefix); ok && l != "" && len(values) > 0 && values[0] != "" {
			q.Labels = append(q.Labels, LabelFilter{Name: l, Value: values[0]})
		}
	}
	slices.SortFunc(q.Labels, func(a, b LabelFilter) int { return strings.Compare(a.Name, b.Name) })
	if q.Sort == "" {
		q.Sort = "not_after"
	} else if !slices.Contains(Columns, q.Sort) && !(strings.HasPrefix(q.Sort, labelPrefix) && len(q.Sort) > len(labelPrefix)) {
		return q, fmt.Errorf("sort %q is not a column: one of %s or label.NAME", q.Sort, strings.Join(Columns, ", "))
	}
	switch v.Get("order") {
	case "", "asc":
	case "desc":
		q.Desc = true
	default:
		return q, fmt.Errorf("order %q is neither asc nor desc", v.Get("order"))
	}
	var err error
	if q.Page, err = positive(v, "page", 1); err != nil {
		return q, err
	}
	if q.PageSize, err = positive(v, "page_size", DefaultPageSize); err != nil {
		return q, err
	}
	q.PageSize = min(q.PageSize, MaxPageSize)
	return q, nil
}

func positive(v url.Values, name string, def int) (int, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return def, fmt.Errorf("%s %q is not a positive whole number", name, s)
	}
	return n, nil
}

// ParseWithin reads a duration as Go writes them (90m, 72h) or a number of
// days (30d).
func ParseWithin(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err == nil && n >= 0 && n < 1e5 {
			return time.Duration(n * float64(24*time.Hour)), nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, nil
	}
	return 0, fmt.Errorf("expiring_within %q is neither a duration (72h) nor a number of days (30d)", s)
}

func joinNames[T ~string](names []T) string {
	s := make([]string, len(names))
	for i, n := range names {
		s[i] = string(n)
	}
	return strings.Join(s, ", ")
}

// Values returns the query as URL parameters, leaving out defaults, so that
// links keep the filters.
func (q *Query) Values() url.Values {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("q", q.Text)
	set("source", q.Source)
	set("reason", q.Reason)
	set("error_class", q.ErrorClass)
	set("expiring_within", q.expiringRaw)
	for _, l := range q.Labels {
		v.Set(labelPrefix+l.Name, l.Value)
	}
	if q.Sort != "not_after" {
		v.Set("sort", q.Sort)
	}
	if q.Desc {
		v.Set("order", "desc")
	}
	if q.Page > 1 {
		v.Set("page", strconv.Itoa(q.Page))
	}
	if q.PageSize != DefaultPageSize {
		v.Set("page_size", strconv.Itoa(q.PageSize))
	}
	return v
}

// With returns the query's parameters with some changed ("" removes one).
func (q *Query) With(kv ...string) url.Values {
	v := q.Values()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			v.Del(kv[i])
		} else {
			v.Set(kv[i], kv[i+1])
		}
	}
	return v
}

// Label returns the filter value of an extra label, or "".
func (q *Query) Label(name string) string {
	for _, l := range q.Labels {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// ExpiringRaw is the expiring_within value as given.
func (q *Query) ExpiringRaw() string { return q.expiringRaw }
