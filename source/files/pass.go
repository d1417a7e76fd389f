package files

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/certwatch/certwatch/source"
)

// A pass walks every configured path and brings the cached outcome of every
// file found up to date. Passes run in the background: a scrape starts one
// and answers from the cache when it completes or at the scrape's deadline,
// whichever comes first, while the pass goes on. A newer pass takes over:
// the older one stops starting work and stops waiting for others' work, and
// only what it already started (a walk, a read, perhaps hung on a dead
// mount) runs on to its end. Walks and reads in flight are shared through
// the Cache, so a hung one is never started twice.
type pass struct {
	s       *Source
	done    chan struct{} // closed when the pass did all its work
	stale   chan struct{} // closed when a newer pass starts
	next    *pass         // the newer pass; set before stale is closed
	dropped atomic.Bool   // some work was left to the newer pass

	mu       sync.Mutex
	claimed  map[string]int // path -> the earliest group that found it so far
	joined   []<-chan struct{}
	rejoin   []readJob         // jobs that joined another read of their file
	fullKeys map[string]uint64 // watched paths checked in full (watch.go)
	walked   atomic.Bool       // some configured path was walked
}

type readJob struct {
	path string
	g    *group
	gi   int    // g's index
	seq  uint64 // an event marked the file (watch.go): read it whatever its identity
}

func (c *Cache) newPass(s *Source) *pass {
	p := &pass{s: s, done: make(chan struct{}), stale: make(chan struct{}), claimed: map[string]int{}}
	c.passMu.Lock()
	if old := c.latest; old != nil {
		old.next = p
		close(old.stale)
	}
	c.latest = p
	c.passMu.Unlock()
	if s.watching() {
		s.watch.w.latest.Store(s) // background passes run with the newest configuration
	}
	return p
}

// Warm starts a pass without waiting for it, so that the first scrape after
// start-up or a reload finds the cache filled, or filling.
func (s *Source) Warm() {
	p := s.cache.newPass(s)
	go p.run()
}

// Collect discovers the files of every group and returns one finding per
// certificate-holding key of every file, and one per path that failed.
func (s *Source) Collect(ctx context.Context) []source.Finding {
	findings, _ := s.CollectCounted(ctx)
	return findings
}

// CollectCounted is Collect, also returning how many files each group's
// walks and globs skipped (see findings), indexed like the configuration's
// files list. It returns when a pass has completed or at ctx's deadline,
// whichever comes first: a place not finished by then is served from the
// cache (its last outcome, however old) or, when never read, reported as a
// timeout. The pass goes on in the background.
func (s *Source) CollectCounted(ctx context.Context) ([]source.Finding, []int) {
	p := s.cache.newPass(s)
	go p.run()
wait:
	for {
		select {
		case <-p.done:
			break wait
		case <-p.stale: // a newer pass (a concurrent scrape) carries on with the work
			select {
			case <-p.done:
				break wait
			default:
				p = p.next
			}
		case <-ctx.Done():
			break wait
		}
	}
	return s.snapshot()
}

