package inventory

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/csv"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/certwatch/certwatch/collector"
	"github.com/certwatch/certwatch/source"
)

// testBulk is the unit tests' number of ordinary places: 10 of team
// payments, 20 of platform, expiring 3 to 32 days out.
const testBulk = 30

func decodeList(t *testing.T, body []byte) List {
	t.Helper()
	var l List
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	return l
}

func (f *fixture) list(t *testing.T, query string) List {
	t.Helper()
	rec := f.get(t, APIPath+"?"+query)
	if rec.Code != http.StatusOK {
		t.Fatalf("%s: status %d: %s", query, rec.Code, rec.Body)
	}
	return decodeList(t, rec.Body.Bytes())
}

func itemByTarget(l List, suffix string) *Item {
	for i := range l.Items {
		if strings.HasSuffix(l.Items[i].Target, suffix) {
			return &l.Items[i]
		}
	}
	return nil
}

// countingSnapshots counts the collections the inventory asks of a real
// exporter.
type countingSnapshots struct {
	*collector.Exporter
	refreshes atomic.Int32
}

func (c *countingSnapshots) Refresh(ctx context.Context) *collector.Snapshot {
	c.refreshes.Add(1)
	return c.Exporter.Refresh(ctx)
}

// TestRefreshOnlyWithoutSnapshot: the first requests collect once when
// nothing was scraped yet, however many arrive together; later ones read
// the published snapshot, and follow a new one.
func TestRefreshOnlyWithoutSnapshot(t *testing.T) {
	f := newFixture(t, 0)
	src := &countingSnapshots{Exporter: f.e}
	mux := http.NewServeMux()
	h := New(src, promslog.NewNopLogger(), Options{})
	h.Register(mux)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := []string{PagePath, APIPath, CSVPath, PlacePath + "?source=endpoint&target=" + f.okAddr}[i%4]
			if rec := httpGet(mux, path); rec.Code != http.StatusOK {
				t.Errorf("%s: %d", path, rec.Code)
			}
		}()
	}
	wg.Wait()
	first := f.e.Snapshot()
	if n := src.refreshes.Load(); n != 1 || first == nil || len(first.Places) != f.places() {
		t.Fatalf("%d collections for the first requests, snapshot %v, want 1 of %d places", n, first != nil, f.places())
	}
	for range 3 {
		httpGet(mux, PagePath)
		httpGet(mux, CSVPath)
	}
	if f.e.Snapshot() != first || src.refreshes.Load() != 1 {
		t.Error("a request collected although a snapshot existed")
	}
	// A scrape publishes a new snapshot; the inventory follows it.
	next := f.e.Refresh(context.Background())
	var l List
	if err := json.Unmarshal(httpGet(mux, APIPath).Body.Bytes(), &l); err != nil || l.SnapshotTime != rfc3339(next.At) {
		t.Errorf("after a new snapshot the API answers from %q (%v), want %s", l.SnapshotTime, err, rfc3339(next.At))
	}
	if h.current.Load().snap != next || src.refreshes.Load() != 1 {
		t.Error("the inventory did not follow the new snapshot, or collected again")
	}
}

