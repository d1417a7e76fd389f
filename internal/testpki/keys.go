package testpki

import (
	"crypto"
	"encoding/pem"
	"fmt"
	"sync"
	"testing"
)

// sharedKeys are keys generated once per test binary: slow RSA keys are
// the bulk of the cost of a corpus of certificates, and certificates that
// need not have distinct keys can share one.
var sharedKeys sync.Map // "type#n" -> *sharedKey

type sharedKey struct {
	once sync.Once
	key  crypto.Signer
	err  error
}

func sharedEntry(keyType string, n int) *sharedKey {
	e, _ := sharedKeys.LoadOrStore(fmt.Sprintf("%s#%d", keyType, n), &sharedKey{})
	return e.(*sharedKey)
}

func (e *sharedKey) get(keyType string) (crypto.Signer, error) {
	e.once.Do(func() { e.key, e.err = generateKey(keyType) })
	return e.key, e.err
}

// SharedKey returns key number n of the given type (see Options.KeyType),
// the same one on every call in the test binary.
func SharedKey(t testing.TB, keyType string, n int) crypto.Signer {
	t.Helper()
	k, err := sharedEntry(keyType, n).get(keyType)
	if err != nil {
		t.Fatalf("generating %s key: %v", keyType, err)
	}
	return k
}

// PrepareSharedKey starts generating SharedKey(keyType, n) in the
// background, so that slow keys are made while other work goes on.
func PrepareSharedKey(keyType string, n int) {
	e := sharedEntry(keyType, n)
	go func() { _, _ = e.get(keyType) }()
}

func firstPEM(data []byte, typ string) ([]byte, error) {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("no %s PEM block", typ)
		}
		if b.Type == typ {
			return b.Bytes, nil
		}
	}
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
