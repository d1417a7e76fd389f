// Package intern shares one object among the holders of equal content (the
// same certificate in 10,000 Secrets, the same ca.crt pool): a table from a
// content key to the object by weak pointer, so that the table never keeps
// an object alive, and a cleanup drops an entry once its object has been
// collected. Shared objects must not be modified.
package intern

import (
	"runtime"
	"sync"
	"weak"
)

// Table maps keys to shared objects. The zero value is ready to use.
type Table[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]weak.Pointer[V]
}

// Get returns the live object recorded under k, or nil.
func (t *Table[K, V]) Get(k K) *V {
	t.mu.Lock()
	w, ok := t.m[k]
	t.mu.Unlock()
	if !ok {
		return nil
	}
	return w.Value()
}

// Put records v under k and returns it, unless a live object is already
// recorded there (made concurrently by another holder): then it returns
// that one, and v is to be dropped.
func (t *Table[K, V]) Put(k K, v *V) *V {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w, ok := t.m[k]; ok {
		if shared := w.Value(); shared != nil {
			return shared
		}
	}
	if t.m == nil {
		t.m = map[K]weak.Pointer[V]{}
	}
	t.m[k] = weak.Make(v)
	runtime.AddCleanup(v, t.forget, k)
	return v
}

// forget drops the entry of a collected object, unless a newer object with
// the same key took its place.
func (t *Table[K, V]) forget(k K) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w, ok := t.m[k]; ok && w.Value() == nil {
		delete(t.m, k)
	}
}

// Holds reports whether k has an entry, live or awaiting its cleanup.
func (t *Table[K, V]) Holds(k K) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.m[k]
	return ok
}
