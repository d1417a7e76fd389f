package decode

import (
	"crypto"
	"crypto/cipher"
	"crypto/des" //nolint:gosec // JCEKS protects keys with triple DES by format
	"crypto/md5" //nolint:gosec // and derives that key with MD5
	"encoding/asn1"
	"errors"
)

// JCEKS, the keystore type of the Java Cryptography Extension, shares
// JKS's layout (walkKeystore reads both); what differs is its secret key
// entries, skipped (javaser.go), and the protection of its private keys,
// PBEWithMD5AndTripleDES, here.

var oidPBEWithMD5AndTripleDES = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 42, 2, 19, 1}

// maxJCEKSIterations bounds the key derivation work of one keystore: Java
// writes 200,000 iterations per key today (20 in older releases), each two
// MD5 rounds, about 60 ms a key here (BenchmarkParseJCEKS), paid when the
// keystore changes. A keystore asking for more than the budget, which only
// one written with the configured password can, keeps its certificates;
// its remaining keys go without the key-match check.
const maxJCEKSIterations = 1_000_000

type pbeParameters struct {
	Salt       []byte
	Iterations int
}

// jceksKeyPublic decrypts a JCEKS private key (an EncryptedPrivateKeyInfo
// under PBEWithMD5AndTripleDES, keyed with the store password as keytool
// does by default) and returns its public half, or nil. The decrypted key
// is wiped.
func jceksKeyPublic(info encryptedPrivateKeyInfo, password []byte, budget *int) crypto.PublicKey {
	var params pbeParameters
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil ||
		len(params.Salt) != 8 || params.Iterations < 1 || params.Iterations > *budget ||
		len(info.Data) == 0 || len(info.Data)%des.BlockSize != 0 {
		return nil
	}
	*budget -= params.Iterations
	key, iv := pbeMD5TripleDESKey(password, params.Salt, params.Iterations)
	block, err := des.NewTripleDESCipher(key)
	clear(key)
	if err != nil {
		return nil
	}
	plain := make([]byte, len(info.Data))
	defer clear(plain)
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, info.Data)
	plain, err = unpadPKCS5(plain)
	if err != nil {
		return nil
	}
	return publicOfPrivateDER("PRIVATE KEY", plain)
}

// pbeMD5TripleDESKey derives the 24-byte key and 8-byte IV of Sun's
// PBEWithMD5AndTripleDES: each half of the salt is hashed with the password,
// iterations times, and the two digests give key and IV. Equal halves would
// give equal digests, so the first is reversed then. Password characters
// are taken as bytes, which is what Java does for the ASCII passwords it
// accepts there.
func pbeMD5TripleDESKey(password, salt []byte, iterations int) (key, iv []byte) {
	s := make([]byte, len(salt))
	copy(s, salt)
	if string(s[:4]) == string(s[4:]) {
		s[0], s[1], s[2], s[3] = s[3], s[2], s[1], s[0]
	}
	out := make([]byte, 0, 2*md5.Size)
	h := md5.New() //nolint:gosec // by format
	var sum [md5.Size]byte
	for half := 0; half < 2; half++ {
		state := s[half*4 : half*4+4]
		for range iterations {
			h.Reset()
			h.Write(state)
			h.Write(password)
			state = h.Sum(sum[:0])
		}
		out = append(out, state...)
	}
	return out[:24], out[24:]
}

var errBadPadding = errors.New("bad padding")

func unpadPKCS5(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, errBadPadding
	}
	n := int(b[len(b)-1])
	if n == 0 || n > des.BlockSize || n > len(b) {
		return nil, errBadPadding
	}
	for _, p := range b[len(b)-n:] {
		if int(p) != n {
			return nil, errBadPadding
		}
	}
	return b[:len(b)-n], nil
}