func (p *pass) run() {
	s := p.s
	started := s.watchNow()
	// Watching: every event of what happened before this pass is taken
	// into account before deciding what to check (watch.go).
	barrierOK := s.watching() && s.watch.w.barrier()
	jobs := make(chan readJob, 1024)
	var walkers sync.WaitGroup
	for gi := range s.groups {
		g := &s.groups[gi]
		if g.loadErr != nil {
			continue
		}
		for ei, path := range g.cfg.Paths {
			key := g.walkKeys[ei]
			plan := p.plan(key, barrierOK)
			if plan.full {
				p.mu.Lock()
				if p.fullKeys == nil {
					p.fullKeys = map[string]uint64{}
				}
				p.fullKeys[key] = plan.seq
				p.mu.Unlock()
			}
			walkers.Add(1)
			go func() {
				defer walkers.Done()
				if plan.walk {
					p.walked.Store(true)
					walked := s.cache.walk(key, func() discovery {
						if plan.register {
							return s.discoverWatched(path, g.cfg.Exclude, key, plan)
						}
						return discoverOne(path, g.cfg.Exclude, s.beforeList)
					})
					select {
					case <-walked:
					case <-p.stale:
						p.dropped.Store(true)
						return
					}
				}
				d := s.cache.lastWalk(key)
				if d == nil { // dropped by a newer configuration's pass meanwhile
					return
				}
				files, seqs := p.filesToRefresh(key, plan, d)
				for i, f := range files {
					if !p.claim(f.path, gi) || !s.shard.Owns(source.KindFile+"|"+f.path) {
						continue
					}
					var seq uint64
					if seqs != nil {
						seq = seqs[i]
					}
					select {
					case jobs <- readJob{path: f.path, g: g, gi: gi, seq: seq}:
					case <-p.stale:
						p.dropped.Store(true)
						return
					}
				}
			}()
		}
	}
	go func() {
		walkers.Wait()
		close(jobs)
	}()

	var workers sync.WaitGroup
	for range cap(s.cache.slots) {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range jobs {
				s.cache.pause.wait(p.stale)
				select {
				case s.cache.slots <- struct{}{}:
				case <-p.stale:
					p.dropped.Store(true)
					continue // drain: the newer pass reads it
				}
				if running := s.cache.startRead(j.path); running != nil {
					<-s.cache.slots
					p.mu.Lock()
					p.joined = append(p.joined, running)
					p.rejoin = append(p.rejoin, j)
					p.mu.Unlock()
					continue
				}
				if j.seq != 0 {
					s.cache.invalidate(j.path)
				}
				s.refreshOwned(j.path, j.g, func() bool { return p.owner(j.path, j.gi) })
				s.watchNoteRefs(j.path, j.g)
				if j.seq != 0 && p.owner(j.path, j.gi) { // another group's read is not the one reported
					s.watch.w.clean(j.path, j.seq)
				}
				s.cache.endRead(j.path)
				<-s.cache.slots
			}
		}()
	}
	workers.Wait()
	for _, running := range p.joined {
		select {
		case <-running:
		case <-p.stale:
			return
		}
	}
	// A job that joined a read made for another group (a file reached by
	// two groups, read first for the later one) refreshes it again for its
	// own, when its group is the one the file is reported under: that read
	// was not stored, and may have had other options (a stat when the one
	// stored is fresh).
	for _, j := range p.rejoin {
		if j.seq != 0 && p.owner(j.path, j.gi) && s.watch.w.isDirty(j.path, j.seq) {
			// Marked by an event and read meanwhile for a group it is not
			// reported under: read it for this one.
			s.cache.invalidate(j.path)
			s.refreshOwned(j.path, j.g, func() bool { return p.owner(j.path, j.gi) })
			s.watch.w.clean(j.path, j.seq)
			continue
		}
		if p.owner(j.path, j.gi) {
			s.refreshOwned(j.path, j.g, func() bool { return p.owner(j.path, j.gi) })
		}
	}
	if p.dropped.Load() {
		return
	}
	s.cache.passMu.Lock()
	latest := s.cache.latest == p
	s.cache.passMu.Unlock()
	if latest && (p.walked.Load() || !s.watching()) { // watching: what is found changes only by a walk
		s.retain()
	}
	p.watchPassDone(started)
	close(p.done)
}

// claim says whether gi is the earliest group so far to find path: a file
// reached by several groups is read once, with the options of the group it
// will be reported under.
func (p *pass) claim(path string, gi int) bool {
	if len(p.s.groups) == 1 {
		return true // nothing to arbitrate; a path twice in the group is read once anyway (startRead, fresh)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if first, ok := p.claimed[path]; ok && first <= gi {
		return false
	}
	p.claimed[path] = gi
	return true
}

