package revocation

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"runtime"
	"testing"
	"time"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/internal/testpki"
)

// BenchmarkLookupCached is the cost per certificate per scrape of an active
// check whose OCSP and CRL answers are held.
func BenchmarkLookupCached(b *testing.B) {
	ca := testpki.New(b, nil, testpki.Options{CommonName: "bench CA", IsCA: true})
	resp := newResponder(b, ca)
	crls := newCRLServer(b)
	url := crls.put("/bench.crl", opensslCRL(b, ca, []revoked{{big.NewInt(7), time.Now().Add(-time.Hour), "keyCompromise"}}, time.Time{}, time.Time{}))
	leaf := testpki.New(b, ca, testpki.Options{CommonName: "bench", OCSPServers: []string{resp.URL}, CRLURLs: []string{url}})
	c, _ := startChecker(b, config.Fetch{Allow: loopback})
	waitFor(b, "both answers", func() bool { return len(c.Lookup(leaf.Cert, ca.Cert, true, true)) == 2 })
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if len(c.Lookup(leaf.Cert, ca.Cert, true, true)) != 2 {
			b.Fatal("answer lost")
		}
	}
}

// BenchmarkCRL100kMemory reports the memory the Checker holds for one CRL
// of 100,000 entries fetched from its distribution point: the heap in use
// after the fetch and a GC, less before, and the List's own estimate.
func BenchmarkCRL100kMemory(b *testing.B) {
	const entries = 100_000
	ca := testpki.New(b, nil, testpki.Options{CommonName: "big CRL CA", IsCA: true})
	list := make([]x509.RevocationListEntry, entries)
	now := time.Now()
	for i := range list {
		// 16-byte serials, as CAs issue them (at least 64 random bits).
		serial := new(big.Int).Lsh(big.NewInt(int64(i+1)), 64)
		serial.Add(serial, big.NewInt(int64(i)*7919))
		list[i] = x509.RevocationListEntry{SerialNumber: serial, RevocationTime: now.Add(-time.Duration(i) * time.Second), ReasonCode: i % 6}
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour),
		NextUpdate: now.Add(24 * time.Hour), RevokedCertificateEntries: list}, ca.Cert, ca.Key)
	if err != nil {
		b.Fatal(err)
	}
	list = nil
	crls := newCRLServer(b)
	url := crls.put("/big.crl", der)
	leaf := testpki.New(b, ca, testpki.Options{CommonName: "big CRL leaf", CRLURLs: []string{url}})

	var held, listBytes float64
	b.ResetTimer()
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c, err := NewChecker(config.Fetch{Allow: loopback}, nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.Run(ctx)
		}()
		waitFor(b, "the CRL answer", func() bool { return len(c.Lookup(leaf.Cert, ca.Cert, false, true)) == 1 })
		cancel()
		<-done
		runtime.GC()
		runtime.ReadMemStats(&after)
		held += float64(int64(after.HeapInuse) - int64(before.HeapInuse))
		c.mu.RLock()
		for _, e := range c.crls[url] {
			listBytes += float64(e.list.Bytes())
		}
		c.mu.RUnlock()
		runtime.KeepAlive(c)
	}
	b.ReportMetric(held/float64(b.N), "heap-bytes/crl")
	b.ReportMetric(listBytes/float64(b.N), "list-bytes/crl")
	b.ReportMetric(float64(len(der)), "der-bytes")
}
