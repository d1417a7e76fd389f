package inspect

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/certwatch/certwatch/internal/testpki"
)

func TestLimitString(t *testing.T) {
	cases := []struct {
		name, in string
		max      int
		want     string
	}{
		{"short", "web.example", 256, "web.example"},
		{"exactly the limit", strings.Repeat("a", 10), 10, strings.Repeat("a", 10)},
		{"one over", strings.Repeat("a", 11), 10, "aaaaaaa…"},
		// "é" is two bytes: a cut inside it backs off to its start.
		{"cut inside a character", "aaaaaaéééé", 10, "aaaaaa…"},
		{"invalid UTF-8 is replaced", "a\xffb", 256, "a\uFFFDb"},
		{"replaced, then cut", strings.Repeat("\xffa", 10), 10, "\uFFFDa\uFFFD…"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := limitString(tc.in, tc.max)
			if got != tc.want || len(got) > tc.max || !utf8.ValidString(got) {
				t.Errorf("limitString(%q, %d) = %q (%d bytes), want %q", tc.in, tc.max, got, len(got), tc.want)
			}
		})
	}
}

func TestLimitList(t *testing.T) {
	cases := []struct {
		name string
		in   []string
		max  int
		want string // joined with commas
	}{
		{"fits", []string{"a", "b"}, 10, "a,b"},
		{"fits exactly", []string{"aaaa", "bbbb"}, 9, "aaaa,bbbb"},
		{"second value cut", []string{"aaaa", "bbbbbbbb"}, 10, "aaaa,bb…"},
		{"whole values, then one cut", []string{"aaaa", "bbb", "cccc"}, 10, "aaaa,bb…"},
		{"no room for the comma", []string{"aaaaaaa", "bbbbb"}, 10, "aaaaaaa…"},
		{"first value too long", []string{strings.Repeat("x", 20)}, 10, "xxxxxxx…"},
		{"invalid UTF-8", []string{"a\xff"}, 10, "a\uFFFD"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(limitList(tc.in, tc.max), ",")
			if got != tc.want || len(got) > tc.max {
				t.Errorf("limitList(%q, %d) joins to %q (%d bytes), want %q", tc.in, tc.max, got, len(got), tc.want)
			}
		})
	}
	in := []string{"a", "b"}
	if out := limitList(in, 10); &out[0] != &in[0] {
		t.Error("a list within the limit is copied instead of shared")
	}
}

// TestFactsOfBoundsHostileNames issues a certificate with a 1 MiB common
// name (and issuer name) and 2,000 DNS names: every string fact that
// becomes a label value stays within its documented limit.
func TestFactsOfBoundsHostileNames(t *testing.T) {
	huge := strings.Repeat("é", 1<<19) // 1 MiB of two-byte characters
	ca := testpki.New(t, nil, testpki.Options{CommonName: huge, IsCA: true})
	var names []string
	for i := range 2000 {
		names = append(names, fmt.Sprintf("host-%04d.example.org", i))
	}
	leaf := testpki.New(t, ca, testpki.Options{CommonName: huge, DNSNames: names,
		URIs: []string{"spiffe://example.org/" + strings.Repeat("p", 4000)}})
	f := FactsOf(leaf.Cert)
	for _, v := range []struct {
		name  string
		value string
		max   int
	}{
		{"SubjectCN", f.SubjectCN, MaxNameBytes},
		{"IssuerCN", f.IssuerCN, MaxNameBytes},
		{"Subject", f.Subject, MaxInfoBytes},
		{"Issuer", f.Issuer, MaxInfoBytes},
		{"DNSNames", strings.Join(f.DNSNames, ","), MaxInfoBytes},
		{"URIs", strings.Join(f.URIs, ","), MaxInfoBytes},
	} {
		if len(v.value) > v.max || !strings.HasSuffix(v.value, CutMark) || !utf8.ValidString(v.value) {
			t.Errorf("%s: %d bytes, ends %q; want at most %d bytes of UTF-8 ending in %q", v.name, len(v.value), v.value[max(0, len(v.value)-8):], v.max, CutMark)
		}
	}
	if !strings.HasPrefix(f.DNSNames[0], "host-0000.example.org") || len(f.DNSNames) >= len(names) {
		t.Errorf("DNSNames kept %d of %d names, first %q", len(f.DNSNames), len(names), f.DNSNames[0])
	}
	if len(leaf.Cert.DNSNames) != 2000 {
		t.Error("the certificate's own DNSNames were changed")
	}
}
