package files

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/source"
)

// Watch mode: rather than stat every file on every scrape, the directories
// of each configured path are watched with inotify, and a scrape of a tree
// in which nothing happened does no stat and no walk. An event marks what it
// touches: a file written, chmod'ed or replaced is re-read (whatever its
// identity says), and a configured path whose directories gained, lost or
// renamed an entry is walked again. Symlinked files are followed to their
// targets, whose directories are watched too, so that a Kubernetes volume's
// "..data" swap re-reads every file behind it.
//
// Every pass first makes sure that the events of everything that happened
// before it started have been taken into account (barrier): a byte written
// to a pipe that is itself watched comes back as an event after every event
// queued before it. A scrape therefore sees every change made before it
// started, as a polling one does.
//
// A configured path falls back to polling (a walk and a stat of every file
// on every scrape, as without watching) when its watches cannot be placed:
// the kernel's limit of watches (ENOSPC: fs.inotify.max_user_watches), a
// network or FUSE filesystem that does not report other machines' changes
// (auto mode), or any other error; it tries again once per re-check
// interval. A queue overflow makes every configured path be walked and
// stat'ed once. Every re-check interval a watched path is walked and stat'ed
// in full anyway, to catch what no event told.

// Fallback reasons, the reason label of certwatch_files_watch_fallbacks_total.
const (
	reasonWatchLimit = "watch_limit"
	reasonOverflow   = "queue_overflow"
	reasonNetworkFS  = "network_filesystem"
	reasonError      = "watch_error"
)

var fallbackReasons = []string{reasonWatchLimit, reasonOverflow, reasonNetworkFS, reasonError}

const (
	// barrierTimeout bounds the wait for the pipe's event. Past it the
	// pass polls and the barrier starts over.
	barrierTimeout = 10 * time.Second
	// settleTime is how long the background refresh waits after the last
	// event of a burst; settleMax bounds the wait during an endless one.
	settleTime = 200 * time.Millisecond
	settleMax  = 2 * time.Second
)

// sourceWatch is a Source's view of watching: its configuration's settings
// and the cache's watcher (nil when polling).
type sourceWatch struct {
	mode    string
	recheck time.Duration
	w       *watcher
	// settled is set once a pass of this Source completed: its first pass
	// walks and stats everything, so a reload that changes what a file's
	// parse depends on re-reads it.
	settled atomic.Bool
}

// initWatch sets up the Source's watching from the configuration: a cache
// made by NewWatchingCache watches unless global.files_watch is poll.
func (s *Source) initWatch(cfg *config.Config) {
	s.watch = &sourceWatch{mode: cfg.Global.FilesWatch, recheck: time.Duration(cfg.Global.FilesRecheckInterval)}
	if s.watch.mode == "" {
		s.watch.mode = config.FilesWatchAuto
	}
	if s.watch.recheck <= 0 {
		s.watch.recheck = config.DefaultFilesRecheckInterval
	}
	if s.watch.mode == config.FilesWatchPoll || len(s.groups) == 0 {
		return
	}
	if !watchSupported { // auto polls here without a word; inotify was asked for
		if s.watch.mode == config.FilesWatchInotify && s.cache.mayWatch {
			s.logger.Warn("global.files_watch: inotify is only available on Linux; polling the files", "kind", source.KindFile)
		}
		return
	}
	s.watch.w = s.cache.watcher(s.logger)
}

// watchNow is the watcher's clock (tests move it), or the time.
func (s *Source) watchNow() time.Time {
	if s.watching() {
		return s.watch.w.now()
	}
	return time.Now()
}

// watching reports whether this Source's passes use the watcher.
func (s *Source) watching() bool { return s.watch != nil && s.watch.w != nil }

// watcher returns the cache's watcher, starting it on first use; nil when
// the cache may not watch (NewCache) or inotify is unavailable.
func (c *Cache) watcher(logger *slog.Logger) *watcher {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if !c.mayWatch || c.stopped {
		return nil
	}
	if c.watch == nil && !c.watchFailed {
		w, err := newWatcher(c, logger)
		if err != nil {
			logger.Warn("Cannot watch certificate files, polling them instead", "kind", source.KindFile, "err", err)
			c.watchFailed = true
			c.watchFailReason = reasonError
			if errors.Is(err, syscall.EMFILE) { // fs.inotify.max_user_instances
				c.watchFailReason = reasonWatchLimit
			}
			return nil
		}
		c.watch = w
	}
	return c.watch
}