// owner reports whether gi is still the earliest group known to reach path.
func (p *pass) owner(path string, gi int) bool {
	if len(p.s.groups) == 1 {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	first, ok := p.claimed[path]
	return !ok || first == gi
}

// retain drops from the cache what this configuration no longer reaches.
func (s *Source) retain() {
	paths, keys := map[string]bool{}, map[string]bool{}
	for gi := range s.groups {
		for _, key := range s.groups[gi].walkKeys {
			keys[key] = true
			d := s.cache.lastWalk(key)
			if d == nil {
				return // not everything was walked: keep all
			}
			for _, f := range d.found {
				paths[f.path] = true
			}
		}
	}
	s.cache.retain(paths, keys)
	s.watchRetain(keys)
}

var (
	errNotWalked = source.Errorf(source.ClassTimeout, "scrape deadline reached before the path was walked")
	errNotRead   = source.Errorf(source.ClassTimeout, "scrape deadline reached before the file was read")
)

// snapshot builds the answer from what the cache holds now: each path's
// last complete discovery, each file's last outcome. It copies what it
// needs, so passes still running never write into an answer being read.
func (s *Source) snapshot() ([]source.Finding, []int) {
	s.cache.pause.hold()
	defer s.cache.pause.release()
	skipped := make([]int, len(s.groups))
	var findings []source.Finding // discovery problems first, then files by group and path
	type file struct {
		path     string
		explicit bool
		g        *group
	}
	var files []file
	owner := map[string]int{}
	for gi := range s.groups {
		g := &s.groups[gi]
		if g.loadErr != nil {
			for _, p := range g.cfg.Paths {
				findings = append(findings, s.failure(g, p, g.loadErr))
			}
			continue
		}
		var lists [][]foundFile
		for ei, path := range g.cfg.Paths {
			d := s.cache.lastWalk(g.walkKeys[ei])
			if d == nil {
				findings = append(findings, s.failure(g, path, errNotWalked))
				continue
			}
			for _, pr := range d.problems {
				findings = append(findings, s.failure(g, pr.path, pr.err))
			}
			lists = append(lists, d.found)
		}
		for _, f := range mergeFound(lists) {
			if first, ok := owner[f.path]; ok {
				if first != gi {
					s.warnOverlap(first, gi, f.path)
				}
				continue
			}
			owner[f.path] = gi
			if !s.shard.Owns(source.KindFile + "|" + f.path) {
				continue // another replica's file
			}
			files = append(files, file{path: f.path, explicit: f.explicit, g: g})
		}
	}
	findings = slices.Grow(findings, len(files))
	paths, optsKeys := make([]string, len(files)), make([]string, len(files))
	for i, f := range files {
		paths[i], optsKeys[i] = f.path, f.g.optsKey
	}
	outcomes, found := s.cache.outcomes(paths, optsKeys)
	notRead := 0
	for i, f := range files {
		c, ok := outcomes[i], found[i]
		if !ok {
			notRead++
			findings = append(findings, s.failed(f.g, f.path, errNotRead))
			continue
		}
		out, skip := s.findings(f.g, f.path, c, f.explicit)
		if skip {
			skipped[f.g.index]++
			continue
		}
		findings = append(findings, out...)
	}
	if notRead > 0 { // one line, not one per file: a first scrape of a large tree would flood the log
		s.logger.Warn("Files not read yet by the scrape deadline, reported as timeout", "kind", source.KindFile, "count", notRead)
	}
	return findings, skipped
}

// mergeFound joins the files of a group's paths, each once, sorted; a file
// is explicit when any path names it directly.
func mergeFound(lists [][]foundFile) []foundFile {
	switch len(lists) {
	case 0:
		return nil
	case 1:
		return lists[0]
	}
	var all []foundFile
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.SortStableFunc(all, func(a, b foundFile) int { return strings.Compare(a.path, b.path) })
	out := all[:0]
	for _, f := range all {
		if n := len(out); n > 0 && out[n-1].path == f.path {
			out[n-1].explicit = out[n-1].explicit || f.explicit
			continue
		}
		out = append(out, f)
	}
	return out
}

// warnOverlap logs, once per pair of groups, that a file is reached by both
// and reported under the first.
func (s *Source) warnOverlap(first, second int, path string) {
	if _, loaded := s.overlapWarned.LoadOrStore([2]int{first, second}, true); loaded {
		return
	}
	s.logger.Warn("A file is reached by two file groups; it is reported once, under the first",
		"kind", source.KindFile, "target", path, "first_group", first, "second_group", second)
}

// The files skipped by walks and globs, one series per file group: the
// group's index in the configuration's files list keeps the label bounded.
const (
	nameSkipped = "certwatch_file_skipped_files"
	helpSkipped = "Files found by walking a directory or a glob and skipped: no certificate inside and a name that claims none; group is the index in the files list."
)

// Name is the collector label of the files source.
func (s *Source) Name() string { return source.KindFile }

// Scrape is CollectCounted, with the skipped files of each group as status.
func (s *Source) Scrape(ctx context.Context) source.Result {
	findings, skipped := s.CollectCounted(ctx)
	status := make([]source.Sample, len(skipped))
	for group, n := range skipped {
		status[group] = source.Sample{Name: nameSkipped, Help: helpSkipped,
			LabelNames: []string{"group"}, Values: []string{strconv.Itoa(group)}, Value: float64(n)}
	}
	return source.Result{Findings: findings, Status: append(status, s.watchStatus()...)}
}
