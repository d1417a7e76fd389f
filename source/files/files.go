// Package files is the source that finds certificates in files: PEM bundles
// (certificates mixed with keys and other blocks), DER, PKCS#12/PFX, Java
// keystores and kubeconfig files, named by paths, directories (walked
// recursively, symlinks followed, loops cut) and globs with "**". A cache
// keyed by each file's identity (device, inode, size, modification time)
// means an unchanged file is neither re-read nor re-parsed.
package files

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/shard"
	"github.com/certwatch/certwatch/source"
	"github.com/certwatch/certwatch/source/decode"
)

// Source reads the file groups of one configuration. Build a new one on
// every configuration change; pass the previous Cache to keep what was read.
type Source struct {
	logger  *slog.Logger
	groups  []group
	maxSize int64
	cache   *Cache
	shard   shard.Shard
}

type group struct {
	cfg      config.FileGroup
	verify   source.VerifyParams
	password []byte // nil when no password_file
	loadErr  error  // the group's CA or password file is unreadable
	optsKey  string // what, besides a file's identity, its cached parse depends on
}

// New compiles the file groups of a configuration.
func New(cfg *config.Config, cache *Cache, logger *slog.Logger) *Source {
	s := &Source{logger: logger, maxSize: int64(cfg.Global.MaxFileSize), cache: cache, shard: cfg.Shard}
	for _, gc := range cfg.Files {
		g := group{cfg: gc, verify: source.VerifyParams{RootsID: "system"}}
		if gc.CAFile != "" {
			data, err := os.ReadFile(gc.CAFile)
			if err != nil {
				g.loadErr = source.WithClass(source.ClassConfig, fmt.Errorf("reading ca_file %s: %w", gc.CAFile, err))
			} else {
				pool := x509.NewCertPool()
				pool.AppendCertsFromPEM(data)
				sum := sha256.Sum256(data)
				g.verify.Roots, g.verify.RootsID = pool, hex.EncodeToString(sum[:])
			}
		}
		if gc.PasswordFile != "" {
			data, err := os.ReadFile(gc.PasswordFile)
			if err != nil {
				g.loadErr = source.WithClass(source.ClassConfig, fmt.Errorf("reading password_file %s: %w", gc.PasswordFile, err))
			} else {
				line, _, _ := strings.Cut(string(data), "\n")
				g.password = []byte(strings.TrimRight(line, "\r"))
			}
		}
		g.optsKey = g.verify.RootsID + "|" + hashPassword(g.password)
		s.groups = append(s.groups, g)
	}
	return s
}

// Collect discovers the files of every group and returns one finding per
// certificate-holding key of every file, and one per path that failed.
func (s *Source) Collect(ctx context.Context) []source.Finding {
	type job struct {
		path     string
		explicit bool // named directly, not found by a walk or glob
		g        *group
	}
	var jobs []job
	var findings []source.Finding
	seen := map[string]bool{}
	for i := range s.groups {
		g := &s.groups[i]
		if g.loadErr != nil {
			for _, p := range g.cfg.Paths {
				findings = append(findings, s.failure(g, p, g.loadErr))
			}
			continue
		}
		found, problems := discover(g.cfg.Paths, g.cfg.Exclude)
		for _, pr := range problems {
			findings = append(findings, s.failure(g, pr.path, pr.err))
		}
		for _, f := range found {
			if seen[f.path] {
				continue // listed by two groups: the first one wins
			}
			seen[f.path] = true
			if !s.shard.Owns(source.KindFile + "|" + f.path) {
				continue // another replica's file
			}
			jobs = append(jobs, job{path: f.path, explicit: f.explicit, g: g})
		}
	}

	results := make([][]source.Finding, len(jobs))
	done := make([]bool, len(jobs)) // a read file may yield no finding (a key file in a walk)
	workers := runtime.GOMAXPROCS(0) * 2
	// Workers take the next job off a counter (a steady state is one stat
	// per file, so handing jobs over a channel would cost as much as the
	// stat); none starts a job once the scrape's deadline has passed.
	var next atomic.Int64
	stop := ctx.Done()
	var wg sync.WaitGroup
	for range min(workers, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := int(next.Add(1) - 1)
				if i >= len(jobs) {
					return
				}
				results[i] = s.read(jobs[i].path, jobs[i].explicit, jobs[i].g)
				done[i] = true
			}
		}()
	}
	wg.Wait()
	total := len(findings)
	for i, r := range results {
		total += max(len(r), 1)
		if !done[i] {
			results[i] = []source.Finding{s.failure(jobs[i].g, jobs[i].path, source.Errorf(source.ClassTimeout, "scrape deadline reached before the file was read"))}
		}
	}
	findings = slices.Grow(findings, total-len(findings))
	for _, r := range results {
		findings = append(findings, r...)
	}
	s.cache.retain(seen)
	return findings
}

func (s *Source) failure(g *group, path string, err error) source.Finding {
	s.logger.Warn("Reading certificate file failed", "kind", source.KindFile, "target", path,
		"class", source.ClassOf(err), "err", err)
	return source.Finding{Place: source.Place{Source: source.KindFile, Target: path, Labels: g.cfg.Labels}, Verify: g.verify, Err: err}
}