// Stop ends the watching of a cache made by NewWatchingCache: the inotify
// instance is closed and its goroutines end. Passes in flight finish on
// their own.
func (c *Cache) Stop() {
	c.watchMu.Lock()
	w := c.watch
	c.watch, c.stopped = nil, true
	c.watchMu.Unlock()
	if w != nil {
		w.close()
	}
}

// watcher holds the inotify instance of a cache and what each configured
// path (walk key) watches.
type watcher struct {
	cache  *Cache
	logger *slog.Logger
	fsw    *fsnotify.Watcher

	// Seams for tests: placing a watch, and telling a directory's
	// filesystem type.
	addWatch    func(dir string) error
	fsType      func(dir string) (int64, error)
	now         func() time.Time
	barrierWait atomic.Int64                  // nanoseconds; tests shorten it
	testHold    atomic.Pointer[chan struct{}] // tests: hold the event loop back until closed

	mu        sync.Mutex
	dirs      map[string]*watchedDir
	byInode   map[inode]map[string]bool // the paths placed for each watched directory
	keys      map[string]*keyWatch
	dirty     map[string]uint64 // file -> sequence number of its last event
	withRefs  map[string]bool   // kubeconfigs that refer to other files: refreshed at every pass
	seq       uint64
	fallbacks map[string]uint64
	broken    bool // the barrier could not be renewed: every pass polls

	// The barrier: one round in flight at a time, so that the kernel never
	// merges two of its events into one.
	pipeR, pipeW *os.File
	pipePath     string
	bmu          sync.Mutex
	current      *round
	next         *round

	latest atomic.Pointer[Source] // the Source background passes run with
	wake   chan struct{}
	stop   chan struct{}
	wg     sync.WaitGroup
}

type round struct {
	done chan struct{}
	ok   bool // set before done is closed: the round's event came (or events were lost and marked)
}

// watchedDir is a directory with an inotify watch and who needs it.
type watchedDir struct {
	id    inode // what was watched: a path re-pointed elsewhere is watched again
	users map[string]*dirUse
}

// dirUse is how one configured path uses a watched directory: every entry
// matters when the walk listed it, only the named ones otherwise (the entry
// leading to the configured path, a symlink or a symlink's target).
type dirUse struct {
	listed bool
	names  map[string]bool
}

// keyWatch is the watching state of one configured path (walk key).
type keyWatch struct {
	registered bool   // a walk placed its watches
	polling    string // fallback reason; "" when watched
	retryAt    time.Time
	walkSeq    uint64 // bumped by events that may change what the walk finds
	walkedSeq  uint64 // walkSeq when the last registered walk started
	fullSeq    uint64 // bumped when everything must be stat'ed once
	fullDone   uint64 // fullSeq when the last full pass started
	lastFull   time.Time
	found      []string            // the files of the last walk, sorted
	deps       map[string][]string // a symlink or target path -> the files reached through it
	pending    map[string]struct{} // files marked dirty for this key
	dirs       map[string]bool     // the directories it uses
}

func newWatcher(c *Cache, logger *slog.Logger) (*watcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &watcher{cache: c, logger: logger, fsw: fsw, dirs: map[string]*watchedDir{}, byInode: map[inode]map[string]bool{}, keys: map[string]*keyWatch{},
		dirty: map[string]uint64{}, withRefs: map[string]bool{}, fallbacks: map[string]uint64{}, now: time.Now, fsType: statfsType,
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
	w.addWatch = fsw.Add
	w.barrierWait.Store(int64(barrierTimeout))
	if c.testWatchHook != nil {
		c.testWatchHook(w)
	}
	if err := w.openBarrier(); err != nil {
		fsw.Close()
		return nil, fmt.Errorf("setting up the event barrier: %w", err)
	}
	w.wg.Add(2)
	go w.loop()
	go w.refresher()
	return w, nil
}

// openBarrier makes the barrier's pipe, watched through its /proc/self/fd
// name, and a goroutine that keeps it empty.
func (w *watcher) openBarrier() error {
	r, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	var path string
	raw, err := pw.SyscallConn()
	if err == nil {
		_ = raw.Control(func(fd uintptr) { path = "/proc/self/fd/" + strconv.Itoa(int(fd)) })
		err = w.fsw.Add(path)
	}
	if err != nil {
		r.Close()
		pw.Close()
		return err
	}
	w.pipeR, w.pipeW, w.pipePath = r, pw, path
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		_, _ = io.Copy(io.Discard, r) // until the write end is closed
		r.Close()
	}()
	return nil
}