// TestVerdictsAndErrors reads each odd place of the fixture back from the
// API: its verdict or error class and the leaf's names.
func TestVerdictsAndErrors(t *testing.T) {
	f := newFixture(t, testBulk)
	l := f.list(t, "page_size=1000")
	if l.Total != f.places() || l.Matched != l.Total || len(l.Items) != l.Total {
		t.Fatalf("total %d matched %d items %d, want %d places", l.Total, l.Matched, len(l.Items), f.places())
	}
	for _, c := range []struct {
		target, reason, class, cn string
	}{
		{"pki/svc.pem", "ok", "", "svc.payments.example"},
		{"pki/expired.pem", "expired", "", "expired.payments.example"},
		{"pki/future.pem", "not_yet_valid", "", "future.payments.example"},
		{"pki/junk.pem", "", "parse", ""},
		{"pki/stranger.pem", "unknown_authority", "", "unknown.payments.example"},
		{"pki/hostile.pem", "incomplete_chain", "", scriptCN},
		{f.okAddr, "ok", "", "localhost"},
		{f.nameAddr, "hostname_mismatch", "", hostnameCN},
	} {
		it := itemByTarget(l, c.target)
		if it == nil {
			t.Errorf("%s: not listed", c.target)
			continue
		}
		if got := deref(it.Reason); got != c.reason {
			t.Errorf("%s: reason %q, want %q (%s)", c.target, got, c.reason, it.ReasonDetail)
		}
		if got := deref(it.ErrorClass); got != c.class {
			t.Errorf("%s: error class %q, want %q", c.target, got, c.class)
		}
		if it.SubjectCN != c.cn {
			t.Errorf("%s: subject %q, want %q", c.target, it.SubjectCN, c.cn)
		}
		if c.reason != "" && (it.NotAfter == nil || it.TimeLeftSeconds == nil || it.LifetimeUsed == nil) {
			t.Errorf("%s: dates missing: %+v", c.target, it)
		}
	}
	svc := itemByTarget(l, "pki/svc.pem")
	want := []string{"svc.payments.example", "api.payments.example", "spiffe://payments.example/svc", "pki@payments.example"}
	if svc != nil && !slices.Equal(svc.SANs, want) {
		t.Errorf("svc SANs %q, want %q", svc.SANs, want)
	}
	if svc != nil && (svc.Labels["team"] != "payments" || svc.Certificates != 2) {
		t.Errorf("svc labels %v, certificates %d", svc.Labels, svc.Certificates)
	}
	for _, key := range []string{"cluster/prod", "user/ops"} {
		found := false
		for _, it := range l.Items {
			found = found || (strings.HasSuffix(it.Target, "admin.kubeconfig") && it.Key == key && deref(it.Reason) == "ok")
		}
		if !found {
			t.Errorf("the kubeconfig's %s is not listed as ok", key)
		}
	}
	if l.Reasons["ok"] != testBulk+4 || l.ErrorClasses["parse"] != 1 {
		t.Errorf("counts: reasons %v, classes %v", l.Reasons, l.ErrorClasses)
	}
}

// TestFilters selects with each parameter, alone and combined.
func TestFilters(t *testing.T) {
	f := newFixture(t, testBulk)
	for _, c := range []struct {
		query string
		want  int
	}{
		{"", f.places()},
		{"source=endpoint", 2},
		{"source=file", f.places() - 2},
		{"reason=expired", 1},
		{"reason=hostname_mismatch", 1},
		{"reason=ok", testBulk + 4},
		{"error_class=parse", 1},
		{"error_class=any", 1},
		{"error_class=none", f.places() - 1},
		{"error_class=timeout", 0},
		// Bulk place i expires 3+i days out: 0..7 within 10.5 days, plus
		// the expired one.
		{"expiring_within=10.5d", 9},
		{"expiring_within=252h", 9},
		{"label.team=edge", 2},
		{"label.team=payments", 10 + testBulk/3},
		{"q=user/ops", 1},
		{"label.team=payments&source=endpoint", 0},
		{"label.team=platform&reason=ok", testBulk * 2 / 3},
		{"label.nosuch=x", 0},
		{"q=payments.example", testBulk/3 + 4},
		{"q=PAYMENTS.EXAMPLE", testBulk/3 + 4},
		{"reason=not_yet_valid", 1},
		{"q=" + url.QueryEscape("<script>"), 1},
		{"q=spiffe://payments", 1},
		{"q=host-0001", 1},
		{"q=not-this-host&source=endpoint", 1},
		{"q=nothing-matches-this", 0},
	} {
		l := f.list(t, c.query+"&page_size=1000")
		if l.Matched != c.want || len(l.Items) != c.want || l.Total != f.places() {
			var targets []string
			for _, it := range l.Items {
				targets = append(targets, it.Target)
			}
			t.Errorf("%q: matched %d (%d items), want %d; total %d: %q", c.query, l.Matched, len(l.Items), c.want, l.Total, targets)
		}
	}
}

