package decode

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

// manyCerts issues n leaves of one CA, all on one key (a key per leaf would
// cost seconds and prove nothing more).
func manyCerts(t *testing.T, n int) []*testpki.Cert {
	t.Helper()
	ca := testpki.New(t, nil, testpki.Options{CommonName: "limit ca", IsCA: true})
	key := testpki.NewKey(t, "")
	out := make([]*testpki.Cert, n)
	for i := range out {
		out[i] = testpki.New(t, ca, testpki.Options{CommonName: "leaf", Key: key})
	}
	return out
}

func setLimit(t *testing.T, n int) {
	t.Helper()
	SetMaxCertificates(n)
	t.Cleanup(func() { SetMaxCertificates(0) })
}

func wantTooMany(t *testing.T, err error, n, limit int) {
	t.Helper()
	if source.ClassOf(err) != source.ClassTooLarge {
		t.Fatalf("class %q (%v), want too_large", source.ClassOf(err), err)
	}
	for _, w := range []string{"holds " + strconv.Itoa(n) + " certificates", "limit of " + strconv.Itoa(limit), "global.max_certificates_per_place"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

// TestPEMOverTheCertificateLimit decodes a generated 1,500-certificate PEM
// bundle (what a 4 MiB file can hold many times over): with the default
// limit of 1000 it reports too_large and no certificate, naming the count.
func TestPEMOverTheCertificateLimit(t *testing.T) {
	certs := manyCerts(t, 1500)
	bundle := testpki.PEM(certs...)

	if got := MaxCertificates(); got != 1000 {
		t.Fatalf("default limit %d, want 1000", got)
	}
	entries, err := Decode(bundle, nil)
	wantTooMany(t, err, 1500, 1000)
	for _, e := range entries {
		if len(e.Certs) > 0 {
			t.Fatalf("an over-limit place still reports %d certificates", len(e.Certs))
		}
	}

	// Exactly at the limit is fine.
	entries, err = Decode(testpki.PEM(certs[:1000]...), nil)
	if err != nil || len(entries) != 1 || len(entries[0].Certs) != 1000 {
		t.Fatalf("1000 certificates: %d entries, err %v", len(entries), err)
	}

	// A raised limit reads the whole bundle.
	setLimit(t, 2000)
	entries, err = Decode(bundle, nil)
	if err != nil || len(entries) != 1 || len(entries[0].Certs) != 1500 {
		t.Fatalf("limit 2000: %d entries, err %v", len(entries), err)
	}
}

// TestCertificateLimitIsCheckedBeforeParsing shows that the count comes from
// a scan of the BEGIN lines: blocks that would not even parse are counted,
// so a huge bundle is refused without thousands of certificate parses.
func TestCertificateLimitIsCheckedBeforeParsing(t *testing.T) {
	setLimit(t, 10)
	junk := bytes.Repeat([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 11)
	_, err := Decode(junk, nil)
	wantTooMany(t, err, 11, 10)
}

// TestCertificateLimitInEveryFormat checks the limit for every container:
// the whole input for DER and PKCS#12, each alias of a keystore and each
// cluster or user of a kubeconfig (places of their own).
func TestCertificateLimitInEveryFormat(t *testing.T) {
	certs := manyCerts(t, 3)
	setLimit(t, 2)
	leaf := testpki.New(t, nil, testpki.Options{CommonName: "alone"})

	t.Run("der", func(t *testing.T) {
		_, err := Decode(testpki.DER(certs...), nil)
		wantTooMany(t, err, 3, 2)
	})
	t.Run("pkcs12", func(t *testing.T) {
		_, err := Decode(testpki.PKCS12(t, certs[0], certs[1:], "pw"), []byte("pw"))
		wantTooMany(t, err, 3, 2)
	})
	t.Run("pkcs12 trust store", func(t *testing.T) {
		_, err := Decode(testpki.PKCS12TrustStore(t, certs, "pw"), []byte("pw"))
		wantTooMany(t, err, 3, 2)
	})
	t.Run("jks alias", func(t *testing.T) {
		entries, err := Decode(testpki.JKS(t, "pw",
			testpki.JKSEntry{Alias: "big", Key: certs[0].Key, Chain: certs},
			testpki.JKSEntry{Alias: "small", Chain: []*testpki.Cert{leaf}}), []byte("pw"))
		if err != nil || len(entries) != 2 {
			t.Fatalf("%d entries, err %v", len(entries), err)
		}
		wantTooMany(t, entries[0].Err, 3, 2)
		if len(entries[0].Certs) != 0 || entries[1].Err != nil || len(entries[1].Certs) != 1 {
			t.Errorf("entries %+v", entries)
		}
	})
	t.Run("kubeconfig cluster", func(t *testing.T) {
		entries, err := Decode(testpki.Kubeconfig(t,
			[]testpki.KubeCluster{{Name: "big", CA: certs}, {Name: "small", CA: []*testpki.Cert{leaf}}}, nil), nil)
		if err != nil || len(entries) != 2 {
			t.Fatalf("%d entries, err %v", len(entries), err)
		}
		wantTooMany(t, entries[0].Err, 3, 2)
		if len(entries[0].Certs) != 0 || entries[1].Err != nil || len(entries[1].Certs) != 1 {
			t.Errorf("entries %+v", entries)
		}
	})
	t.Run("key publics ignore the limit", func(t *testing.T) {
		data := append(testpki.PEM(certs...), testpki.KeyPEM(t, certs[0].Key)...)
		if pubs := KeyPublics(data); len(pubs) != 1 {
			t.Errorf("%d key publics, want 1", len(pubs))
		}
	})
}