// resetBarrier replaces the barrier's pipe after events were lost: the
// round in flight may have lost its event, or have it still to come, and a
// late event must not release a later round before the events queued ahead
// of that round's own. The new pipe has another name; the round in flight
// is issued again on it.
func (w *watcher) resetBarrier() {
	w.bmu.Lock()
	defer w.bmu.Unlock()
	oldW, oldPath := w.pipeW, w.pipePath
	if err := w.openBarrier(); err != nil {
		w.logger.Error("Cannot renew the file watch event barrier; polling every file from now on", "kind", source.KindFile, "err", err)
		w.mu.Lock()
		w.broken = true
		w.mu.Unlock()
		if w.current != nil {
			close(w.current.done) // ok stays false: the waiters poll
			w.current = nil
		}
		return
	}
	_ = w.fsw.Remove(oldPath)
	oldW.Close()
	if w.current != nil { // its waiters wait for the new pipe's event
		if _, err := w.pipeW.Write([]byte{0}); err != nil {
			close(w.current.done)
			w.current = nil
		}
	}
}

func (w *watcher) close() {
	close(w.stop)
	w.fsw.Close()
	w.bmu.Lock()
	w.pipeW.Close() // ends the drain
	w.bmu.Unlock()
	w.wg.Wait()
}

// loop takes the kernel's events as they come. It only marks what they
// touch: re-reading is the passes' work.
func (w *watcher) loop() {
	defer w.wg.Done()
	events, errs := w.fsw.Events, w.fsw.Errors
	for events != nil {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if hold := w.testHold.Load(); hold != nil {
				<-*hold
			}
			if w.isPipe(ev.Name) {
				w.endRound()
				continue
			}
			w.mu.Lock()
			marked := w.route(ev.Name, ev.Op)
			w.mu.Unlock()
			if marked {
				w.poke()
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			reason := reasonError
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				reason = reasonOverflow
			}
			w.lostEvents(reason, err)
		}
	}
}

// lostEvents is the answer to a queue overflow or a read error: some events
// may be gone, so every configured path is walked and stat'ed once.
func (w *watcher) lostEvents(reason string, err error) {
	w.logger.Warn("File watch events were lost; every watched file will be checked once", "kind", source.KindFile,
		"reason", reason, "err", err)
	w.mu.Lock()
	w.fallbacks[reason]++
	for _, k := range w.keys {
		k.fullSeq++
	}
	w.mu.Unlock()
	w.resetBarrier()
	w.poke()
}

// isPipe tells the barrier's events.
func (w *watcher) isPipe(name string) bool {
	w.bmu.Lock()
	defer w.bmu.Unlock()
	return name == w.pipePath
}

func (w *watcher) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// route marks what an event on name touches. It reports whether it marked
// anything.
//
// inotify watches a directory once however many paths lead to it, and
// names its events after one of them: the event is taken under every path
// placed for that directory.
func (w *watcher) route(name string, op fsnotify.Op) bool {
	structural := op.Has(fsnotify.Create) || op.Has(fsnotify.Remove) || op.Has(fsnotify.Rename)
	touched := map[string][]string{} // key -> the names it sees the event under
	base := filepath.Base(name)
	for _, dir := range w.samePaths(filepath.Dir(name)) {
		n := filepath.Join(dir, base)
		if d := w.dirs[dir]; d != nil {
			for key, use := range d.users {
				if use.listed || use.names[n] {
					touched[key] = append(touched[key], n)
				}
			}
		}
	}
	selves := w.samePaths(name)
	for _, self := range selves { // the watched directory itself
		if d := w.dirs[self]; d != nil {
			for key := range d.users {
				touched[key] = append(touched[key], self)
			}
		}
	}
	if d := w.dirs[name]; d != nil {
		// A watched directory changed: chmod'ed, its listing may now fail
		// (or work again); removed or renamed, inotify dropped its watch,
		// which the walk places again.
		structural = true
		if op.Has(fsnotify.Remove) || op.Has(fsnotify.Rename) {
			for _, self := range selves {
				w.setInode(self, w.dirs[self], inode{})
			}
		}
	}
	for key, names := range touched {
		k := w.keys[key]
		if k == nil {
			continue
		}
		if structural {
			k.walkSeq++
		}
		for _, n := range names {
			w.markUnder(k, n)
			for _, f := range k.deps[n] {
				w.mark(k, f)
			}
		}
	}
	return len(touched) > 0
}

