package files

import (
	"runtime"
	"sync"

	"github.com/certwatch/certwatch/source/decode"
)

// Cache holds what the passes learned: the last outcome of reading each
// file, and the last complete discovery of each configured path. It also
// keeps the work in flight, so that passes share a walk or a read rather
// than repeat it, and a hung one holds one goroutine, not one per scrape.
// It is safe for concurrent use and survives configuration reloads.
type Cache struct {
	mu      sync.RWMutex // read-locked by the lookups of every scrape
	entries map[string]cached
	walks   map[string]*walkState

	flightMu sync.Mutex
	reading  map[string]chan struct{} // files being read, closed when done

	// slots bounds the files being stat'ed, read or parsed at once, across
	// all passes. Most of that time is waiting on the disk, hence more
	// slots than cores; a hung mount can hold some and still leave others.
	slots chan struct{}

	passMu sync.Mutex
	latest *pass // the newest pass: older ones hand their remaining work to it

	// pause holds the passes' workers back while an answer is being built,
	// so that a scrape at its deadline does not share the CPU with sixteen
	// parsers: a snapshot of 100,000 files would take seconds instead of a
	// fraction of one.
	pause pauser

	// Watching (watch.go): only a cache whose owner calls Stop may start
	// an inotify instance and its goroutines.
	mayWatch        bool
	watchMu         sync.Mutex
	watch           *watcher
	stopped         bool
	watchFailed     bool             // inotify could not be set up: poll
	watchFailReason string           // and why, counted as one fallback
	testWatchHook   func(w *watcher) // tests: replace the watcher's seams
}

// pauser stops new work while at least one holder holds it.
type pauser struct {
	mu      sync.Mutex
	holders int
	resume  chan struct{} // closed when the last holder releases
}

func (p *pauser) hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.holders == 0 {
		p.resume = make(chan struct{})
	}
	p.holders++
}

func (p *pauser) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holders--
	if p.holders == 0 {
		close(p.resume)
	}
}

// wait returns once nobody holds the pauser, or when stop is closed.
func (p *pauser) wait(stop <-chan struct{}) {
	p.mu.Lock()
	resume, held := p.resume, p.holders > 0
	p.mu.Unlock()
	if held {
		select {
		case <-resume:
		case <-stop:
		}
	}
}

// cached is the last outcome of reading one file.
type cached struct {
	id        identity
	optsKey   string
	entries   []decode.Entry
	container bool // the content is a certificate container, even if broken
	failed    bool // the stat failed: id is unknown, so never fresh
}

// walkState is one configured path's discovery: the last complete one, and
// the walk in flight.
type walkState struct {
	last    *discovery
	running chan struct{} // nil when no walk is in flight; closed when it ends
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{
		entries: map[string]cached{},
		walks:   map[string]*walkState{},
		reading: map[string]chan struct{}{},
		slots:   make(chan struct{}, max(16, runtime.GOMAXPROCS(0)*2)),
	}
}

// NewWatchingCache returns an empty cache whose Sources may watch their
// directories with inotify (global.files_watch) rather than stat every file
// at every scrape. Call Stop when done with it.
func NewWatchingCache() *Cache {
	c := NewCache()
	c.mayWatch = true
	return c
}

// fresh says whether path's cached outcome was read from the file as it is
// now, with the same options.
func (c *Cache) fresh(path string, id identity, optsKey string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[path]
	return ok && !e.failed && e.id == id && e.optsKey == optsKey
}

// outcome returns path's last outcome read with optsKey, however old.
func (c *Cache) outcome(path, optsKey string) (cached, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[path]
	if !ok || e.optsKey != optsKey {
		return cached{}, false
	}
	return e, true
}

// outcomes looks up many files under one read lock (a snapshot of 100,000
// files would otherwise queue 100,000 times behind the passes' writes).
// found[i] says whether paths[i] has an outcome read with optsKeys[i].
func (c *Cache) outcomes(paths, optsKeys []string) (out []cached, found []bool) {
	out, found = make([]cached, len(paths)), make([]bool, len(paths))
	c.mu.RLock()
	defer c.mu.RUnlock()
	for i, p := range paths {
		if e, ok := c.entries[p]; ok && e.optsKey == optsKeys[i] {
			out[i], found[i] = e, true
		}
	}
	return out, found
}

func (c *Cache) put(path string, e cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[path] = e
}

// lastWalk returns the last complete discovery of a configured path.
func (c *Cache) lastWalk(key string) *discovery {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if w := c.walks[key]; w != nil {
		return w.last
	}
	return nil
}

// walk returns a channel closed when the walk of key in flight ends,
// starting it with run when none is. run's result becomes the key's last
// discovery.
func (c *Cache) walk(key string, run func() discovery) <-chan struct{} {
	c.mu.Lock()
	w := c.walks[key]
	if w == nil {
		w = &walkState{}
		c.walks[key] = w
	}
	if w.running != nil {
		ch := w.running
		c.mu.Unlock()
		return ch
	}
	done := make(chan struct{})
	w.running = done
	c.mu.Unlock()

	var d *discovery
	defer func() { // even if run panics, the walk is no longer in flight
		c.mu.Lock()
		if d != nil {
			w.last = d
		}
		w.running = nil
		c.mu.Unlock()
		close(done)
	}()
	result := run()
	d = &result
	return done
}

// startRead marks path as being read. It returns nil when the caller is to
// read it, or the channel of the read already in flight.
func (c *Cache) startRead(path string) <-chan struct{} {
	c.flightMu.Lock()
	defer c.flightMu.Unlock()
	if ch, ok := c.reading[path]; ok {
		return ch
	}
	c.reading[path] = make(chan struct{})
	return nil
}

func (c *Cache) endRead(path string) {
	c.flightMu.Lock()
	ch := c.reading[path]
	delete(c.reading, path)
	c.flightMu.Unlock()
	close(ch)
}

// retain drops the files and walks a configuration no longer reaches, so a
// deleted file's memory goes.
func (c *Cache) retain(paths map[string]bool, walkKeys map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range c.entries {
		if !paths[p] {
			delete(c.entries, p)
		}
	}
	for k, w := range c.walks {
		if !walkKeys[k] && w.running == nil {
			delete(c.walks, k)
		}
	}
}

// Len returns how many files are cached as read.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, e := range c.entries {
		if !e.failed {
			n++
		}
	}
	return n
}