func TestBadParameters(t *testing.T) {
	f := newFixture(t, testBulk)
	for _, q := range []string{"reason=fine", "error_class=oops", "expiring_within=soon", "expiring_within=-3d",
		"sort=colour", "order=up", "page=0", "page=x", "page_size=-1"} {
		for _, path := range []string{APIPath, PagePath, CSVPath} {
			rec := f.get(t, path+"?"+q)
			if rec.Code != http.StatusBadRequest {
				t.Errorf("%s?%s: status %d, want 400", path, q, rec.Code)
			}
		}
		var e apiError
		if err := json.Unmarshal(f.get(t, APIPath+"?"+q).Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Errorf("%s: error body %v %q", q, err, e.Error)
		}
	}
}

// TestSortAndPaging sorts by every column both ways and pages through
// the result: pages put together are the whole sorted list.
func TestSortAndPaging(t *testing.T) {
	f := newFixture(t, testBulk)
	// Both ways to order the matches: sorting them, and walking the cached
	// order of all rows (which the fixture is too small to need).
	for _, threshold := range []int{minOrderedMatches, 0} {
		t.Run(fmt.Sprintf("minOrderedMatches=%d", threshold), func(t *testing.T) {
			defer func(old int) { minOrderedMatches = old }(minOrderedMatches)
			minOrderedMatches = threshold
			testSortAndPaging(t, f)
		})
	}
}

func testSortAndPaging(t *testing.T, f *fixture) {
	key := func(it Item) string { return it.Source + "|" + it.Target + "|" + it.Key }
	for _, col := range append(slices.Clone(Columns), "label.team") {
		for _, order := range []string{"asc", "desc"} {
			q := "sort=" + col + "&order=" + order
			all := f.list(t, q+"&page_size=1000").Items
			if len(all) != f.places() {
				t.Fatalf("%s: %d items", q, len(all))
			}
			var paged []Item
			for page := 1; ; page++ {
				l := f.list(t, fmt.Sprintf("%s&page_size=7&page=%d", q, page))
				if len(l.Items) == 0 {
					break
				}
				if l.Page != page || l.PageSize != 7 {
					t.Fatalf("%s: page %d answered as page %d size %d", q, page, l.Page, l.PageSize)
				}
				paged = append(paged, l.Items...)
			}
			if len(paged) != len(all) {
				t.Fatalf("%s: pages hold %d items, want %d", q, len(paged), len(all))
			}
			for i := range all {
				if key(paged[i]) != key(all[i]) {
					t.Fatalf("%s: item %d is %s paged, %s whole", q, i, key(paged[i]), key(all[i]))
				}
			}
		}
	}
	// Whichever way, the matches come in the order sorting them gives.
	ix := f.h.snapshotIndex(context.Background())
	now := time.Now()
	for _, col := range append(slices.Clone(Columns), "label.team") {
		for _, desc := range []bool{false, true} {
			q := Query{Sort: col, Desc: desc, Labels: []LabelFilter{{"team", "payments"}}}
			cached := ix.match(&q, now)
			if _, page := ix.matchRange(&q, now, 3, 5); !slices.Equal(page, cached[3:8]) {
				t.Errorf("sort %s desc=%v: rows 3 to 7 differ from the whole list's", col, desc)
			}
			var direct []*row
			for i := range ix.rows {
				if labelsMatch(ix.rows[i].labels, q.Labels) {
					direct = append(direct, &ix.rows[i])
				}
			}
			sortRows(direct, col, desc, now)
			if !slices.Equal(cached, direct) {
				t.Errorf("sort %s desc=%v: the cached order differs from sorting the matches", col, desc)
			}
		}
	}
	check := func(q string, less func(a, b Item) bool) {
		t.Helper()
		items := f.list(t, q+"&page_size=1000").Items
		for i := 1; i < len(items); i++ {
			if less(items[i], items[i-1]) {
				t.Errorf("%s: %s before %s", q, items[i-1].Target, items[i].Target)
			}
		}
	}
	timeOf := func(s *string) time.Time {
		if s == nil {
			return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) // missing: last
		}
		tm, _ := time.Parse(time.RFC3339, *s)
		return tm
	}
	check("", func(a, b Item) bool { return timeOf(a.NotAfter).Before(timeOf(b.NotAfter)) })
	check("sort=time_left", func(a, b Item) bool { return timeOf(a.NotAfter).Before(timeOf(b.NotAfter)) })
	check("sort=not_after&order=desc", func(a, b Item) bool {
		if a.NotAfter == nil || b.NotAfter == nil {
			return a.NotAfter != nil && b.NotAfter == nil
		}
		return timeOf(a.NotAfter).After(timeOf(b.NotAfter))
	})
	check("sort=target", func(a, b Item) bool { return a.Target < b.Target })
	check("sort=subject_cn&order=desc", func(a, b Item) bool {
		if a.SubjectCN == "" || b.SubjectCN == "" {
			return a.SubjectCN != "" && b.SubjectCN == ""
		}
		return a.SubjectCN > b.SubjectCN
	})
	first := f.list(t, "").Items[0]
	if !strings.HasSuffix(first.Target, "expired.pem") {
		t.Errorf("default order starts with %s, want the expired place", first.Target)
	}
	// Past the last page: no items, still the counts.
	if l := f.list(t, "page=99"); len(l.Items) != 0 || l.Matched != f.places() {
		t.Errorf("page 99: %d items, matched %d", len(l.Items), l.Matched)
	}
	if l := f.list(t, "page_size=5000"); l.PageSize != MaxPageSize {
		t.Errorf("page_size=5000 answered with page size %d", l.PageSize)
	}
}