// inode identifies a watched directory; the zero value: not watched.
type inode struct{ dev, ino uint64 }

// samePaths returns the paths placed for the directory at path, path
// included.
func (w *watcher) samePaths(path string) []string {
	d := w.dirs[path]
	if d == nil || d.id == (inode{}) {
		return []string{path}
	}
	paths := make([]string, 0, len(w.byInode[d.id]))
	for p := range w.byInode[d.id] {
		paths = append(paths, p)
	}
	return paths
}

// setInode records that dir now names the directory id (zero: none).
func (w *watcher) setInode(dir string, d *watchedDir, id inode) {
	if d == nil || d.id == id {
		return
	}
	if d.id != (inode{}) {
		delete(w.byInode[d.id], dir)
		if len(w.byInode[d.id]) == 0 {
			delete(w.byInode, d.id)
		}
	}
	d.id = id
	if id != (inode{}) {
		if w.byInode[id] == nil {
			w.byInode[id] = map[string]bool{}
		}
		w.byInode[id][dir] = true
	}
}

// release lets go of dir's watch, which inotify shares between every path
// to the same directory: when dir was the path its events were named
// after, the watch is gone for the other paths too, and their users check
// everything once at the next pass, which places it again (not here: a
// path lookup may hang on a dead mount, and this runs under w.mu).
func (w *watcher) release(dir string, id inode) {
	if err := w.fsw.Remove(dir); err != nil {
		return // not the name inotify knows it by, or gone already
	}
	for other := range w.byInode[id] {
		d := w.dirs[other]
		w.setInode(other, d, inode{})
		for key := range d.users {
			if k := w.keys[key]; k != nil {
				k.fullSeq++
			}
		}
	}
}

// markUnder marks the files of k at name or below it. Those below it sort
// together, but not right after name ("d/sub-old" comes between "d/sub"
// and "d/sub/").
func (w *watcher) markUnder(k *keyWatch, name string) {
	if _, found := slices.BinarySearch(k.found, name); found {
		w.mark(k, name)
	}
	dir := name + "/"
	i, _ := slices.BinarySearch(k.found, dir)
	for ; i < len(k.found) && strings.HasPrefix(k.found[i], dir); i++ {
		w.mark(k, k.found[i])
	}
}

func (w *watcher) mark(k *keyWatch, path string) {
	w.seq++
	w.dirty[path] = w.seq
	if k.pending == nil {
		k.pending = map[string]struct{}{}
	}
	k.pending[path] = struct{}{}
}

// clean unmarks path once it was re-read, unless an event came meanwhile.
func (w *watcher) clean(path string, seq uint64) {
	w.mu.Lock()
	if w.dirty[path] == seq {
		delete(w.dirty, path)
	}
	w.mu.Unlock()
}

// isDirty reports whether path is still marked with seq.
func (w *watcher) isDirty(path string, seq uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dirty[path] == seq
}

// barrier returns once every event queued before it was called has been
// taken into account; false when the watcher cannot tell (stopped, or its
// events stopped coming).
func (w *watcher) barrier() bool {
	w.bmu.Lock()
	if w.next == nil {
		w.next = &round{done: make(chan struct{})}
	}
	r := w.next
	if w.current == nil {
		w.issueLocked()
	}
	w.bmu.Unlock()
	wait := time.Duration(w.barrierWait.Load())
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-r.done:
		return r.ok
	case <-w.stop:
		return false
	case <-t.C:
		// The events are late (a starved process): this pass polls, and
		// so that no late event can release a later round too early, the
		// barrier starts over on a new pipe, every path checked once.
		w.lostEvents(reasonError, fmt.Errorf("no event for %s", wait))
		return false
	}
}

