package decode

import (
	"encoding/asn1"
	"math/big"

	"github.com/certwatch/certwatch/source"
)

// maxPKCS12Iterations bounds the key-derivation work a PKCS#12 file may ask
// for. go-pkcs12 trusts the count in the file, so a crafted file could pin a
// CPU for hours per scrape. Real files use 1 (legacy), 2048 (OpenSSL),
// 10,000 (Java) up to about 600,000 (current PBKDF2 advice).
const maxPKCS12Iterations = 2_000_000

// Object identifiers of the password-based schemes whose parameters carry an
// iteration count (PKCS#12 PBE, PKCS#5 PBES2 and PBKDF2).
var (
	oidPKCS12PBEArc = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1}
	oidPBES2        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
)

// checkPKCS12Work refuses a PFX whose MAC or whose visible encryption
// parameters demand more than maxPKCS12Iterations, before any key is derived.
// Everything it reads is outside the encrypted parts, so no password is needed.
func checkPKCS12Work(data []byte) error {
	var pfx struct {
		Version  int
		AuthSafe asn1.RawValue
		MacData  asn1.RawValue `asn1:"optional"`
	}
	if _, err := asn1.Unmarshal(data, &pfx); err != nil {
		return nil // not a PFX: the decoder will say so
	}
	if len(pfx.MacData.FullBytes) > 0 {
		var mac struct {
			Mac        asn1.RawValue
			Salt       []byte
			Iterations *big.Int `asn1:"optional"`
		}
		if _, err := asn1.Unmarshal(pfx.MacData.FullBytes, &mac); err == nil && tooMany(mac.Iterations) {
			return source.Errorf(source.ClassParse, "PKCS#12 MAC asks for %s iterations (limit %d)", mac.Iterations, maxPKCS12Iterations)
		}
	}
	return walkDER(pfx.AuthSafe.FullBytes, 0)
}

// walkDER looks for algorithm identifiers of password-based schemes, in the
// structure and inside OCTET STRINGs that hold DER (the authenticated safe).
func walkDER(der []byte, depth int) error {
	if depth > 16 {
		return nil
	}
	for len(der) > 0 {
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(der, &v)
		if err != nil {
			return nil
		}
		der = rest
		switch {
		case v.Class == asn1.ClassUniversal && v.Tag == asn1.TagSequence:
			if err := checkAlgorithm(v.Bytes); err != nil {
				return err
			}
			if err := walkDER(v.Bytes, depth+1); err != nil {
				return err
			}
		case v.IsCompound:
			if err := walkDER(v.Bytes, depth+1); err != nil {
				return err
			}
		case v.Class == asn1.ClassUniversal && v.Tag == asn1.TagOctetString,
			v.Class == asn1.ClassContextSpecific && !v.IsCompound:
			if err := walkDER(v.Bytes, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkAlgorithm inspects a SEQUENCE body that may be an AlgorithmIdentifier.
func checkAlgorithm(body []byte) error {
	var oid asn1.ObjectIdentifier
	params, err := asn1.Unmarshal(body, &oid)
	if err != nil || len(params) == 0 {
		return nil
	}
	pkcs12PBE := len(oid) == len(oidPKCS12PBEArc)+1 && oid[:len(oidPKCS12PBEArc)].Equal(oidPKCS12PBEArc)
	if !pkcs12PBE && !oid.Equal(oidPBKDF2) && !oid.Equal(oidPBES2) {
		return nil
	}
	if oid.Equal(oidPBES2) {
		return nil // its PBKDF2 AlgorithmIdentifier is checked as the walk reaches it
	}
	// PKCS#12 PBE: SEQUENCE { salt OCTET STRING, iterations INTEGER }.
	// PBKDF2: SEQUENCE { salt, iterationCount INTEGER, keyLength INTEGER OPTIONAL, prf OPTIONAL }.
	var p struct {
		Salt       asn1.RawValue
		Iterations *big.Int
	}
	if _, err := asn1.Unmarshal(params, &p); err == nil && tooMany(p.Iterations) {
		return source.Errorf(source.ClassParse, "PKCS#12 encryption asks for %s iterations (limit %d)", p.Iterations, maxPKCS12Iterations)
	}
	return nil
}

func tooMany(n *big.Int) bool {
	return n != nil && (n.Sign() < 0 || n.Cmp(big.NewInt(maxPKCS12Iterations)) > 0)
}
