package crl

import (
	"crypto/rand"
	"crypto/x509"
	"math/big"
	mathrand "math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

const benchEntries = 100_000

// bigCRL is a CRL of benchEntries entries with 16-byte random serials,
// signed by an ECDSA P-256 issuer, built once for all benchmarks (making
// it takes longer than parsing it).
func bigCRL(b *testing.B) ([]byte, []*big.Int) {
	b.Helper()
	bigOnce.Do(func() { bigDER, bigSerials = buildBigCRL(b) })
	if bigDER == nil {
		b.Fatal("building the CRL failed")
	}
	return bigDER, bigSerials
}

var (
	bigOnce    sync.Once
	bigDER     []byte
	bigSerials []*big.Int
)

func buildBigCRL(b *testing.B) ([]byte, []*big.Int) {
	ca := newCA(b, "p256", "Benchmark CA")
	now := time.Now().UTC().Truncate(time.Second)
	entries := make([]x509.RevocationListEntry, benchEntries)
	serials := make([]*big.Int, benchEntries)
	rng := mathrand.New(mathrand.NewPCG(1, 2))
	for i := range entries {
		raw := make([]byte, 16)
		if _, err := rand.Read(raw); err != nil {
			b.Fatal(err)
		}
		serials[i] = new(big.Int).SetBytes(raw)
		entries[i] = x509.RevocationListEntry{
			SerialNumber:   serials[i],
			RevocationTime: now.Add(-time.Duration(rng.IntN(365*24)) * time.Hour),
			ReasonCode:     rng.IntN(6), // 0 writes no reason extension
		}
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, ca.cert, ca.key)
	if err != nil {
		b.Fatal(err)
	}
	return der, serials
}

// heldBytes measures what keep() leaves on the heap, after collection.
func heldBytes(keep func() any) int64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := keep()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc)
}

func BenchmarkParse100k(b *testing.B) {
	der, _ := bigCRL(b)
	heap := heldBytes(func() any {
		l, err := Parse(der, nil)
		if err != nil {
			b.Fatal(err)
		}
		return l
	})
	var l *List
	b.SetBytes(int64(len(der)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var err error
		if l, err = Parse(der, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if l.Len() != benchEntries {
		b.Fatalf("parsed %d entries, want %d", l.Len(), benchEntries)
	}
	b.ReportMetric(float64(l.Bytes()), "held_bytes")
	b.ReportMetric(float64(l.Bytes())/benchEntries, "held_bytes/entry")
	b.ReportMetric(float64(heap), "heap_held_bytes")
}

// BenchmarkStdlibParse100k is crypto/x509's parse of the same CRL, for
// comparison.
func BenchmarkStdlibParse100k(b *testing.B) {
	der, _ := bigCRL(b)
	heap := heldBytes(func() any {
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			b.Fatal(err)
		}
		return rl
	})
	b.SetBytes(int64(len(der)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := x509.ParseRevocationList(der); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(heap), "heap_held_bytes")
	b.ReportMetric(float64(heap)/benchEntries, "heap_held_bytes/entry")
}

func BenchmarkSummary100k(b *testing.B) {
	der, _ := bigCRL(b)
	b.SetBytes(int64(len(der)))
	b.ReportAllocs()
	for b.Loop() {
		if s, err := Summary(der); err != nil || s.Entries != benchEntries {
			b.Fatalf("Summary: %d entries, %v", s.Entries, err)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	der, serials := bigCRL(b)
	l, err := Parse(der, nil)
	if err != nil {
		b.Fatal(err)
	}
	absent := new(big.Int).Lsh(big.NewInt(1), 130)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		serial := serials[i%len(serials)]
		if i%2 == 1 {
			serial = absent
		}
		_, _, revoked := l.Lookup(serial)
		if revoked != (i%2 == 0) {
			b.Fatalf("Lookup(%x) = %v", serial, revoked)
		}
		i++
	}
}