func (w *watcher) issueLocked() {
	w.current, w.next = w.next, nil
	if _, err := w.pipeW.Write([]byte{0}); err != nil {
		close(w.current.done) // stopped: ok stays false
		w.current = nil
	}
}

func (w *watcher) endRound() {
	w.bmu.Lock()
	defer w.bmu.Unlock()
	if w.current == nil {
		return
	}
	w.current.ok = true
	close(w.current.done)
	w.current = nil
	if w.next != nil {
		w.issueLocked()
	}
}

// refresher re-reads what events marked once a burst of them settles, so
// that the next scrape finds it done rather than doing it.
func (w *watcher) refresher() {
	defer w.wg.Done()
	for {
		select {
		case <-w.stop:
			return
		case <-w.wake:
		}
		settle := time.NewTimer(settleTime)
		limit := time.Now().Add(settleMax)
	wait:
		for {
			select {
			case <-w.stop:
				settle.Stop()
				return
			case <-w.wake:
				if time.Now().Before(limit) {
					settle.Reset(settleTime)
				}
			case <-settle.C:
				break wait
			}
		}
		if s := w.latest.Load(); s != nil {
			p := w.cache.newPass(s)
			go p.run()
		}
	}
}

// keyPlan is what a pass does for one configured path.
type keyPlan struct {
	walk     bool   // walk it
	all      bool   // stat every file found (and read the changed ones)
	register bool   // place the watches while walking
	full     bool   // a full check of a watched path: note it when the pass completes
	seq      uint64 // full: the key's fullSeq when planned
	walkSeq  uint64 // register: the key's walkSeq when planned
}

var pollPlan = keyPlan{walk: true, all: true}

// plan decides what the pass p does for key. Without a watcher, or when the
// barrier failed, it is what a pass always did: walk and stat everything.
func (p *pass) plan(key string, barrierOK bool) keyPlan {
	s := p.s
	if !s.watching() || !barrierOK {
		return pollPlan
	}
	w := s.watch.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.broken {
		return pollPlan
	}
	k := w.keys[key]
	if k == nil {
		k = &keyWatch{fullSeq: 1}
		w.keys[key] = k
	}
	now := w.now()
	if k.polling != "" {
		if now.Before(k.retryAt) {
			return pollPlan
		}
		return keyPlan{walk: true, all: true, register: true, full: true, seq: k.fullSeq, walkSeq: k.walkSeq}
	}
	if !k.registered || k.fullSeq != k.fullDone || now.Sub(k.lastFull) >= s.watch.recheck || !s.watch.settled.Load() {
		return keyPlan{walk: true, all: true, register: true, full: true, seq: k.fullSeq, walkSeq: k.walkSeq}
	}
	if k.walkSeq != k.walkedSeq {
		return keyPlan{walk: true, register: true, walkSeq: k.walkSeq}
	}
	return keyPlan{}
}

// filesToRefresh returns what the pass refreshes of a configured path's
// files d: all of them, or those marked by events, with the sequence number
// of each mark (0: not marked).
func (p *pass) filesToRefresh(key string, plan keyPlan, d *discovery) ([]foundFile, []uint64) {
	s := p.s
	if !s.watching() || (plan.all && !plan.register) {
		return d.found, nil
	}
	w := s.watch.w
	w.mu.Lock()
	defer w.mu.Unlock()
	k := w.keys[key]
	if k == nil {
		return d.found, nil
	}
	if plan.all {
		seqs := make([]uint64, len(d.found))
		for i, f := range d.found {
			seqs[i] = w.dirty[f.path]
		}
		return d.found, seqs
	}
	var files []foundFile
	var seqs []uint64
	for path := range w.withRefs {
		if _, marked := k.pending[path]; marked {
			continue
		}
		if i, found := slices.BinarySearchFunc(d.found, path, func(f foundFile, p string) int { return strings.Compare(f.path, p) }); found {
			files = append(files, d.found[i])
			seqs = append(seqs, 0)
		}
	}
	for path := range k.pending {
		seq, ok := w.dirty[path]
		if !ok {
			delete(k.pending, path)
			continue
		}
		i, found := slices.BinarySearchFunc(d.found, path, func(f foundFile, p string) int { return strings.Compare(f.path, p) })
		if !found {
			delete(k.pending, path) // gone: the walk dropped it
			continue
		}
		files = append(files, d.found[i])
		seqs = append(seqs, seq)
	}
	return files, seqs
}

