package intern

import (
	"runtime"
	"testing"
	"time"
)

type object struct{ n [64]byte }

// TestTableSharesAndForgets checks that a second Put under a key returns
// the object already held, and that the entry goes once nothing holds it.
func TestTableSharesAndForgets(t *testing.T) {
	var tab Table[string, object]
	a := tab.Put("k", &object{})
	if b := tab.Put("k", &object{}); b != a {
		t.Fatal("a second Put under a live key did not return the object held")
	}
	if tab.Get("k") != a || tab.Get("other") != nil {
		t.Fatal("Get does not return what was put")
	}
	runtime.KeepAlive(a)
	a = nil
	deadline := time.Now().Add(5 * time.Second)
	for tab.Get("k") != nil || tab.Holds("k") {
		if time.Now().After(deadline) {
			t.Fatal("the entry outlived its object")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if c := tab.Put("k", &object{}); c == nil || tab.Get("k") != c {
		t.Fatal("a key cannot be used again after its object went")
	}
}
