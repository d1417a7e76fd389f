package endpoint

import (
	"container/list"
	"time"
)

// maxRemembered bounds each memo of a Prober: the probe results kept for
// min_probe_interval and the addresses /probe admitted. /probe callers
// choose the targets, so without a bound they would choose how much memory
// certwatch keeps until the next reload.
const maxRemembered = 10_000

// defaultSweepEvery is how often a memo looks through all its entries for
// expired ones (on a write; memos start no goroutine, so there is nothing
// to stop on reload).
const defaultSweepEvery = time.Minute

// memo remembers values by key until each one's expiry, at most max of
// them: beyond that the oldest is dropped. An expired entry is dropped when
// it is read, and all of them at most every sweepEvery, when one is written.
// It does no locking: the Prober's mutex guards it.
type memo[V any] struct {
	max        int
	sweepEvery time.Duration
	now        func() time.Time

	order     *list.List // of *memoEntry[V], oldest written first
	byKey     map[string]*list.Element
	nextSweep time.Time
}

type memoEntry[V any] struct {
	key     string
	val     V
	expires time.Time
}

func newMemo[V any](max int) *memo[V] {
	return &memo[V]{max: max, sweepEvery: defaultSweepEvery, now: time.Now, order: list.New(), byKey: map[string]*list.Element{}}
}

// get returns the value remembered for key if it has not expired.
func (m *memo[V]) get(key string) (V, bool) {
	var zero V
	el, ok := m.byKey[key]
	if !ok {
		return zero, false
	}
	e := el.Value.(*memoEntry[V])
	if !m.now().Before(e.expires) {
		m.remove(el)
		return zero, false
	}
	return e.val, true
}

// put remembers val for key until expires, replacing what key had.
func (m *memo[V]) put(key string, val V, expires time.Time) {
	if el, ok := m.byKey[key]; ok {
		m.remove(el)
	}
	now := m.now()
	if !now.Before(m.nextSweep) {
		m.sweep(now)
		m.nextSweep = now.Add(m.sweepEvery)
	}
	if !now.Before(expires) {
		return
	}
	m.byKey[key] = m.order.PushBack(&memoEntry[V]{key: key, val: val, expires: expires})
	for m.order.Len() > m.max {
		m.remove(m.order.Front())
	}
}

// len returns how many entries are held, expired ones not yet swept included.
func (m *memo[V]) len() int { return m.order.Len() }

func (m *memo[V]) sweep(now time.Time) {
	for el := m.order.Front(); el != nil; {
		next := el.Next()
		if !now.Before(el.Value.(*memoEntry[V]).expires) {
			m.remove(el)
		}
		el = next
	}
}

func (m *memo[V]) remove(el *list.Element) {
	delete(m.byKey, el.Value.(*memoEntry[V]).key)
	m.order.Remove(el)
}