// discoverWatched walks a configured path placing a watch on every
// directory before listing it (so that nothing created meanwhile goes
// unseen), then on the directories that lead to it and to its symlinks'
// targets, and records it all under key.
func (s *Source) discoverWatched(path string, excludes []string, key string, plan keyPlan) discovery {
	w := s.watch.w
	var listed, placed []string
	var failure error
	d := discoverOne(path, excludes, func(dir string) {
		if failure == nil {
			if err := w.place(key, dir, s.watch.mode, plan.full); err != nil {
				failure = err
			} else {
				placed = append(placed, dir)
			}
		}
		listed = append(listed, dir)
		if s.beforeList != nil {
			s.beforeList(dir)
		}
	})
	named := map[string][]string{} // directory -> entries that matter in it
	if anchor, child := anchorOf(path); anchor != "" {
		named[anchor] = append(named[anchor], child)
	}
	deps := map[string][]string{}
	for _, f := range d.found {
		if st, err := os.Lstat(f.path); err != nil || st.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		links, target, err := resolveChain(f.path)
		if err != nil {
			continue // gone meanwhile: its directory's event marks the walk
		}
		// The target's directory too: replaced as a whole, it raises no
		// event on the target's name.
		for _, n := range append(links, target, filepath.Dir(target)) {
			deps[n] = append(deps[n], f.path)
			named[filepath.Dir(n)] = append(named[filepath.Dir(n)], n)
		}
	}
	if failure == nil {
		for dir := range named {
			if err := w.place(key, dir, s.watch.mode, plan.full); err != nil {
				failure = err
				break
			}
			placed = append(placed, dir)
		}
	}
	w.register(key, d, listed, placed, named, deps, plan.walkSeq, failure)
	return d
}

// anchorOf returns the nearest existing directory above a configured path's
// root (the glob's base for a pattern) and its entry that leads to it: its
// creation, removal or renaming changes what the path finds.
func anchorOf(path string) (dir, entry string) {
	root := filepath.Clean(path)
	if hasMeta(root) {
		root, _ = globBase(root)
	}
	for entry = root; entry != "/" && entry != "."; entry = filepath.Dir(entry) {
		dir = filepath.Dir(entry)
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			return dir, entry
		}
	}
	return "", ""
}

// resolveChain follows path's symlinks as the kernel does, component by
// component, and returns each symlink met and the final target.
func resolveChain(path string) (links []string, target string, err error) {
	comps := strings.Split(path, "/")
	resolved := "/"
	for hops := 0; len(comps) > 0; {
		c := comps[0]
		comps = comps[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, c)
		st, err := os.Lstat(next)
		if err != nil {
			return nil, "", err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if hops++; hops > 40 {
			return nil, "", fmt.Errorf("%s: %w", path, syscall.ELOOP)
		}
		links = append(links, next)
		to, err := os.Readlink(next)
		if err != nil {
			return nil, "", err
		}
		if filepath.IsAbs(to) {
			resolved = "/"
		}
		comps = append(strings.Split(to, "/"), comps...)
	}
	return links, resolved, nil
}

// errNetworkFS says a directory's filesystem may not report changes.
type errNetworkFS struct{ fsType int64 }

func (e errNetworkFS) Error() string {
	return fmt.Sprintf("filesystem type 0x%x may not report changes made by other machines (global.files_watch: inotify overrides)", e.fsType)
}

// place makes sure dir is watched (the directory it names now, should the
// name have been re-pointed by a symlink or a new directory), with key among
// its users from now on: every event in it marks key until register says
// which entries matter. A full check places every watch again, should one
// have gone without a word (inotify drops a watch silently on IN_IGNORED).
func (w *watcher) place(key, dir, mode string, again bool) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	k, _ := dirKeyOf(dir, st)
	id := inode{k.dev, k.ino | 1<<63} // never zero, which means "not watched"
	w.mu.Lock()
	d := w.dirs[dir]
	if d != nil && d.id == id && !again {
		if d.users[key] == nil {
			d.users[key] = &dirUse{listed: true}
		}
		w.mu.Unlock()
		return nil
	}
	if d != nil && d.id != (inode{}) && d.id != id { // the name now leads elsewhere
		old := d.id
		w.setInode(dir, d, inode{})
		w.release(dir, old)
	}
	w.mu.Unlock()
	// Outside the lock: on a hung mount these can hang, and the event loop
	// must go on.
	if mode != config.FilesWatchInotify {
		if t, err := w.fsType(dir); err == nil && networkFS[t] {
			return errNetworkFS{t}
		}
	}
	if err := w.addWatch(dir); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if d = w.dirs[dir]; d == nil {
		d = &watchedDir{users: map[string]*dirUse{}}
		w.dirs[dir] = d
	}
	w.setInode(dir, d, id)
	if d.users[key] == nil {
		d.users[key] = &dirUse{listed: true}
	}
	return nil
}