func compileSchema(t *testing.T) (list, place, apiErr *jsonschema.Schema) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("schema", "certificates-v1.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	const loc = "certificates-v1.schema.json"
	if err := c.AddResource(loc, doc); err != nil {
		t.Fatal(err)
	}
	return c.MustCompile(loc), c.MustCompile(loc + "#/$defs/place"), c.MustCompile(loc + "#/$defs/error")
}

func validate(t *testing.T, sch *jsonschema.Schema, what string, body []byte) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("%s does not match the schema: %v\n%.2000s", what, err, body)
	}
}

// TestAPISchema validates real answers, lists and every place, against
// schema/certificates-v1.schema.json.
func TestAPISchema(t *testing.T) {
	f := newFixture(t, testBulk)
	listSch, placeSch, errSch := compileSchema(t)
	for _, q := range []string{"", "page_size=1000", "source=endpoint", "error_class=any", "q=nothing", "page=50", "sort=label.team&order=desc"} {
		rec := f.get(t, APIPath+"?"+q)
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: content type %q", q, ct)
		}
		validate(t, listSch, "list "+q, rec.Body.Bytes())
	}
	for _, it := range f.list(t, "page_size=1000").Items {
		u := APIPlacePath + "?" + placeValues(it.Source, it.Target, it.Key).Encode()
		rec := f.get(t, u)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", u, rec.Code, rec.Body)
		}
		validate(t, placeSch, u, rec.Body.Bytes())
	}
	for _, u := range []string{APIPath + "?sort=x", APIPlacePath + "?source=file&target=/nope"} {
		rec := f.get(t, u)
		if rec.Code != http.StatusBadRequest && rec.Code != http.StatusNotFound {
			t.Errorf("%s: status %d", u, rec.Code)
		}
		validate(t, errSch, u, rec.Body.Bytes())
	}
}

