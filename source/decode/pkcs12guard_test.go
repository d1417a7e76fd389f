package decode

import (
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"github.com/certwatch/certwatch/internal/testpki"
	"github.com/certwatch/certwatch/source"
)

type algID struct {
	OID    asn1.ObjectIdentifier
	Params asn1.RawValue `asn1:"optional"`
}

func mustDER(t *testing.T, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hostilePFX builds a PFX whose MAC or whose encryption parameters ask for
// the given iteration counts (0 leaves that part out).
func hostilePFX(t *testing.T, macIterations, pbkdf2Iterations int64) []byte {
	t.Helper()
	type pbkdf2Params struct {
		Salt       []byte
		Iterations *big.Int
	}
	var safe []byte
	if pbkdf2Iterations > 0 {
		kdf := algID{OID: oidPBKDF2, Params: asn1.RawValue{FullBytes: mustDER(t, pbkdf2Params{Salt: []byte("salt"), Iterations: big.NewInt(pbkdf2Iterations)})}}
		pbes2 := algID{OID: oidPBES2, Params: asn1.RawValue{FullBytes: mustDER(t, struct{ KDF, Enc algID }{kdf, algID{OID: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}}})}}
		safe = mustDER(t, []asn1.RawValue{{FullBytes: mustDER(t, pbes2)}})
	} else {
		safe = mustDER(t, []int{1})
	}
	authSafe := struct {
		OID     asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}, asn1.RawValue{Tag: asn1.TagOctetString, Bytes: safe}}
	type digestInfo struct {
		Alg    algID
		Digest []byte
	}
	type macData struct {
		Mac        digestInfo
		Salt       []byte
		Iterations *big.Int
	}
	if macIterations > 0 {
		return mustDER(t, struct {
			Version  int
			AuthSafe any
			Mac      macData
		}{3, authSafe, macData{digestInfo{algID{OID: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}}, make([]byte, 32)}, []byte("salt"), big.NewInt(macIterations)}})
	}
	return mustDER(t, struct {
		Version  int
		AuthSafe any
	}{3, authSafe})
}

func TestPKCS12WorkIsBounded(t *testing.T) {
	leaf := testpki.New(t, nil, testpki.Options{CommonName: "p12"})
	cases := []struct {
		name    string
		data    []byte
		refused bool
	}{
		{"real modern file", testpki.PKCS12(t, leaf, nil, "pw"), false},
		{"real passwordless file", testpki.PKCS12Passwordless(t, leaf, nil), false},
		{"MAC at the limit", hostilePFX(t, maxPKCS12Iterations, 0), false},
		{"MAC over the limit", hostilePFX(t, 1_000_000_000, 0), true},
		{"PBKDF2 over the limit", hostilePFX(t, 2048, 4_000_000_000), true},
		{"PBKDF2 ordinary", hostilePFX(t, 2048, 600_000), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPKCS12Work(tc.data)
			if (err != nil) != tc.refused {
				t.Fatalf("refused = %v (%v), want %v", err != nil, err, tc.refused)
			}
			if err != nil && source.ClassOf(err) != source.ClassParse {
				t.Errorf("class %q", source.ClassOf(err))
			}
		})
	}
	// Through Decode, a hostile file is refused at once instead of spending
	// a billion key-derivation rounds.
	start := time.Now()
	if _, err := Decode(hostilePFX(t, 1_000_000_000, 0), []byte("pw")); source.ClassOf(err) != source.ClassParse {
		t.Errorf("Decode: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Decode of a hostile PFX took %v", took)
	}
}