// register records what a walk of key found and watches, or its fallback
// to polling when a watch could not be placed.
func (w *watcher) register(key string, d discovery, listed, placed []string, named map[string][]string,
	deps map[string][]string, walkSeq uint64, failure error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := w.keys[key]
	if k == nil {
		k = &keyWatch{fullSeq: 1}
		w.keys[key] = k
	}
	uses := map[string]*dirUse{}
	if failure == nil {
		for _, dir := range listed {
			uses[dir] = &dirUse{listed: true}
		}
		for dir, names := range named {
			u := uses[dir]
			if u == nil {
				u = &dirUse{}
				uses[dir] = u
			}
			if u.names == nil {
				u.names = map[string]bool{}
			}
			for _, n := range names {
				u.names[n] = true
			}
		}
	}
	// Drop the uses of directories no longer needed, and the watches of
	// directories nobody needs.
	for _, dir := range append(slices.Collect(maps.Keys(k.dirs)), placed...) {
		if uses[dir] != nil {
			continue
		}
		if wd := w.dirs[dir]; wd != nil {
			delete(wd.users, key)
			w.unwatchIfUnused(dir, wd)
		}
	}
	k.dirs = map[string]bool{}
	for dir, u := range uses {
		wd := w.dirs[dir]
		if wd == nil { // placed, then dropped meanwhile: check everything again
			k.fullSeq++
			continue
		}
		wd.users[key] = u
		k.dirs[dir] = true
	}
	if failure != nil {
		reason := reasonError
		var netErr errNetworkFS
		switch {
		case errors.Is(failure, syscall.ENOSPC):
			reason = reasonWatchLimit
		case errors.As(failure, &netErr):
			reason = reasonNetworkFS
		}
		if k.polling == "" {
			w.fallbacks[reason]++
			w.logger.Warn("Cannot watch a configured path, polling it", "kind", source.KindFile, "reason", reason, "err", failure)
		}
		k.polling, k.retryAt, k.registered = reason, w.now().Add(w.recheck()), false
		k.found, k.deps, k.pending = nil, nil, nil
		return
	}
	if k.polling != "" {
		w.logger.Info("Watching a configured path again", "kind", source.KindFile, "was", k.polling)
	}
	// Files the walk found for the first time are read by this pass or,
	// should it be cut short, by the next.
	paths := make([]string, len(d.found))
	for i, f := range d.found {
		paths[i] = f.path
		if _, known := slices.BinarySearch(k.found, f.path); !known && k.registered {
			w.mark(k, f.path)
		}
	}
	k.found, k.deps, k.polling, k.registered, k.walkedSeq = paths, deps, "", true, walkSeq
}

func (w *watcher) unwatchIfUnused(dir string, wd *watchedDir) {
	if len(wd.users) > 0 {
		return
	}
	delete(w.dirs, dir)
	id := wd.id
	w.setInode(dir, wd, inode{})
	if id != (inode{}) {
		w.release(dir, id)
	}
}

// recheck is the current configuration's re-check interval.
func (w *watcher) recheck() time.Duration {
	if s := w.latest.Load(); s != nil && s.watch != nil {
		return s.watch.recheck
	}
	return config.DefaultFilesRecheckInterval
}

// retain forgets the configured paths that are not in keys, and drops the
// watches nobody needs any more.
func (w *watcher) retain(keys map[string]bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for key, k := range w.keys {
		if keys[key] {
			continue
		}
		for dir := range k.dirs {
			if wd := w.dirs[dir]; wd != nil {
				delete(wd.users, key)
				w.unwatchIfUnused(dir, wd)
			}
		}
		delete(w.keys, key)
	}
	if len(w.keys) == 0 {
		clear(w.dirty)
		clear(w.withRefs)
	}
}

