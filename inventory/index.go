package inventory

import (
	"crypto/x509"
	mathbits "math/bits"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/certwatch/certwatch/collector"
	"github.com/certwatch/certwatch/inspect"
	"github.com/certwatch/certwatch/source"
)

// row is one place of a snapshot, reduced to what the list, the API and the
// CSV show and filter on. Rows are built once per snapshot; everything that
// depends on the time of the request (time left, lifetime used) is computed
// when a row is shown.
type row struct {
	j   *collector.Judged
	pos int // in index.rows

	source, target, key string
	subjectCN, issuerCN string
	subject             string   // the leaf's whole subject name
	sans                []string // DNS names, IP addresses, URIs, email addresses of the leaf
	fingerprint         string   // SHA-256 of the leaf
	leaf                int      // index of the leaf in j.Certs; -1 without certificates
	notBefore, notAfter time.Time
	chainNotAfter       time.Time
	reason              string // "" for a place without certificates
	detail              string
	errClass            string // "" when the place was read
	errMsg              string
	labels              map[string]string
	haystack            string // lowercased target, key, subject, issuer and SANs for text search
}

// judged reports whether the place had certificates.
func (r *row) judged() bool { return r.leaf >= 0 }

// index is the rows of one snapshot, with the counts the page header shows.
type index struct {
	snap       *collector.Snapshot
	rows       []row
	byPlace    map[placeKey]int
	reasons    map[string]int // judged places by reason
	classes    map[string]int // places by error class (partly read ones included)
	sources    []string       // distinct sources, sorted
	labelNames []string       // distinct extra label names, sorted

	// orders caches, by sort column and direction, the positions of all
	// rows in that order: made on first use, once per snapshot, so that a
	// request walks the rows in order and filters them instead of sorting.
	// (Not for lifetime_used, whose order moves with the clock.)
	ordersMu sync.Mutex
	orders   map[string][]int32
}

type placeKey struct{ source, target, key string }

// leafIndex is the position of the place's leaf: the first certificate the
// verdict calls a leaf, or the first certificate.
func leafIndex(j *collector.Judged) int {
	if len(j.Certs) == 0 {
		return -1
	}
	for i, r := range j.Verdict.Roles {
		if r == inspect.RoleLeaf && i < len(j.Certs) {
			return i
		}
	}
	return 0
}

// sansOf lists a certificate's subject alternative names (bounded, as the
// facts are), DNS names first.
func sansOf(f *inspect.Facts) []string {
	n := len(f.DNSNames) + len(f.IPAddresses) + len(f.URIs) + len(f.EmailAddresses)
	if n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	out = append(out, f.DNSNames...)
	out = append(out, f.IPAddresses...)
	out = append(out, f.URIs...)
	return append(out, f.EmailAddresses...)
}

func buildIndex(s *collector.Snapshot) *index {
	ix := &index{snap: s, rows: make([]row, 0, len(s.Places)), byPlace: make(map[placeKey]int, len(s.Places)),
		reasons: map[string]int{}, classes: map[string]int{}}
	sources := map[string]bool{}
	labelNames := map[string]bool{}
	var sb strings.Builder
	for i := range s.Places {
		j := &s.Places[i]
		r := row{j: j, pos: len(ix.rows), source: j.Source, target: j.Target, key: j.Key, labels: j.Labels, leaf: leafIndex(j)}
		if r.judged() {
			f := inspect.FactsOf(j.Certs[r.leaf])
			r.subjectCN, r.issuerCN, r.subject = f.SubjectCN, f.IssuerCN, f.Subject
			r.sans = sansOf(&f)
			r.fingerprint = f.FingerprintSHA256
			r.notBefore, r.notAfter = f.NotBefore, f.NotAfter
			r.chainNotAfter = j.Verdict.ChainNotAfter
			r.reason, r.detail = string(j.Verdict.Reason), j.Verdict.Detail
			ix.reasons[r.reason]++
		}
		if j.Err != nil {
			r.errClass, r.errMsg = string(source.ClassOf(j.Err)), j.Err.Error()
			ix.classes[r.errClass]++
		}
		sb.Reset()
		for _, s := range []string{r.target, r.key, r.subjectCN, r.issuerCN} {
			sb.WriteString(s)
			sb.WriteByte('\n')
		}
		for _, s := range r.sans {
			sb.WriteString(s)
			sb.WriteByte('\n')
		}
		r.haystack = strings.ToLower(sb.String())
		sources[r.source] = true
		for k := range r.labels {
			labelNames[k] = true
		}
		k := placeKey{r.source, r.target, r.key}
		if _, dup := ix.byPlace[k]; !dup {
			ix.byPlace[k] = len(ix.rows)
		}
		ix.rows = append(ix.rows, r)
	}
	for s := range sources {
		ix.sources = append(ix.sources, s)
	}
	sort.Strings(ix.sources)
	for k := range labelNames {
		ix.labelNames = append(ix.labelNames, k)
	}
	sort.Strings(ix.labelNames)
	return ix
}

