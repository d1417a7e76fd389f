package probeallow

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct{ pattern, want string }{
		{"10.1.*:*", "10.1.0.0/16"}, // the old glob form, with the way out
		{"10.0.0.*:*", "10.0.0.0/24"},
		{"10.0.0.*:443", "address range"},
		{"db.*:5432", "top-level domain"},
		{"*.internal.*:443", "top-level domain"},
		{"**.*:443", "top-level domain"},
		{"{db,cache}.example.org:5432", `only "*"`},
		{"db?.example.org:5432", `only "*"`},
		{"[[]2001:db8::1]:443", "[ADDRESS or RANGE]:PORT"},
		{"a.**.example.com:443", `"**"`},
		{"a..example.com:443", "empty label"},
		{".example.com:443", "empty label"},
		{"example.com.:443", "empty label"},
		{"example.123:443", "number"},
		{"exa mple.com:443", "not a letter"},
		{"example.com", "HOST:PORT"},
		{"example.com:", "HOST:PORT"},
		{":443", "HOST:PORT"},
		{"example.com:0", "port"},
		{"example.com:65536", "port"},
		{"example.com:http", "port"},
		{"example.com:9000-8000", "above"},
		{"example.com:1-", "port"},
		{"2001:db8::1:443", "brackets"},
		{"10.1.2.3/16:443", "did you mean 10.1.0.0/16"},
		{"10.1.0.0/33:443", "address range"},
		{"[fe80::1%eth0]:443", "zone"},
		{"[]:443", "empty host"},
		{"[::1]", "[ADDRESS or RANGE]:PORT"},
	} {
		_, err := Parse(tc.pattern)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.pattern, err, tc.want)
		}
	}
}

// TestMatch: names label by label, addresses by range, never one for the other.
func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		yes, no []string
	}{
		{"10.1.0.0/16:*",
			[]string{"10.1.2.3:443", "10.1.255.255:1", "[::ffff:10.1.2.3]:443"},
			[]string{"10.2.0.1:443", "10.1.anything.attacker.example:443", "10.1.2.3.nip.io:443", "10.1.2:443", "167837955:443"}},
		{"10.1.2.3:443",
			[]string{"10.1.2.3:443"},
			[]string{"10.1.2.3:444", "10.1.2.4:443", "10.1.2.3.attacker.example:443"}},
		{"[::ffff:10.1.0.0/112]:443", // an IPv4-mapped range matches the IPv4 form
			[]string{"10.1.9.9:443", "[::ffff:10.1.9.9]:443"},
			[]string{"10.2.9.9:443"}},
		{"[fd00::/8]:*",
			[]string{"[fd00::1]:443", "[fdff::1]:8443", "[FD00::1]:443"},
			[]string{"[fe80::1]:443", "[fd00::1%eth0]:443", "fd00.example.com:443"}},
		{"[2001:db8::1]:443",
			[]string{"[2001:db8::1]:443", "[2001:db8:0::1]:443"},
			[]string{"[2001:db8::2]:443"}},
		{"db-*:5432",
			[]string{"db-1:5432", "DB-primary:5432", "db-:5432"},
			[]string{"db-1.evil.example:5432", "db-1:5433", "db:5432", "xdb-1:5432"}},
		{"*.internal.example:443",
			[]string{"a.internal.example:443", "WEB.Internal.Example:443", "a_b.internal.example:443"},
			[]string{"internal.example:443", "a.b.internal.example:443", "a.internal.example.evil.com:443",
				"a.internal.example:444", "a.internal.example.:443", "a..internal.example:443", "a%2e.internal.example:443", "[::1].internal.example:443"}},
		{"**.internal.example:443",
			[]string{"a.internal.example:443", "a.b.c.internal.example:443"},
			[]string{"internal.example:443", "xinternal.example:443", "a.internal.example.evil.com:443"}},
		{"web-*-prod.example.com:8000-8999",
			[]string{"web-1-prod.example.com:8000", "web--prod.example.com:8999", "web-a-b-prod.example.com:8500"},
			[]string{"web-1-prod.example.com:7999", "web-1-prod.example.com:9000", "web-1.x-prod.example.com:8000", "web-1-prodx.example.com:8000"}},
		{"mail.example.com:587",
			[]string{"mail.example.com:587", "MAIL.EXAMPLE.COM:587"},
			[]string{"mail.example.com:25", "smtp.mail.example.com:587"}},
		{"*:443", // any single-label name, never an address in disguise
			[]string{"localhost:443", "db:443"},
			[]string{"a.b:443", "127.0.0.1:443", "2130706433:443", "0x7f000001:443", "017700000001:443", "[::1]:443"}},
	} {
		r, err := Parse(tc.pattern)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.pattern, err)
		}
		for _, target := range tc.yes {
			if !r.Match(target) {
				t.Errorf("%q does not match %q, want a match", tc.pattern, target)
			}
		}
		for _, target := range tc.no {
			if r.Match(target) {
				t.Errorf("%q matches %q, want none", tc.pattern, target)
			}
		}
	}
}

func TestRuleParts(t *testing.T) {
	r, err := Parse("[::ffff:127.0.0.1]:*")
	if err != nil {
		t.Fatal(err)
	}
	if !r.IsAddress() || r.Prefix() != netip.MustParsePrefix("127.0.0.1/32") {
		t.Errorf("IPv4-mapped address rule: IsAddress %t, prefix %s", r.IsAddress(), r.Prefix())
	}
	if !r.MatchAddr(netip.MustParseAddr("::ffff:127.0.0.1")) || r.MatchAddr(netip.MustParseAddr("127.0.0.2")) {
		t.Error("MatchAddr compares the IPv4 form")
	}
	n, err := Parse("*.example.com:443")
	if err != nil {
		t.Fatal(err)
	}
	if n.IsAddress() || n.MatchAddr(netip.MustParseAddr("10.0.0.1")) {
		t.Error("a name rule holds no address")
	}
	if !n.MatchPort(443) || n.MatchPort(444) {
		t.Error("MatchPort")
	}
}