// passDone notes, once a pass completed, the full checks it made.
func (p *pass) watchPassDone(started time.Time) {
	s := p.s
	if !s.watching() {
		return
	}
	s.watch.settled.Store(true)
	w := s.watch.w
	p.mu.Lock()
	full := p.fullKeys
	p.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	for key, seq := range full {
		if k := w.keys[key]; k != nil && k.registered {
			k.fullDone, k.lastFull = seq, started
		}
	}
}

// watchNoteRefs notes whether path, just refreshed, is a kubeconfig that
// refers to other files (kubeconfig.go): those files may be anywhere, so
// rather than watch them the kubeconfig is refreshed at every pass, which
// stats them again, as when polling.
func (s *Source) watchNoteRefs(path string, g *group) {
	if !s.watching() {
		return
	}
	c, ok := s.cache.outcome(path, g.optsKey)
	w := s.watch.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if ok && c.id.refs != "" {
		w.withRefs[path] = true
	} else {
		delete(w.withRefs, path)
	}
}

// watchRetain is Source.retain's part for the watcher.
func (s *Source) watchRetain(keys map[string]bool) {
	if s.watching() {
		s.watch.w.retain(keys)
		return
	}
	s.cache.watchMu.Lock()
	w := s.cache.watch
	s.cache.watchMu.Unlock()
	if w != nil { // this configuration polls: no watch is needed
		w.retain(nil)
	}
}

// invalidate makes path's cached outcome stale, so that the next refresh
// reads the file whatever its identity says: an event said it changed, and
// a change within the filesystem's timestamp granularity that keeps the size
// leaves the identity as it was.
func (c *Cache) invalidate(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[path]; ok {
		e.id = identity{}
		c.entries[path] = e
	}
}

// Status of the watching, with the other series of the files source.
const (
	nameWatchPaths    = "certwatch_files_watch_paths"
	helpWatchPaths    = "Configured paths of the file group whose changes are learnt from inotify events (mode inotify) or by stat-ing every file at every scrape (mode poll); group is the index in the files list."
	nameWatches       = "certwatch_files_watches"
	helpWatches       = "Directories the files source holds an inotify watch on."
	nameWatchFallback = "certwatch_files_watch_fallbacks_total"
	helpWatchFallback = "Times the files source fell back from inotify events to stat-ing files: a configured path that could not be watched (watch_limit: fs.inotify.max_user_watches reached; network_filesystem; watch_error), or events lost (queue_overflow) or late (watch_error): every file checked once."
)

func (s *Source) watchStatus() []source.Sample {
	var out []source.Sample
	// The cache's watcher, whatever this configuration's mode: its counters
	// go on across reloads.
	s.cache.watchMu.Lock()
	w, failReason := s.cache.watch, s.cache.watchFailReason
	s.cache.watchMu.Unlock()
	if w != nil {
		w.mu.Lock()
		defer w.mu.Unlock()
	}
	for gi := range s.groups {
		g := &s.groups[gi]
		watched := 0
		if s.watching() && w != nil && !w.broken {
			for _, key := range g.walkKeys {
				if k := w.keys[key]; k != nil && k.registered && k.polling == "" {
					watched++
				}
			}
		}
		group := strconv.Itoa(g.index)
		out = append(out,
			source.Sample{Name: nameWatchPaths, Help: helpWatchPaths, LabelNames: []string{"group", "mode"},
				Values: []string{group, "inotify"}, Value: float64(watched)},
			source.Sample{Name: nameWatchPaths, Help: helpWatchPaths, LabelNames: []string{"group", "mode"},
				Values: []string{group, "poll"}, Value: float64(len(g.walkKeys) - watched)})
	}
	watches := 0
	if w != nil {
		watches = len(w.byInode)
	}
	out = append(out, source.Sample{Name: nameWatches, Help: helpWatches, Value: float64(watches)})
	for _, r := range fallbackReasons {
		v := float64(0)
		if w != nil {
			v = float64(w.fallbacks[r])
		}
		if r == failReason { // inotify could not be set up at all
			v++
		}
		out = append(out, source.Sample{Name: nameWatchFallback, Help: helpWatchFallback, Counter: true,
			LabelNames: []string{"reason"}, Values: []string{r}, Value: v})
	}
	return out
}