// TestPlaceDetail reads an endpoint's and a file's place from the API and
// the page.
func TestPlaceDetail(t *testing.T) {
	f := newFixture(t, testBulk)
	var p Place
	rec := f.get(t, APIPlacePath+"?"+placeValues(source.KindEndpoint, f.okAddr, "").Encode())
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.TLS == nil || !strings.HasPrefix(p.TLS.Version, "TLS 1.") || p.TLS.CipherSuite == "" || p.TLS.ServerName != "127.0.0.1" {
		t.Errorf("TLS %+v", p.TLS)
	}
	if len(p.Certificates) != 2 || p.Leaf == nil || *p.Leaf != 0 || p.Certificates[0].Role != "leaf" || p.Certificates[1].Role != "intermediate" {
		t.Fatalf("chain %+v, leaf %v", p.Certificates, p.Leaf)
	}
	leaf, inter := p.Certificates[0], p.Certificates[1]
	if !slices.Contains(leaf.ExtKeyUsage, "serverAuth") || !slices.Contains(leaf.KeyUsage, "digitalSignature") || leaf.IsCA {
		t.Errorf("leaf usages %v %v CA %v", leaf.KeyUsage, leaf.ExtKeyUsage, leaf.IsCA)
	}
	if !inter.IsCA || !slices.Contains(inter.KeyUsage, "keyCertSign") || inter.SubjectCN != f.chain.Intermediate.Cert.Subject.CommonName {
		t.Errorf("intermediate %+v", inter)
	}
	if !slices.Equal(leaf.IPAddresses, []string{"127.0.0.1"}) || leaf.FingerprintSHA1 == "" || leaf.KeyAlgorithm != "ECDSA" || leaf.KeyBits != 256 {
		t.Errorf("leaf %+v", leaf)
	}
	wantProbe := "/probe?module=local&target=" + url.QueryEscape(f.okAddr)
	if p.ProbeURL == nil || *p.ProbeURL != wantProbe {
		t.Errorf("probe URL %v, want %s", p.ProbeURL, wantProbe)
	}

	page := f.get(t, PlacePath+"?"+placeValues(source.KindEndpoint, f.okAddr, "").Encode()).Body.String()
	for _, want := range []string{p.TLS.Version, p.TLS.CipherSuite, `action="/probe"`, `name="module" value="local"`,
		`name="target" value="` + f.okAddr + `"`, leaf.FingerprintSHA256, leaf.FingerprintSHA1, "serverAuth", "Download PEM"} {
		if !strings.Contains(page, want) {
			t.Errorf("the endpoint's page lacks %q", want)
		}
	}

	svc := f.get(t, PlacePath+"?"+placeValues(source.KindFile, filepath.Join(f.dir, "pki/svc.pem"), "").Encode())
	body := svc.Body.String()
	for _, want := range []string{"a key is stored with it", "spiffe://payments.example/svc", "pki@payments.example",
		"http://pki.example/inter.crt", "api.payments.example"} {
		if !strings.Contains(body, want) {
			t.Errorf("the svc page lacks %q", want)
		}
	}
	if strings.Contains(body, "PRIVATE KEY") || strings.Contains(body, `action="/probe"`) {
		t.Error("the svc page shows a private key or a probe form")
	}
	if rec := f.get(t, PlacePath+"?source=file&target=/nowhere"); rec.Code != http.StatusNotFound {
		t.Errorf("unknown place: %d", rec.Code)
	}
}