// read returns the findings of one file, from the cache when the file is unchanged.
func (s *Source) read(path string, explicit bool, g *group) []source.Finding {
	st, err := os.Stat(path)
	if err != nil {
		return []source.Finding{s.failure(g, path, source.WithClass(source.Infer(err, source.ClassUnknown), err))}
	}
	if !st.Mode().IsRegular() { // replaced since discovery, by a FIFO for instance: never opened
		return []source.Finding{s.failure(g, path, notRegular(path, st))}
	}
	id := identityOf(st)
	optsKey := g.optsKey
	if entries, ok := s.cache.get(path, id, optsKey); ok {
		return s.findings(g, path, entries, explicit)
	}
	entries, err := s.load(path, st.Size(), g.password)
	if err != nil {
		// Failures are cached too: a junk file is not re-parsed every scrape.
		// A file without certificates is cached as such, not as nothing, so
		// that findings can still report it when it is named explicitly.
		entries = []decode.Entry{{Err: err}}
	}
	s.cache.put(path, id, optsKey, entries)
	return s.findings(g, path, entries, explicit)
}

func (s *Source) findings(g *group, path string, entries []decode.Entry, explicit bool) []source.Finding {
	out := make([]source.Finding, 0, len(entries))
	for _, e := range entries {
		if e.Err != nil && len(e.Certs) == 0 && e.Key == "" {
			if !explicit && errors.Is(e.Err, decode.ErrNoCertificates) {
				s.logger.Debug("Skipping file without certificates", "target", path)
				continue
			}
			out = append(out, s.failure(g, path, e.Err))
			continue
		}
		f := source.Finding{
			Place:      source.Place{Source: source.KindFile, Target: path, Key: e.Key, Labels: g.cfg.Labels},
			Certs:      e.Certs,
			KeyPublics: e.KeyPublics,
			Verify:     g.verify,
			Err:        e.Err,
		}
		if e.Err != nil {
			s.logger.Warn("Certificate file partly unreadable", "kind", source.KindFile, "target", path,
				"key", e.Key, "class", source.ClassOf(e.Err), "err", e.Err)
		}
		out = append(out, f)
	}
	return out
}

// Counters of the files opened and parsed, for tests to tell a cache hit.
var testLoads, testParses atomic.Int64

// load reads and parses one file, refusing files over the size cap.
func (s *Source) load(path string, size int64, password []byte) ([]decode.Entry, error) {
	if size > s.maxSize {
		return nil, source.Errorf(source.ClassTooLarge, "file is %d bytes, over the %d-byte limit (global.max_file_size)", size, s.maxSize)
	}
	testLoads.Add(1)
	// O_NONBLOCK: should the path have become a FIFO since it was checked,
	// opening it must not wait for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, source.WithClass(source.Infer(err, source.ClassUnknown), err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && !st.Mode().IsRegular() {
		return nil, notRegular(path, st)
	}
	data, err := io.ReadAll(io.LimitReader(f, s.maxSize+1))
	if err != nil {
		return nil, source.WithClass(source.Infer(err, source.ClassUnknown), fmt.Errorf("reading: %w", err))
	}
	if int64(len(data)) > s.maxSize { // it grew after the stat
		return nil, source.Errorf(source.ClassTooLarge, "file is over the %d-byte limit (global.max_file_size)", s.maxSize)
	}
	testParses.Add(1)
	entries, err := decode.Decode(data, password)
	clear(data) // the file may hold private keys
	return entries, err
}

func notRegular(path string, st os.FileInfo) error {
	return source.Errorf(source.ClassParse, "%s is not a regular file (%s)", path, st.Mode().Type())
}

func hashPassword(p []byte) string {
	if p == nil {
		return "none"
	}
	sum := sha256.Sum256(p)
	return hex.EncodeToString(sum[:8])
}

// identity is what tells that a file changed without reading it.
type identity struct {
	dev, ino uint64
	size     int64
	mtimeNs  int64
	ctimeNs  int64 // a chmod or a rename over the file also counts
}

func identityOf(st os.FileInfo) identity {
	id := identity{size: st.Size(), mtimeNs: st.ModTime().UnixNano()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(sys.Dev), sys.Ino //nolint:unconvert // Dev's type differs by platform
		id.ctimeNs = sys.Ctim.Nano()
	}
	return id
}

// Cache holds parsed files by path. It is safe for concurrent use and
// survives configuration reloads.
type Cache struct {
	mu      sync.RWMutex // read-locked by the lookups of every scrape's workers
	entries map[string]cached
}

type cached struct {
	id      identity
	optsKey string
	entries []decode.Entry
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{entries: map[string]cached{}}
}

func (c *Cache) get(path string, id identity, optsKey string) ([]decode.Entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[path]
	if !ok || e.id != id || e.optsKey != optsKey {
		return nil, false
	}
	return e.entries, true
}

func (c *Cache) put(path string, id identity, optsKey string, entries []decode.Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[path] = cached{id: id, optsKey: optsKey, entries: entries}
}

// retain drops files no longer found, so a deleted file's memory goes.
func (c *Cache) retain(paths map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range c.entries {
		if !paths[p] {
			delete(c.entries, p)
		}
	}
}

// Len returns how many files are cached.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