// place returns the row of one place, or nil.
func (ix *index) place(src, target, key string) *row {
	i, ok := ix.byPlace[placeKey{src, target, key}]
	if !ok {
		return nil
	}
	return &ix.rows[i]
}

// reasonCounts lists the judged places by reason, in the order of
// inspect.Reasons, and then the places that failed.
func (ix *index) reasonCounts() []count {
	var out []count
	for _, r := range inspect.Reasons {
		if n := ix.reasons[string(r)]; n > 0 {
			out = append(out, count{Name: string(r), N: n})
		}
	}
	return out
}

// classCounts lists the places with an error by class, in the order of
// source.Classes.
func (ix *index) classCounts() []count {
	var out []count
	for _, c := range source.Classes {
		if n := ix.classes[string(c)]; n > 0 {
			out = append(out, count{Name: string(c), N: n})
		}
	}
	return out
}

type count struct {
	Name string
	N    int
}

// sortedOrder returns the positions of all rows in the order a query
// asks for, or nil when that order depends on the time.
func (ix *index) sortedOrder(col string, desc bool, now time.Time) []int32 {
	if col == "lifetime_used" {
		return nil
	}
	if col == "time_left" {
		col = "not_after"
	}
	key := col
	if desc {
		key += " desc"
	}
	ix.ordersMu.Lock()
	defer ix.ordersMu.Unlock()
	if o, ok := ix.orders[key]; ok {
		return o
	}
	all := make([]*row, len(ix.rows))
	for i := range ix.rows {
		all[i] = &ix.rows[i]
	}
	sortRows(all, col, desc, now)
	o := make([]int32, len(all))
	for i, r := range all {
		o[i] = int32(r.pos)
	}
	if ix.orders == nil {
		ix.orders = map[string][]int32{}
	}
	ix.orders[key] = o
	return o
}

// match returns the rows the query selects, sorted as it asks.
func (ix *index) match(q *Query, now time.Time) []*row {
	_, rows := ix.matchRange(q, now, 0, len(ix.rows))
	return rows
}

// matchPage returns how many rows the query selects and those of its page.
func (ix *index) matchPage(q *Query, now time.Time) (int, []*row) {
	start := (q.Page - 1) * q.PageSize
	if start < 0 || start > len(ix.rows) {
		start = len(ix.rows)
	}
	return ix.matchRange(q, now, start, q.PageSize)
}

// minOrderedMatches is how many matches make walking the cached order
// cheaper than sorting them (a variable for the tests).
var minOrderedMatches = 4096

// matchRange counts the rows the query selects and returns n of them from
// start on, in the order it asks. The rows are filtered in one sequential
// pass. Few matches are then sorted; many are picked by walking the cached
// order of all rows, which costs a pass instead of a sort.
func (ix *index) matchRange(q *Query, now time.Time, start, n int) (int, []*row) {
	text := strings.ToLower(q.Text)
	deadline := now.Add(q.ExpiringWithin)
	selected := make([]uint64, (len(ix.rows)+63)/64)
	matched := 0
	for i := range ix.rows {
		if ix.selects(q, &ix.rows[i], text, deadline) {
			selected[i/64] |= 1 << (i % 64)
			matched++
		}
	}
	var order []int32
	if matched > minOrderedMatches && matched > len(ix.rows)/16 {
		order = ix.sortedOrder(q.Sort, q.Desc, now)
	}
	if order == nil {
		hits := make([]*row, 0, matched)
		for w, bits := range selected {
			for ; bits != 0; bits &= bits - 1 {
				hits = append(hits, &ix.rows[w*64+mathbits.TrailingZeros64(bits)])
			}
		}
		sortRows(hits, q.Sort, q.Desc, now)
		return matched, hits[min(start, matched):min(start+n, matched)]
	}
	out := make([]*row, 0, min(n, matched))
	k := 0
	for _, i := range order {
		if selected[i/64]&(1<<(i%64)) == 0 {
			continue
		}
		if k >= start {
			if len(out) == n {
				break
			}
			out = append(out, &ix.rows[i])
		}
		k++
	}
	return matched, out
}