// TestPEM downloads every certificate of a place and parses it back: a
// file, and a kubeconfig user, whose place is named with a key.
func TestPEM(t *testing.T) {
	f := newFixture(t, testBulk)
	f.list(t, "") // collects
	for _, c := range []struct{ target, key string }{
		{filepath.Join(f.dir, "pki/svc.pem"), ""},
		{filepath.Join(f.dir, "pki/admin.kubeconfig"), "user/ops"},
	} {
		var certs []*x509.Certificate
		for _, p := range f.e.Snapshot().Places {
			if p.Target == c.target && p.Key == c.key {
				certs = p.Certs
			}
		}
		if len(certs) != 2 {
			t.Fatalf("%s %s holds %d certificates in the snapshot", c.target, c.key, len(certs))
		}
		for i, want := range certs {
			v := placeValues(source.KindFile, c.target, c.key)
			v.Set("index", fmt.Sprint(i))
			rec := f.get(t, PEMPath+"?"+v.Encode())
			if rec.Code != http.StatusOK {
				t.Fatalf("%s %s index %d: %d %s", c.target, c.key, i, rec.Code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/x-pem-file" {
				t.Errorf("content type %q", ct)
			}
			if cd := rec.Header().Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="certificate-`) {
				t.Errorf("content disposition %q", cd)
			}
			block, rest := pem.Decode(rec.Body.Bytes())
			if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
				t.Fatalf("index %d: not one PEM certificate: %q", i, rec.Body)
			}
			got, err := x509.ParseCertificate(block.Bytes)
			if err != nil || !got.Equal(want) {
				t.Errorf("%s %s index %d: %v, equal %v", c.target, c.key, i, err, err == nil && got.Equal(want))
			}
		}
		var p Place
		if err := json.Unmarshal(f.get(t, APIPlacePath+"?"+placeValues(source.KindFile, c.target, c.key).Encode()).Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if p.Key != c.key || !p.KeyStored || len(p.Certificates) != 2 || !strings.Contains(p.Certificates[0].PEMURL, url.QueryEscape(c.key)) {
			t.Errorf("%s %s: key %q, key stored %v, %d certificates", c.target, c.key, p.Key, p.KeyStored, len(p.Certificates))
		}
	}
	target := filepath.Join(f.dir, "pki/svc.pem")
	for _, idx := range []string{"2", "-1", "x", ""} {
		v := placeValues(source.KindFile, target, "")
		v.Set("index", idx)
		if rec := f.get(t, PEMPath+"?"+v.Encode()); rec.Code != http.StatusNotFound {
			t.Errorf("index %q: %d", idx, rec.Code)
		}
	}
	// The same file without the key names no place.
	v := placeValues(source.KindFile, filepath.Join(f.dir, "pki/admin.kubeconfig"), "")
	if rec := f.get(t, PEMPath+"?index=0&"+v.Encode()); rec.Code != http.StatusNotFound {
		t.Errorf("kubeconfig without key: %d", rec.Code)
	}
}

// TestCSV reads the CSV back: every match, the same columns, the formula
// guard on text cells.
func TestCSV(t *testing.T) {
	f := newFixture(t, testBulk)
	for _, q := range []string{"", "label.team=payments", "q=formula", "sort=target&order=desc&page_size=5"} {
		rec := f.get(t, CSVPath+"?"+q)
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Errorf("%s: content type %q", q, ct)
		}
		records, err := csv.NewReader(rec.Body).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		want := f.list(t, "page_size=1000&"+q) // the first page_size wins
		if len(records) != want.Matched+1 {
			t.Fatalf("%s: %d records, want a header and %d rows (paging ignored)", q, len(records), want.Matched)
		}
		header := records[0]
		if !slices.Equal(header[:len(csvColumns)], csvColumns) || header[len(header)-1] != "label.team" {
			t.Errorf("%s: header %q", q, header)
		}
		col := func(name string) int { return slices.Index(header, name) }
		for i, r := range records[1:] {
			it := want.Items[i]
			if r[col("target")] != guardCell(it.Target) || r[col("label.team")] != it.Labels["team"] {
				t.Errorf("%s: row %d is %q, want %s", q, i, r[:3], it.Target)
			}
		}
	}
	records, _ := csv.NewReader(f.get(t, CSVPath+"?q=formula").Body).ReadAll()
	if len(records) != 2 || records[1][3] != "'"+formulaCN {
		t.Errorf("formula CN cell %q, want it guarded", records[1][3])
	}
	records, _ = csv.NewReader(f.get(t, CSVPath+"?reason=expired").Body).ReadAll()
	if left := records[1][9]; !strings.HasPrefix(left, "-") {
		t.Errorf("time left of the expired place %q: numbers are not guarded", left)
	}
	for _, c := range []struct{ in, out string }{{"=1+1", "'=1+1"}, {"+1", "'+1"}, {"-x", "'-x"}, {"@SUM(A1)", "'@SUM(A1)"},
		{"\t=x", "'\t=x"}, {"a=b", "a=b"}, {"", ""}} {
		if got := guardCell(c.in); got != c.out {
			t.Errorf("guardCell(%q) = %q, want %q", c.in, got, c.out)
		}
	}
}