// selects reports whether the query selects a row; text is the query's
// lowercased text, deadline the end of its expiring_within.
func (ix *index) selects(q *Query, r *row, text string, deadline time.Time) bool {
	if q.Source != "" && r.source != q.Source {
		return false
	}
	if q.Reason != "" && r.reason != q.Reason {
		return false
	}
	switch q.ErrorClass {
	case "":
	case ClassAny:
		if r.errClass == "" {
			return false
		}
	case ClassNone:
		if r.errClass != "" {
			return false
		}
	default:
		if r.errClass != q.ErrorClass {
			return false
		}
	}
	if q.HasExpiring && (!r.judged() || r.notAfter.After(deadline)) {
		return false
	}
	if !labelsMatch(r.labels, q.Labels) {
		return false
	}
	return text == "" || strings.Contains(r.haystack, text)
}

func labelsMatch(have map[string]string, want []LabelFilter) bool {
	for _, l := range want {
		if v, ok := have[l.Name]; !ok || v != l.Value {
			return false
		}
	}
	return true
}

// sortRows sorts by a column; rows lacking the value (a failed place has no
// dates) come last in either direction, and ties keep the place order
// (source, target, key), so that paging is stable.
func sortRows(rows []*row, col string, desc bool, now time.Time) {
	cmpCol := columnCompare(col, now)
	slices.SortFunc(rows, func(a, b *row) int {
		c, missing := cmpCol(a, b)
		if missing != 0 {
			return missing
		}
		if desc {
			c = -c
		}
		if c != 0 {
			return c
		}
		if c = strings.Compare(a.source, b.source); c != 0 {
			return c
		}
		if c = strings.Compare(a.target, b.target); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
}

// columnCompare returns a comparison of two rows by a column, and the order
// of rows lacking the value (non-zero when only one of them has it).
func columnCompare(col string, now time.Time) func(a, b *row) (int, int) {
	str := func(get func(*row) string) func(a, b *row) (int, int) {
		return func(a, b *row) (int, int) {
			x, y := get(a), get(b)
			if m := missingLast(x == "", y == ""); m != 0 {
				return 0, m
			}
			return strings.Compare(x, y), 0
		}
	}
	tm := func(get func(*row) time.Time) func(a, b *row) (int, int) {
		return func(a, b *row) (int, int) {
			x, y := get(a), get(b)
			if m := missingLast(x.IsZero(), y.IsZero()); m != 0 {
				return 0, m
			}
			return x.Compare(y), 0
		}
	}
	switch col {
	case "source":
		return str(func(r *row) string { return r.source })
	case "target":
		return str(func(r *row) string { return r.target })
	case "key":
		return str(func(r *row) string { return r.key })
	case "subject_cn":
		return str(func(r *row) string { return r.subjectCN })
	case "issuer_cn":
		return str(func(r *row) string { return r.issuerCN })
	case "sans":
		return str(func(r *row) string {
			if len(r.sans) == 0 {
				return ""
			}
			return r.sans[0]
		})
	case "reason":
		return str(func(r *row) string { return r.reason })
	case "error_class":
		return str(func(r *row) string { return r.errClass })
	case "not_before":
		return tm(func(r *row) time.Time { return r.notBefore })
	case "chain_not_after":
		return tm(func(r *row) time.Time { return r.chainNotAfter })
	case "lifetime_used":
		return func(a, b *row) (int, int) {
			x, okx := lifetimeUsed(a, now)
			y, oky := lifetimeUsed(b, now)
			if m := missingLast(!okx, !oky); m != 0 {
				return 0, m
			}
			switch {
			case x < y:
				return -1, 0
			case x > y:
				return 1, 0
			}
			return 0, 0
		}
	}
	if name, ok := strings.CutPrefix(col, labelPrefix); ok {
		return str(func(r *row) string { return r.labels[name] })
	}
	// not_after, time_left and the default: the leaf's not-after.
	return tm(func(r *row) time.Time { return r.notAfter })
}

func missingLast(a, b bool) int {
	switch {
	case a && !b:
		return 1
	case b && !a:
		return -1
	}
	return 0
}

// lifetimeUsed is the fraction of the leaf's validity period that has
// passed: 0 at not-before (and before), 1 at not-after, above 1 once
// expired.
func lifetimeUsed(r *row, now time.Time) (float64, bool) {
	if !r.judged() {
		return 0, false
	}
	total := r.notAfter.Sub(r.notBefore)
	switch {
	case total <= 0:
		return 1, true
	case now.Before(r.notBefore): // not yet valid: nothing used
		return 0, true
	}
	return float64(now.Sub(r.notBefore)) / float64(total), true
}

// certAt returns the certificate at index i of a row's place, or nil.
func (r *row) certAt(i int) *x509.Certificate {
	if i < 0 || i >= len(r.j.Certs) {
		return nil
	}
	return r.j.Certs[i]
}