// TestInjection: markup in certificate names comes out as text, in the
// list, the detail page and the JSON.
func TestInjection(t *testing.T) {
	f := newFixture(t, testBulk)
	hostilePlace := placeValues(source.KindFile, filepath.Join(f.dir, "pki/hostile.pem"), "").Encode()
	for _, u := range []string{PagePath, PagePath + "?q=script", PagePath + "?page_size=1000", PlacePath + "?" + hostilePlace} {
		rec := f.get(t, u)
		body := rec.Body.String()
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d", u, rec.Code)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: the script CN is not shown escaped", u)
		}
		if strings.Contains(body, "<script") || strings.Contains(body, "<img") {
			t.Errorf("%s: raw markup from a certificate in the page", u)
		}
		if !strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("%s: no Content-Security-Policy", u)
		}
	}
	api := f.get(t, APIPath+"?q=script").Body.String()
	if strings.Contains(api, "<script>") || !strings.Contains(api, `\u003cscript\u003e`) {
		t.Errorf("JSON carries the CN unescaped: %s", api)
	}
	// The search box keeps what was typed, escaped.
	page := f.get(t, PagePath+"?q="+url.QueryEscape(`"><script>alert(3)</script>`)).Body.String()
	if strings.Contains(page, "<script>alert(3)") {
		t.Error("the search text is echoed unescaped")
	}
}

// TestDisabled: every path of the inventory answers 404 and the landing
// page gets no link.
func TestDisabled(t *testing.T) {
	f := newFixture(t, 0)
	h := New(f.e, promslog.NewNopLogger(), Options{Disabled: true})
	mux := http.NewServeMux()
	h.Register(mux)
	for _, p := range []string{PagePath, PlacePath + "?source=file&target=x", PEMPath, StylePath, CSVPath, APIPath, APIPlacePath} {
		rec := httpGet(mux, p)
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, rec.Code)
		}
	}
	if f.e.Snapshot() != nil {
		t.Error("a disabled inventory collected")
	}
	if len(h.LandingLinks()) != 0 || len(f.h.LandingLinks()) != 1 {
		t.Error("landing links")
	}
}

// TestMethods: the inventory only reads.
func TestMethods(t *testing.T) {
	f := newFixture(t, testBulk)
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		rec := httpDo(f.mux, m, PagePath)
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d", m, rec.Code)
		}
	}
	if rec := f.get(t, StylePath); rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/css") {
		t.Errorf("style: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
}

// TestPageCounts: the list page shows the counts, the page's rows and the
// links that keep the filters.
func TestPageCounts(t *testing.T) {
	f := newFixture(t, testBulk)
	body := f.get(t, PagePath+"?label.team=payments&page_size=5&sort=target").Body.String()
	for _, want := range []string{
		fmt.Sprintf(`<span class="n">%d</span> places`, f.places()),
		fmt.Sprintf("1–5 of <b>%d</b> matching", 10+testBulk/3),
		`href="?label.team=payments&amp;page=2&amp;page_size=5&amp;sort=target"`,     // next page
		`href="?label.team=payments&amp;order=desc&amp;page_size=5&amp;sort=target"`, // reverse the sort
		`href="/certificates.csv?label.team=payments&amp;sort=target"`,
		`>expired <b>1</b></a>`,
		`>error: parse <b>1</b></a>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if n := strings.Count(body, "<tr class=\"u-"); n != 5 {
		t.Errorf("%d rows on a page of 5", n)
	}
}
